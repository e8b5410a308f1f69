//! Budget counters: `BUDGET#{counter}` / `BUDGET`, one conditional increment each.
//!
//! A create's spends ride in its claim's transaction (`DynamoStore::spend_write`): one
//! round trip, and a refused claim (a reuse) spends nothing. A busy org's counter is hot,
//! and transactions on one item at once conflict where single updates would queue; the
//! claim's transaction retries a conflict after a short jittered pause (a few times), which
//! holds at any create rate one org's clinicians produce. Spends outside a claim (an
//! update's host budget) are written side by side instead: a spend refused by one counter
//! gives back what the others took.

use super::items::{self, TTL, n};
use super::{DynamoStore, call_error, written};
use crate::domain::org::Spend;
use crate::store::{BudgetStore, StoreResult, keys};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::Duration;

/// A counter stays readable this long after its window (TTL only tidies up).
const COUNTER_KEEP: Duration = Duration::days(1);

impl DynamoStore {
    /// Adds `by` to a counter; with `limit`, only while it is below it.
    async fn add_to(&self, spend: &Spend, by: i64, limit: Option<u32>) -> StoreResult<bool> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::budget(&spend.key))))
            .update_expression("ADD spent :by SET #ttl = :ttl")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":by", n(by))
            .expression_attribute_values(":ttl", n((spend.window_ends + COUNTER_KEEP).timestamp()));
        let request = match limit {
            Some(limit) => request
                .condition_expression("attribute_not_exists(spent) OR spent < :limit")
                .expression_attribute_values(":limit", n(limit)),
            None => request,
        };
        written("UpdateItem", request.send().await)
    }
}

impl DynamoStore {
    /// A transaction's spend of one from `spend`, only while it is below its limit.
    pub(super) fn spend_write(&self, spend: &Spend) -> StoreResult<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::budget(&spend.key))))
            .update_expression("ADD spent :by SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(spent) OR spent < :limit")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":by", n(1))
            .expression_attribute_values(":limit", n(spend.limit))
            .expression_attribute_values(":ttl", n((spend.window_ends + COUNTER_KEEP).timestamp()))
            .build()
            .map_err(super::build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl BudgetStore for DynamoStore {
    async fn spend(&self, spends: &[Spend]) -> StoreResult<Option<usize>> {
        let results =
            futures_util::future::join_all(spends.iter().map(|s| self.add_to(s, 1, Some(s.limit))))
                .await;
        let mut refused: Option<usize> = None;
        let mut taken = Vec::new();
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(true) => taken.push(i),
                Ok(false) => {
                    let later =
                        refused.is_none_or(|r| spends[i].window_ends > spends[r].window_ends);
                    if later {
                        refused = Some(i);
                    }
                }
                Err(e) => {
                    self.return_taken(spends, &taken).await;
                    return Err(e);
                }
            }
        }
        if refused.is_some() {
            self.return_taken(spends, &taken).await;
        }
        Ok(refused)
    }

    async fn give_back(&self, spends: &[Spend]) -> StoreResult<()> {
        for s in spends {
            self.add_to(s, -1, None).await?;
        }
        Ok(())
    }

    async fn exhaust(&self, spend: &Spend) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::budget(&spend.key))))
            .update_expression("SET spent = :limit, #ttl = :ttl")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":limit", n(spend.limit))
            .expression_attribute_values(":ttl", n((spend.window_ends + COUNTER_KEEP).timestamp()))
            .send()
            .await
            .map_err(|e| call_error("UpdateItem", e))?;
        Ok(())
    }
}

impl DynamoStore {
    /// Best effort: a counter left one too high only refuses one request too early.
    async fn return_taken(&self, spends: &[Spend], taken: &[usize]) {
        for &i in taken {
            if let Err(e) = self.add_to(&spends[i], -1, None).await {
                tracing::warn!(cause = %crate::telemetry::cause(&e), "could not give a budget back");
            }
        }
    }
}
