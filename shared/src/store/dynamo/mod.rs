//! The DynamoDB adapter of every store port: one module per aggregate ([`claims`],
//! [`meetings`], [`due`], [`stats`], [`marks`], [`tokens`]), items mapped with serde_dynamo
//! ([`items`]), keys from [`super::keys`]. This module holds what they share: the client,
//! conditional-failure detection, transactions with conflict retries, batched reads.

pub mod budgets;
pub mod claims;
pub mod due;
pub mod items;
pub mod marks;
pub mod meetings;
pub mod members;
pub mod orgs;
pub mod stats;
pub mod subscriptions;
pub mod tokens;

use super::{StoreError, StoreResult, keys::Key};
use crate::clock::{Clock, Wait};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, Delete, KeysAndAttributes, Put, TransactWriteItem,
};
use items::Item;
use std::sync::Arc;
use std::time::Duration;

pub use super::keys::{DUE_INDEX, DUE_SHARDS, NOTICE_INDEX, TTL_ATTRIBUTE};

/// Concurrent transactions on one item conflict; they are retried a few times.
const TRANSACTION_ATTEMPTS: u32 = 4;
/// Rounds of `BatchGetItem` for keys DynamoDB left unprocessed.
const BATCH_ROUNDS: u64 = 5;

pub struct DynamoStore {
    client: Client,
    table: String,
    /// Retry pauses wait through it.
    clock: Arc<dyn Clock>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }
}

/// The item of a meeting, as the table holds it (for tests and benchmarks that seed tables).
pub fn meeting_item(m: &crate::domain::Meeting) -> Result<Item, StoreError> {
    items::item(&items::MeetingItem::of(m, None))
}

fn call_error<E>(
    op: &'static str,
    e: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Call {
        op,
        source: Box::new(e),
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Build(Box::new(e))
}

/// Whether a conditional write lost: an answer (`Ok(false)` to the caller), not an error.
fn lost<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// The sort key a Query page ended at (`None`: the last page), as the next page's cursor.
fn next_sort_key(out: &aws_sdk_dynamodb::operation::query::QueryOutput) -> Option<String> {
    out.last_evaluated_key()
        .and_then(|k| k.get("sk"))
        .and_then(|v| v.as_s().ok())
        .cloned()
}

/// A conditional single-item write: `Ok(true)` written, `Ok(false)` its condition failed.
fn written<T, E>(
    op: &'static str,
    result: Result<T, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
) -> StoreResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if lost(&e) => Ok(false),
        Err(e) => Err(call_error(op, e)),
    }
}

/// A refused transaction's reasons.
fn reasons(
    e: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Vec<CancellationReason> {
    match e.into_service_error() {
        TransactWriteItemsError::TransactionCanceledException(tc) => {
            tc.cancellation_reasons.unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

enum TxFailure {
    ConditionFailed,
    Conflict,
}

fn tx_failure(
    e: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<TxFailure> {
    let TransactWriteItemsError::TransactionCanceledException(tc) = e.as_service_error()? else {
        return None;
    };
    let codes: Vec<&str> = tc
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code())
        .collect();
    if codes.contains(&"ConditionalCheckFailed") {
        Some(TxFailure::ConditionFailed)
    } else if codes.contains(&"TransactionConflict") {
        Some(TxFailure::Conflict)
    } else {
        None
    }
}

/// Whether a transaction's item was refused for its condition.
fn refused(reason: Option<&CancellationReason>) -> bool {
    reason.and_then(CancellationReason::code) == Some("ConditionalCheckFailed")
}

impl DynamoStore {
    /// One transaction: `Ok(true)` committed, `Ok(false)` a condition failed. Conflicts
    /// with concurrent transactions are retried after a short jittered pause.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<bool> {
        Ok(self.transact_or_refusals(items).await?.is_none())
    }

    /// [`Self::transact`], telling a refusal's reasons, one per item in order (with the
    /// item as it was where a write asked for `ALL_OLD` on a failed condition).
    async fn transact_or_refusals(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> StoreResult<Option<Vec<CancellationReason>>> {
        for attempt in 1..=TRANSACTION_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(None),
                Err(e) => e,
            };
            match tx_failure(&e) {
                Some(TxFailure::ConditionFailed) => return Ok(Some(reasons(e))),
                Some(TxFailure::Conflict) if attempt < TRANSACTION_ATTEMPTS => {
                    let jitter = rand::random_range(10..50u64) * u64::from(attempt);
                    self.clock
                        .sleep(Duration::from_millis(jitter), Wait::StoreRetry)
                        .await;
                }
                Some(TxFailure::Conflict) => return Err(StoreError::Contended),
                None => return Err(call_error("TransactWriteItems", e)),
            }
        }
        Err(StoreError::Contended)
    }

    /// Strongly consistent read of one item.
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(items::key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| call_error("GetItem", e))?;
        Ok(out.item)
    }

    /// Reads items by key, consistently, 100 at a time; keys DynamoDB leaves unprocessed
    /// are asked for again after a short pause.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?,
            );
            for round in 1..=BATCH_ROUNDS {
                let Some(request) = pending.take() else { break };
                let mut out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| call_error("BatchGetItem", e))?;
                found.extend(
                    out.responses
                        .as_mut()
                        .and_then(|r| r.remove(&self.table))
                        .unwrap_or_default(),
                );
                pending = out
                    .unprocessed_keys
                    .as_mut()
                    .and_then(|u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    self.clock
                        .sleep(Duration::from_millis(20 * round), Wait::StoreRetry)
                        .await;
                }
            }
            if pending.is_some() {
                return Err(StoreError::Unprocessed("BatchGetItem"));
            }
        }
        Ok(found)
    }

    /// A transaction's put of `item`, under `condition`.
    fn put(&self, item: Item, condition: Option<&str>) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction's delete of `key`.
    fn delete(&self, key: &Key) -> StoreResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(items::key(key)))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}
