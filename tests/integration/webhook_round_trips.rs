//! A provider event costs the table's floor (issue 18): one consistent read, the provider-id
//! entry that holds the meeting, then one transaction whose conditions are the dedupe mark
//! and the meeting's version. The copy may lag a change that is no save (a call, a host-link
//! refresh): then the refusal hands back the meeting as it is, and the event applies onto
//! that, keeping what the other change wrote.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use telemeet::clock::{Clock, ManualClock};
use telemeet::http::router::Function;
use telemeet::service::Settings;
use telemeet_local::*;

/// Every DynamoDB operation sent, by name, in order (retries included).
#[derive(Debug, Default)]
struct Sent(Mutex<Vec<String>>);

impl Sent {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

#[derive(Debug)]
struct Recording(Arc<Sent>);

impl Intercept for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let op = ctx
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?");
        self.0.0.lock().expect("lock").push(op.to_owned());
        Ok(())
    }
}

struct World {
    stack: Stack,
    app: telemeet::App,
    clock: Arc<ManualClock>,
    sent: Arc<Sent>,
}

impl World {
    async fn new() -> Self {
        let mut stack = in_process_stack().await;
        let sent = Arc::new(Sent::default());
        let recorded = aws_sdk_dynamodb::config::Builder::from(&stack.aws_config().await)
            .interceptor(Recording(sent.clone()))
            .build();
        stack.dynamodb = Some(aws_sdk_dynamodb::Client::from_conf(recorded));
        let clock = manual_clock();
        let app = stack
            .app(clock.clone(), Settings::default())
            .await
            .expect("app");
        Self {
            stack,
            app,
            clock,
            sent,
        }
    }

    /// The meeting as the table holds it.
    async fn stored(&self, id: &str) -> telemeet::domain::Meeting {
        let id = telemeet::ids::MeetingId::parse(id, "id").expect("id");
        let m = self.app.service.stores.meetings.get_meeting(&id).await;
        m.expect("read").expect("stored")
    }

    async fn zoom(&self, kind: &str, zoom_id: &str, extra: Value) -> Value {
        let ts = self.clock.now().timestamp();
        let mut object = json!({ "id": zoom_id.parse::<i64>().expect("number"), "uuid": "u-1", "host_id": "zoom-host" });
        for (k, v) in extra.as_object().into_iter().flatten() {
            object[k] = v.clone();
        }
        let body = json!({ "event": kind, "event_ts": ts * 1000, "payload": { "account_id": "a", "object": object } }).to_string();
        let headers = [
            ("x-zm-request-timestamp", ts.to_string()),
            (
                "x-zm-signature",
                sign(&self.stack.webhook_secret, ts, body.as_bytes()),
            ),
        ];
        let (status, answer) = deliver(&self.app, delivery(&headers, &body, false)).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zoom_event_is_one_read_and_one_transaction_and_a_redelivery_one_read_and_one_more_call()
{
    let w = World::new().await;
    let service = day_token(&w.stack, "svc-1", "service", "clinic-1");
    let put = lambda_request(
        "PUT",
        "/appointments/appt-rt/meeting",
        Some(&service),
        Some(&appointment_body()),
    );
    let created = call(&w.app, Function::CreateMeeting, put).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let zoom_id = created.body["providerMeetingId"].as_str().expect("zoom id");
    w.sent.take();

    assert_eq!(
        w.zoom("meeting.started", zoom_id, json!({})).await["status"],
        "applied"
    );
    assert_eq!(w.sent.take(), ["GetItem", "TransactWriteItems"]);
    // The same start again changes nothing: the mark is read to tell a redelivery.
    let again = w.zoom("meeting.started", zoom_id, json!({})).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(w.sent.take(), ["GetItem", "GetItem"]);

    w.clock.advance(chrono::Duration::seconds(30));
    let join = json!({ "participant": { "id": "p-1", "user_id": "p-1" } });
    let joined = w
        .zoom("meeting.participant_joined", zoom_id, join.clone())
        .await;
    assert_eq!(joined["status"], "applied");
    assert_eq!(w.sent.take(), ["GetItem", "TransactWriteItems"]);

    // The same join again: the transaction's mark condition refuses it.
    let again = w.zoom("meeting.participant_joined", zoom_id, join).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(w.sent.take(), ["GetItem", "TransactWriteItems"]);
    // Not ours: one read.
    assert_eq!(
        w.zoom("meeting.started", "987654321", json!({})).await["status"],
        "not-ours"
    );
    assert_eq!(w.sent.take(), ["GetItem"]);

    let meeting = w
        .stored(created.body["meetingId"].as_str().expect("id"))
        .await;
    assert_eq!(meeting.status, telemeet::domain::MeetingStatus::Started);
    assert_eq!(meeting.attendance.joins, 1, "one join, once");
    w.stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_after_a_call_applies_to_the_meeting_as_it_is_and_keeps_the_calls() {
    let w = World::new().await;
    let staff = day_token(&w.stack, "dr-7", "practitioner", "clinic-1");
    let patient = day_token(&w.stack, "pat-9", "patient", "clinic-1");
    let body = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"] });
    let put = |token: &str| {
        lambda_request(
            "PUT",
            "/conversations/conv-rt/meeting",
            Some(token),
            Some(&body),
        )
    };
    let first = call(&w.app, Function::CreateMeeting, put(&staff)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let id = first.body["meetingId"].as_str().expect("id").to_owned();
    let zoom_id = first.body["providerMeetingId"]
        .as_str()
        .expect("zoom id")
        .to_owned();
    // The patient calls back: a call is no save, so the provider-id entry's copy lags it.
    let back = call(&w.app, Function::CreateMeeting, put(&patient)).await;
    assert_eq!(back.status, 200, "{}", back.body);
    let called = w.stored(&id).await;
    assert_eq!(called.signals.calls, 2, "both calls counted");
    w.sent.take();

    // The copy is behind: the refused transaction hands back the meeting as it is.
    assert_eq!(
        w.zoom("meeting.started", &zoom_id, json!({})).await["status"],
        "applied"
    );
    assert_eq!(
        w.sent.take(),
        ["GetItem", "TransactWriteItems", "TransactWriteItems"]
    );
    let after = w.stored(&id).await;
    assert_eq!(after.status, telemeet::domain::MeetingStatus::Started);
    assert_eq!(
        after.version,
        called.version + 1,
        "applied onto the meeting as it is"
    );
    assert_eq!(after.signals.calls, 2, "the calls are kept");
    // The copy is current again: the next event costs the floor.
    w.clock.advance(chrono::Duration::minutes(1));
    w.sent.take();
    assert_eq!(
        w.zoom("meeting.ended", &zoom_id, json!({})).await["status"],
        "applied"
    );
    assert_eq!(w.sent.take(), ["GetItem", "TransactWriteItems"]);
    w.stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_after_a_host_link_refresh_keeps_the_refreshed_link() {
    let w = World::new().await;
    let service = day_token(&w.stack, "svc-1", "service", "clinic-1");
    let staff = day_token(&w.stack, "dr-7", "practitioner", "clinic-1");
    let put = lambda_request(
        "PUT",
        "/appointments/appt-link-rt/meeting",
        Some(&service),
        Some(&appointment_body()),
    );
    let created = call(&w.app, Function::CreateMeeting, put).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["meetingId"].as_str().expect("id").to_owned();
    let zoom_id = created.body["providerMeetingId"]
        .as_str()
        .expect("zoom id")
        .to_owned();
    // Past the start_url's freshness: the host link is refreshed from Zoom, without a save.
    w.clock.advance(chrono::Duration::minutes(95));
    let link = || lambda_request("GET", &format!("/meetings/{id}/link"), Some(&staff), None);
    let refreshed = call(&w.app, Function::GetMeetingLink, link()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(
        w.stack.sandbox_count(GET_OP).await,
        1,
        "refreshed from Zoom"
    );

    assert_eq!(
        w.zoom("meeting.started", &zoom_id, json!({})).await["status"],
        "applied"
    );
    // The event's write left the refreshed link in place: asking again needs no Zoom call.
    let again = call(&w.app, Function::GetMeetingLink, link()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_same_link(
        &again.body["url"],
        &refreshed.body["url"],
        "the refreshed host link",
    );
    assert_eq!(w.stack.sandbox_count(GET_OP).await, 1);
    assert_eq!(
        w.stored(&id).await.status,
        telemeet::domain::MeetingStatus::Started
    );
    w.stack.finish(0).await;
}
