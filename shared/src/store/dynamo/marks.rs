//! Dedupe marks of provider events: `WHK#{sha256 of the event key}` / `WHK`, with a `ttl`.
//! Expiry is the code's (guarantee 7): a mark past its expiry counts as absent, even while
//! DynamoDB (or an emulator that never expires) still holds it.

use super::DynamoStore;
use super::items::{self, MarkItem, TTL, n};
use crate::ids::MeetingId;
use crate::store::{EventMark, MarkStore, StoreResult, keys};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{DateTime, Utc};

impl DynamoStore {
    /// The mark's put inside a meeting's transaction: absent, or expired at `mark.now`.
    pub(super) fn mark(
        &self,
        mark: &EventMark,
        meeting: &MeetingId,
    ) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::item(&MarkItem::of(
                &mark.key,
                meeting,
                mark.expires_at,
            ))?))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":now", n(mark.now.timestamp()))
            .build()
            .map_err(super::build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[async_trait]
impl MarkStore for DynamoStore {
    async fn event_seen(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let Some(item) = self.get(&keys::event_mark(key)).await? else {
            return Ok(false);
        };
        let mark: MarkItem = items::read("event mark", item)?;
        Ok(mark.ttl > now.timestamp())
    }
}
