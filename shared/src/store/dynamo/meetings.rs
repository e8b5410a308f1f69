//! Meetings (`MTG#{id}` / `MEETING`), their provider-id entries (`PMID#…`) and the
//! memberships that move with them (`USER#{org}#{user}` / `AT#{start}#{id}`).

use super::items::{self, MeetingItem, MembershipItem, ProviderIdItem, time};
use super::{DynamoStore, written};
use crate::domain::{Meeting, ProviderKind};
use crate::ids::{MeetingId, UserId};
use crate::store::{EventMark, MeetingStore, StoreResult, keys};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

impl DynamoStore {
    /// A put of `m`'s item conditioned on the stored one being at `version`.
    pub(super) fn put_versioned(
        &self,
        m: &Meeting,
        version: u64,
        keep_until: Option<DateTime<Utc>>,
    ) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::item(&MeetingItem::of(m, keep_until))?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", items::n(version))
            .build()
            .map_err(super::build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Memberships follow the start time. Their keys carry it to the second: a change within
    /// the same second keeps them (one transaction may not delete and put one item).
    fn move_memberships(
        &self,
        before: &Meeting,
        after: &Meeting,
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let mut writes = Vec::new();
        for (user, role) in before.members() {
            let old = keys::membership(&before.org, user, before.start_time, &before.id);
            if old == keys::membership(&after.org, user, after.start_time, &after.id) {
                continue;
            }
            writes.push(self.delete(&old)?);
            writes.push(self.put(items::item(&MembershipItem::of(after, user, role))?, None)?);
        }
        Ok(writes)
    }
}

#[async_trait]
impl MeetingStore for DynamoStore {
    async fn get_meeting(&self, id: &MeetingId) -> StoreResult<Option<Meeting>> {
        let item = self.get(&keys::meeting(id)).await?;
        item.map(|i| items::read::<MeetingItem>("meeting", i).map(MeetingItem::into_meeting))
            .transpose()
    }

    async fn get_meetings(&self, ids: &[MeetingId]) -> StoreResult<Vec<Meeting>> {
        let wanted = ids
            .iter()
            .map(|id| items::key(&keys::meeting(id)))
            .collect();
        let mut found: HashMap<MeetingId, Meeting> = HashMap::new();
        for item in self.batch_get(wanted).await? {
            let m = items::read::<MeetingItem>("meeting", item)?.into_meeting();
            found.insert(m.id.clone(), m);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    async fn save(
        &self,
        before: &Meeting,
        after: &Meeting,
        event: Option<&EventMark>,
    ) -> StoreResult<bool> {
        let mut writes = vec![self.put_versioned(after, before.version, None)?];
        writes.extend(self.move_memberships(before, after)?);
        writes.extend(self.count(after, Some(before))?);
        if let Some(mark) = event {
            writes.push(self.mark(mark, &after.id)?);
        }
        self.transact(writes).await
    }

    async fn ring(&self, id: &MeetingId, caller: &UserId) -> StoreResult<Option<Meeting>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::meeting(id))))
            .update_expression("SET lastCaller = :who ADD calls :one, version :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":who", items::s(caller.as_str()))
            .expression_attribute_values(":one", items::n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .map(|a| items::read::<MeetingItem>("meeting", a).map(MeetingItem::into_meeting))
                .transpose(),
            Err(e) if super::lost(&e) => Ok(None),
            Err(e) => Err(super::call_error("UpdateItem", e)),
        }
    }

    async fn update_host_link(
        &self,
        id: &MeetingId,
        host_url: &str,
        fetched_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::meeting(id))))
            .update_expression("SET hostUrl = :url, hostUrlFetchedAt = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":url", items::s(host_url))
            .expression_attribute_values(":at", time(fetched_at))
            .send()
            .await;
        // Lost: the meeting is gone (archived and expired); nothing to refresh.
        written("UpdateItem", result).map(drop)
    }

    async fn meeting_for_provider_id(
        &self,
        provider: ProviderKind,
        provider_meeting_id: &str,
    ) -> StoreResult<Option<MeetingId>> {
        let item = self
            .get(&keys::provider_id(provider, provider_meeting_id))
            .await?;
        Ok(item
            .map(|i| items::read::<ProviderIdItem>("provider id", i))
            .transpose()?
            .map(|p| p.meeting_id))
    }
}
