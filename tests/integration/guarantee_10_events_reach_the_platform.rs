//! Guarantee 10: every state change of a meeting reaches each matching subscription at
//! least once, signed so that the official Standard Webhooks library verifies it (the
//! receiver is `infra/event-receiver/receiver.py`, verifying with PyPI's
//! `standardwebhooks`, not with our code); a delivery that keeps failing ends in the
//! dead-letter queue; no event carries a link, token, name or email.
//!
//! The pipeline is the production code: meeting items change in moto's table, its stream
//! is read and routed by `notify::route`, jobs go through moto's SQS to `notify::deliver`
//! (driven here step by step, as the local gateway's pumps drive it).

use chrono::Duration;
use serde_json::{Value, json};
use std::sync::Arc;
use telemeet::clock::Clock;
use telemeet::http::router::Function;
use telemeet::notify::EventSettings;
use telemeet_local::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The event receiver: its URL and its process (killed on drop). (template_policies starts
/// it too.)
pub(crate) struct Receiver {
    pub(crate) url: String,
    _child: tokio::process::Child,
    pub(crate) http: reqwest::Client,
}

impl Receiver {
    /// A receiver that trusts no secret yet ([`subscribe`] hands it the one it is shown).
    pub(crate) async fn start() -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let venv = std::process::Command::new("bash")
            .arg(root.join("infra/venv.sh"))
            .output()
            .expect("venv");
        let python = format!(
            "{}/bin/python",
            String::from_utf8_lossy(&venv.stdout).trim()
        );
        let mut child = tokio::process::Command::new(python)
            .arg(root.join("infra/event-receiver/receiver.py"))
            .args(["--port", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("receiver");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next_line()
            .await
            .expect("line")
            .expect("a first line");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("listening on http://…")
            .to_owned();
        // Keep reading so the receiver never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            url,
            _child: child,
            http: reqwest::Client::new(),
        }
    }

    /// The receiver's answers from now on: `statuses` one per delivery (then 200), each
    /// after `delay` seconds.
    pub(crate) async fn plan(&self, statuses: &[u16], delay: u64) {
        self.http
            .post(format!("{}/_control/plan", self.url))
            .json(&json!({ "statuses": statuses, "delay": delay }))
            .send()
            .await
            .expect("plan");
    }

    /// Every delivery that reached it, verified or not, in arrival order.
    pub(crate) async fn all(&self) -> Vec<Value> {
        let all: Value = self
            .http
            .get(format!("{}/_control/deliveries", self.url))
            .send()
            .await
            .expect("deliveries")
            .json()
            .await
            .expect("json");
        all.as_array().cloned().unwrap_or_default()
    }

    /// The deliveries the library verified and the receiver accepted (2xx), in arrival order.
    pub(crate) async fn deliveries(&self) -> Vec<Value> {
        self.all()
            .await
            .into_iter()
            .filter(|d| d["rejected"] == json!(false))
            .filter(|d| {
                d["status"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s))
            })
            .collect()
    }
}

fn id_of(d: &Value) -> String {
    d["headers"]["webhook-id"].as_str().unwrap_or("").to_owned()
}

fn body_of(d: &Value) -> &Value {
    &d["body"]
}

/// `POST /org/webhooks` as the org's service: subscribes `receiver` to `events`, and has it
/// verify with the secret shown once, which it returns. (The app runs in local mode, as the
/// local gateway does: loopback receivers.)
pub(crate) async fn subscribe(
    stack: &local_stack::Stack,
    app: &telemeet::App,
    org: &str,
    receiver: &Receiver,
    events: &[&str],
) -> String {
    let token = day_token(stack, "svc-1", "service", org);
    let body = json!({ "url": format!("{}/hook", receiver.url), "events": events });
    let r = call(
        app,
        Function::OrgAdmin,
        lambda_request("POST", "/org/webhooks", Some(&token), Some(&body)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    receiver
        .http
        .post(format!("{}/_control/secret", receiver.url))
        .json(&json!({ "secret": secret }))
        .send()
        .await
        .expect("secret");
    secret
}

/// An in-process stack and app in local mode (loopback receivers), with its manual clock.
async fn local_app() -> (
    local_stack::Stack,
    Arc<telemeet::clock::ManualClock>,
    telemeet::App,
) {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let settings = telemeet::service::Settings {
        events_local_mode: telemeet::notify::ssrf::LocalMode(true),
        ..Default::default()
    };
    let app = stack.app(clock.clone(), settings).await.expect("app");
    (stack, clock, app)
}

/// The event functions' code on this stack. Their clock is the real one: a receiver
/// checks `webhook-timestamp` against its own (the no-show pass takes its "now" from the
/// scheduled event, as in production).
async fn events(
    stack: &local_stack::Stack,
    app: &telemeet::App,
    retry: &[u64],
) -> local_gateway::events::LocalEvents {
    let clock: Arc<dyn Clock> = Arc::new(telemeet::clock::SystemClock);
    let aws = stack.aws_config().await;
    let settings = EventSettings {
        secrets_prefix: local_stack::ORG_SECRETS_PREFIX.to_owned(),
        retry_schedule: retry
            .iter()
            .map(|s| std::time::Duration::from_secs(*s))
            .collect(),
        ..EventSettings::default()
    };
    let secrets: Arc<dyn telemeet::secrets::SecretSource> = Arc::new(
        telemeet::secrets::SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&aws)),
    );
    local_gateway::events::LocalEvents::new(
        &aws,
        &stack.moto_url,
        local_stack::TABLE_NAME,
        settings,
        (app.service.stores.clone(), secrets),
        clock,
    )
    .await
    .expect("local events")
}

/// Pumps the stream and the queue until `done` holds or 20 s pass.
async fn pump_until(
    events: &local_gateway::events::LocalEvents,
    receiver: &Receiver,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..200 {
        events.route_once().await.expect("route");
        events.deliver_once().await.expect("deliver");
        let got = receiver.deliveries().await;
        if done(&got) {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    receiver.deliveries().await
}

/// A signed Zoom event about meeting `zoom_id`; `who` joins as host when it is `host_id`.
async fn zoom_event(
    stack: &local_stack::Stack,
    app: &telemeet::App,
    clock: &dyn Clock,
    kind: &str,
    zoom_id: &str,
    who: &str,
) {
    let ts = clock.now().timestamp();
    let id: i64 = zoom_id.parse().expect("a Zoom meeting number");
    let object = json!({ "id": id, "uuid": "u-1", "host_id": "zoom-host",
        "participant": { "id": who, "user_id": who, "user_name": "Pat Example", "email": "pat@example.com" } });
    let body = json!({ "event": kind, "event_ts": ts * 1000 + i64::from(rand::random::<u16>()),
        "payload": { "account_id": "a", "object": object } })
    .to_string();
    let headers = [
        ("x-zm-request-timestamp", ts.to_string()),
        (
            "x-zm-signature",
            sign(&stack.webhook_secret, ts, body.as_bytes()),
        ),
    ];
    let (status, answer) = deliver(app, delivery(&headers, &body, false)).await;
    assert_eq!(status, 200, "{answer}");
}

async fn put_appointment(
    stack: &local_stack::Stack,
    app: &telemeet::App,
    org: &str,
    appointment: &str,
    start: chrono::DateTime<chrono::Utc>,
) -> Value {
    let token = day_token(stack, "svc-1", "service", org);
    let mut body = appointment_body();
    body["startTime"] = json!(telemeet::domain::rfc3339(start));
    let r = call(
        app,
        Function::CreateMeeting,
        lambda_request(
            "PUT",
            &format!("/appointments/{appointment}/meeting"),
            Some(&token),
            Some(&body),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

#[tokio::test]
async fn an_appointments_lifecycle_reaches_the_receiver_once_each_in_version_order_verified_by_the_official_library()
 {
    let (stack, clock, app) = local_app().await;
    let events = events(&stack, &app, &[1, 1, 1]).await;
    let receiver = Receiver::start().await;
    subscribe(
        &stack,
        &app,
        "clinic-1",
        &receiver,
        &["meeting.*", "participant.joined"],
    )
    .await;
    let meeting = put_appointment(&stack, &app, "clinic-1", "appt-ev-1", clock.now()).await;
    let zoom_id = meeting["providerMeetingId"]
        .as_str()
        .expect("zoom id")
        .to_owned();
    for (kind, who) in [
        ("meeting.started", "zoom-host"),
        ("meeting.participant_joined", "zoom-host"),
        ("meeting.participant_joined", "p-1"),
        ("meeting.ended", "zoom-host"),
    ] {
        clock.advance(Duration::seconds(30));
        zoom_event(&stack, &app, clock.as_ref(), kind, &zoom_id, who).await;
    }
    let got = pump_until(&events, &receiver, |d| d.len() >= 5).await;
    // At least once: dedupe by webhook-id, as a receiver does.
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<&Value> = got.iter().filter(|d| seen.insert(id_of(d))).collect();
    unique.sort_by_key(|d| body_of(d)["data"]["version"].as_u64());
    let kinds: Vec<String> = unique
        .iter()
        .map(|d| {
            let b = body_of(d);
            match b["data"]["role"].as_str() {
                Some(role) => format!("{} ({role})", b["type"].as_str().unwrap_or("")),
                None => b["type"].as_str().unwrap_or("").to_owned(),
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "meeting.created",
            "meeting.started",
            "participant.joined (host)",
            "participant.joined (participant)",
            "meeting.ended"
        ]
    );
    for d in &unique {
        assert_eq!(body_of(d)["data"]["meetingId"], meeting["meetingId"]);
    }
    // No link, token, passcode, name or email in any body (the log-scan rule, on bodies).
    let secrets = stack.secrets().await;
    for d in &got {
        let text = body_of(d).to_string();
        for needle in [
            "zak=",
            "jwt=",
            "pwd=",
            "Pat Example",
            "pat@example.com",
            "@",
            "https://",
        ] {
            assert!(
                !text.contains(needle),
                "a delivery body contains {needle:?}"
            );
        }
        assert!(
            secrets.iter().all(|s| !text.contains(s.as_str())),
            "a delivery body contains a secret, token or link"
        );
    }
    stack.finish(0).await;
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_id_again_a_slow_one_times_out_into_the_dead_letter_queue_and_another_org_is_not_held_up()
 {
    let (stack, clock, app) = local_app().await;
    // Three waits of a second: four attempts, then the dead-letter queue.
    let events = events(&stack, &app, &[1, 1, 1]).await;
    let flaky = Receiver::start().await;
    let slow = Receiver::start().await;
    let other = Receiver::start().await;
    for (r, org) in [
        (&flaky, "clinic-1"),
        (&slow, "clinic-1"),
        (&other, "clinic-2"),
    ] {
        subscribe(&stack, &app, org, r, &["meeting.created"]).await;
    }
    flaky.plan(&[500, 500, 500, 200], 0).await;
    // Longer than the 5 s a delivery may take: every attempt times out.
    slow.plan(&[], 7).await;
    put_appointment(&stack, &app, "clinic-1", "appt-ev-2", clock.now()).await;
    let theirs = put_appointment(&stack, &app, "clinic-2", "appt-ev-3", clock.now()).await;
    let started = chrono::Utc::now();
    let got = pump_until(&events, &other, |d| !d.is_empty()).await;
    assert_eq!(got.len(), 1, "the other org's receiver got its event");
    let waited = got[0]["receivedAt"].as_f64().unwrap_or(f64::MAX)
        - started.timestamp_millis() as f64 / 1000.0;
    assert!(
        waited < 3.0,
        "the other org's event waited {waited:.1} s behind a slow receiver"
    );
    let flaky_got = pump_until(&events, &flaky, |d| !d.is_empty()).await;
    let ids: Vec<String> = flaky.all().await.iter().map(id_of).collect();
    assert_eq!(ids.len(), 4, "three refused attempts and the accepted one");
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the webhook-id stays the same: {ids:?}"
    );
    assert_eq!(flaky_got.len(), 1);
    let mut dead_letters = 0;
    for _ in 0..100 {
        events.route_once().await.expect("route");
        events.deliver_once().await.expect("deliver");
        dead_letters = events.dead_letters().await.expect("dlq");
        if dead_letters > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        dead_letters, 1,
        "the slow receiver's delivery is in the dead-letter queue"
    );
    // The receiver records an attempt once its own delay is over, after we gave up on it.
    let mut slow_ids: Vec<String> = Vec::new();
    for _ in 0..50 {
        slow_ids = slow.all().await.iter().map(id_of).collect();
        if slow_ids.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(slow_ids.len(), 4, "four attempts, each cut off at 5 s");
    assert!(slow_ids.iter().all(|i| *i == slow_ids[0]));
    // Guarantee 9: after all that, clinic-2's receiver has had its own event and nothing of
    // clinic-1's.
    let other_got = other.deliveries().await;
    assert_eq!(other_got.len(), 1, "{other_got:?}");
    assert_eq!(
        body_of(&other_got[0])["data"]["meetingId"],
        theirs["meetingId"]
    );
    assert_eq!(body_of(&other_got[0])["data"]["orgId"], "clinic-2");
    stack.finish(0).await;
}

#[tokio::test]
async fn a_meeting_nobody_joined_is_a_no_show_after_the_grace_and_one_the_patient_joined_is_not() {
    let (stack, clock, app) = local_app().await;
    let events = events(&stack, &app, &[1]).await;
    let receiver = Receiver::start().await;
    subscribe(&stack, &app, "clinic-1", &receiver, &["meeting.no_show"]).await;
    let start = clock.now() + Duration::minutes(5);
    let empty = put_appointment(&stack, &app, "clinic-1", "appt-ns-1", start).await;
    let joined = put_appointment(&stack, &app, "clinic-1", "appt-ns-2", start).await;
    clock.advance(Duration::minutes(6));
    let zoom_id = joined["providerMeetingId"].as_str().expect("id").to_owned();
    zoom_event(
        &stack,
        &app,
        clock.as_ref(),
        "meeting.participant_joined",
        &zoom_id,
        "p-1",
    )
    .await;
    // Just before start + 10 min nothing is due; just after, the one nobody joined is.
    let early = telemeet::notify::route::no_show_sweep(&events.app, start + Duration::minutes(9))
        .await
        .expect("sweep");
    assert_eq!(early, 0);
    let declared =
        telemeet::notify::route::no_show_sweep(&events.app, start + Duration::minutes(11))
            .await
            .expect("sweep");
    assert_eq!(declared, 1);
    let again = telemeet::notify::route::no_show_sweep(&events.app, start + Duration::minutes(12))
        .await
        .expect("sweep");
    assert_eq!(again, 0, "declared once");
    let got = pump_until(&events, &receiver, |d| !d.is_empty()).await;
    assert_eq!(got.len(), 1);
    let b = body_of(&got[0]);
    assert_eq!(b["type"], "meeting.no_show");
    assert_eq!(b["data"]["meetingId"], empty["meetingId"]);
    assert_eq!(b["data"]["hostJoined"], false);
    stack.finish(0).await;
}

/// PUTs a conversation between dr-7 and pat-9 as `caller` (a user id with its role).
async fn put_conversation(
    stack: &local_stack::Stack,
    app: &telemeet::App,
    (caller, role): (&str, &str),
    conversation: &str,
) -> Reply {
    let token = day_token(stack, caller, role, "clinic-1");
    let body = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"] });
    let path = format!("/conversations/{conversation}/meeting");
    call(
        app,
        Function::CreateMeeting,
        lambda_request("PUT", &path, Some(&token), Some(&body)),
    )
    .await
}

#[tokio::test]
async fn every_change_means_its_event_a_reschedule_a_cancel_a_call_that_rings_the_other_side_and_a_closed_window()
 {
    let (stack, clock, app) = local_app().await;
    let events = events(&stack, &app, &[1]).await;
    let receiver = Receiver::start().await;
    subscribe(&stack, &app, "clinic-1", &receiver, &["*"]).await;
    // An appointment rescheduled, then cancelled.
    let appt = put_appointment(
        &stack,
        &app,
        "clinic-1",
        "appt-ev-9",
        clock.now() + Duration::hours(1),
    )
    .await;
    let id = appt["meetingId"].as_str().expect("id").to_owned();
    let svc = day_token(&stack, "svc-1", "service", "clinic-1");
    let later = telemeet::domain::rfc3339(clock.now() + Duration::hours(2));
    for (method, body) in [
        ("PATCH", Some(json!({ "startTime": later }))),
        ("DELETE", None),
    ] {
        let r = call(
            &app,
            Function::ManageMeeting,
            lambda_request(
                method,
                &format!("/meetings/{id}"),
                Some(&svc),
                body.as_ref(),
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // The practitioner calls, the patient calls back: each PUT rings the other side.
    let first = put_conversation(&stack, &app, ("dr-7", "practitioner"), "conv-ev-1").await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = put_conversation(&stack, &app, ("pat-9", "patient"), "conv-ev-1").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.body["meetingId"], first.body["meetingId"],
        "the same room"
    );
    // Its window closes: the close-rooms pass closes the room, and the platform is told.
    let expired_at = clock.now() + Duration::hours(2);
    clock.set(expired_at);
    let pass = json!({ "time": expired_at.to_rfc3339(), "detail": { "pass": "close-rooms" } });
    let summary = telemeet::cleanup::run(
        &app,
        &telemeet::cleanup::CleanupSettings::default(),
        &pass,
        clock.instant() + std::time::Duration::from_secs(30),
    )
    .await
    .expect("summary");
    assert_eq!(summary["roomsClosed"], 1, "{summary}");
    let want = 7;
    let got = pump_until(&events, &receiver, |d| d.len() >= want).await;
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&Value> = got.iter().filter(|d| seen.insert(id_of(d))).collect();
    let of = |meeting: &Value| -> Vec<(String, Value)> {
        let mut mine: Vec<&&Value> = unique
            .iter()
            .filter(|d| body_of(d)["data"]["meetingId"] == meeting["meetingId"])
            .collect();
        // One change may mean two events (a conversation's creation is also its first
        // call): same version, and the creation first.
        mine.sort_by_key(|d| {
            let b = body_of(d);
            (
                b["data"]["version"].as_u64(),
                b["type"] != "meeting.created",
            )
        });
        mine.iter()
            .map(|d| {
                let b = body_of(d);
                let extra = json!({ "initiatedBy": b["data"]["initiatedBy"], "calleeUserIds": b["data"]["calleeUserIds"] });
                (b["type"].as_str().unwrap_or("").to_owned(), extra)
            })
            .collect()
    };
    let appointment: Vec<String> = of(&appt).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        appointment,
        ["meeting.created", "meeting.updated", "meeting.cancelled"]
    );
    let conv = of(&first.body);
    let types: Vec<&str> = conv.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "meeting.created",
            "conversation.call",
            "conversation.call",
            "meeting.expired"
        ]
    );
    assert_eq!(
        conv[1].1,
        json!({ "initiatedBy": "dr-7", "calleeUserIds": ["pat-9"] })
    );
    assert_eq!(
        conv[2].1,
        json!({ "initiatedBy": "pat-9", "calleeUserIds": ["dr-7"] })
    );
    stack.finish(0).await;
}

#[tokio::test]
async fn a_receiver_answering_410_gone_disables_its_subscription_and_gets_nothing_more() {
    let (stack, clock, app) = local_app().await;
    let events = events(&stack, &app, &[1]).await;
    let receiver = Receiver::start().await;
    subscribe(&stack, &app, "clinic-1", &receiver, &["meeting.created"]).await;
    receiver.plan(&[410], 0).await;
    put_appointment(&stack, &app, "clinic-1", "appt-gone-1", clock.now()).await;
    let org = telemeet::ids::OrgId::parse("clinic-1", "org").expect("org");
    let mut disabled = false;
    for _ in 0..100 {
        events.route_once().await.expect("route");
        events.deliver_once().await.expect("deliver");
        let subs = app
            .service
            .stores
            .subscriptions
            .subscriptions(&org)
            .await
            .expect("subs");
        if subs.iter().all(|s| s.disabled_at.is_some()) {
            disabled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(disabled, "a 410 disables the subscription");
    put_appointment(&stack, &app, "clinic-1", "appt-gone-2", clock.now()).await;
    for _ in 0..10 {
        events.route_once().await.expect("route");
        events.deliver_once().await.expect("deliver");
    }
    let all: Value = receiver
        .http
        .get(format!("{}/_control/deliveries", receiver.url))
        .send()
        .await
        .expect("all")
        .json()
        .await
        .expect("json");
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(1),
        "one attempt, answered 410, then nothing"
    );
    assert_eq!(events.dead_letters().await.expect("dlq"), 0);
    stack.finish(0).await;
}
