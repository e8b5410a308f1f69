//! The due index (guarantee 8): the sparse GSI `due-index` (`duePk` = `DUE#{0..3}` for the
//! weekly cleanup, `CLOSE#{0..3}` for conversation rooms to close at the provider; `dueAt`
//! epoch seconds, keys only) holds what may become due, so the cleanup's reads follow the
//! due set, never the table. Archiving takes a meeting out of it.

use super::items::{self, ClaimItem, Item, KeyItem, MeetingItem, n, s};
use super::{DUE_INDEX, DynamoStore, NOTICE_INDEX, build_error, call_error, written};
use crate::domain::{ClaimState, DueFor, Meeting, SubjectKind};
use crate::store::{DueIndex, DueItem, StoreError, StoreResult, keys};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The index cursor as text: the last key's attributes (all strings or numbers).
fn encode_cursor(key: &Item) -> String {
    let plain: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(name, v)| match v {
            AttributeValue::S(x) | AttributeValue::N(x) => Some((name.as_str(), x.as_str())),
            _ => None,
        })
        .collect();
    serde_json::to_string(&plain).unwrap_or_default()
}

fn decode_cursor(cursor: &str) -> StoreResult<Item> {
    let plain: HashMap<String, String> =
        serde_json::from_str(cursor).map_err(|e| StoreError::malformed("due cursor", e))?;
    Ok(plain
        .into_iter()
        .map(|(k, v)| {
            let value = if k == "dueAt" { n(v) } else { s(v) };
            (k, value)
        })
        .collect())
}

/// A due item, by its sort key: a meeting, a claim, or (one that does not read as its
/// kind) an unreadable one: one bad item must not fail the page it is on.
fn due_item(item: Item) -> Option<DueItem> {
    let key = item
        .get("pk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    read_due_item(item).unwrap_or(Some(DueItem::Unreadable { key }))
}

fn read_due_item(item: Item) -> StoreResult<Option<DueItem>> {
    let sk = item
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str);
    Ok(match sk {
        Some(keys::MEETING_SK) => Some(DueItem::Meeting(Box::new(
            items::read::<MeetingItem>("meeting", item)?.into_meeting(),
        ))),
        Some(keys::CLAIM_SK) => {
            let claim: ClaimItem = items::read("claim", item)?;
            let key = claim.pk().to_owned();
            Some(DueItem::Claim {
                key,
                claim: claim.into_claim()?,
            })
        }
        _ => None,
    })
}

impl DynamoStore {
    /// Whether the meeting's subject claim still names it. An appointment's always does (its
    /// claim only goes with its archive); a conversation's may name a newer meeting (its
    /// window closed and someone called again): that claim stays, and a delete conditioned
    /// on it would cancel the whole archive, week after week.
    async fn claim_is_its_own(&self, m: &Meeting) -> StoreResult<bool> {
        if m.subject.kind == SubjectKind::Appointment {
            return Ok(true);
        }
        let Some(item) = self.get(&keys::claim(&m.org, &m.subject)).await? else {
            return Ok(false);
        };
        let claim: ClaimItem = items::read("claim", item)?;
        Ok(claim.into_claim()?.meeting_id == m.id)
    }

    /// A transaction's delete of the meeting's claim, unless the claim names another meeting.
    fn delete_own_claim(&self, m: &Meeting) -> StoreResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::claim(&m.org, &m.subject))))
            .condition_expression("attribute_not_exists(pk) OR meetingId = :id")
            .expression_attribute_values(":id", s(m.id.as_str()))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

/// One page of a sparse time index (`due-index`, `notice-index`): one partition, due by
/// `cutoff` (epoch seconds).
struct IndexPage {
    index: &'static str,
    /// `{hash} = :shard AND {range} <= :cutoff`.
    condition: &'static str,
    partition: String,
    cutoff: DateTime<Utc>,
}

impl DynamoStore {
    /// The table keys of one page of `page`'s index (keys only), and the cursor of the next.
    async fn index_page(
        &self,
        page: &IndexPage,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<(Vec<Item>, Option<String>)> {
        let start = cursor.as_deref().map(decode_cursor).transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(page.index)
            .key_condition_expression(page.condition)
            .expression_attribute_values(":shard", s(&page.partition))
            .expression_attribute_values(":cutoff", n(page.cutoff.timestamp()))
            .limit(i32::try_from(limit).unwrap_or(100))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| call_error("Query", e))?;
        let next = out.last_evaluated_key().map(encode_cursor);
        let mut wanted = Vec::new();
        for key in out.items.unwrap_or_default() {
            let k: KeyItem = items::read("index key", key)?;
            wanted.push(items::key(&keys::Key { pk: k.pk, sk: k.sk }));
        }
        Ok((wanted, next))
    }
}

#[async_trait]
impl DueIndex for DynamoStore {
    async fn due(
        &self,
        what: DueFor,
        shard: u32,
        cutoff: DateTime<Utc>,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<(Vec<DueItem>, Option<String>)> {
        let page = IndexPage {
            index: DUE_INDEX,
            condition: "duePk = :shard AND dueAt <= :cutoff",
            partition: keys::due_partition(what, shard),
            cutoff,
        };
        let (wanted, next) = self.index_page(&page, cursor, limit).await?;
        let mut due = Vec::with_capacity(wanted.len());
        for item in self.batch_get(wanted).await? {
            due.extend(due_item(item));
        }
        Ok((due, next))
    }

    async fn no_shows(
        &self,
        shard: u32,
        cutoff: DateTime<Utc>,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<(Vec<Meeting>, Option<String>)> {
        let page = IndexPage {
            index: NOTICE_INDEX,
            condition: "noticePk = :shard AND noticeAt <= :cutoff",
            partition: keys::notice_partition(shard),
            cutoff,
        };
        let (wanted, next) = self.index_page(&page, cursor, limit).await?;
        let mut found = Vec::with_capacity(wanted.len());
        for item in self.batch_get(wanted).await? {
            found.push(items::read::<MeetingItem>("meeting", item)?.into_meeting());
        }
        Ok((found, next))
    }

    async fn archive(
        &self,
        before: &Meeting,
        archived: &Meeting,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut writes = vec![
            self.put_versioned(archived, before.version, Some(keep_until))?,
            self.delete(&keys::provider_id(
                before.provider,
                &before.provider_meeting_id,
            ))?,
        ];
        if self.claim_is_its_own(before).await? {
            writes.push(self.delete_own_claim(before)?);
        }
        for (user, _) in before.members() {
            writes.push(self.delete(&keys::membership(
                &before.org,
                user,
                before.start_time,
                &before.id,
            ))?);
        }
        writes.extend(self.count(archived, Some(before))?);
        self.transact(writes).await
    }

    async fn drop_claim(&self, claim_pk: &str, token: &str) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::claim_of(claim_pk))))
            .condition_expression("claimToken = :token AND #state <> :ready")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":ready", s(ClaimState::Ready.as_str()))
            .send()
            .await;
        // Lost: the claim moved on (a new holder, or it became a meeting).
        written("DeleteItem", result).map(drop)
    }
}
