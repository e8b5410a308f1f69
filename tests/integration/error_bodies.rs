//! Every error answers the contract's body: 400, 401, 403, 404, 405, 413 and friends.

use telemeet_local::*;

#[tokio::test]
async fn errors_answer_the_contract_body_with_the_field_named() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let put = |appointment: &str, body: String| {
        let (api, service, appointment) = (api.clone(), service.clone(), appointment.to_owned());
        async move {
            api.send(
                "PUT",
                &format!("/appointments/{appointment}/meeting"),
                Some(&service),
                Some(body),
            )
            .await
        }
    };

    // 400, naming the field.
    let cases = [
        ("appt-1", "{not json".to_owned(), "body"),
        ("appt-1", "[1,2]".to_owned(), "body"),
        (
            "appt-1",
            r#"{"participantUserIds":["p"],"startTime":"2026-01-01T10:00:00Z"}"#.to_owned(),
            "hostUserId",
        ),
        (
            "appt-1",
            appointment_body()
                .to_string()
                .replace("10:00:00Z", "25:00:00Z"),
            "startTime",
        ),
        (
            "appt-1",
            appointment_body()
                .to_string()
                .replace("\"durationMinutes\":30", "\"durationMinutes\":481"),
            "durationMinutes",
        ),
        (
            "appt-1",
            appointment_body()
                .to_string()
                .replace("Europe/Berlin", "Europe/Atlantis"),
            "timezone",
        ),
        (
            "appt%20bad",
            appointment_body().to_string(),
            "appointmentId",
        ),
        (
            &"a".repeat(129),
            appointment_body().to_string(),
            "appointmentId",
        ),
    ];
    for (appointment, body, field) in cases {
        let r = put(appointment, body).await;
        assert_error(&r, 400, "VALIDATION_FAILED");
        assert_eq!(error_field(&r), field);
    }
    assert_error(
        &api.get(&service, "/meetings/bad$id").await,
        400,
        "VALIDATION_FAILED",
    );

    // 401 without a token.
    assert_error(
        &api.send("GET", "/meetings/mtg_x", None, None).await,
        401,
        "UNAUTHENTICATED",
    );

    // 403: may see the meeting, may not do this.
    let created = api
        .put_appointment(&service, "appt-errors", &appointment_body())
        .await;
    let id = created.body["meetingId"].as_str().expect("id");
    let patient = stack.token("pat-9", "patient", "clinic-1");
    assert_error(
        &api.get(&patient, &format!("/meetings/{id}/link?role=host"))
            .await,
        403,
        "FORBIDDEN",
    );

    // 404: unknown meeting, unknown subject, unknown route.
    assert_error(
        &api.get(&service, "/meetings/mtg_nothere").await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &api.get(&service, "/appointments/appt-none/meeting").await,
        404,
        "NOT_FOUND",
    );
    assert_error(&api.get(&service, "/nowhere").await, 404, "NOT_FOUND");

    // 405 with Allow.
    let r = api
        .send(
            "DELETE",
            "/appointments/appt-errors/meeting",
            Some(&service),
            None,
        )
        .await;
    assert_error(&r, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("allow"), Some("GET, PUT"));
    let r = api
        .send("POST", "/meetings/mtg_x/link", Some(&service), None)
        .await;
    assert_error(&r, 405, "METHOD_NOT_ALLOWED");

    // 413 over 64 KiB, before anything else is looked at.
    let big = format!(r#"{{"topic":"{}"}}"#, "x".repeat(64 * 1024));
    assert_error(
        &put("appt-big", big.clone()).await,
        413,
        "PAYLOAD_TOO_LARGE",
    );
    let r = api
        .send("PUT", "/appointments/appt-big/meeting", None, Some(big))
        .await;
    assert_error(&r, 413, "PAYLOAD_TOO_LARGE");

    // Request ids differ per request and are the gateway's.
    let a = api.get(&service, "/meetings/mtg_nothere").await;
    let b = api.get(&service, "/meetings/mtg_nothere").await;
    assert_ne!(a.body["error"]["requestId"], b.body["error"]["requestId"]);
    stack.finish(0).await;
}
