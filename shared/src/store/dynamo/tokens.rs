//! The shared provider token: `TOKEN#{record key}` / `TOKEN` (see
//! [`crate::providers::shared_token`]). Every write is conditioned on the version read.

use super::items::{self, TTL, TokenItem, n, s, time};
use super::{DynamoStore, written};
use crate::store::{SharedTokenRecord, StoreResult, TokenStore, keys};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// DynamoDB may drop the item this long after its last write; the code never relies on it
/// (the token's own expiry and the budget window are checked on every read).
const TOKEN_ITEM_TTL: Duration = Duration::days(2);

fn ttl_after(t: DateTime<Utc>) -> aws_sdk_dynamodb::types::AttributeValue {
    n((t + TOKEN_ITEM_TTL).timestamp())
}

#[async_trait]
impl TokenStore for DynamoStore {
    async fn read_token(&self, k: &str) -> StoreResult<SharedTokenRecord> {
        match self.get(&keys::token(k)).await? {
            Some(item) => Ok(items::read::<TokenItem>("token", item)?.into()),
            None => Ok(SharedTokenRecord::default()),
        }
    }

    async fn lock_token(
        &self,
        k: &str,
        seen_version: i64,
        locked_until: DateTime<Utc>,
        refreshes: &[DateTime<Utc>],
    ) -> StoreResult<bool> {
        let times = aws_sdk_dynamodb::types::AttributeValue::L(
            refreshes.iter().map(|t| time(*t)).collect(),
        );
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::token(k))))
            .update_expression(
                // The token being replaced goes with the lock: a refused one (401) is never read
                // again, even when this refresh fails.
                "SET lockedUntil = :locked, refreshTimes = :times, version = :next, #ttl = :ttl REMOVE windowStart, refreshes, sealed, expiresAt",
            )
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":locked", time(locked_until))
            .expression_attribute_values(":times", times)
            .expression_attribute_values(":next", n(seen_version + 1))
            .expression_attribute_values(":ttl", ttl_after(locked_until));
        let request = if seen_version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :seen")
                .expression_attribute_values(":seen", n(seen_version))
        };
        written("UpdateItem", request.send().await)
    }

    async fn store_token(
        &self,
        k: &str,
        locked_version: i64,
        sealed: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::token(k))))
            .update_expression(
                "SET sealed = :sealed, expiresAt = :expires, version = :next, #ttl = :ttl REMOVE lockedUntil",
            )
            .condition_expression("version = :mine")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":sealed", s(sealed))
            .expression_attribute_values(":expires", time(expires_at))
            .expression_attribute_values(":mine", n(locked_version))
            .expression_attribute_values(":next", n(locked_version + 1))
            .expression_attribute_values(":ttl", ttl_after(expires_at))
            .send()
            .await;
        written("UpdateItem", result)
    }

    async fn unlock_token(&self, k: &str, locked_version: i64) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::token(k))))
            .update_expression("SET version = :next REMOVE lockedUntil")
            .condition_expression("version = :mine")
            .expression_attribute_values(":mine", n(locked_version))
            .expression_attribute_values(":next", n(locked_version + 1))
            .send()
            .await;
        // Lost: our lock had already lapsed and someone else moved on.
        written("UpdateItem", result).map(drop)
    }
}
