//! The weekly cleanup fanned out (issue 18): with a work queue the scheduled run only plans,
//! each provider account's due meetings go to workers in their own FIFO group, and runs
//! continue (workers and the planner) until the due set is empty. Each account keeps its
//! rate; accounts run in parallel. Time is the injected clock's: pacing and deadlines cost
//! the tests no real seconds.

use local_gateway::cleanup::{LocalCleanupQueue, Worker};
use serde_json::{Value, json};
use std::time::Duration;
use telemeet::cleanup::CleanupSettings;
use telemeet::clock::{Clock, ManualClock, Wait};
use telemeet::domain::{Account, Meeting, MeetingStatus, ProviderKind};
use telemeet::http::router::Function;
use telemeet_local::*;

const DELETE_OP: &str = "DELETE /v2/meetings/{meetingId}";

fn weekly(at: chrono::DateTime<chrono::Utc>) -> Value {
    json!({ "version": "0", "id": "fan-out-test", "detail-type": "Scheduled Event",
            "source": "aws.events", "time": at.to_rfc3339(), "detail": {} })
}

fn settings(rate: u32) -> CleanupSettings {
    CleanupSettings {
        provider_rate: rate,
        margin: Duration::from_millis(300),
        ..Default::default()
    }
}

/// `n` meetings a month old (due) in `org`'s own Zoom account, or the deployment's; ids
/// from `first`.
fn due(
    first: usize,
    n: usize,
    org: &str,
    own: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Meeting> {
    (first..first + n)
        .map(|i| {
            let mut m = local_stack::sample_meeting(
                i,
                org,
                ProviderKind::Zoom,
                (93_000_000_000 + i as u64).to_string(),
                now - chrono::Duration::days(30),
            )
            .expect("meeting");
            if own {
                m.account = Account::Org;
            }
            m
        })
        .collect()
}

async fn fan_out_stack() -> (
    Stack,
    std::sync::Arc<ManualClock>,
    telemeet::App,
    LocalCleanupQueue,
) {
    let (stack, clock, app) = in_process_app().await;
    let queue = LocalCleanupQueue::create(&stack.aws_config().await, local_stack::TABLE_NAME)
        .await
        .expect("the cleanup queue");
    (stack, clock, app, queue)
}

/// Every seeded meeting's status now.
async fn statuses(app: &telemeet::App, meetings: &[Meeting]) -> Vec<MeetingStatus> {
    let ids: Vec<_> = meetings.iter().map(|m| m.id.clone()).collect();
    let mut found = Vec::new();
    for chunk in ids.chunks(100) {
        found.extend(
            app.service
                .stores
                .meetings
                .get_meetings(chunk)
                .await
                .expect("read")
                .into_iter()
                .map(|m| m.status),
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_fan_out_clears_every_due_meeting_across_runs() {
    let (stack, clock, app, queue) = fan_out_stack().await;
    let now = clock.now();
    let meetings = due(0, 120, "clinic-1", false, now);
    stack.put_meetings(&meetings).await.expect("seeded");
    let sender = queue.sender();
    // 20 calls a second and 2 s a run: about 30 meetings a run, so 120 need several.
    let settings = settings(20);
    let worker = Worker {
        app: &app,
        settings: &settings,
        sender: &sender,
        timeout: Duration::from_secs(2),
    };
    // A planner out of time before its first page hands its place on.
    let planned =
        telemeet::cleanup::fanout::plan(&app, &settings, &sender, &weekly(now), clock.instant())
            .await
            .expect("planned");
    assert_eq!(
        (planned["planned"].as_u64(), planned["continued"].as_bool()),
        (Some(0), Some(true)),
        "{planned}"
    );
    let drained = queue.drain(worker).await.expect("drained");
    assert_eq!(drained["planned"], 120, "{drained}");
    assert_eq!(drained["archived"], 120, "{drained}");
    assert_eq!(drained["examined"], 120, "{drained}");
    assert_eq!(
        (drained["failed"].as_u64(), drained["complete"].as_bool()),
        (Some(0), Some(true)),
        "{drained}"
    );
    assert!(
        drained["lambdaRuns"].as_u64().is_some_and(|n| n >= 5),
        "the continued planner and at least four worker runs: {drained}"
    );
    assert_eq!(
        stack.sandbox_count(DELETE_OP).await,
        120,
        "each meeting deleted at Zoom once"
    );
    assert!(
        statuses(&app, &meetings)
            .await
            .iter()
            .all(|s| *s == MeetingStatus::Archived)
    );
    // The next week's cycle finds nothing.
    let again = local_gateway::cleanup::cycle(&queue, worker, &weekly(now))
        .await
        .expect("cycle");
    assert_eq!(
        (
            again["planned"].as_u64(),
            again["archived"].as_u64(),
            again["lambdaRuns"].as_u64()
        ),
        (Some(0), Some(0), Some(1)),
        "{again}"
    );
    assert_eq!(stack.sandbox_count(DELETE_OP).await, 120);
    stack.finish(0).await;
}

/// An org with its own Zoom account (a connection of its own, PUT by its admin).
async fn connect_own_zoom(stack: &Stack, app: &telemeet::App, org: &str) {
    let connection = stack.zoom_account(&["front-desk@own.example"]).await;
    let admin = day_token(stack, "adm", "admin", org);
    let req = lambda_request(
        "PUT",
        "/org/providers/zoom",
        Some(&admin),
        Some(&connection),
    );
    let r = call(app, Function::OrgAdmin, req).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// The most provider calls within any one second, of these send times (a window sliding
/// over them, sorted).
fn busiest_second(mut times: Vec<f64>) -> usize {
    times.sort_by(f64::total_cmp);
    let mut first = 0;
    let mut most = 0;
    for (last, t) in times.iter().enumerate() {
        while times[first] <= t - 1.0 {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_keeps_each_accounts_rate_and_runs_accounts_in_parallel() {
    let (stack, clock, app, queue) = fan_out_stack().await;
    let now = clock.now();
    for org in ["clinic-a", "clinic-b"] {
        connect_own_zoom(&stack, &app, org).await;
    }
    let per_account = 45;
    let mut meetings = due(0, per_account, "clinic-a", true, now);
    meetings.extend(due(per_account, per_account, "clinic-b", true, now));
    stack.put_meetings(&meetings).await.expect("seeded");
    let sender = queue.sender();
    let rate = 10;
    let settings = settings(rate);
    let worker = Worker {
        app: &app,
        settings: &settings,
        sender: &sender,
        timeout: Duration::from_secs(300),
    };
    let started = clock.elapsed();
    let cycle = local_gateway::cleanup::cycle(&queue, worker, &weekly(now))
        .await
        .expect("cycle");
    let took = (clock.elapsed() - started).as_secs_f64();
    assert_eq!(cycle["archived"], 2 * per_account, "{cycle}");
    assert_eq!(
        (cycle["failed"].as_u64(), cycle["complete"].as_bool()),
        (Some(0), Some(true)),
        "{cycle}"
    );
    assert_eq!(cycle["messages"], 2, "one message per account: {cycle}");
    assert_eq!(stack.sandbox_count(DELETE_OP).await, 2 * per_account as u64);
    // Each account at 90 % of its rate: 45 calls take 44 intervals of 1/9 s. One pacer for
    // both (the old ceiling) would take twice that; in parallel both fit in one span.
    let one_account = (per_account as f64 - 1.0) / (0.9 * f64::from(rate));
    assert!(took >= one_account - 0.01, "paced: {took} s");
    assert!(
        took < 1.5 * one_account,
        "the accounts ran in parallel: {took} s for what one pacer needs {} s",
        2.0 * one_account
    );
    let sends: Vec<f64> = clock
        .waits()
        .iter()
        .filter(|w| w.why == Wait::Pace)
        .map(|w| w.until.as_secs_f64())
        .collect();
    assert_eq!(
        sends.len(),
        2 * per_account,
        "every delete waited for its slot"
    );
    // Both accounts' calls together: never more than each account's rate, twice.
    let busiest = busiest_second(sends);
    assert!(
        busiest <= 2 * rate as usize + 2,
        "at most {rate} a second per account, saw {busiest} for two"
    );
    stack.finish(0).await;
}

/// What the mapping does when `batch`'s one message succeeded (deleted), then the next
/// message it receives (a worker's rest).
async fn done_then_next(queue: &LocalCleanupQueue, batch: &Value) -> Value {
    queue
        .settle(&batch["Records"][0], true)
        .await
        .expect("deleted");
    queue
        .receive_one()
        .await
        .expect("receive")
        .expect("the rest")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_worker_stops_before_the_deadline_and_re_enqueues_the_rest() {
    let (stack, clock, app, queue) = fan_out_stack().await;
    let now = clock.now();
    let meetings = due(0, 60, "clinic-1", false, now);
    stack.put_meetings(&meetings).await.expect("seeded");
    let sender = queue.sender();
    let settings = settings(20);
    let planned = telemeet::cleanup::fanout::plan(
        &app,
        &settings,
        &sender,
        &weekly(now),
        clock.instant() + Duration::from_secs(300),
    )
    .await
    .expect("planned");
    assert_eq!(
        (planned["planned"].as_u64(), planned["messages"].as_u64()),
        (Some(60), Some(1)),
        "{planned}"
    );
    assert_eq!(planned["complete"], true, "{planned}");
    let batch = queue
        .receive_one()
        .await
        .expect("receive")
        .expect("a message");
    let group = batch["Records"][0]["attributes"]["MessageGroupId"]
        .as_str()
        .expect("a group")
        .to_owned();
    assert!(
        group.len() == 32 && group.chars().all(|c| c.is_ascii_hexdigit()),
        "the group names no org or patient: {group}"
    );
    // 20 calls a second: 60 meetings need 3 s; this run gets 1.6 s.
    let deadline = clock.instant() + Duration::from_millis(1600);
    let worked = telemeet::cleanup::fanout::work(&app, &settings, &sender, &batch, deadline).await;
    assert!(worked.failed.is_empty(), "{worked:?}");
    assert!(clock.instant() < deadline, "stopped before the deadline");
    let first = &worked.summaries[0];
    assert_eq!(first["complete"], false, "{first}");
    let done = first["archived"].as_u64().expect("archived");
    assert!(done > 0 && done < 60, "{first}");
    // The rest, in the same group: exactly the meetings not begun.
    let rest = done_then_next(&queue, &batch).await;
    let record = &rest["Records"][0];
    assert_eq!(record["attributes"]["MessageGroupId"], group.as_str());
    let body: Value = serde_json::from_str(record["body"].as_str().unwrap_or("")).expect("json");
    assert_eq!(
        body["meetings"].as_array().map(Vec::len),
        Some(60 - done as usize),
        "{body}"
    );
    let answer = telemeet::cleanup::fanout::work(
        &app,
        &settings,
        &sender,
        &rest,
        clock.instant() + Duration::from_secs(300),
    )
    .await;
    assert_eq!(answer.summaries[0]["archived"], 60 - done, "{answer:?}");
    assert_eq!(answer.summaries[0]["complete"], true);
    queue.settle(record, true).await.expect("deleted");
    assert!(
        queue.receive_one().await.expect("receive").is_none(),
        "the queue is empty"
    );
    assert_eq!(stack.sandbox_count(DELETE_OP).await, 60, "no delete twice");
    stack.finish(0).await;
}

#[tokio::test]
async fn the_local_gateway_runs_a_fanned_out_cycle_and_answers_the_runs_and_their_sum() {
    let stack = Stack::start(Options::default()).await.expect("stack");
    let now = chrono::Utc::now();
    stack
        .put_meetings(&due(0, 7, "clinic-1", false, now))
        .await
        .expect("seeded");
    let mut event = weekly(now);
    event["detail"]["fanOut"] = json!(true);
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/local/events/cleanup", stack.gateway()))
        .json(&event)
        .send()
        .await
        .expect("the gateway answers")
        .json()
        .await
        .expect("a summary");
    assert_eq!(
        (
            answer["planned"].as_u64(),
            answer["messages"].as_u64(),
            answer["archived"].as_u64(),
            answer["lambdaRuns"].as_u64(),
            answer["complete"].as_bool()
        ),
        (Some(7), Some(1), Some(7), Some(2), Some(true)),
        "the planner and one worker run: {answer}"
    );
    assert!(answer["wallMs"].is_u64(), "{answer}");
    assert_eq!(stack.sandbox_count(DELETE_OP).await, 7);
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_out_of_time_before_its_first_meeting_still_hands_them_all_on() {
    let (stack, clock, app, queue) = fan_out_stack().await;
    let now = clock.now();
    stack
        .put_meetings(&due(0, 3, "clinic-1", false, now))
        .await
        .expect("seeded");
    let sender = queue.sender();
    let settings = settings(20);
    let long = clock.instant() + Duration::from_secs(300);
    telemeet::cleanup::fanout::plan(&app, &settings, &sender, &weekly(now), long)
        .await
        .expect("planned");
    let batch = queue
        .receive_one()
        .await
        .expect("receive")
        .expect("a message");
    // No time at all: nothing begun, so the rest is the whole message, sent again as new
    // (its deduplication id is not the message's own, which SQS would drop).
    let worked =
        telemeet::cleanup::fanout::work(&app, &settings, &sender, &batch, clock.instant()).await;
    assert_eq!(worked.summaries[0]["archived"], 0, "{worked:?}");
    let rest = done_then_next(&queue, &batch).await;
    assert_eq!(
        rest["Records"][0]["body"], batch["Records"][0]["body"],
        "the same meetings"
    );
    let answer = telemeet::cleanup::fanout::work(&app, &settings, &sender, &rest, long).await;
    assert_eq!(answer.summaries[0]["archived"], 3, "{answer:?}");
    stack.finish(0).await;
}
