//! Events to the platform, locally: the same routing and delivery code the `event-router`
//! and `event-delivery` functions run, fed from moto's DynamoDB stream and SQS queue as
//! Lambda's event source mappings would feed them (records in order; a failed stream
//! record is read again; a delivery not reported failed is deleted).

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use telemeet::notify::queue::SqsQueue;
use telemeet::notify::{EventSettings, EventsApp};

/// How often the pumps look for work when idle.
const IDLE: Duration = Duration::from_millis(200);

pub struct LocalEvents {
    pub app: EventsApp,
    http: reqwest::Client,
    endpoint: String,
    stream_arn: String,
    sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub dead_letter_url: String,
    iterator: tokio::sync::Mutex<Option<String>>,
}

impl LocalEvents {
    /// Creates the delivery queue and its dead-letter queue (one more receive than the
    /// schedule has waits), and starts reading the table's stream from now.
    pub async fn new(
        aws: &aws_config::SdkConfig,
        endpoint: &str,
        table: &str,
        mut settings: EventSettings,
        parts: (
            telemeet::store::Stores,
            Arc<dyn telemeet::secrets::SecretSource>,
        ),
        clock: Arc<dyn telemeet::clock::Clock>,
    ) -> Result<Self, String> {
        let dynamodb = aws_sdk_dynamodb::Client::new(aws);
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| format!("DescribeTable: {e}"))?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or("the table has no stream (template.yaml's StreamSpecification)")?
            .to_owned();
        let sqs = aws_sdk_sqs::Client::new(aws);
        let (queue_url, dead_letter_url) =
            queues(&sqs, table, settings.retry_schedule.len() + 1).await?;
        settings.local = telemeet::notify::ssrf::LocalMode(true);
        let queue = Arc::new(SqsQueue::new(sqs.clone(), queue_url.clone()));
        let (stores, secrets) = parts;
        let app = EventsApp::new(stores, queue, secrets, clock, settings)?;
        let me = Self {
            app,
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            stream_arn,
            sqs,
            queue_url,
            dead_letter_url,
            iterator: tokio::sync::Mutex::new(None),
        };
        let first = me.latest_iterator().await?;
        *me.iterator.lock().await = Some(first);
        Ok(me)
    }

    /// Runs both pumps until dropped.
    pub async fn run(self: Arc<Self>) {
        loop {
            let routed = self.route_once().await.unwrap_or_else(|e| {
                tracing::warn!(cause = %e, "local event routing failed; retrying");
                0
            });
            let delivered = self.deliver_once().await.unwrap_or_else(|e| {
                tracing::warn!(cause = %e, "local event delivery failed; retrying");
                0
            });
            if routed + delivered == 0 {
                tokio::time::sleep(IDLE).await;
            }
        }
    }

    /// Reads the stream once and routes what it read; how many records.
    pub async fn route_once(&self) -> Result<usize, String> {
        let mut guard = self.iterator.lock().await;
        let Some(out) = self.get_records(guard.as_deref()).await? else {
            return Ok(0);
        };
        let records = out["Records"].as_array().map_or(0, Vec::len);
        if records > 0 {
            let answer = telemeet::notify::route::handle(&self.app, &out).await?;
            if let Some(failed) = answer["batchItemFailures"][0]["itemIdentifier"].as_str() {
                // As Lambda does: read again from the first record that failed.
                *guard = Some(self.iterator_at(failed).await?);
                return Ok(records);
            }
        }
        *guard = out["NextShardIterator"].as_str().map(str::to_owned);
        Ok(records)
    }

    /// One read of the stream, not routed: GetRecords' answer (`{"Records":[…]}`, the shape
    /// Lambda hands the router), for a caller that routes it with an app of its own (the
    /// template policy test's, recording its AWS calls). The next read starts after it,
    /// failed or not: the caller reports failures itself.
    pub async fn read_changes(&self) -> Result<Value, String> {
        let mut guard = self.iterator.lock().await;
        let Some(out) = self.get_records(guard.as_deref()).await? else {
            return Ok(json!({ "Records": [] }));
        };
        *guard = out["NextShardIterator"].as_str().map(str::to_owned);
        Ok(out)
    }

    async fn get_records(&self, iterator: Option<&str>) -> Result<Option<Value>, String> {
        let Some(iterator) = iterator else {
            return Ok(None);
        };
        self.streams("GetRecords", json!({ "ShardIterator": iterator }))
            .await
            .map(Some)
    }

    /// Receives one batch of deliveries and hands it to the delivery code; how many.
    pub async fn deliver_once(&self) -> Result<usize, String> {
        let batch = self.receive().await?;
        let n = batch["Records"].as_array().map_or(0, Vec::len);
        if n == 0 {
            return Ok(0);
        }
        let answer = telemeet::notify::deliver::handle(&self.app, &batch).await?;
        self.settle(&batch, &answer).await?;
        Ok(n)
    }

    /// One receive from the delivery queue, not delivered: the messages as Lambda's SQS
    /// event source hands them over (`{"Records":[…]}`), for a caller that delivers them
    /// with an app of its own; then [`Self::settle`] with its answer.
    pub async fn receive(&self) -> Result<Value, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage: {e}"))?;
        let records: Vec<Value> = out
            .messages
            .unwrap_or_default()
            .iter()
            .map(lambda_record)
            .collect();
        Ok(json!({ "Records": records }))
    }

    /// What the SQS event source does with the delivery code's `answer` to `batch` (from
    /// [`Self::receive`]): deletes every message not reported failed (those come back
    /// after their visibility timeout, which the delivery code has set).
    pub async fn settle(&self, batch: &Value, answer: &Value) -> Result<(), String> {
        let failed: Vec<&str> = answer["batchItemFailures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["itemIdentifier"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        for m in batch["Records"].as_array().into_iter().flatten() {
            if failed.contains(&m["messageId"].as_str().unwrap_or_default()) {
                continue;
            }
            delete(&self.sqs, &self.queue_url, m).await?;
        }
        Ok(())
    }

    /// How many deliveries are in the dead-letter queue.
    pub async fn dead_letters(&self) -> Result<usize, String> {
        let n = attribute(
            &self.sqs,
            &self.dead_letter_url,
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
        )
        .await?;
        Ok(n.parse().unwrap_or(0))
    }

    async fn latest_iterator(&self) -> Result<String, String> {
        let shard = self.shard().await?;
        let out = self
            .streams(
                "GetShardIterator",
                json!({"StreamArn": self.stream_arn, "ShardId": shard, "ShardIteratorType": "LATEST"}),
            )
            .await?;
        text(&out, "ShardIterator")
    }

    async fn iterator_at(&self, sequence: &str) -> Result<String, String> {
        let shard = self.shard().await?;
        let out = self
            .streams(
                "GetShardIterator",
                json!({"StreamArn": self.stream_arn, "ShardId": shard,
                    "ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": sequence}),
            )
            .await?;
        text(&out, "ShardIterator")
    }

    async fn shard(&self) -> Result<String, String> {
        let out = self
            .streams("DescribeStream", json!({ "StreamArn": self.stream_arn }))
            .await?;
        out["StreamDescription"]["Shards"][0]["ShardId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "the stream has no shard".to_owned())
    }

    async fn streams(&self, target: &str, body: Value) -> Result<Value, String> {
        stream_call(&self.http, &self.endpoint, target, body).await
    }
}

fn text(v: &Value, field: &str) -> Result<String, String> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {field} in {v}"))
}

/// Deletes a received message (a Lambda record): what the SQS event source does with a
/// message the function did not report failed.
pub(crate) async fn delete(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    record: &Value,
) -> Result<(), String> {
    sqs.delete_message()
        .queue_url(url)
        .receipt_handle(record["receiptHandle"].as_str().unwrap_or_default())
        .send()
        .await
        .map_err(|e| format!("DeleteMessage: {e}"))?;
    Ok(())
}

/// One attribute of a queue (empty when it has none).
pub(crate) async fn attribute(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: aws_sdk_sqs::types::QueueAttributeName,
) -> Result<String, String> {
    Ok(sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes: {e}"))?
        .attributes
        .and_then(|a| a.get(&name).cloned())
        .unwrap_or_default())
}

/// An SQS message as Lambda's SQS event source hands it to the function.
pub(crate) fn lambda_record(m: &aws_sdk_sqs::types::Message) -> Value {
    let attributes: serde_json::Map<String, Value> = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": m.message_id().unwrap_or_default(),
        "receiptHandle": m.receipt_handle().unwrap_or_default(),
        "body": m.body().unwrap_or_default(),
        "attributes": attributes,
        "eventSource": "aws:sqs",
    })
}

/// The delivery queue and its dead-letter queue, named after the table.
async fn queues(
    sqs: &aws_sdk_sqs::Client,
    table: &str,
    max_receives: usize,
) -> Result<(String, String), String> {
    let dead = sqs
        .create_queue()
        .queue_name(format!("{table}-deliveries-dlq"))
        .send()
        .await
        .map_err(|e| format!("CreateQueue: {e}"))?
        .queue_url
        .unwrap_or_default();
    let arn = attribute(sqs, &dead, aws_sdk_sqs::types::QueueAttributeName::QueueArn).await?;
    let redrive = json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives.to_string()});
    let url = sqs
        .create_queue()
        .queue_name(format!("{table}-deliveries"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            redrive.to_string(),
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "30",
        )
        .send()
        .await
        .map_err(|e| format!("CreateQueue: {e}"))?
        .queue_url
        .unwrap_or_default();
    Ok((url, dead))
}

/// The first `limit` changes of meeting items in `table`'s stream, from its oldest record,
/// as Lambda's stream mapping (filtered to meetings, as the template's is) hands them over;
/// for the benchmark, which measures the router on the changes its own operations made.
pub async fn meeting_changes(
    aws: &aws_config::SdkConfig,
    endpoint: &str,
    table: &str,
    limit: usize,
) -> Result<Vec<Value>, String> {
    let described = aws_sdk_dynamodb::Client::new(aws)
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| format!("DescribeTable: {e}"))?;
    let arn = described
        .table()
        .and_then(|t| t.latest_stream_arn())
        .ok_or("the table has no stream")?
        .to_owned();
    let reader = Streams {
        http: reqwest::Client::new(),
        endpoint: endpoint.trim_end_matches('/').to_owned(),
    };
    let shard = reader
        .call("DescribeStream", json!({ "StreamArn": arn }))
        .await?["StreamDescription"]["Shards"][0]["ShardId"]
        .as_str()
        .map(str::to_owned)
        .ok_or("the stream has no shard")?;
    let first = reader
        .call(
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await?;
    let mut iterator = text(&first, "ShardIterator")?;
    let mut found = Vec::new();
    while found.len() < limit {
        let page = reader
            .call(
                "GetRecords",
                json!({ "ShardIterator": iterator, "Limit": 1000 }),
            )
            .await?;
        let records = page["Records"].as_array().cloned().unwrap_or_default();
        if records.is_empty() {
            break;
        }
        found.extend(
            records
                .into_iter()
                .filter(|r| r["dynamodb"]["NewImage"]["type"]["S"] == "meeting"),
        );
        iterator = text(&page, "NextShardIterator")?;
    }
    found.truncate(limit);
    Ok(found)
}

/// A queue on the local stack's SQS (the benchmark's delivery queue); its URL.
pub async fn create_queue(aws: &aws_config::SdkConfig, name: &str) -> Result<String, String> {
    aws_sdk_sqs::Client::new(aws)
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| format!("CreateQueue: {e}"))?
        .queue_url
        .ok_or_else(|| "CreateQueue: no URL".to_owned())
}

/// moto's DynamoDB Streams, by its JSON protocol.
struct Streams {
    http: reqwest::Client,
    endpoint: String,
}

impl Streams {
    async fn call(&self, target: &str, body: Value) -> Result<Value, String> {
        stream_call(&self.http, &self.endpoint, target, body).await
    }
}

/// One DynamoDB Streams call on moto (its JSON protocol; the SDK crate is not needed for
/// four calls on loopback).
async fn stream_call(
    http: &reqwest::Client,
    endpoint: &str,
    target: &str,
    body: Value,
) -> Result<Value, String> {
    let answer = http
        .post(format!("{endpoint}/"))
        .header("X-Amz-Target", format!("DynamoDBStreams_20120810.{target}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=local",
        )
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("{target}: {e}"))?;
    let status = answer.status();
    let value: Value = answer.json().await.map_err(|e| format!("{target}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{target}: {status} {value}"));
    }
    Ok(value)
}
