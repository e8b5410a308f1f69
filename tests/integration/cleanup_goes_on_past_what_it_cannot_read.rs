//! The weekly cleanup goes on past what it cannot read. One item in the due index that does
//! not read as a meeting (the bench's Node.js peer once wrote `updatedAt` as a number) or one
//! failed page of the index must not stop the other shards and accounts: each is logged and
//! counted failed, the run says it is not complete, and the part left behind is the next
//! run's. In-process and fanned out through the work queue.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use local_gateway::cleanup::{LocalCleanupQueue, Worker};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use telemeet::cleanup::CleanupSettings;
use telemeet::clock::Clock;
use telemeet::domain::{DueFor, Meeting, MeetingStatus, ProviderKind};
use telemeet::store::{DueIndex, DueItem, StoreError, StoreResult};
use telemeet_local::*;

const DELETE_OP: &str = "DELETE /v2/meetings/{meetingId}";
/// The shard whose first page fails once.
const FAILING_SHARD: u32 = 2;

fn weekly(at: DateTime<Utc>) -> Value {
    json!({ "version": "0", "id": "past-unreadable", "detail-type": "Scheduled Event",
            "source": "aws.events", "time": at.to_rfc3339(), "detail": {} })
}

fn settings() -> CleanupSettings {
    CleanupSettings {
        provider_rate: 50,
        margin: Duration::from_millis(300),
        ..Default::default()
    }
}

/// The real due index, but the first page read of [`FAILING_SHARD`] fails (as a timed-out
/// Query would); every other read, and that one's retry next run, goes through.
struct FailsOneShardOnce {
    inner: Arc<dyn DueIndex>,
    failed: AtomicBool,
}

#[async_trait::async_trait]
impl DueIndex for FailsOneShardOnce {
    async fn due(
        &self,
        what: DueFor,
        shard: u32,
        cutoff: DateTime<Utc>,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<(Vec<DueItem>, Option<String>)> {
        if what == DueFor::Archive
            && shard == FAILING_SHARD
            && !self.failed.swap(true, Ordering::SeqCst)
        {
            return Err(StoreError::Call {
                op: "Query",
                source: Box::new(std::io::Error::other("injected: the read timed out")),
            });
        }
        self.inner.due(what, shard, cutoff, cursor, limit).await
    }

    async fn archive(
        &self,
        before: &Meeting,
        archived: &Meeting,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.inner.archive(before, archived, keep_until).await
    }

    async fn drop_claim(&self, key: &str, token: &str) -> StoreResult<()> {
        self.inner.drop_claim(key, token).await
    }

    async fn no_shows(
        &self,
        shard: u32,
        cutoff: DateTime<Utc>,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<(Vec<Meeting>, Option<String>)> {
        self.inner.no_shows(shard, cutoff, cursor, limit).await
    }
}

/// `n` Zoom meetings a month old (due) in the deployment's account.
fn due_meetings(n: usize, now: DateTime<Utc>) -> Vec<Meeting> {
    (0..n)
        .map(|i| {
            local_stack::sample_meeting(
                i,
                "clinic-1",
                ProviderKind::Zoom,
                (94_000_000_000 + i as u64).to_string(),
                now - chrono::Duration::days(30),
            )
            .expect("meeting")
        })
        .collect()
}

fn in_failing_shard(m: &Meeting) -> bool {
    telemeet::store::keys::due_shard(DueFor::Archive, &m.id)
        == telemeet::store::keys::due_partition(DueFor::Archive, FAILING_SHARD)
}

/// A due meeting's record as the Node.js peer used to leave it: `updatedAt` a number (epoch
/// milliseconds) where telemeet writes RFC 3339 text. Its partition key.
async fn put_unreadable(stack: &Stack, m: &Meeting) -> String {
    let mut item = telemeet::store::dynamo::meeting_item(m).expect("item");
    item.insert(
        "updatedAt".into(),
        AttributeValue::N(m.updated_at.timestamp_millis().to_string()),
    );
    let pk = item["pk"].as_s().expect("pk").clone();
    aws_sdk_dynamodb::Client::new(&stack.aws_config().await)
        .put_item()
        .table_name(local_stack::TABLE_NAME)
        .set_item(Some(item))
        .send()
        .await
        .expect("put");
    pk
}

/// The unreadable record, untouched: still in the due index, still as written.
async fn still_unreadable(stack: &Stack, pk: &str) -> bool {
    let item = aws_sdk_dynamodb::Client::new(&stack.aws_config().await)
        .get_item()
        .table_name(local_stack::TABLE_NAME)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .key("sk", AttributeValue::S("MEETING".into()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the record is still there");
    item.contains_key("duePk") && item.get("updatedAt").is_some_and(AttributeValue::is_n)
}

/// How many of `meetings` are archived now.
async fn archived(app: &telemeet::App, meetings: &[Meeting]) -> usize {
    let ids: Vec<_> = meetings.iter().map(|m| m.id.clone()).collect();
    let found = app
        .service
        .stores
        .meetings
        .get_meetings(&ids)
        .await
        .expect("read");
    found
        .iter()
        .filter(|m| m.status == MeetingStatus::Archived)
        .count()
}

/// A stack, `meetings` due readable ones and one unreadable one
/// (its key), and an app whose due index fails one shard's first page once.
async fn seeded(
    n: usize,
) -> (
    Stack,
    Arc<telemeet::clock::ManualClock>,
    telemeet::App,
    Vec<Meeting>,
    String,
) {
    // Its log lines are captured (in_process_stack) for the checks below and finish's.
    let (stack, clock, mut app) = in_process_app().await;
    let now = clock.now();
    let mut meetings = due_meetings(n + 8, now);
    // The unreadable one in a shard that reads: the failed page must not hide it.
    let at = meetings
        .iter()
        .rposition(|m| !in_failing_shard(m))
        .expect("one outside the failing shard");
    let bad = meetings.remove(at);
    meetings.truncate(n);
    stack.put_meetings(&meetings).await.expect("seeded");
    let pk = put_unreadable(&stack, &bad).await;
    let failing = meetings.iter().filter(|m| in_failing_shard(m)).count();
    assert!(
        failing > 0 && failing < n,
        "the failing shard holds some of the meetings, not all: {failing} of {n}"
    );
    app.service.stores.due = Arc::new(FailsOneShardOnce {
        inner: app.service.stores.due.clone(),
        failed: AtomicBool::new(false),
    });
    (stack, clock, app, meetings, pk)
}

/// The second run (`second`, its summary) took the `failing` meetings the failed page left,
/// every readable meeting was deleted at Zoom once, and the unreadable one (`bad`) is still
/// there, counted failed again: the run still says it is not complete.
async fn next_run_takes_the_rest(
    stack: &Stack,
    app: &telemeet::App,
    second: &Value,
    (meetings, failing): (&[Meeting], usize),
    bad: &str,
) {
    assert_eq!(
        second["archived"].as_u64(),
        Some(failing as u64),
        "{second}"
    );
    assert_eq!(
        (second["failed"].as_u64(), second["complete"].as_bool()),
        (Some(1), Some(false)),
        "{second}"
    );
    assert_eq!(archived(app, meetings).await, meetings.len());
    assert_eq!(
        stack.sandbox_count(DELETE_OP).await,
        meetings.len() as u64,
        "each readable meeting deleted at Zoom once"
    );
    assert!(still_unreadable(stack, bad).await);
}

/// One weekly run in-process, 300 s to spare.
async fn run_in_process(app: &telemeet::App, clock: &telemeet::clock::ManualClock) -> Value {
    telemeet::cleanup::run(
        app,
        &settings(),
        &weekly(clock.now()),
        clock.instant() + Duration::from_secs(300),
    )
    .await
    .expect("a summary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_goes_on_past_an_unreadable_item_and_a_failed_page_and_says_it_is_incomplete() {
    let (stack, clock, app, meetings, bad) = seeded(60).await;
    let failing = meetings.iter().filter(|m| in_failing_shard(m)).count();
    let first = run_in_process(&app, &clock).await;
    // Every other shard done; the failed page and the unreadable item counted, not complete.
    assert_eq!(
        first["archived"].as_u64(),
        Some((meetings.len() - failing) as u64),
        "{first}"
    );
    assert_eq!(
        (first["failed"].as_u64(), first["complete"].as_bool()),
        (Some(2), Some(false)),
        "{first}"
    );
    assert_eq!(archived(&app, &meetings).await, meetings.len() - failing);
    // The next run takes what the failed page left; the unreadable item stays, and says so.
    let second = run_in_process(&app, &clock).await;
    next_run_takes_the_rest(&stack, &app, &second, (&meetings, failing), &bad).await;
    assert!(
        stack.log_lines_with(&bad, 2).await >= 2,
        "each run logs the unreadable item by its key"
    );
    stack.finish(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_fan_out_goes_on_past_an_unreadable_item_and_a_failed_page_and_says_it_is_incomplete()
 {
    let (stack, clock, app, meetings, bad) = seeded(60).await;
    let failing = meetings.iter().filter(|m| in_failing_shard(m)).count();
    let queue = LocalCleanupQueue::create(&stack.aws_config().await, local_stack::TABLE_NAME)
        .await
        .expect("the cleanup queue");
    let sender = queue.sender();
    let settings = settings();
    let worker = Worker {
        app: &app,
        settings: &settings,
        sender: &sender,
        timeout: Duration::from_secs(300),
    };
    let first = local_gateway::cleanup::cycle(&queue, worker, &weekly(clock.now()))
        .await
        .expect("cycle");
    assert_eq!(
        (first["planned"].as_u64(), first["archived"].as_u64()),
        (
            Some((meetings.len() - failing) as u64),
            Some((meetings.len() - failing) as u64)
        ),
        "{first}"
    );
    assert_eq!(
        (
            first["failed"].as_u64(),
            first["deadLettered"].as_u64(),
            first["complete"].as_bool()
        ),
        (Some(2), Some(0), Some(false)),
        "{first}"
    );
    let second = local_gateway::cleanup::cycle(&queue, worker, &weekly(clock.now()))
        .await
        .expect("cycle");
    next_run_takes_the_rest(&stack, &app, &second, (&meetings, failing), &bad).await;
    stack.finish(0).await;
}
