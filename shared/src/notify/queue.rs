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
