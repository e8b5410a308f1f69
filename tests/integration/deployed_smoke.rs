//! The post-deploy smoke test (`make smoke`): one appointment through a deployed API with a
//! service token: create, reuse, read, both links, list, stats, cancel, plus the refusals
//! (no token, unknown path, unsigned webhook). It cleans up after itself (the meeting is
//! cancelled, so the provider meeting is deleted).
//!
//! Against a deployment it needs `API_URL` and `TELEMEET_TOKEN` (a `service` JWT your issuer
//! signed for the deployed audience); without them it is reported as skipped, never passed.
//! The same routine runs against the local gateway on every test run, so it is known to work.

use serde_json::{Value, json};
use telemeet_local::*;

/// Runs the smoke routine against `base`, acting as the service behind `token`.
async fn smoke(base: &str, token: &str) {
    let api = Api::new(base);
    let appointment = format!("smoke-{}", chrono::Utc::now().timestamp_millis());
    let start = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let body = json!({ "hostUserId": "smoke-host", "participantUserIds": ["smoke-patient"], "startTime": start, "durationMinutes": 15 });

    let created = api.put_appointment(token, &appointment, &body).await;
    assert_eq!(created.status, 201, "create: {:?}", created.body);
    let id = created.body["meetingId"]
        .as_str()
        .expect("meetingId")
        .to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/meetings/{id}").as_str())
    );
    let again = api.put_appointment(token, &appointment, &body).await;
    assert_eq!(
        (again.status, &again.body["meetingId"]),
        (200, &created.body["meetingId"]),
        "reuse"
    );
    let read = api
        .get(token, &format!("/appointments/{appointment}/meeting"))
        .await;
    assert_eq!(read.body["meetingId"], created.body["meetingId"]);
    let host = api
        .get(token, &format!("/meetings/{id}/link?role=host"))
        .await;
    let participant = api
        .get(token, &format!("/meetings/{id}/link?role=participant"))
        .await;
    assert_eq!(
        (host.status, participant.status),
        (200, 200),
        "links: {:?} {:?}",
        host.body["error"],
        participant.body["error"]
    );
    assert_other_link(&host.body["url"], &participant.body["url"], "role links");
    let listed = api.get(token, "/users/smoke-patient/meetings").await;
    assert_eq!(listed.status, 200, "list: {:?}", listed.body);
    assert!(
        listed.body["meetings"].as_array().is_some_and(|m| m
            .iter()
            .any(|m| m["meetingId"] == created.body["meetingId"])),
        "the meeting is listed for its participant"
    );
    let stats = api.get(token, "/stats").await;
    assert_eq!(stats.status, 200, "stats: {:?}", stats.body);

    // Refusals: no token, an unknown path, an unsigned webhook.
    let anonymous = api
        .send("GET", &format!("/meetings/{id}"), None, None)
        .await;
    assert_eq!(anonymous.status, 401, "no token");
    let unknown = api.get(token, "/no/such/path").await;
    assert_eq!(unknown.status, 404, "unknown path");
    let unsigned = api
        .send(
            "POST",
            "/webhooks/zoom",
            None,
            Some(json!({ "event": "meeting.started", "payload": {} }).to_string()),
        )
        .await;
    assert_eq!(unsigned.status, 401, "unsigned webhook");

    let cancelled = api
        .send("DELETE", &format!("/meetings/{id}"), Some(token), None)
        .await;
    assert_eq!(
        (cancelled.status, cancelled.body["status"].clone()),
        (200, Value::from("cancelled")),
        "cancel: {:?}",
        cancelled.body
    );
}

#[tokio::test]
#[ignore = "runs against a deployment: API_URL and TELEMEET_TOKEN (make smoke)"]
async fn a_deployed_api_answers_the_contract() {
    let (Ok(base), Ok(token)) = (std::env::var("API_URL"), std::env::var("TELEMEET_TOKEN")) else {
        panic!("set API_URL and TELEMEET_TOKEN (a service JWT for the deployed API)");
    };
    smoke(&base, &token).await;
}

#[tokio::test]
async fn the_smoke_test_passes_against_the_local_gateway() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let token = stack.token("svc-smoke", "service", "clinic-1");
    smoke(stack.gateway(), &token).await;
    stack.finish(0).await;
}
