//! The delivery queue port (SQS in production and locally on moto; in memory for tests).

use super::DeliveryJob;
use async_trait::async_trait;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("the delivery queue failed: {op}")]
pub struct QueueError {
    pub op: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Enqueues every job, or fails (the stream batch is then retried; ids are stable).
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError>;

    /// The received message `receipt` comes back after `delay` (its next attempt).
    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), QueueError>;
}

fn queue_error(op: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> QueueError {
    QueueError {
        op,
        source: Box::new(e),
    }
}

/// Amazon SQS (or moto's, through `AWS_ENDPOINT_URL`).
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

/// SQS takes at most ten messages per batch.
const SQS_BATCH: usize = 10;
/// SQS's ceiling for one visibility change (12 hours).
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

#[async_trait]
impl DeliveryQueue for SqsQueue {
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError> {
        for chunk in jobs.chunks(SQS_BATCH) {
            let mut request = self.client.send_message_batch().queue_url(&self.url);
            for (i, job) in chunk.iter().enumerate() {
                let body = serde_json::to_string(job).map_err(|e| queue_error("encode", e))?;
                let entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .map_err(|e| queue_error("SendMessageBatch", e))?;
                request = request.entries(entry);
            }
            let out = request
                .send()
                .await
                .map_err(|e| queue_error("SendMessageBatch", e))?;
            if !out.failed.is_empty() {
                return Err(queue_error(
                    "SendMessageBatch",
                    std::io::Error::other(format!("{} messages refused", out.failed.len())),
                ));
            }
        }
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let secs = delay.min(MAX_VISIBILITY).as_secs();
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(secs).unwrap_or(43_200))
            .send()
            .await
            .map_err(|e| queue_error("ChangeMessageVisibility", e))?;
        Ok(())
    }
}

/// In memory, for tests: what was enqueued, and each retry's delay by receipt.
#[derive(Default)]
pub struct MemoryQueue {
    pub jobs: std::sync::Mutex<Vec<DeliveryJob>>,
    pub retries: std::sync::Mutex<Vec<(String, Duration)>>,
}

#[async_trait]
impl DeliveryQueue for MemoryQueue {
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<(), QueueError> {
        let mut q = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        q.extend_from_slice(jobs);
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let mut r = self.retries.lock().unwrap_or_else(|e| e.into_inner());
        r.push((receipt.to_owned(), delay));
        Ok(())
    }
}
