//! The weekly cleanup fanned out through an SQS FIFO queue (issue 18): one run has 300 s
//! and one account's rate, so the due set is planned into work messages, one message group
//! per provider account. Lambda's FIFO mapping runs one message per group at a time (the
//! account's rate holds across containers) and different groups at once (accounts run in
//! parallel); a worker out of time hands the rest on in its group, a planner out of time
//! hands on its own place in the index, until the due set is empty.
//!
//! ```text
//! schedule ─► planner: due-index pages ─► claims dropped here; meetings by account ─┐
//!                 └─ out of time: {"plan": position} (group "plan") ◄───────────────┤
//!             worker (group = account digest): re-read, delete, archive ◄───────────┘
//!                 └─ out of time: {"meetings": rest} in the same group
//! ```
//! Orphans are reconciled in the planner run, after planning (as the in-process run does).

use super::{AccountKey, CleanupSettings, Header, Pass, Position, Run, Summary, Walk};
use crate::App;
use crate::ids::MeetingId;
use crate::notify::queue::QueueError;
use crate::store::DueItem;
use crate::telemetry::cause;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Meetings per work message: about 30 bytes each, so far under SQS's 256 KiB, and at
/// 9 deletes a second under a minute of one account's work.
pub const MESSAGE_MEETINGS: usize = 500;
/// The planner's own continuations: one at a time.
const PLAN_GROUP: &str = "plan";

/// One message for the work queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The FIFO message group: an account's digest, or the planner's.
    pub group: String,
    /// A digest of the body and of the message being handled when it was sent: the same
    /// message sent twice within SQS's five minutes (a redelivered worker handing on the same
    /// rest) is kept once, yet a rest equal to the message it came from (no progress) is new.
    pub dedup: String,
    pub body: String,
}

/// The work queue port (SQS FIFO in production and on moto locally).
#[async_trait]
pub trait WorkQueue: Send + Sync {
    async fn send(&self, message: &Outgoing) -> Result<(), QueueError>;
}

/// Amazon SQS (or moto's, through `AWS_ENDPOINT_URL`).
pub struct SqsWorkQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsWorkQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// `CLEANUP_QUEUE_URL`, when set (`None` otherwise); the SQS client from the default
    /// chain over the process's one TLS configuration (no I/O).
    pub async fn from_env() -> Result<Option<Self>, String> {
        let Some(url) = std::env::var("CLEANUP_QUEUE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            return Ok(None);
        };
        let aws = crate::tls::aws::loader()?.load().await;
        Ok(Some(Self::new(aws_sdk_sqs::Client::new(&aws), url)))
    }
}

#[async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn send(&self, m: &Outgoing) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_group_id(&m.group)
            .message_deduplication_id(&m.dedup)
            .message_body(&m.body)
            .send()
            .await
            .map_err(|e| QueueError {
                op: "SendMessage",
                source: Box::new(e),
            })?;
        Ok(())
    }
}

/// A work message's body: what to do, and the run it belongs to (its scheduled `time` is
/// every worker's "now").
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    time: DateTime<Utc>,
    pass: Pass,
    dry_run: bool,
    #[serde(flatten)]
    work: Work,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Work {
    /// The planner goes on from here.
    Plan(PlanAt),
    /// Due meetings of the message group's account.
    Meetings(Vec<MeetingId>),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum PlanAt {
    Due(Position),
    Orphans,
}

/// `cause`: the id of the message being handled (empty for the scheduled event).
fn outgoing(
    group: String,
    header: Header,
    work: Work,
    cause: &str,
) -> Result<Outgoing, QueueError> {
    let message = Message {
        time: header.now,
        pass: header.pass,
        dry_run: header.dry_run,
        work,
    };
    let body = serde_json::to_string(&message).map_err(|e| QueueError {
        op: "encode",
        source: Box::new(e),
    })?;
    let dedup = Sha256::digest([cause, "\n", &body].concat())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Outgoing { group, dedup, body })
}

/// A planning run's hand-overs: each account's meetings gathered into messages.
pub(super) struct Planner<'q> {
    queue: &'q dyn WorkQueue,
    header: Header,
    /// The message this planner continues (empty: the scheduled event).
    cause: String,
    buffers: Mutex<HashMap<AccountKey, Vec<MeetingId>>>,
    planned: AtomicU64,
    messages: AtomicU64,
}

impl<'q> Planner<'q> {
    fn new(queue: &'q dyn WorkQueue, header: Header, cause: &str) -> Self {
        Self {
            queue,
            header,
            cause: cause.to_owned(),
            buffers: Mutex::new(HashMap::new()),
            planned: AtomicU64::new(0),
            messages: AtomicU64::new(0),
        }
    }

    /// One page of the due index: stale claims dropped here (no provider call), meetings
    /// gathered by account, a message sent for each account with a full one. `false`: the
    /// queue refused one (logged, counted failed).
    pub(super) async fn page(&self, run: &Run<'_>, items: Vec<DueItem>) -> bool {
        for item in items {
            match item {
                DueItem::Claim { key, claim } => run.claim(key, claim).await,
                DueItem::Unreadable { key } => run.unreadable(&key),
                DueItem::Meeting(m) => {
                    if let Some((account, ids)) = self.gather(&m)
                        && !self.send_meetings(run, &account, ids).await
                    {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Adds `m` to its account's message; the message when it is full.
    fn gather(&self, m: &crate::domain::Meeting) -> Option<(AccountKey, Vec<MeetingId>)> {
        self.planned.fetch_add(1, Ordering::Relaxed);
        let account = AccountKey::of(m);
        let mut buffers = self.buffers.lock().unwrap_or_else(|e| e.into_inner());
        let ids = buffers.entry(account.clone()).or_default();
        ids.push(m.id.clone());
        (ids.len() >= MESSAGE_MEETINGS).then(|| (account, std::mem::take(ids)))
    }

    /// Every account's gathered meetings. `false`: one was refused (counted, logged); the
    /// other accounts' are still handed over.
    async fn flush(&self, run: &Run<'_>) -> bool {
        let all: Vec<_> =
            std::mem::take(&mut *self.buffers.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .filter(|(_, ids)| !ids.is_empty())
                .collect();
        let mut all_sent = true;
        for (account, ids) in all {
            all_sent &= self.send_meetings(run, &account, ids).await;
        }
        all_sent
    }

    async fn send_meetings(
        &self,
        run: &Run<'_>,
        account: &AccountKey,
        ids: Vec<MeetingId>,
    ) -> bool {
        self.send(run, account.digest(), Work::Meetings(ids)).await
    }

    async fn send(&self, run: &Run<'_>, group: String, work: Work) -> bool {
        let sent = match outgoing(group, self.header, work, &self.cause) {
            Ok(m) => self.queue.send(&m).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => {
                self.messages.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::error!(cause = %cause(&e), "cleanup: handing work to the queue failed");
                Summary::add(&run.summary.failed);
                false
            }
        }
    }
}

/// What a planning run ends with: whether it finished, and whether it handed itself on.
struct Planned {
    complete: bool,
    continued: bool,
}

impl Run<'_> {
    /// Plans from `from`: the index walk, then the orphans; out of time, hands itself on.
    async fn plan(&self, from: PlanAt) -> Planned {
        let Some(planner) = &self.planner else {
            return Planned {
                complete: false,
                continued: false,
            };
        };
        let walked = match from {
            PlanAt::Due(at) => self.walk(at).await,
            PlanAt::Orphans => Walk::Done,
        };
        let flushed = planner.flush(self).await;
        let next = match walked {
            // A part left behind (counted, logged) is the next run's; the rest goes on.
            Walk::Done | Walk::Partial => {
                if self.orphan_pass().await {
                    return Planned {
                        complete: matches!(walked, Walk::Done) && flushed,
                        continued: false,
                    };
                }
                // Stopped with time left: a failed read, counted; next week's.
                (!self.time_left()).then_some(PlanAt::Orphans)
            }
            Walk::Stopped(at) => Some(PlanAt::Due(at)),
        };
        let continued = match next {
            Some(at) => {
                planner
                    .send(self, PLAN_GROUP.to_owned(), Work::Plan(at))
                    .await
            }
            None => false,
        };
        Planned {
            complete: false,
            continued,
        }
    }
}

/// The weekly scheduled event with a work queue: plans it (see the module's doc).
pub async fn plan(
    app: &App,
    settings: &CleanupSettings,
    queue: &dyn WorkQueue,
    event: &Value,
    deadline: Instant,
) -> Result<Value, crate::domain::Invalid> {
    let header = Header::of(event)?;
    let from = (PlanAt::Due(Position::default()), "");
    Ok(plan_from(app, settings, queue, header, from, deadline).await)
}

/// `from`: where to start, and the message asking for it (empty: the scheduled event).
async fn plan_from(
    app: &App,
    settings: &CleanupSettings,
    queue: &dyn WorkQueue,
    header: Header,
    (from, cause): (PlanAt, &str),
    deadline: Instant,
) -> Value {
    let mut run = Run::new(app, settings, header, deadline);
    run.planner = Some(Planner::new(queue, header, cause));
    let started = Instant::now();
    let planned = run.plan(from).await;
    run.summary
        .log(header.pass, header.now, planned.complete, started);
    let mut answer = run.summary.to_json(header.pass, planned.complete);
    if let Some(p) = &run.planner {
        let (items, messages) = (
            p.planned.load(Ordering::Relaxed),
            p.messages.load(Ordering::Relaxed),
        );
        tracing::info!(
            planned = items,
            messages,
            continued = planned.continued,
            "cleanup plan"
        );
        answer["planned"] = json!(items);
        answer["messages"] = json!(messages);
        answer["continued"] = json!(planned.continued);
    }
    answer
}

/// One SQS record as Lambda's mapping hands it over.
#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "messageId")]
    message_id: String,
    body: String,
    #[serde(default)]
    attributes: HashMap<String, String>,
}

/// What a batch of work messages came to: the records to come back (Lambda's
/// `batchItemFailures`) and each run's summary.
#[derive(Debug, Default)]
pub struct Worked {
    pub failed: Vec<String>,
    pub summaries: Vec<Value>,
}

impl Worked {
    /// The answer Lambda's SQS mapping reads (`ReportBatchItemFailures`).
    pub fn lambda_answer(&self) -> Value {
        let failures: Vec<Value> = self
            .failed
            .iter()
            .map(|id| json!({ "itemIdentifier": id }))
            .collect();
        json!({ "batchItemFailures": failures })
    }
}

/// A batch of work messages (`{"Records":[…]}`), in order. After a failed record the rest
/// come back too: a FIFO group's order holds.
pub async fn work(
    app: &App,
    settings: &CleanupSettings,
    queue: &dyn WorkQueue,
    batch: &Value,
    deadline: Instant,
) -> Worked {
    let records: Vec<Record> = batch["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| serde_json::from_value(r.clone()).ok())
        .collect();
    let mut worked = Worked::default();
    for record in records {
        if !worked.failed.is_empty() {
            worked.failed.push(record.message_id);
            continue;
        }
        match one(app, settings, queue, &record, deadline).await {
            Some(summary) => worked.summaries.push(summary),
            None => worked.failed.push(record.message_id),
        }
    }
    worked
}

/// One work message; its run's summary, `None` when it must come back.
async fn one(
    app: &App,
    settings: &CleanupSettings,
    queue: &dyn WorkQueue,
    record: &Record,
    deadline: Instant,
) -> Option<Value> {
    let Ok(message) = serde_json::from_str::<Message>(&record.body) else {
        tracing::error!(messageId = %record.message_id, "cleanup: a work message is malformed; it goes to the dead-letter queue");
        return None;
    };
    let header = Header {
        now: message.time,
        pass: message.pass,
        dry_run: message.dry_run,
    };
    match message.work {
        Work::Plan(at) => {
            let from = (at, record.message_id.as_str());
            Some(plan_from(app, settings, queue, header, from, deadline).await)
        }
        Work::Meetings(ids) => {
            let group = record.attributes.get("MessageGroupId")?;
            let work = (header, group.as_str(), record.message_id.as_str());
            meetings(app, settings, queue, work, &ids, deadline).await
        }
    }
}

/// One account's due meetings; what is left at the deadline goes back in its group.
async fn meetings(
    app: &App,
    settings: &CleanupSettings,
    queue: &dyn WorkQueue,
    (header, group, handling): (Header, &str, &str),
    ids: &[MeetingId],
    deadline: Instant,
) -> Option<Value> {
    let run = Run::new(app, settings, header, deadline);
    let started = Instant::now();
    let left = match run.meetings(ids).await {
        Ok(left) => left,
        Err(e) => {
            tracing::error!(cause = %cause(&e), "cleanup: reading due meetings failed; the message comes back");
            return None;
        }
    };
    let complete = left.is_empty();
    if !complete {
        let handed = outgoing(
            group.to_owned(),
            run.header(),
            Work::Meetings(left),
            handling,
        );
        let sent = match handed {
            Ok(m) => queue.send(&m).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::error!(cause = %cause(&e), "cleanup: handing on the rest failed; the message comes back");
            return None;
        }
    }
    run.summary.log(header.pass, header.now, complete, started);
    Some(run.summary.to_json(header.pass, complete))
}

/// Why the cleanup function refused an event.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(transparent)]
    Invalid(#[from] crate::domain::Invalid),
    #[error("work messages arrived but CLEANUP_QUEUE_URL is not set")]
    NoQueue,
}

/// The cleanup function's one entry: a batch of work messages (`Records`), or a scheduled
/// event: the weekly one planned when there is a work queue, any other run in-process.
pub async fn handle(
    app: &App,
    settings: &CleanupSettings,
    queue: Option<&dyn WorkQueue>,
    event: &Value,
    deadline: Instant,
) -> Result<Value, CleanupError> {
    if event.get("Records").is_some() {
        let queue = queue.ok_or(CleanupError::NoQueue)?;
        return Ok(work(app, settings, queue, event, deadline)
            .await
            .lambda_answer());
    }
    match queue {
        Some(q) if Pass::is_weekly(event)? => Ok(plan(app, settings, q, event, deadline).await?),
        _ => Ok(super::run(app, settings, event, deadline).await?),
    }
}
