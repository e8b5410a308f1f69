//! The shared provider-token item: `pk = TOKEN#{key}`, `sk = TOKEN`.

use super::{Attrs, DynamoStore, TTL_ATTRIBUTE, db_error, is_conditional_failure, key, n, s, ts};
use crate::error::ApiError;
use crate::store::{SharedTokenRecord, TokenStore};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// DynamoDB may drop the item this long after its last write; the code never relies on it
/// (the token's own expiry and the budget window are checked on every read).
const TOKEN_ITEM_TTL: Duration = Duration::days(2);

fn token_key(k: &str) -> super::Item {
    key(format!("TOKEN#{k}"), "TOKEN")
}

fn ttl_after(now_ish: DateTime<Utc>) -> aws_sdk_dynamodb::types::AttributeValue {
    n((now_ish + TOKEN_ITEM_TTL).timestamp())
}

#[async_trait]
impl TokenStore for DynamoStore {
    async fn read_token(&self, k: &str) -> Result<SharedTokenRecord, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(token_key(k)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| db_error("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(SharedTokenRecord::default());
        };
        let a = Attrs(item);
        Ok(SharedTokenRecord {
            sealed: a.opt_str("sealed").map(str::to_owned),
            expires_at: a.opt_time("expiresAt")?,
            locked_until: a.opt_time("lockedUntil")?,
            window_start: a.opt_time("windowStart")?,
            refreshes: u32::try_from(a.num("refreshes").unwrap_or(0)).unwrap_or(u32::MAX),
            version: a.num("version")?,
        })
    }

    async fn lock_token(
        &self,
        k: &str,
        seen_version: i64,
        locked_until: DateTime<Utc>,
        window_start: DateTime<Utc>,
        refreshes: u32,
    ) -> Result<bool, ApiError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(token_key(k)))
            .update_expression(
                "SET lockedUntil = :locked, windowStart = :window, refreshes = :refreshes, version = :next, #ttl = :ttl",
            )
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":locked", ts(locked_until))
            .expression_attribute_values(":window", ts(window_start))
            .expression_attribute_values(":refreshes", n(refreshes))
            .expression_attribute_values(":next", n(seen_version + 1))
            .expression_attribute_values(":ttl", ttl_after(locked_until));
        request = if seen_version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :seen")
                .expression_attribute_values(":seen", n(seen_version))
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(db_error("UpdateItem", e)),
        }
    }

    async fn store_token(
        &self,
        k: &str,
        locked_version: i64,
        sealed: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, ApiError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(token_key(k)))
            .update_expression(
                "SET sealed = :sealed, expiresAt = :expires, version = :next, #ttl = :ttl REMOVE lockedUntil",
            )
            .condition_expression("version = :mine")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":sealed", s(sealed))
            .expression_attribute_values(":expires", ts(expires_at))
            .expression_attribute_values(":mine", n(locked_version))
            .expression_attribute_values(":next", n(locked_version + 1))
            .expression_attribute_values(":ttl", ttl_after(expires_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(db_error("UpdateItem", e)),
        }
    }

    async fn unlock_token(&self, k: &str, locked_version: i64) -> Result<(), ApiError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(token_key(k)))
            .update_expression("SET version = :next REMOVE lockedUntil")
            .condition_expression("version = :mine")
            .expression_attribute_values(":mine", n(locked_version))
            .expression_attribute_values(":next", n(locked_version + 1))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Our lock had already lapsed and someone else moved on.
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(db_error("UpdateItem", e)),
        }
    }
}
