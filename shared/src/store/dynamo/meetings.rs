//! Meetings (`MTG#{id}` / `MEETING`), their provider-id entries (`PMID#…`) and the
//! memberships that move with them (`USER#{org}#{user}` / `AT#{start}#{id}`).

use super::items::{self, LINK_ATTRIBUTES, MeetingItem, MembershipItem, ProviderIdItem, time};
use super::{DynamoStore, refused, written};
use crate::domain::{Meeting, ProviderKind};
use crate::ids::{MeetingId, UserId};
use crate::store::{EventMark, EventSave, MeetingStore, StoreError, StoreResult, keys};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
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

    /// `after` written over `before` attribute by attribute, but for its links (the
    /// provider-id entry's copy has none, and a host link is refreshed without a save),
    /// conditioned on the stored version; a refusal returns the item as it is. Only the
    /// attributes that differ are set or removed: at that version the stored item is
    /// `before`, and a join then changes three attributes, not the whole meeting.
    fn update_versioned(
        &self,
        before: &Meeting,
        after: &Meeting,
    ) -> StoreResult<TransactWriteItem> {
        let kept = |k: &String| {
            !matches!(k.as_str(), "pk" | "sk") && !LINK_ATTRIBUTES.contains(&k.as_str())
        };
        let new = items::item(&MeetingItem::of(after, None))?;
        let old = items::item(&MeetingItem::of(before, None))?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::meeting(&after.id))))
            .condition_expression("version = :version")
            .expression_attribute_values(":version", items::n(before.version))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        for (i, k) in old
            .keys()
            .filter(|k| kept(k) && !new.contains_key(*k))
            .enumerate()
        {
            update = update.expression_attribute_names(format!("#r{i}"), k);
            removes.push(format!("#r{i}"));
        }
        let changed = |(k, v): &(String, _)| kept(k) && old.get(k) != Some(v);
        for (i, (k, v)) in new.into_iter().filter(changed).enumerate() {
            update = update
                .expression_attribute_names(format!("#s{i}"), k)
                .expression_attribute_values(format!(":s{i}"), v);
            sets.push(format!("#s{i} = :s{i}"));
        }
        // Every save moves the version, so SET is never empty; an empty one is refused.
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let update = update
            .update_expression(expression)
            .build()
            .map_err(super::build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The provider-id entry with `m`'s copy. A meeting keeps its provider meeting for life;
    /// were that ever to change, no entry is written under the new id here (finalize writes
    /// entries), and the old entry's copy lags, which a refusal's `ALL_OLD` makes good.
    fn provider_entry(
        &self,
        before: &Meeting,
        m: &Meeting,
    ) -> StoreResult<Option<TransactWriteItem>> {
        if before.provider != m.provider || before.provider_meeting_id != m.provider_meeting_id {
            return Ok(None);
        }
        self.put(items::item(&ProviderIdItem::of(m))?, None)
            .map(Some)
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
        writes.extend(self.provider_entry(before, after)?);
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

    async fn meeting_by_provider_id(
        &self,
        provider: ProviderKind,
        provider_meeting_id: &str,
    ) -> StoreResult<Option<Meeting>> {
        let Some(item) = self
            .get(&keys::provider_id(provider, provider_meeting_id))
            .await?
        else {
            return Ok(None);
        };
        let entry = items::read::<ProviderIdItem>("provider id", item)?;
        let id = entry.meeting_id.clone();
        match entry.copy() {
            Some(m) => Ok(Some(m)),
            // An entry from before copies were kept.
            None => self.get_meeting(&id).await,
        }
    }

    async fn save_event(
        &self,
        before: &Meeting,
        after: &Meeting,
        mark: &EventMark,
    ) -> StoreResult<EventSave> {
        // The meeting first and the mark second: the refusal's reasons come in this order.
        let mut writes = vec![
            self.update_versioned(before, after)?,
            self.mark(mark, &after.id)?,
        ];
        writes.extend(self.provider_entry(before, after)?);
        writes.extend(self.move_memberships(before, after)?);
        writes.extend(self.count(after, Some(before))?);
        let Some(reasons) = self.transact_or_refusals(writes).await? else {
            return Ok(EventSave::Applied);
        };
        if refused(reasons.get(1)) {
            return Ok(EventSave::Duplicate);
        }
        let Some(meeting) = reasons.into_iter().next().filter(|r| refused(Some(r))) else {
            return Err(StoreError::malformed(
                "transaction refusal",
                "a condition failed on neither the meeting nor the mark",
            ));
        };
        let now = meeting
            .item
            .map(|i| items::read::<MeetingItem>("meeting", i).map(MeetingItem::into_meeting))
            .transpose()?;
        Ok(EventSave::Stale(now.map(Box::new)))
    }
}
