//! The cleanup's work queue, locally: an SQS FIFO queue on moto, drained in-process as
//! Lambda's FIFO mapping drains it (batch size 1, one message per group at a time, groups
//! at once), each message handed to the production worker code with a fresh deadline.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use telemeet::App;
use telemeet::cleanup::CleanupSettings;
use telemeet::cleanup::fanout::{SqsWorkQueue, WorkQueue};

/// Receives before a failed message goes to the dead letters (the template's
/// `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 3;
/// A runaway drain (a message that never ends) stops here instead of spinning for ever.
const MAX_RUNS: u64 = 100_000;

/// Messages worked at once (template.yaml's `CleanupQueueMapping` `MaximumConcurrency`).
pub const MAX_CONCURRENCY: usize = 10;

/// The cleanup function's `Timeout` (template.yaml), each local invocation's time.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(300);

pub struct LocalCleanupQueue {
    sqs: aws_sdk_sqs::Client,
    pub url: String,
    pub dead_letter_url: String,
}

/// The summary fields a cycle adds up over its runs.
const SUMMED: [&str; 9] = [
    "examined",
    "providerDeleted",
    "roomsClosed",
    "archived",
    "orphansDeleted",
    "skipped",
    "failed",
    "planned",
    "messages",
];

impl LocalCleanupQueue {
    /// Creates (or finds) `{table}-cleanup.fifo` and its FIFO dead-letter queue.
    pub async fn create(aws: &aws_config::SdkConfig, table: &str) -> Result<Self, String> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let sqs = aws_sdk_sqs::Client::new(aws);
        let dead = fifo(&sqs, &format!("{table}-cleanup-dlq.fifo"), &[]).await?;
        let arn = crate::events::attribute(&sqs, &dead, A::QueueArn).await?;
        let redrive =
            json!({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES.to_string()});
        let url = fifo(
            &sqs,
            &format!("{table}-cleanup.fifo"),
            &[(A::RedrivePolicy, redrive.to_string())],
        )
        .await?;
        Ok(Self {
            sqs,
            url,
            dead_letter_url: dead,
        })
    }

    /// The production sender on this queue.
    pub fn sender(&self) -> SqsWorkQueue {
        SqsWorkQueue::new(self.sqs.clone(), self.url.clone())
    }

    /// Up to ten messages as Lambda records, with their group.
    async fn receive(&self) -> Result<Vec<(String, Value)>, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .visibility_timeout(900)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage: {e}"))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .iter()
            .map(|m| {
                let record = crate::events::lambda_record(m);
                let group = record["attributes"]["MessageGroupId"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                (group, record)
            })
            .collect())
    }

    /// One received message as the mapping hands it to the function (`{"Records":[…]}`),
    /// for a caller that invokes the worker itself; then [`Self::settle`] its record.
    pub async fn receive_one(&self) -> Result<Option<Value>, String> {
        let mut received = self.receive().await?;
        // The others come back at once, as if never received.
        for (_, other) in received.iter().skip(1) {
            self.settle(other, false).await?;
        }
        Ok(received
            .drain(..)
            .next()
            .map(|(_, record)| json!({ "Records": [record] })))
    }

    /// What the mapping does after an invocation: deletes a message that succeeded, makes
    /// a failed one visible again (the redrive policy moves it after `MAX_RECEIVES`).
    pub async fn settle(&self, record: &Value, ok: bool) -> Result<(), String> {
        let receipt = record["receiptHandle"].as_str().unwrap_or_default();
        if ok {
            crate::events::delete(&self.sqs, &self.url, record).await?;
        } else {
            self.sqs
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(|e| format!("ChangeMessageVisibility: {e}"))?;
        }
        Ok(())
    }

    /// How many messages are in the dead-letter queue.
    pub async fn dead_letters(&self) -> Result<u64, String> {
        let n = crate::events::attribute(
            &self.sqs,
            &self.dead_letter_url,
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
        )
        .await?;
        Ok(n.parse().unwrap_or(0))
    }
}

async fn fifo(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    extra: &[(aws_sdk_sqs::types::QueueAttributeName, String)],
) -> Result<String, String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let mut create = sqs
        .create_queue()
        .queue_name(name)
        .attributes(A::FifoQueue, "true")
        .attributes(A::VisibilityTimeout, "900");
    for (k, v) in extra {
        create = create.attributes(k.clone(), v);
    }
    create
        .send()
        .await
        .map_err(|e| format!("CreateQueue {name}: {e}"))?
        .queue_url
        .ok_or_else(|| format!("CreateQueue {name}: no URL"))
}

/// Everything one invocation needs, borrowed.
#[derive(Clone, Copy)]
pub struct Worker<'a> {
    pub app: &'a App,
    pub settings: &'a CleanupSettings,
    /// Where workers and planners send (the production sender, or a recording one).
    pub sender: &'a dyn WorkQueue,
    /// Each invocation's time, as the function's `Timeout`.
    pub timeout: Duration,
}

impl Worker<'_> {
    fn deadline(&self) -> Instant {
        self.app.service.clock.instant() + self.timeout
    }

    /// One invocation with one record; its summaries and whether it succeeded.
    async fn invoke(self, record: Value) -> (Vec<Value>, bool) {
        let batch = json!({ "Records": [record] });
        let worked = telemeet::cleanup::fanout::work(
            self.app,
            self.settings,
            self.sender,
            &batch,
            self.deadline(),
        )
        .await;
        (worked.summaries, worked.failed.is_empty())
    }
}

/// A drained queue: the runs' summaries added up.
#[derive(Debug)]
struct Tally {
    sums: Map<String, Value>,
    runs: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            sums: SUMMED.iter().map(|n| ((*n).to_owned(), json!(0))).collect(),
            runs: 0,
        }
    }
}

impl Tally {
    fn add(&mut self, summary: &Value) {
        for name in SUMMED {
            let n = summary[name].as_u64().unwrap_or(0);
            let was = self.sums.get(name).and_then(Value::as_u64).unwrap_or(0);
            self.sums.insert(name.to_owned(), json!(was + n));
        }
    }
}

/// One weekly cycle as production runs it: the scheduled `event` to the planner, then the
/// queue drained. Answers the summed summary, `lambdaRuns` (planner and workers), `wallMs`,
/// `deadLettered` and `complete` (the queue empty, nothing dead-lettered, nothing failed).
pub async fn cycle(
    queue: &LocalCleanupQueue,
    worker: Worker<'_>,
    event: &Value,
) -> Result<Value, String> {
    let started = Instant::now();
    let planned = telemeet::cleanup::fanout::plan(
        worker.app,
        worker.settings,
        worker.sender,
        event,
        worker.deadline(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut tally = Tally::default();
    tally.add(&planned);
    tally.runs = 1;
    queue.run_all(worker, &mut tally).await?;
    let mut answer = queue.answer(tally, started).await?;
    answer["pass"] = planned["pass"].clone();
    answer["dryRun"] = planned["dryRun"].clone();
    Ok(answer)
}

impl LocalCleanupQueue {
    /// Every message until the queue is empty (whoever planned them), as [`cycle`]
    /// answers, without the planner.
    pub async fn drain(&self, worker: Worker<'_>) -> Result<Value, String> {
        let started = Instant::now();
        let mut tally = Tally::default();
        self.run_all(worker, &mut tally).await?;
        self.answer(tally, started).await
    }

    async fn answer(&self, tally: Tally, started: Instant) -> Result<Value, String> {
        let dead = self.dead_letters().await?;
        let mut answer = Value::Object(tally.sums);
        answer["lambdaRuns"] = json!(tally.runs);
        answer["wallMs"] = json!(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        answer["deadLettered"] = json!(dead);
        answer["complete"] = json!(dead == 0 && answer["failed"] == 0);
        Ok(answer)
    }

    /// Runs messages until the queue is empty: one per group at a time, groups at once.
    async fn run_all(&self, worker: Worker<'_>, tally: &mut Tally) -> Result<(), String> {
        let mut waiting: HashMap<String, VecDeque<Value>> = HashMap::new();
        let mut busy: HashSet<String> = HashSet::new();
        let mut running = FuturesUnordered::new();
        loop {
            for (group, record) in self.receive().await? {
                waiting.entry(group).or_default().push_back(record);
            }
            for (group, records) in &mut waiting {
                if busy.contains(group) || busy.len() >= MAX_CONCURRENCY {
                    continue;
                }
                if let Some(record) = records.pop_front() {
                    busy.insert(group.clone());
                    let group = group.clone();
                    running.push(async move {
                        let (summaries, ok) = worker.invoke(record.clone()).await;
                        (group, record, summaries, ok)
                    });
                }
            }
            waiting.retain(|_, r| !r.is_empty());
            let Some((group, record, summaries, ok)) = running.next().await else {
                return Ok(());
            };
            busy.remove(&group);
            tally.runs += 1;
            summaries.iter().for_each(|s| tally.add(s));
            self.settle(&record, ok).await?;
            if tally.runs > MAX_RUNS {
                return Err(format!(
                    "the cleanup queue did not drain in {MAX_RUNS} runs"
                ));
            }
        }
    }
}
