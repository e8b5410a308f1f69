//! Guarantee 3: webhooks are verified on the raw bytes, applied exactly once and never
//! backwards. Attack cases go straight to the webhook handler as raw API Gateway events
//! (the function's own entry point), so every byte and header is the test's choice.

use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;
use telemeet::App;
use telemeet::clock::{Clock, ManualClock};
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

struct World {
    stack: Stack,
    app: Arc<App>,
    clock: Arc<ManualClock>,
    meeting_id: String,
    zoom_id: i64,
    service: String,
}

impl World {
    async fn new() -> Self {
        let stack = in_process_stack().await;
        let clock = manual_clock();
        let app = Arc::new(
            stack
                .app(clock.clone(), Settings::default())
                .await
                .expect("app"),
        );
        let service = day_token(&stack, "svc-1", "service", "clinic-1");
        let created = call(
            &app,
            Function::CreateMeeting,
            lambda_request(
                "PUT",
                "/appointments/appt-hook/meeting",
                Some(&service),
                Some(&appointment_body()),
            ),
        )
        .await;
        assert_eq!(created.status, 201);
        Self {
            meeting_id: created.body["meetingId"].as_str().expect("id").to_owned(),
            zoom_id: created.body["providerMeetingId"]
                .as_str()
                .expect("zoom id")
                .parse()
                .expect("i64"),
            stack,
            app,
            clock,
            service,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn event(&self, kind: &str, ts_ms: i64, extra: Value) -> String {
        let mut object = json!({ "id": self.zoom_id, "uuid": "uuid-1", "host_id": "zoom-host-1", "topic": "Video consultation" });
        for (k, v) in extra.as_object().into_iter().flatten() {
            object[k] = v.clone();
        }
        json!({ "event": kind, "event_ts": ts_ms, "payload": { "account_id": "acc", "object": object } }).to_string()
    }

    /// A correctly signed delivery with the current secret.
    fn signed(&self, body: &str) -> lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest {
        let ts = self.now();
        delivery(
            &[
                ("x-zm-request-timestamp", ts.to_string()),
                (
                    "x-zm-signature",
                    sign(&self.stack.webhook_secret, ts, body.as_bytes()),
                ),
            ],
            body,
            false,
        )
    }

    async fn meeting(&self) -> Value {
        let r = call(
            &self.app,
            Function::GetMeetingLink,
            lambda_request(
                "GET",
                &format!("/meetings/{}", self.meeting_id),
                Some(&self.service),
                None,
            ),
        )
        .await;
        r.body
    }

    async fn stats(&self) -> Value {
        call(
            &self.app,
            Function::ManageMeeting,
            lambda_request("GET", "/stats", Some(&self.service), None),
        )
        .await
        .body
    }
}

/// One attack: why, headers, body, base64 flag, expected status.
type Case = (&'static str, Vec<(&'static str, String)>, String, bool, u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_plus_attacks_and_malformed_deliveries_are_refused_with_401_and_write_nothing() {
    let w = World::new().await;
    let secret = w.stack.webhook_secret.clone();
    let body = w.event("meeting.started", w.now() * 1000, json!({}));
    let ts = w.now();
    let good = sign(&secret, ts, body.as_bytes());
    let hex = good.trim_start_matches("v0=").to_owned();
    let mut flipped = body.clone().into_bytes();
    flipped[10] ^= 0x01;
    let flipped = String::from_utf8(flipped).expect("still text");
    let respaced =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).expect("json"))
            .expect("json");
    let t = |v: i64| ("x-zm-request-timestamp", v.to_string());
    let s = |v: &str| ("x-zm-signature", v.to_owned());
    let cases: Vec<Case> = vec![
        (
            "tampered body (one byte)",
            vec![t(ts), s(&good)],
            flipped,
            false,
            401,
        ),
        (
            "re-serialised JSON",
            vec![t(ts), s(&good)],
            respaced,
            false,
            401,
        ),
        (
            "wrong secret",
            vec![t(ts), s(&sign("not-the-secret", ts, body.as_bytes()))],
            body.clone(),
            false,
            401,
        ),
        (
            "truncated signature",
            vec![t(ts), s(&good[..good.len() - 1])],
            body.clone(),
            false,
            401,
        ),
        ("v0= alone", vec![t(ts), s("v0=")], body.clone(), false, 401),
        (
            "uppercase hex",
            vec![t(ts), s(&format!("v0={}", hex.to_uppercase()))],
            body.clone(),
            false,
            401,
        ),
        (
            "missing v0=",
            vec![t(ts), s(&hex)],
            body.clone(),
            false,
            401,
        ),
        (
            "v1= scheme",
            vec![t(ts), s(&format!("v1={hex}"))],
            body.clone(),
            false,
            401,
        ),
        ("missing signature", vec![t(ts)], body.clone(), false, 401),
        (
            "missing timestamp",
            vec![s(&good)],
            body.clone(),
            false,
            401,
        ),
        (
            "two signature headers",
            vec![t(ts), s(&format!("{good},{good}"))],
            body.clone(),
            false,
            401,
        ),
        (
            "two timestamp headers",
            vec![("x-zm-request-timestamp", format!("{ts},{ts}")), s(&good)],
            body.clone(),
            false,
            401,
        ),
        (
            "timestamp 301 s old",
            vec![t(ts - 301), s(&sign(&secret, ts - 301, body.as_bytes()))],
            body.clone(),
            false,
            401,
        ),
        (
            "timestamp 301 s ahead",
            vec![t(ts + 301), s(&sign(&secret, ts + 301, body.as_bytes()))],
            body.clone(),
            false,
            401,
        ),
        (
            "non-numeric timestamp",
            vec![("x-zm-request-timestamp", "soon".into()), s(&good)],
            body.clone(),
            false,
            401,
        ),
        (
            "empty body",
            vec![t(ts), s(&sign(&secret, ts, b""))],
            String::new(),
            false,
            401,
        ),
        (
            "signature over another timestamp",
            vec![t(ts), s(&sign(&secret, ts - 1, body.as_bytes()))],
            body.clone(),
            false,
            401,
        ),
        (
            "base64 flag with bad base64",
            vec![t(ts), s(&good)],
            "!!not base64!!".into(),
            true,
            401,
        ),
        (
            "empty signature",
            vec![t(ts), s("")],
            body.clone(),
            false,
            401,
        ),
        (
            "65 hex digits",
            vec![t(ts), s(&format!("{good}0"))],
            body.clone(),
            false,
            401,
        ),
        (
            "non-hex digits",
            vec![t(ts), s(&format!("v0={}", "g".repeat(64)))],
            body.clone(),
            false,
            401,
        ),
        (
            "signature with a space",
            vec![t(ts), s(&format!("v0= {hex}"))],
            body.clone(),
            false,
            401,
        ),
        (
            "body over 64 KiB",
            vec![t(ts), s(&good)],
            format!("{{\"pad\":\"{}\"}}", "x".repeat(64 * 1024)),
            false,
            413,
        ),
    ];
    assert!(cases.len() >= 20);
    let before = w.meeting().await;
    let stats_before = w.stats().await;
    for (why, headers, payload, base64, status) in cases {
        let (got, answer) = deliver(&w.app, delivery(&headers, &payload, base64)).await;
        assert_eq!(got, status, "{why}");
        let code = if status == 401 {
            "UNAUTHENTICATED"
        } else {
            "PAYLOAD_TOO_LARGE"
        };
        assert_eq!(
            answer["error"]["code"], code,
            "{why}: the uniform error body"
        );
        assert_eq!(w.meeting().await, before, "{why}: nothing written");
    }
    assert_eq!(w.stats().await, stats_before);
    // The same event, correctly signed, is applied: the refusals above were about the
    // delivery, not the event.
    let (status, answer) = deliver(&w.app, w.signed(&body)).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("applied")));
    assert_eq!(w.meeting().await["status"], "started");
    // Refusals were logged without the body.
    assert!(w.stack.log_lines_with("webhook delivery refused", 22).await >= 22);
    assert!(
        !w.stack
            .logs()
            .iter()
            .any(|l| l.contains("meeting.started\\\""))
    );
    w.stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_previous_and_base64_deliveries_are_accepted_and_url_validation_answers_with_the_token_that_signed_it()
 {
    let w = World::new().await;
    let current = w.stack.webhook_secret.clone();
    // Rotation: a new current token, the old one still accepted as previous.
    let new = "rotated-secret-token-0123456789";
    w.stack
        .put_secret(
            local_stack::ZOOM_WEBHOOK_SECRET_ID,
            &json!({ "secretToken": new, "previousSecretToken": current }),
        )
        .await;
    w.clock.advance(chrono::Duration::seconds(301)); // past the secret cache's 300 s
    let ts = w.now();
    let joined = |id: &str| {
        w.event("meeting.participant_joined", ts * 1000, json!({ "participant": { "id": id, "user_id": id, "join_time": "2030-01-01T10:01:00Z" } }))
    };

    let body = joined("patient-zoom-1");
    let by_previous = delivery(
        &[
            ("x-zm-request-timestamp", ts.to_string()),
            ("x-zm-signature", sign(&current, ts, body.as_bytes())),
        ],
        &body,
        false,
    );
    assert_eq!(deliver(&w.app, by_previous).await.0, 200, "previous secret");

    let body = joined("zoom-host-1");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
    let by_current_b64 = delivery(
        &[
            ("x-zm-request-timestamp", ts.to_string()),
            ("x-zm-signature", sign(new, ts, body.as_bytes())),
        ],
        &encoded,
        true,
    );
    assert_eq!(
        deliver(&w.app, by_current_b64).await.0,
        200,
        "current secret, base64 body"
    );
    let attendance = w.meeting().await["attendance"].clone();
    assert!(
        attendance["hostJoinedAt"].is_string() && attendance["participantJoinedAt"].is_string()
    );

    // url_validation: encryptedToken = hex HMAC-SHA256(current secret, plainToken).
    let plain = "qgg8vlvZRS6UYooatFL8Aw";
    let body = json!({ "event": "endpoint.url_validation", "event_ts": ts * 1000, "payload": { "plainToken": plain } }).to_string();
    let validation = delivery(
        &[
            ("x-zm-request-timestamp", ts.to_string()),
            ("x-zm-signature", sign(new, ts, body.as_bytes())),
        ],
        &body,
        false,
    );
    let (status, answer) = deliver(&w.app, validation).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({ "plainToken": plain, "encryptedToken": hmac_hex(new, plain.as_bytes()) })
    );
    // Signed with the previous token (Zoom mid-rotation): answered with that token, the one
    // Zoom checks the answer with (issue 16 item 5).
    let by_previous = delivery(
        &[
            ("x-zm-request-timestamp", ts.to_string()),
            ("x-zm-signature", sign(&current, ts, body.as_bytes())),
        ],
        &body,
        false,
    );
    let (status, answer) = deliver(&w.app, by_previous).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({ "plainToken": plain, "encryptedToken": hmac_hex(&current, plain.as_bytes()) })
    );

    // The previous token removed from the secret: refused once the cache re-reads it.
    w.stack
        .put_secret(
            local_stack::ZOOM_WEBHOOK_SECRET_ID,
            &json!({ "secretToken": new }),
        )
        .await;
    w.clock.advance(chrono::Duration::seconds(301));
    let ts = w.now();
    let body = w.event("meeting.ended", ts * 1000, json!({}));
    let stale = delivery(
        &[
            ("x-zm-request-timestamp", ts.to_string()),
            ("x-zm-signature", sign(&current, ts, body.as_bytes())),
        ],
        &body,
        false,
    );
    assert_eq!(
        deliver(&w.app, stale).await.0,
        401,
        "removed previous secret"
    );
    assert_eq!(w.meeting().await["status"], "scheduled");
    w.stack.remember(new);
    w.stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redeliveries_change_nothing_twice_and_late_events_never_move_a_meeting_back() {
    let w = World::new().await;
    let ts = w.now() * 1000;
    // A duplicate join is one attendance change.
    let join = w.event("meeting.participant_joined", ts, json!({ "participant": { "id": "p-1", "user_id": "p-1", "join_time": "2030-01-01T10:02:00Z" } }));
    assert_eq!(
        deliver(&w.app, w.signed(&join)).await.1["status"],
        "applied"
    );
    let after_first = w.meeting().await;
    assert_eq!(after_first["attendance"]["joins"], 1);
    assert_eq!(
        deliver(&w.app, w.signed(&join)).await.1["status"],
        "duplicate"
    );
    assert_eq!(w.meeting().await, after_first);

    // ended (ts+2) arrives before started (ts+1): the meeting stays ended.
    let (_, ended) = deliver(
        &w.app,
        w.signed(&w.event(
            "meeting.ended",
            ts + 2,
            json!({ "end_time": "2030-01-01T10:30:00Z" }),
        )),
    )
    .await;
    assert_eq!(ended["status"], "applied");
    let (_, late) = deliver(
        &w.app,
        w.signed(&w.event("meeting.started", ts + 1, json!({}))),
    )
    .await;
    assert_eq!(late["status"], "unchanged");
    let m = w.meeting().await;
    assert_eq!(m["status"], "ended");
    assert!(m["startedAt"].is_null());

    // 100 concurrent deliveries of one event, for a fresh meeting: one change.
    let service = w.service.clone();
    let created = call(
        &w.app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/appointments/appt-burst/meeting",
            Some(&service),
            Some(&appointment_body()),
        ),
    )
    .await;
    let zoom_id: i64 = created.body["providerMeetingId"]
        .as_str()
        .expect("id")
        .parse()
        .expect("i64");
    let body = json!({ "event": "meeting.started", "event_ts": ts + 5, "payload": { "account_id": "acc", "object": { "id": zoom_id, "uuid": "uuid-burst", "host_id": "h" } } }).to_string();
    let start = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (app, start, event) = (w.app.clone(), start.clone(), w.signed(&body));
            tokio::spawn(async move {
                start.wait().await;
                deliver(&app, event).await
            })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        let (status, answer) = t.await.expect("task");
        assert_eq!(status, 200);
        applied += usize::from(answer["status"] == "applied");
    }
    assert_eq!(applied, 1, "exactly one delivery changed the meeting");
    let burst = call(
        &w.app,
        Function::GetMeetingLink,
        lambda_request(
            "GET",
            &format!(
                "/meetings/{}",
                created.body["meetingId"].as_str().unwrap_or("")
            ),
            Some(&service),
            None,
        ),
    )
    .await;
    assert_eq!(burst.body["status"], "started");
    assert_eq!(w.stats().await["byStatus"]["started"], 1, "counted once");
    w.stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_meetings_that_are_not_ours_and_unknown_events_are_acknowledged_and_ignored() {
    let w = World::new().await;
    let ts = w.now() * 1000;
    let foreign = json!({ "event": "meeting.started", "event_ts": ts, "payload": { "object": { "id": 12345678901_i64, "uuid": "x" } } }).to_string();
    assert_eq!(
        deliver(&w.app, w.signed(&foreign)).await,
        (200, json!({ "status": "not-ours" }))
    );
    let unknown = w.event("recording.completed", ts, json!({}));
    assert_eq!(
        deliver(&w.app, w.signed(&unknown)).await,
        (200, json!({ "status": "ignored" }))
    );
    assert_eq!(w.meeting().await["status"], "scheduled");
    w.stack.finish(0).await;
}

/// Sends a correctly signed (or deliberately broken) event from the Zoom sandbox to the
/// local gateway, like Zoom would.
async fn zoom_sends(stack: &Stack, event: &str, zoom_id: &str, extra: Value) -> Value {
    let mut request = json!({
        "event": event,
        "meetingId": zoom_id,
        "target": format!("{}/webhooks/zoom", stack.gateway()),
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        request[k] = v.clone();
    }
    stack
        .sandbox(
            reqwest::Method::POST,
            "/__sandbox/webhooks/send",
            Some(request),
        )
        .await
}

#[tokio::test]
async fn zoom_events_through_the_gateway_are_reflected_in_the_meeting_and_the_stats() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let one = api
        .put_appointment(&service, "appt-events", &appointment_body())
        .await
        .body;
    let two = api
        .put_appointment(&service, "appt-deleted", &appointment_body())
        .await
        .body;
    let (id, zoom) = (
        one["meetingId"].as_str().expect("id"),
        one["providerMeetingId"].as_str().expect("zoom"),
    );
    let meeting = || async { api.get(&service, &format!("/meetings/{id}")).await.body };

    let sent = zoom_sends(
        &stack,
        "meeting.updated",
        zoom,
        json!({ "object": { "duration": 45, "topic": "Follow-up" } }),
    )
    .await;
    assert_eq!(sent["status"], 200, "{sent}");
    assert_eq!(meeting().await["durationMinutes"], 45);
    assert_eq!(meeting().await["topic"], "Follow-up");
    zoom_sends(&stack, "meeting.started", zoom, json!({})).await;
    assert_eq!(meeting().await["status"], "started");
    zoom_sends(
        &stack,
        "meeting.participant_joined",
        zoom,
        json!({ "participant": { "host": true } }),
    )
    .await;
    zoom_sends(
        &stack,
        "meeting.participant_joined",
        zoom,
        json!({ "participant": { "host": false } }),
    )
    .await;
    let left = zoom_sends(
        &stack,
        "meeting.participant_left",
        zoom,
        json!({ "participant": { "host": false } }),
    )
    .await;
    assert_eq!(left["status"], 200);
    let m = meeting().await;
    assert!(
        m["attendance"]["hostJoinedAt"].is_string()
            && m["attendance"]["participantJoinedAt"].is_string()
    );
    assert_eq!(
        (
            m["attendance"]["joins"].as_u64(),
            m["attendance"]["leaves"].as_u64()
        ),
        (Some(2), Some(1))
    );
    zoom_sends(&stack, "meeting.ended", zoom, json!({})).await;
    assert_eq!(meeting().await["status"], "ended");
    zoom_sends(
        &stack,
        "meeting.deleted",
        two["providerMeetingId"].as_str().expect("zoom"),
        json!({}),
    )
    .await;
    let gone = api
        .get(
            &service,
            &format!("/meetings/{}", two["meetingId"].as_str().unwrap_or("")),
        )
        .await;
    assert_eq!(gone.body["status"], "cancelled");

    let stats = api.get(&service, "/stats").await.body;
    assert_eq!(stats["byStatus"]["ended"], 1);
    assert_eq!(stats["byStatus"]["cancelled"], 1);
    assert_eq!(stats["byStatus"]["scheduled"], 0);
    assert_eq!(stats["attendance"]["bothJoined"], 1);

    // A broken delivery through the gateway: 401, nothing changes.
    let tampered = zoom_sends(
        &stack,
        "meeting.started",
        zoom,
        json!({ "tamper": "body_byte" }),
    )
    .await;
    assert_eq!(tampered["status"], 401);
    assert_eq!(tampered["body"]["error"]["code"], "UNAUTHENTICATED");
    stack.finish(0).await;
}

/// Zoom's waiting events (the waiting room, and waiting for the host with join before host
/// off), from the sandbox in Zoom's documented shape, through the gateway: each arrival is
/// applied once (a redelivery is a duplicate), the same person arriving again later is
/// applied again, put-back and admitted are ignored, and nothing counts once it has ended.
#[tokio::test]
async fn zoom_waiting_room_events_through_the_gateway_are_applied_once_while_joinable() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let m = api
        .put_appointment(&service, "appt-waiting", &appointment_body())
        .await
        .body;
    let zoom = m["providerMeetingId"].as_str().expect("zoom");
    let status = |answer: &Value| answer["body"]["status"].as_str().map(str::to_owned);
    let arrival = json!({ "eventTs": 1_732_184_280_000_i64, "participant": { "participant_uuid": "pu-1", "user_id": "16778240", "id": "", "date_time": "2026-11-21T09:58:00Z" } });
    let room = "meeting.participant_joined_waiting_room";
    let first = zoom_sends(&stack, room, zoom, arrival.clone()).await;
    assert_eq!(status(&first).as_deref(), Some("applied"), "{first}");
    let again = zoom_sends(&stack, room, zoom, arrival.clone()).await;
    assert_eq!(status(&again).as_deref(), Some("duplicate"), "{again}");
    let mut later = arrival;
    later["participant"]["date_time"] = json!("2026-11-21T10:04:00Z");
    later["eventTs"] = json!(1_732_184_640_000_i64);
    let back = zoom_sends(&stack, room, zoom, later).await;
    assert_eq!(status(&back).as_deref(), Some("applied"), "{back}");
    let host_wait = zoom_sends(&stack, "meeting.participant_jbh_waiting", zoom, json!({})).await;
    assert_eq!(
        status(&host_wait).as_deref(),
        Some("applied"),
        "{host_wait}"
    );
    for other in [
        "meeting.participant_put_in_waiting_room",
        "meeting.participant_admitted",
        "meeting.participant_jbh_joined",
    ] {
        let answer = zoom_sends(&stack, other, zoom, json!({})).await;
        assert_eq!(
            status(&answer).as_deref(),
            Some("ignored"),
            "{other}: {answer}"
        );
    }
    zoom_sends(&stack, "meeting.ended", zoom, json!({})).await;
    let late = zoom_sends(&stack, room, zoom, json!({})).await;
    assert_eq!(status(&late).as_deref(), Some("unchanged"), "{late}");
    stack.finish(0).await;
}
