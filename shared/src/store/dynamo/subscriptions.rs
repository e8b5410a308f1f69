//! An org's event subscriptions (`ORG#{org}` / `WEBHOOK#{id}`), beside its profile and
//! host directory: one Query on the org's partition lists them.

use super::items::{self, SubscriptionItem, s, time};
use super::{DynamoStore, call_error};
use crate::domain::subscription::Subscription;
use crate::ids::OrgId;
use crate::store::{StoreResult, SubscriptionStore, keys};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn put_subscription(&self, sub: &Subscription) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::item(&SubscriptionItem::of(sub))?))
            .send()
            .await
            .map_err(|e| call_error("PutItem", e))?;
        Ok(())
    }

    async fn subscriptions(&self, org: &OrgId) -> StoreResult<Vec<Subscription>> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :w)")
                .expression_attribute_values(":pk", s(keys::org_of(org)))
                .expression_attribute_values(":w", s(keys::WEBHOOK_SK_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| call_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                found.push(
                    items::read::<SubscriptionItem>("subscription", item)?.into_subscription(),
                );
            }
            start = out.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(found);
            }
        }
    }

    async fn get_subscription(&self, org: &OrgId, id: &str) -> StoreResult<Option<Subscription>> {
        self.get(&keys::subscription(org, id))
            .await?
            .map(|i| {
                items::read::<SubscriptionItem>("subscription", i)
                    .map(SubscriptionItem::into_subscription)
            })
            .transpose()
    }

    async fn delete_subscription(&self, org: &OrgId, id: &str) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::subscription(org, id))))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| call_error("DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn disable_subscription(
        &self,
        org: &OrgId,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::subscription(org, id))))
            .update_expression("SET disabledAt = if_not_exists(disabledAt, :at)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", time(at))
            .send()
            .await;
        // Lost: it was deleted meanwhile; nothing to disable.
        super::written("UpdateItem", result).map(drop)
    }
}
