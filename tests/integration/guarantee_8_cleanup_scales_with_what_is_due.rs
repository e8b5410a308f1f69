//! Guarantee 8: the weekly cleanup finds due meetings by index, deletes them at the
//! provider within its rate, archives them, removes orphans, stops before its deadline and
//! reports. "Now" is the scheduled event's time.

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use telemeet::cleanup::CleanupSettings;
use telemeet::clock::{Clock, ManualClock, Wait};
use telemeet::domain::{Meeting, ProviderKind};
use telemeet::service::Settings;
use telemeet_local::*;

const DELETE_OP: &str = "DELETE /v2/meetings/{meetingId}";

fn scheduled(at: chrono::DateTime<chrono::Utc>, dry_run: bool) -> Value {
    json!({
        "version": "0", "id": "cleanup-test", "detail-type": "Scheduled Event", "source": "aws.events",
        "time": at.to_rfc3339(), "resources": [], "detail": { "dryRun": dry_run },
    })
}

async fn run_cleanup(stack: &Stack, event: &Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/local/events/cleanup", stack.gateway()))
        .json(event)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.expect("a summary")
}

/// One in-process cleanup run at `now` with the default settings and 30 s to spare.
async fn cleanup_now(
    app: &telemeet::App,
    clock: &ManualClock,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    telemeet::cleanup::run(
        app,
        &CleanupSettings::default(),
        &scheduled(now, false),
        clock.instant() + Duration::from_secs(30),
    )
    .await
    .expect("a summary")
}

async fn zoom_ids(stack: &Stack) -> Vec<String> {
    let all = stack
        .sandbox(reqwest::Method::GET, "/__sandbox/meetings", None)
        .await;
    let mut ids: Vec<String> = all["meetings"]
        .as_array()
        .expect("meetings")
        .iter()
        .map(|m| m["id"].to_string())
        .collect();
    ids.sort();
    ids
}

fn body_at(start: chrono::DateTime<chrono::Utc>) -> Value {
    json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"], "startTime": start.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "durationMinutes": 30 })
}

#[tokio::test]
async fn one_run_deletes_and_archives_exactly_the_due_meetings_and_a_second_run_does_nothing() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let now = chrono::Utc::now();
    let month_ago = now - chrono::Duration::days(30);
    let made = |appt: &'static str, start| {
        let (api, service) = (api.clone(), service.clone());
        async move {
            let r = api.put_appointment(&service, appt, &body_at(start)).await;
            assert_eq!(r.status, 201, "{:?}", r.body);
            r.body
        }
    };
    let future = made("appt-future", now + chrono::Duration::days(3)).await;
    let due = made("appt-due", month_ago).await;
    let ended = made("appt-ended", month_ago).await;
    let cancelled = made("appt-cancelled", month_ago).await;
    let running = made("appt-running", month_ago).await;
    let id = |m: &Value| m["meetingId"].as_str().expect("id").to_owned();
    assert_eq!(
        api.send(
            "POST",
            &format!("/meetings/{}/end", id(&ended)),
            Some(&service),
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        api.send(
            "DELETE",
            &format!("/meetings/{}", id(&cancelled)),
            Some(&service),
            None
        )
        .await
        .status,
        200
    );
    // The host opens the start link: Zoom has it in progress (delete answers 3002).
    let host = stack.token("dr-7", "practitioner", "clinic-1");
    let start_url = api
        .get(&host, &format!("/meetings/{}/link", id(&running)))
        .await
        .body["url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_eq!(
        reqwest::get(&start_url)
            .await
            .expect("start page")
            .status()
            .as_u16(),
        200
    );
    let deletes_before = stack.sandbox_count(DELETE_OP).await;

    let summary = run_cleanup(&stack, &scheduled(now, false)).await;
    assert_eq!(summary["examined"], 4, "{summary}"); // due, ended, cancelled, running
    assert_eq!(summary["providerDeleted"], 2, "{summary}"); // due and ended (cancelled was deleted on cancel)
    assert_eq!(summary["archived"], 3, "{summary}");
    assert_eq!(summary["skipped"], 1, "{summary}"); // in progress: next run
    assert_eq!(
        (
            summary["failed"].as_u64(),
            summary["dryRun"].as_bool(),
            summary["complete"].as_bool()
        ),
        (Some(0), Some(false), Some(true))
    );
    assert_eq!(
        stack.sandbox_count(DELETE_OP).await - deletes_before,
        3,
        "two deleted, one refused as in progress"
    );
    let mut left = vec![
        future["providerMeetingId"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        running["providerMeetingId"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    ];
    left.sort();
    assert_eq!(
        zoom_ids(&stack).await,
        left,
        "exactly the due ones are gone at Zoom"
    );
    for m in [&due, &ended, &cancelled] {
        assert_eq!(
            api.get(&service, &format!("/meetings/{}", id(m)))
                .await
                .body["status"],
            "archived"
        );
    }
    assert_eq!(
        api.get(&service, &format!("/meetings/{}", id(&future)))
            .await
            .body["status"],
        "scheduled"
    );
    assert_eq!(
        api.get(&service, "/stats").await.body["byStatus"]["archived"],
        3
    );
    // The appointment's claim went with the archive: a new PUT makes a fresh meeting.
    let again = api
        .put_appointment(
            &service,
            "appt-due",
            &body_at(now + chrono::Duration::days(1)),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_ne!(again.body["meetingId"], due["meetingId"]);

    let second = run_cleanup(&stack, &scheduled(now, false)).await;
    assert_eq!(
        (
            second["providerDeleted"].as_u64(),
            second["archived"].as_u64()
        ),
        (Some(0), Some(0)),
        "{second}"
    );
    assert_eq!(second["examined"], 1, "only the running one is still due");
    stack.finish(0).await;
}

#[tokio::test]
async fn only_this_deployments_orphans_are_deleted_and_meetings_gone_at_zoom_are_archived() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let now = chrono::Utc::now();
    let token = stack.zoom_access_token().await;
    let http = reqwest::Client::new();
    // An orphan: our marker, no record (a winner died after creating it).
    let orphan: Value = http
        .post(format!("{}/v2/users/me/meetings", stack.sandbox_url))
        .bearer_auth(&token)
        .json(&json!({ "topic": "Video consultation", "type": 2, "start_time": "2030-01-01T10:00:00Z", "duration": 30, "agenda": "telemeet:local:mtg_ghost0000000000000000" }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    // Someone else's meeting (no marker) is never touched; nor is a staging stack's that
    // shares the account, nor one whose old marker names no deployment.
    for agenda in [
        None,
        Some("telemeet:staging:mtg_ghoststaging0000000000"),
        Some("telemeet:mtg_ghostold00000000000000"),
    ] {
        let mut meeting = json!({ "topic": "Staff meeting", "type": 2, "start_time": "2030-01-01T10:00:00Z", "duration": 30 });
        if let Some(a) = agenda {
            meeting["agenda"] = json!(a);
        }
        http.post(format!("{}/v2/users/me/meetings", stack.sandbox_url))
            .bearer_auth(&token)
            .json(&meeting)
            .send()
            .await
            .expect("create");
    }
    // A due meeting deleted at Zoom behind our back.
    let gone = api
        .put_appointment(
            &service,
            "appt-gone",
            &body_at(now - chrono::Duration::days(30)),
        )
        .await
        .body;
    http.delete(format!(
        "{}/v2/meetings/{}",
        stack.sandbox_url,
        gone["providerMeetingId"].as_str().unwrap_or("")
    ))
    .bearer_auth(&token)
    .send()
    .await
    .expect("delete");

    // Two hours on, the orphan is old enough not to be a create in flight.
    let summary = run_cleanup(&stack, &scheduled(now + chrono::Duration::hours(2), false)).await;
    assert_eq!(summary["orphansDeleted"], 1, "{summary}");
    assert_eq!(summary["archived"], 1, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let left = zoom_ids(&stack).await;
    assert_eq!(
        left.len(),
        3,
        "only the meetings that are not ours are left"
    );
    assert!(!left.contains(&orphan["id"].to_string()));
    assert_eq!(
        api.get(
            &service,
            &format!("/meetings/{}", gone["meetingId"].as_str().unwrap_or(""))
        )
        .await
        .body["status"],
        "archived"
    );
    stack.finish(0).await;
}

#[derive(Debug, Default)]
struct DbCalls {
    queries: AtomicU64,
    batch_keys: AtomicU64,
    scans: AtomicU64,
}

#[derive(Debug)]
struct Counting(Arc<DbCalls>);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn read_before_execution(
        &self,
        ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let input = ctx.input();
        if input
            .downcast_ref::<aws_sdk_dynamodb::operation::query::QueryInput>()
            .is_some()
        {
            self.0.queries.fetch_add(1, Ordering::Relaxed);
        } else if let Some(b) =
            input.downcast_ref::<aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput>()
        {
            let keys: usize = b
                .request_items()
                .into_iter()
                .flat_map(|m| m.values())
                .map(|k| k.keys().len())
                .sum();
            self.0.batch_keys.fetch_add(keys as u64, Ordering::Relaxed);
        } else if input
            .downcast_ref::<aws_sdk_dynamodb::operation::scan::ScanInput>()
            .is_some()
        {
            self.0.scans.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn stored(i: usize, start: chrono::DateTime<chrono::Utc>, zoom_id: u64) -> Meeting {
    local_stack::sample_meeting(
        i,
        "clinic-1",
        ProviderKind::Zoom,
        zoom_id.to_string(),
        start,
    )
    .expect("meeting")
}

fn cleanup_settings(rate: u32) -> CleanupSettings {
    CleanupSettings {
        provider_rate: rate,
        margin: Duration::from_millis(300),
        ..Default::default()
    }
}

/// When the cleanup sent each provider call, on its clock (the pacer's slots: time is
/// driven, so pacing costs the test no real seconds).
fn provider_sends(clock: &ManualClock) -> Vec<f64> {
    clock
        .waits()
        .iter()
        .filter(|w| w.why == Wait::Pace)
        .map(|w| w.until.as_secs_f64())
        .collect()
}

/// The most calls within any one second.
fn peak_rate(times: &[f64]) -> usize {
    times
        .iter()
        .map(|t| times.iter().filter(|u| **u >= *t && **u < t + 1.0).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_5000_meetings_and_500_due_reads_follow_the_500_and_zoom_calls_keep_the_rate() {
    let mut stack = in_process_stack().await;
    let calls = Arc::new(DbCalls::default());
    let counted = aws_sdk_dynamodb::config::Builder::from(&stack.aws_config().await)
        .interceptor(Counting(calls.clone()))
        .build();
    stack.dynamodb = Some(aws_sdk_dynamodb::Client::from_conf(counted));
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let now = chrono::Utc::now();
    let meetings: Vec<Meeting> = (0..5000)
        .map(|i| {
            // Every tenth is a month old (due); the rest are still ahead.
            let start = if i % 10 == 0 {
                now - chrono::Duration::days(30)
            } else {
                now + chrono::Duration::days(1 + (i % 30) as i64)
            };
            stored(i, start, 90_000_000_000 + i as u64)
        })
        .collect();
    stack.put_meetings(&meetings).await.expect("seeded");

    let rate = 50;
    let started = clock.instant();
    let summary = telemeet::cleanup::run(
        &app,
        &cleanup_settings(rate),
        &scheduled(now, false),
        clock.instant() + Duration::from_secs(60),
    )
    .await
    .expect("a summary");
    assert_eq!(
        (summary["examined"].as_u64(), summary["archived"].as_u64()),
        (Some(500), Some(500)),
        "{summary}"
    );
    assert_eq!(summary["complete"], true);
    // Zoom had none of them: each delete was "already gone", which still counts as done.
    assert_eq!(stack.sandbox_count(DELETE_OP).await, 500);
    let reads = calls.batch_keys.load(Ordering::Relaxed);
    let queries = calls.queries.load(Ordering::Relaxed);
    assert_eq!(calls.scans.load(Ordering::Relaxed), 0, "never a Scan");
    assert_eq!(reads, 500, "items read = items due, not 5,000");
    assert!(
        queries <= 4 * 6 + 1,
        "index pages for 500 due items, not 5,000: {queries}"
    );
    let sends = provider_sends(&clock);
    assert_eq!(sends.len(), 500, "every provider call waited for its slot");
    let peak = peak_rate(&sends);
    assert!(
        peak <= rate as usize + 1,
        "at most {rate} provider calls a second, saw {peak}"
    );
    assert!(
        clock.instant() - started >= Duration::from_secs_f64(499.0 / f64::from(rate)),
        "paced"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_out_of_time_stops_cleanly_and_the_next_finishes_without_repeating_anything() {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let now = chrono::Utc::now();
    let meetings: Vec<Meeting> = (0..60)
        .map(|i| {
            stored(
                i,
                now - chrono::Duration::days(30),
                91_000_000_000 + i as u64,
            )
        })
        .collect();
    stack.put_meetings(&meetings).await.expect("seeded");
    // 20 calls a second: 60 meetings need 3 s; this run gets about 1.3 s.
    let first = telemeet::cleanup::run(
        &app,
        &cleanup_settings(20),
        &scheduled(now, false),
        clock.instant() + Duration::from_millis(1600),
    )
    .await
    .expect("a summary");
    assert_eq!(first["complete"], false, "{first}");
    let done_first = first["archived"].as_u64().expect("archived");
    assert!(done_first > 0 && done_first < 60, "{first}");
    let second = telemeet::cleanup::run(
        &app,
        &cleanup_settings(20),
        &scheduled(now, false),
        clock.instant() + Duration::from_secs(30),
    )
    .await
    .expect("a summary");
    assert_eq!(second["complete"], true, "{second}");
    assert_eq!(
        done_first + second["archived"].as_u64().expect("archived"),
        60,
        "every meeting once"
    );
    assert_eq!(
        stack.sandbox_count(DELETE_OP).await,
        60,
        "no provider delete twice"
    );
    stack.finish(0).await;
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_zoom_faults_are_failed_then_retried_next_run() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let api = Api::new(stack.gateway());
    let service = stack.token("svc-1", "service", "clinic-1");
    let now = chrono::Utc::now();
    let a = api
        .put_appointment(
            &service,
            "appt-a",
            &body_at(now - chrono::Duration::days(30)),
        )
        .await
        .body;
    let b = api
        .put_appointment(
            &service,
            "appt-b",
            &body_at(now - chrono::Duration::days(30)),
        )
        .await
        .body;
    let zoom_before = zoom_ids(&stack).await;
    let stats_before = api.get(&service, "/stats").await.body;

    let dry = run_cleanup(&stack, &scheduled(now, true)).await;
    assert_eq!(
        (
            dry["dryRun"].as_bool(),
            dry["archived"].as_u64(),
            dry["providerDeleted"].as_u64()
        ),
        (Some(true), Some(2), Some(2)),
        "{dry}"
    );
    assert_eq!(zoom_ids(&stack).await, zoom_before);
    assert_eq!(stack.sandbox_count(DELETE_OP).await, 0);
    assert_eq!(api.get(&service, "/stats").await.body, stats_before);
    assert_eq!(
        api.get(
            &service,
            &format!("/meetings/{}", a["meetingId"].as_str().unwrap_or(""))
        )
        .await
        .body["status"],
        "scheduled"
    );

    // Zoom fails every delete attempt: both are counted as failed, nothing is archived.
    stack
        .fault(json!({ "operation": DELETE_OP, "kind": "status", "status": 500, "times": -1 }))
        .await;
    let faulty = run_cleanup(&stack, &scheduled(now, false)).await;
    assert_eq!(
        (faulty["failed"].as_u64(), faulty["archived"].as_u64()),
        (Some(2), Some(0)),
        "{faulty}"
    );
    // Zoom recovers: the next run finishes them.
    stack
        .sandbox(reqwest::Method::DELETE, "/__sandbox/faults", None)
        .await;
    let next = run_cleanup(&stack, &scheduled(now, false)).await;
    assert_eq!(
        (next["failed"].as_u64(), next["archived"].as_u64()),
        (Some(0), Some(2)),
        "{next}"
    );
    for m in [&a, &b] {
        assert_eq!(
            api.get(
                &service,
                &format!("/meetings/{}", m["meetingId"].as_str().unwrap_or(""))
            )
            .await
            .body["status"],
            "archived"
        );
    }
    assert!(
        zoom_ids(&stack).await.is_empty(),
        "nothing lost: both deleted at Zoom"
    );

    // A 429 whose Retry-After does not fit the run: failed now, done next run.
    let c = api
        .put_appointment(
            &service,
            "appt-c",
            &body_at(now - chrono::Duration::days(30)),
        )
        .await
        .body;
    stack.fault(json!({ "operation": DELETE_OP, "kind": "rate_limit", "retryAfter": "600", "times": -1 })).await;
    let limited = run_cleanup(&stack, &scheduled(now, false)).await;
    assert_eq!(
        (limited["failed"].as_u64(), limited["archived"].as_u64()),
        (Some(1), Some(0)),
        "{limited}"
    );
    stack
        .sandbox(reqwest::Method::DELETE, "/__sandbox/faults", None)
        .await;
    let after = run_cleanup(&stack, &scheduled(now, false)).await;
    assert_eq!(
        (after["failed"].as_u64(), after["archived"].as_u64()),
        (Some(0), Some(1)),
        "{after}"
    );
    assert_eq!(
        api.get(
            &service,
            &format!("/meetings/{}", c["meetingId"].as_str().unwrap_or(""))
        )
        .await
        .body["status"],
        "archived"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_conversation_meeting_is_deleted_and_archived() {
    let stack = in_process_stack().await;
    let month_ago = chrono::Utc::now() - chrono::Duration::days(30);
    let clock = Arc::new(telemeet::clock::ManualClock::new(month_ago));
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let staff = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    // A conversation call a month ago: its reuse window ended long since.
    let body = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"] });
    let created = call(
        &app,
        telemeet::http::router::Function::CreateMeeting,
        lambda_request(
            "PUT",
            "/conversations/conv-old/meeting",
            Some(&staff),
            Some(&body),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let now = chrono::Utc::now();
    clock.set(now);
    let summary = cleanup_now(&app, &clock, now).await;
    assert_eq!(
        (
            summary["providerDeleted"].as_u64(),
            summary["archived"].as_u64()
        ),
        (Some(1), Some(1)),
        "{summary}"
    );
    assert!(zoom_ids(&stack).await.is_empty());
    let id = created.body["meetingId"].as_str().expect("id");
    let after = call(
        &app,
        telemeet::http::router::Function::GetMeetingLink,
        lambda_request("GET", &format!("/meetings/{id}"), Some(&staff), None),
    )
    .await;
    assert_eq!(after.body["status"], "archived");
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_conversation_meetings_are_archived_while_a_newer_one_holds_their_subject() {
    let stack = in_process_stack().await;
    let month_ago = chrono::Utc::now() - chrono::Duration::days(30);
    let clock = Arc::new(telemeet::clock::ManualClock::new(month_ago));
    let app = stack
        .app(clock.clone(), Settings::default())
        .await
        .expect("app");
    let staff = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let body = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"] });
    let put = || {
        let req = lambda_request(
            "PUT",
            "/conversations/conv-again/meeting",
            Some(&staff),
            Some(&body),
        );
        call(&app, telemeet::http::router::Function::CreateMeeting, req)
    };
    // Three calls of one conversation, each after the previous one's window: the oldest two
    // are due, the newest holds the subject's claim.
    let oldest = put().await;
    assert_eq!(oldest.status, 201, "{:?}", oldest.body);
    clock.advance(chrono::Duration::days(15));
    let older = put().await;
    assert_eq!(older.status, 201, "{:?}", older.body);
    let now = chrono::Utc::now();
    clock.set(now);
    let new = put().await;
    assert_eq!(new.status, 201, "{:?}", new.body);
    assert_ne!(new.body["meetingId"], older.body["meetingId"]);
    let summary = cleanup_now(&app, &clock, now).await;
    assert_eq!(
        (
            summary["archived"].as_u64(),
            summary["providerDeleted"].as_u64(),
            summary["skipped"].as_u64()
        ),
        (Some(2), Some(2), Some(0)),
        "both older ones archived, not skipped for ever: {summary}"
    );
    for old in [&oldest, &older] {
        let id = old.body["meetingId"].as_str().expect("id");
        let req = lambda_request("GET", &format!("/meetings/{id}"), Some(&staff), None);
        let read = call(&app, telemeet::http::router::Function::GetMeetingLink, req).await;
        assert_eq!(read.body["status"], "archived", "{id}");
    }
    // A second run finds nothing to do: no provider delete is sent again.
    let again = cleanup_now(&app, &clock, now).await;
    assert_eq!(
        (
            again["archived"].as_u64(),
            again["providerDeleted"].as_u64(),
            again["skipped"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{again}"
    );
    // The newest meeting keeps its subject: the next call inside its window reuses it.
    let reused = put().await;
    assert_eq!(reused.status, 200, "{:?}", reused.body);
    assert_eq!(reused.body["meetingId"], new.body["meetingId"]);
    assert_eq!(stack.sandbox_count(CREATE_OP).await, 3);
    stack.finish(0).await;
}

/// The marked meetings' ids of `users` in the account `connection` names.
async fn account_meetings(stack: &Stack, connection: &Value, users: &[&str]) -> Vec<String> {
    let token = stack.zoom_access_token_for(connection).await;
    let mut ids = Vec::new();
    for user in users {
        let list: Value = reqwest::Client::new()
            .get(format!("{}/v2/users/{user}/meetings", stack.sandbox_url))
            .bearer_auth(&token)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let meetings = list["meetings"].as_array().cloned().unwrap_or_default();
        ids.extend(meetings.iter().map(|m| m["id"].to_string()));
    }
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_in_an_orgs_own_zoom_account_are_deleted_under_its_default_user_and_every_mapped_host()
 {
    let (stack, clock, app) = in_process_app().await;
    let (mapped, default) = ("dr1@own.example", "front-desk@own.example");
    let mut connection = stack.zoom_account(&[mapped, default]).await;
    connection["defaultUser"] = json!(default);
    let admin = day_token(&stack, "adm", "admin", "clinic-own");
    let org = |method: &'static str, path: &'static str, body: Value| {
        let req = lambda_request(method, path, Some(&admin), Some(&body));
        call(&app, telemeet::http::router::Function::OrgAdmin, req)
    };
    let r = org("PUT", "/org/providers/zoom", connection.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = org("PUT", "/org/hosts/dr-1", json!({ "zoomUser": mapped })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A live meeting of the org's, under the mapped host.
    let service = day_token(&stack, "svc", "service", "clinic-own");
    let mut body = appointment_body();
    body["hostUserId"] = json!("dr-1");
    let req = lambda_request(
        "PUT",
        "/appointments/appt-own/meeting",
        Some(&service),
        Some(&body),
    );
    let live = call(&app, telemeet::http::router::Function::CreateMeeting, req).await;
    assert_eq!(live.status, 201, "{:?}", live.body);
    // Orphans under both users, and a meeting that is not ours.
    let token = stack.zoom_access_token_for(&connection).await;
    let make = |user: &str, agenda: Option<&str>| {
        let mut m = json!({ "topic": "Video consultation", "type": 2,
                            "start_time": "2030-01-01T10:00:00Z", "duration": 30 });
        if let Some(a) = agenda {
            m["agenda"] = json!(a);
        }
        reqwest::Client::new()
            .post(format!("{}/v2/users/{user}/meetings", stack.sandbox_url))
            .bearer_auth(&token)
            .json(&m)
            .send()
    };
    let mut not_ours = String::new();
    for (user, agenda) in [
        (mapped, Some("telemeet:local:mtg_ghostown1000000000000")),
        (default, Some("telemeet:local:mtg_ghostown2000000000000")),
        (mapped, None),
    ] {
        let made: Value = make(user, agenda)
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        if agenda.is_none() {
            not_ours = made["id"].to_string();
        }
    }
    assert_eq!(
        account_meetings(&stack, &connection, &[mapped, default])
            .await
            .len(),
        4
    );

    // Two hours on, the orphans are old enough not to be creates in flight.
    let now = chrono::Utc::now() + chrono::Duration::hours(2);
    clock.set(now);
    let summary = cleanup_now(&app, &clock, now).await;
    assert_eq!(summary["orphansDeleted"], 2, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let mut kept = vec![
        live.body["providerMeetingId"]
            .as_str()
            .expect("id")
            .to_owned(),
        not_ours,
    ];
    kept.sort();
    assert_eq!(
        account_meetings(&stack, &connection, &[mapped, default]).await,
        kept,
        "the org's live meeting and the meeting that is not ours are kept"
    );
    // A second run finds nothing more to do.
    let again = cleanup_now(&app, &clock, now).await;
    assert_eq!(again["orphansDeleted"], 0, "{again}");
    stack.finish(0).await;
}

// ---------------------------------------------------------------- conversation rooms close

/// The frequent pass (`detail.pass = "close-rooms"`, every 5 minutes in the template) at `at`.
async fn close_rooms_at(
    app: &telemeet::App,
    clock: &ManualClock,
    at: chrono::DateTime<chrono::Utc>,
) -> Value {
    clock.set(at);
    let event = json!({ "time": at.to_rfc3339(), "detail": { "pass": "close-rooms" } });
    let summary = telemeet::cleanup::run(
        app,
        &CleanupSettings::default(),
        &event,
        clock.instant() + Duration::from_secs(30),
    )
    .await
    .expect("a summary");
    assert_eq!(
        (summary["pass"].as_str(), summary["failed"].as_u64()),
        (Some("close-rooms"), Some(0)),
        "{summary}"
    );
    summary
}

/// `(examined, providerDeleted, roomsClosed, archived, skipped)` of a summary.
fn counts(summary: &Value) -> [u64; 5] {
    [
        "examined",
        "providerDeleted",
        "roomsClosed",
        "archived",
        "skipped",
    ]
    .map(|k| summary[k].as_u64().unwrap_or(u64::MAX))
}

/// A conversation between dr-7 and pat-9, made by `caller`; its meeting.
async fn conversation(app: &telemeet::App, caller: &str, conversation: &str) -> Value {
    let body = json!({ "hostUserId": "dr-7", "participantUserIds": ["pat-9"] });
    let path = format!("/conversations/{conversation}/meeting");
    let req = lambda_request("PUT", &path, Some(caller), Some(&body));
    let made = call(app, telemeet::http::router::Function::CreateMeeting, req).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    made.body
}

/// `caller`'s own link to `meeting` (the URL; never printed).
async fn own_link(app: &telemeet::App, caller: &str, meeting: &Value) -> String {
    let path = format!(
        "/meetings/{}/link",
        meeting["meetingId"].as_str().unwrap_or("")
    );
    let req = lambda_request("GET", &path, Some(caller), None);
    let link = call(app, telemeet::http::router::Function::GetMeetingLink, req).await;
    assert_eq!(link.status, 200, "{:?}", link.body["error"]);
    link.body["url"].as_str().expect("a url").to_owned()
}

/// What opening a link at the Zoom sandbox answers.
async fn opens(url: &str) -> u16 {
    reqwest::get(url)
        .await
        .expect("the sandbox answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_room_is_deleted_at_zoom_minutes_after_its_window_and_the_weekly_run_only_archives_it()
 {
    let (stack, clock, app) = in_process_app().await;
    let t0 = clock.now();
    let patient = day_token(&stack, "pat-9", "patient", "clinic-1");
    let made = conversation(&app, &patient, "conv-close").await;
    let join = own_link(&app, &patient, &made).await;
    assert_eq!(
        opens(&join).await,
        200,
        "the room is open inside its window"
    );

    let inside = close_rooms_at(&app, &clock, t0 + chrono::Duration::minutes(30)).await;
    assert_eq!(
        counts(&inside),
        [0; 5],
        "nothing is due inside the window: {inside}"
    );
    let deletes = stack.sandbox_count(DELETE_OP).await;
    // The window (an hour) closed; the schedule's next run, five minutes later.
    let closed = close_rooms_at(&app, &clock, t0 + chrono::Duration::minutes(65)).await;
    assert_eq!(counts(&closed), [1, 1, 1, 0, 0], "{closed}");
    assert_eq!(stack.sandbox_count(DELETE_OP).await - deletes, 1);
    assert!(zoom_ids(&stack).await.is_empty(), "gone at Zoom");
    assert_eq!(opens(&join).await, 404, "the old join link opens nothing");
    let id = made["meetingId"].as_str().expect("id");
    let req = lambda_request("GET", &format!("/meetings/{id}"), Some(&patient), None);
    let read = call(&app, telemeet::http::router::Function::GetMeetingLink, req).await;
    assert_eq!(read.body["status"], "expired");

    let again = close_rooms_at(&app, &clock, t0 + chrono::Duration::minutes(70)).await;
    assert_eq!(counts(&again), [0; 5], "closed once, never again: {again}");
    // A week on, the weekly run archives it without asking Zoom again.
    let week = t0 + chrono::Duration::days(8);
    clock.set(week);
    let weekly = cleanup_now(&app, &clock, week).await;
    assert_eq!(counts(&weekly), [1, 0, 0, 1, 0], "{weekly}");
    assert_eq!(
        stack.sandbox_count(DELETE_OP).await - deletes,
        1,
        "one delete in all"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_running_past_its_window_is_not_cut_off_and_ending_it_here_deletes_the_room_at_once()
{
    let (stack, clock, app) = in_process_app().await;
    let t0 = clock.now();
    let doctor = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let made = conversation(&app, &doctor, "conv-long").await;
    let start = own_link(&app, &doctor, &made).await;
    assert_eq!(opens(&start).await, 200, "the host starts the call");
    let zoom = made["providerMeetingId"].as_str().expect("zoom id");
    let told = zoom_reports(&stack, &app, &clock, "meeting.started", zoom, 1).await;
    assert_eq!(told, "applied");

    let running = close_rooms_at(&app, &clock, t0 + chrono::Duration::minutes(65)).await;
    assert_eq!(
        counts(&running),
        [1, 0, 0, 0, 1],
        "in progress: left running: {running}"
    );
    assert_eq!(zoom_ids(&stack).await.len(), 1);

    clock.set(t0 + chrono::Duration::minutes(80));
    let id = made["meetingId"].as_str().expect("id");
    let req = lambda_request("POST", &format!("/meetings/{id}/end"), Some(&doctor), None);
    let ended = call(&app, telemeet::http::router::Function::ManageMeeting, req).await;
    assert_eq!(ended.status, 200, "{:?}", ended.body);
    assert_eq!(ended.body["status"], "ended");
    assert!(
        zoom_ids(&stack).await.is_empty(),
        "ended here: deleted at Zoom at once"
    );
    let deletes = stack.sandbox_count(DELETE_OP).await;

    let after = close_rooms_at(&app, &clock, t0 + chrono::Duration::minutes(85)).await;
    assert_eq!(counts(&after), [0; 5], "{after}");
    let week = t0 + chrono::Duration::days(8);
    clock.set(week);
    let weekly = cleanup_now(&app, &clock, week).await;
    assert_eq!(counts(&weekly), [1, 0, 0, 1, 0], "{weekly}");
    assert_eq!(
        stack.sandbox_count(DELETE_OP).await,
        deletes,
        "no delete after the end"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_zoom_reports_ended_inside_its_window_is_deleted_by_the_next_pass() {
    let (stack, clock, app) = in_process_app().await;
    let t0 = clock.now();
    let doctor = day_token(&stack, "dr-7", "practitioner", "clinic-1");
    let made = conversation(&app, &doctor, "conv-short").await;
    let zoom = made["providerMeetingId"].as_str().expect("zoom id");
    clock.set(t0 + chrono::Duration::minutes(5));
    assert_eq!(
        zoom_reports(&stack, &app, &clock, "meeting.started", zoom, 1).await,
        "applied"
    );
    clock.set(t0 + chrono::Duration::minutes(20));
    assert_eq!(
        zoom_reports(&stack, &app, &clock, "meeting.ended", zoom, 2).await,
        "applied"
    );

    let next = close_rooms_at(&app, &clock, t0 + chrono::Duration::minutes(25)).await;
    assert_eq!(counts(&next), [1, 1, 1, 0, 0], "{next}");
    assert!(zoom_ids(&stack).await.is_empty());
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appointments_are_left_to_the_weekly_run_and_an_unknown_pass_is_refused() {
    let (stack, clock, app) = in_process_app().await;
    let t0 = clock.now();
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    let req = lambda_request(
        "PUT",
        "/appointments/appt-close/meeting",
        Some(&service),
        Some(&body_at(t0)),
    );
    let made = call(&app, telemeet::http::router::Function::CreateMeeting, req).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let later = close_rooms_at(&app, &clock, t0 + chrono::Duration::days(2)).await;
    assert_eq!(counts(&later), [0; 5], "{later}");
    assert_eq!(zoom_ids(&stack).await.len(), 1);
    let odd = json!({ "time": t0.to_rfc3339(), "detail": { "pass": "everything" } });
    let refused =
        telemeet::cleanup::run(&app, &CleanupSettings::default(), &odd, clock.instant()).await;
    assert!(refused.is_err(), "an unknown pass does nothing");
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zooms_3007_on_delete_means_ended_so_a_cancel_and_the_cleanup_count_it_done() {
    let (stack, clock, app) = in_process_app().await;
    let t0 = clock.now();
    let service = day_token(&stack, "svc-1", "service", "clinic-1");
    // Zoom's spec lists 3007 for DELETE (HTTP 400): "Sorry, you cannot delete this meeting
    // since it has ended." When it sends it is not documented: injected.
    let ended = json!({ "operation": DELETE_OP, "kind": "status", "status": 400,
        "body": { "code": 3007, "message": "Sorry, you cannot delete this meeting since it has ended." } });
    let made = |appt: &'static str| {
        let req = lambda_request(
            "PUT",
            &format!("/appointments/{appt}/meeting"),
            Some(&service),
            Some(&body_at(t0)),
        );
        call(&app, telemeet::http::router::Function::CreateMeeting, req)
    };
    let cancelled = made("appt-3007-cancel").await;
    let due = made("appt-3007-due").await;
    assert_eq!((cancelled.status, due.status), (201, 201));
    stack.fault(ended.clone()).await;
    let id = cancelled.body["meetingId"].as_str().expect("id");
    let req = lambda_request("DELETE", &format!("/meetings/{id}"), Some(&service), None);
    let answer = call(&app, telemeet::http::router::Function::ManageMeeting, req).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "cancelled");

    stack.fault(ended).await;
    let week = t0 + chrono::Duration::days(8);
    clock.set(week);
    let summary = cleanup_now(&app, &clock, week).await;
    assert_eq!(
        (summary["archived"].as_u64(), summary["failed"].as_u64()),
        (Some(2), Some(0)),
        "{summary}"
    );
    stack.finish(0).await;
}
