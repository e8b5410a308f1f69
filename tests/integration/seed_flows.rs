//! One end-to-end test per seed system telemeet generalises (../shared/seeds), named after
//! it, through the local gateway unless noted.

use serde_json::json;
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

/// The Zoom meeting number in a start or join link.
fn room_of(url: &str) -> &str {
    url.rsplit('/')
        .next()
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("")
}

/// The Zoho session a start or join link opens (its `key` parameter).
fn zoho_key_of(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_zoho_shared_conversation_room_whoever_calls_reused_for_an_hour() {
    // In-process: the hour passes on an injected clock.
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app_configured(
            clock.clone(),
            Settings::default(),
            &[("MEETING_PROVIDER", "zoho")],
        )
        .await
        .expect("app");
    let staff = day_token(&stack, "staff-1", "staff", "clinic-1");
    let patient = day_token(&stack, "pat-9", "patient", "clinic-1");
    let body = json!({ "hostUserId": "staff-1", "participantUserIds": ["pat-9"] });
    let begin_call = |token: &str| {
        lambda_request(
            "PUT",
            "/conversations/chat-000/meeting",
            Some(token),
            Some(&body),
        )
    };
    let link = |token: &str, id: &str| {
        lambda_request("GET", &format!("/meetings/{id}/link"), Some(token), None)
    };

    // Staff host only when the host directory maps them (DESIGN.md, Identity).
    let admin = day_token(&stack, "adm", "admin", "clinic-1");
    let map = lambda_request(
        "PUT",
        "/org/hosts/staff-1",
        Some(&admin),
        Some(&json!({ "zohoPresenter": "10101" })),
    );
    assert_eq!(call(&app, Function::OrgAdmin, map).await.status, 200);
    // Staff calls the patient; the patient accepts and lands in the same Zoho room.
    let call_1 = call(&app, Function::CreateMeeting, begin_call(&staff)).await;
    assert_eq!(
        (call_1.status, call_1.body["provider"].as_str()),
        (201, Some("zoho")),
        "{:?}",
        call_1.body
    );
    let id = call_1.body["meetingId"].as_str().expect("id").to_owned();
    let key = call_1.body["providerMeetingId"].as_str().expect("key");
    let accepted = call(&app, Function::CreateMeeting, begin_call(&patient)).await;
    assert_eq!(
        (accepted.status, &accepted.body["meetingId"]),
        (200, &call_1.body["meetingId"])
    );
    let staff_link = call(&app, Function::GetMeetingLink, link(&staff, &id)).await;
    let patient_link = call(&app, Function::GetMeetingLink, link(&patient, &id)).await;
    let staff_url = staff_link.body["url"].as_str().expect("url");
    let patient_url = patient_link.body["url"].as_str().expect("url");
    assert_eq!(zoho_key_of(staff_url).as_deref(), Some(key), "same room");
    assert_eq!(zoho_key_of(patient_url).as_deref(), Some(key), "same room");
    assert_other_link(
        &staff_link.body["url"],
        &patient_link.body["url"],
        "the host starts, the patient joins",
    );

    // Later in the hour the patient calls back: the same room again.
    clock.advance(chrono::Duration::minutes(59));
    let call_back = call(&app, Function::CreateMeeting, begin_call(&patient)).await;
    assert_eq!(
        (call_back.status, &call_back.body["meetingId"]),
        (200, &call_1.body["meetingId"])
    );

    // After the hour a call makes a new room; the old one reads expired.
    clock.advance(chrono::Duration::minutes(2));
    let next = call(&app, Function::CreateMeeting, begin_call(&patient)).await;
    assert_eq!(next.status, 201, "{:?}", next.body);
    assert_ne!(next.body["meetingId"], call_1.body["meetingId"]);
    assert_ne!(next.body["providerMeetingId"].as_str(), Some(key));
    assert_eq!(next.body["initiatedBy"], "pat-9");
    let old = call(
        &app,
        Function::GetMeetingLink,
        lambda_request("GET", &format!("/meetings/{id}"), Some(&staff), None),
    )
    .await;
    assert_eq!(old.body["status"], "expired");
    stack.finish(0).await;
}

#[tokio::test]
async fn seed_001_zoom_appointment_gives_the_practitioner_the_host_link_and_the_patient_the_join_link()
 {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let accepted = api
        .put_appointment(
            &stack.token("dr-7", "practitioner", "clinic-1"),
            "appt-123",
            &appointment_body(),
        )
        .await;
    assert_eq!(accepted.status, 201);
    let id = accepted.body["meetingId"].as_str().expect("id");
    let host = api
        .get(
            &stack.token("dr-7", "practitioner", "clinic-1"),
            &format!("/meetings/{id}/link"),
        )
        .await
        .body;
    let patient = api
        .get(
            &stack.token("pat-9", "patient", "clinic-1"),
            &format!("/meetings/{id}/link"),
        )
        .await
        .body;
    let (host_url, join_url) = (
        host["url"].as_str().expect("url"),
        patient["url"].as_str().expect("url"),
    );
    assert!(
        host_url.contains("/s/") && join_url.contains("/j/"),
        "host start URL, participant join URL"
    );
    assert_eq!(room_of(host_url), room_of(join_url), "two URLs, one room");
    assert!(
        patient["password"].is_string(),
        "the same passcode for both"
    );
    stack.finish(0).await;
}

#[tokio::test]
async fn seed_002_full_zoom_integration_with_webhooks_stats_and_cleanup() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let start = chrono::Utc::now() - chrono::Duration::hours(2);
    let body = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"], "startTime": start.format("%Y-%m-%dT%H:%M:%SZ").to_string() });
    let m = api.put_appointment(&service, "appt-full", &body).await.body;
    let (id, zoom) = (
        m["meetingId"].as_str().expect("id"),
        m["providerMeetingId"].as_str().expect("zoom"),
    );
    let target = format!("{}/webhooks/zoom", stack.gateway());
    for (event, extra) in [
        ("meeting.started", json!({})),
        (
            "meeting.participant_joined",
            json!({ "participant": { "host": true } }),
        ),
        (
            "meeting.participant_joined",
            json!({ "participant": { "host": false } }),
        ),
        ("meeting.ended", json!({})),
    ] {
        let mut request = json!({ "event": event, "meetingId": zoom, "target": target });
        for (k, v) in extra.as_object().into_iter().flatten() {
            request[k] = v.clone();
        }
        let sent = stack
            .sandbox(
                reqwest::Method::POST,
                "/__sandbox/webhooks/send",
                Some(request),
            )
            .await;
        assert_eq!(sent["status"], 200, "{sent}");
    }
    assert_eq!(
        api.get(&service, &format!("/meetings/{id}")).await.body["status"],
        "ended"
    );
    let stats = api.get(&service, "/stats").await.body;
    assert_eq!(
        (
            stats["byStatus"]["ended"].as_u64(),
            stats["attendance"]["bothJoined"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // The weekly cleanup, a week and a day later, archives it and deletes it at Zoom.
    let scheduled = json!({ "time": (chrono::Utc::now() + chrono::Duration::days(8)).to_rfc3339(), "detail": {} });
    let summary: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/local/events/cleanup", stack.gateway()))
        .json(&scheduled)
        .send()
        .await
        .expect("cleanup")
        .json()
        .await
        .expect("summary");
    assert_eq!(summary["archived"], 1, "{summary}");
    assert_eq!(
        api.get(&service, &format!("/meetings/{id}")).await.body["status"],
        "archived"
    );
    stack.finish(0).await;
}

#[tokio::test]
async fn seed_003_zoom_server_to_server_oauth_fetches_one_token_for_many_calls() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    for i in 0..5 {
        assert_eq!(
            api.put_appointment(&service, &format!("appt-oauth-{i}"), &appointment_body())
                .await
                .status,
            201
        );
    }
    // account_credentials with Basic client credentials (the sandbox refuses anything
    // else), fetched once and reused.
    assert_eq!(stack.sandbox_succeeded(TOKEN_OP).await, 1);
    assert_eq!(stack.sandbox_succeeded(CREATE_OP).await, 5);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_jitsi_jwt_links_for_appointments() {
    // In-process: Jitsi as the deployment's provider.
    let stack = in_process_stack().await;
    let app = stack
        .app_configured(
            manual_clock(),
            Settings::default(),
            &[("MEETING_PROVIDER", "jitsi")],
        )
        .await
        .expect("app");
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let created = call(
        &app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/appointments/appt-jitsi/meeting",
            Some(&service),
            Some(&appointment_body()),
        ),
    )
    .await;
    assert_eq!(
        (created.status, created.body["provider"].as_str()),
        (201, Some("jitsi"))
    );
    let id = created.body["meetingId"].as_str().expect("id");
    let patient = day_token(&stack, "pat-9", "patient", "clinic-1");
    let link = call(
        &app,
        Function::GetMeetingLink,
        lambda_request("GET", &format!("/meetings/{id}/link"), Some(&patient), None),
    )
    .await;
    let url = link.body["url"].as_str().expect("url");
    stack.remember(url);
    let room = created.body["providerMeetingId"].as_str().expect("room");
    assert!(
        url.starts_with(&format!(
            "https://{}/{room}?jwt=",
            local_stack::JITSI_DOMAIN
        )),
        "a JWT-signed link to the room"
    );
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 0);
    stack.finish(0).await;
}
