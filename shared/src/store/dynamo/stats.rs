//! An org's counters: `STATS#{org}` / `SHARD#{n}`, moved with `ADD` in the same transaction
//! as every change of a meeting ([`crate::domain::stats::deltas`]).

use super::items::{self, n};
use super::{DynamoStore, build_error, call_error};
use crate::domain::stats::{Counter, deltas};
use crate::domain::{Meeting, Stats};
use crate::ids::OrgId;
use crate::store::{StatsStore, StoreResult, keys};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

impl DynamoStore {
    /// The counter update of a change from `before` to `after`, if it moves any counter.
    pub(super) fn count(
        &self,
        after: &Meeting,
        before: Option<&Meeting>,
    ) -> StoreResult<Option<TransactWriteItem>> {
        let deltas = deltas(before, after);
        if deltas.is_empty() {
            return Ok(None);
        }
        let key = keys::stats_shard(&after.org, &after.id);
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::key(&key)));
        let mut adds = Vec::with_capacity(deltas.len());
        for (i, (counter, delta)) in deltas.iter().enumerate() {
            adds.push(format!("#c{i} :d{i}"));
            update = update
                .expression_attribute_names(format!("#c{i}"), counter.name())
                .expression_attribute_values(format!(":d{i}"), n(delta));
        }
        let update = update
            .update_expression(format!("ADD {}", adds.join(", ")))
            .build()
            .map_err(build_error)?;
        Ok(Some(TransactWriteItem::builder().update(update).build()))
    }
}

#[async_trait]
impl StatsStore for DynamoStore {
    async fn stats(&self, org: &OrgId) -> StoreResult<Stats> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", items::s(keys::stats_of(org)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| call_error("Query", e))?;
        let mut stats = Stats::default();
        for item in out.items() {
            for (name, value) in item {
                if let (Some(counter), AttributeValue::N(v)) = (Counter::parse(name), value) {
                    stats.add(counter, v.parse().unwrap_or(0));
                }
            }
        }
        Ok(stats)
    }
}
