//! DynamoDB adapter of [`MeetingStore`].

use super::{Claim, ClaimState, DueItem, EventMark, MeetingStore, Stats, UserMeetingsQuery};

use crate::domain::{
    Attendance, Meeting, MeetingStatus, ProviderKind, ProviderLinks, Subject, SubjectKind,
};
use crate::error::ApiError;
use crate::ids::{MeetingId, OrgId, SubjectId, UserId};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

mod token;

type Item = HashMap<String, AttributeValue>;

/// The table's TTL attribute (a Number, epoch seconds): template.yaml enables TTL on it.
pub const TTL_ATTRIBUTE: &str = "ttl";

/// Shards of the `due-index` partition key (see the crate docs).
pub const DUE_SHARDS: u32 = 4;
/// A meeting becomes due for cleanup this long after its scheduled end.
pub const DUE_GRACE: Duration = Duration::hours(1);
/// Released claims are only debris once a new claim may take them; DynamoDB may drop them.
const RELEASED_CLAIM_TTL: Duration = Duration::days(7);
/// The sparse index of what may become due for cleanup.
pub const DUE_INDEX: &str = "due-index";
/// Stats counters are spread over this many items per org (by meetingId hash), so
/// concurrent transitions seldom touch the same one; reading stats queries all of them.
pub const STATS_SHARDS: u32 = 8;
/// Concurrent transactions on one item conflict; they are retried a few times.
const TRANSACTION_ATTEMPTS: u32 = 4;

pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn ts(t: DateTime<Utc>) -> AttributeValue {
    s(crate::domain::rfc3339_millis(t))
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub fn claim_pk(org: &OrgId, subject: &Subject) -> String {
    format!("SUBJ#{org}#{}#{}", subject.kind.as_str(), subject.id)
}

pub fn meeting_pk(id: &MeetingId) -> String {
    format!("MTG#{id}")
}

fn id_hash(id: &MeetingId) -> u32 {
    id.as_str()
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
}

pub fn due_pk(id: &MeetingId) -> String {
    format!("DUE#{}", id_hash(id) % DUE_SHARDS)
}

fn membership_sk(start: DateTime<Utc>, id: &MeetingId) -> String {
    format!("AT#{}#{id}", crate::domain::rfc3339(start))
}

/// The host and every participant, with their role.
fn members(m: &Meeting) -> impl Iterator<Item = (&UserId, &'static str)> {
    std::iter::once((&m.host, "host")).chain(m.participants.iter().map(|p| (p, "participant")))
}

/// What a change from `before` to `after` does to the counters.
fn counter_deltas(before: Option<&Meeting>, after: &Meeting) -> Vec<(String, i64)> {
    let mut deltas = Vec::new();
    match before {
        None => {
            deltas.push((format!("s_{}", after.status.as_str()), 1));
            deltas.push((format!("p_{}", after.provider.as_str()), 1));
        }
        Some(b) if b.status != after.status => {
            deltas.push((format!("s_{}", b.status.as_str()), -1));
            deltas.push((format!("s_{}", after.status.as_str()), 1));
        }
        Some(_) => {}
    }
    let ended_now = after.status == MeetingStatus::Ended
        && before.is_none_or(|b| b.status != MeetingStatus::Ended);
    if ended_now {
        let both = after.attendance.host_joined_at.is_some()
            && after.attendance.participant_joined_at.is_some();
        deltas.push((if both { "a_bothJoined" } else { "a_noShow" }.to_owned(), 1));
    }
    deltas
}

fn db_error<E: std::error::Error + Send + Sync + 'static>(
    op: &str,
    e: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> ApiError {
    ApiError::internal(format!("DynamoDB {op}: {}", DisplayErrorContext(&e)))
}

/// Reads attributes of a stored item; a malformed item is an internal error, not a panic.
struct Attrs<'a>(&'a Item);

impl Attrs<'_> {
    fn opt_str(&self, k: &str) -> Option<&str> {
        match self.0.get(k) {
            Some(AttributeValue::S(v)) => Some(v),
            _ => None,
        }
    }

    fn str(&self, k: &str) -> Result<&str, ApiError> {
        self.opt_str(k)
            .ok_or_else(|| ApiError::internal(format!("stored item lacks {k}")))
    }

    fn num(&self, k: &str) -> Result<i64, ApiError> {
        match self.0.get(k) {
            Some(AttributeValue::N(v)) => v.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| ApiError::internal(format!("stored item lacks number {k}")))
    }

    fn opt_time(&self, k: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.opt_str(k)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| ApiError::internal(format!("stored {k} is not a time")))
            })
            .transpose()
    }

    fn time(&self, k: &str) -> Result<DateTime<Utc>, ApiError> {
        self.opt_time(k)?
            .ok_or_else(|| ApiError::internal(format!("stored item lacks {k}")))
    }

    fn parsed<T: std::str::FromStr>(&self, k: &str) -> Result<T, ApiError> {
        self.str(k)?
            .parse()
            .map_err(|_| ApiError::internal(format!("stored {k} has an unknown value")))
    }

    fn id<T: TryFrom<String>>(&self, k: &str) -> Result<T, ApiError> {
        T::try_from(self.str(k)?.to_owned())
            .map_err(|_| ApiError::internal(format!("stored {k} is not an id")))
    }
}

fn claim_from(item: &Item) -> Result<Claim, ApiError> {
    let a = Attrs(item);
    Ok(Claim {
        state: match a.str("state")? {
            "pending" => ClaimState::Pending,
            "ready" => ClaimState::Ready,
            "released" => ClaimState::Released,
            _ => return Err(ApiError::internal("stored claim has an unknown state")),
        },
        meeting_id: a.id("meetingId")?,
        token: a.str("claimToken")?.to_owned(),
        lease_until: match item.get("leaseUntil") {
            Some(_) => DateTime::from_timestamp_millis(a.num("leaseUntil")?),
            None => None,
        },
        reconcile: matches!(item.get("reconcile"), Some(AttributeValue::Bool(true))),
        window_ends_at: match item.get("windowEndsAt") {
            Some(_) => DateTime::from_timestamp_millis(a.num("windowEndsAt")?),
            None => None,
        },
    })
}

/// The item of a meeting (public for tests that seed tables directly).
pub fn meeting_item(m: &Meeting) -> Item {
    let mut item = key(meeting_pk(&m.id), "MEETING");
    let mut put = |k: &str, v: AttributeValue| {
        item.insert(k.to_owned(), v);
    };
    put("type", s("meeting"));
    put("meetingId", s(m.id.as_str()));
    put("orgId", s(m.org.as_str()));
    put("subjectType", s(m.subject.kind.as_str()));
    put("subjectId", s(m.subject.id.as_str()));
    put("provider", s(m.provider.as_str()));
    put("providerMeetingId", s(&m.provider_meeting_id));
    put("topic", s(&m.topic));
    put("startTime", ts(m.start_time));
    put("durationMinutes", n(m.duration_minutes));
    put("timezone", s(&m.timezone));
    put("status", s(m.status.as_str()));
    put("hostUserId", s(m.host.as_str()));
    put(
        "participantUserIds",
        AttributeValue::L(m.participants.iter().map(|p| s(p.as_str())).collect()),
    );
    put("initiatedBy", s(m.initiated_by.as_str()));
    put("createdAt", ts(m.created_at));
    put("updatedAt", ts(m.updated_at));
    put("joinUrl", s(&m.links.join_url));
    put("hostUrl", s(&m.links.host_url));
    put("version", n(m.version));
    put("joins", n(m.attendance.joins));
    put("leaves", n(m.attendance.leaves));
    if let Some(ts) = m.provider_event_ts {
        put("providerEventTs", n(ts));
    }
    // Due a grace period after the scheduled end, or after it was ended or cancelled if
    // that came first.
    let scheduled_end = m.start_time + Duration::minutes(m.duration_minutes.into());
    let finished = match m.status {
        MeetingStatus::Ended => m.ended_at,
        MeetingStatus::Cancelled => Some(m.updated_at),
        _ => None,
    };
    let end = finished.map_or(scheduled_end, |f| f.min(scheduled_end));
    // Archived meetings are done: out of the due index (the TTL removes them later).
    if m.status != MeetingStatus::Archived {
        put("duePk", s(due_pk(&m.id)));
        put("dueAt", n((end + DUE_GRACE).timestamp()));
    }
    let optional = [
        ("providerUuid", m.provider_uuid.clone().map(s)),
        ("password", m.links.password.clone().map(s)),
        ("hostUrlFetchedAt", m.links.host_url_fetched_at.map(ts)),
        ("startedAt", m.started_at.map(ts)),
        ("endedAt", m.ended_at.map(ts)),
        ("expiresAt", m.expires_at.map(ts)),
        ("hostJoinedAt", m.attendance.host_joined_at.map(ts)),
        (
            "participantJoinedAt",
            m.attendance.participant_joined_at.map(ts),
        ),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            item.insert(k.to_owned(), v);
        }
    }
    item
}

fn meeting_from(item: &Item) -> Result<Meeting, ApiError> {
    let a = Attrs(item);
    let participants = match item.get("participantUserIds") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::S(p) => UserId::try_from(p.clone())
                    .map_err(|_| ApiError::internal("stored participant is not an id")),
                _ => Err(ApiError::internal("stored participant is not a string")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(ApiError::internal("stored meeting lacks participants")),
    };
    Ok(Meeting {
        id: a.id("meetingId")?,
        org: a.id("orgId")?,
        subject: Subject {
            kind: a.parsed::<SubjectKind>("subjectType")?,
            id: a.id::<SubjectId>("subjectId")?,
        },
        provider: a.parsed("provider")?,
        provider_meeting_id: a.str("providerMeetingId")?.to_owned(),
        provider_uuid: a.opt_str("providerUuid").map(str::to_owned),
        topic: a.str("topic")?.to_owned(),
        start_time: a.time("startTime")?,
        duration_minutes: u32::try_from(a.num("durationMinutes")?)
            .map_err(|_| ApiError::internal("stored duration out of range"))?,
        timezone: a.str("timezone")?.to_owned(),
        status: a.parsed::<MeetingStatus>("status")?,
        host: a.id("hostUserId")?,
        participants,
        initiated_by: a.id("initiatedBy")?,
        created_at: a.time("createdAt")?,
        updated_at: a.time("updatedAt")?,
        started_at: a.opt_time("startedAt")?,
        ended_at: a.opt_time("endedAt")?,
        expires_at: a.opt_time("expiresAt")?,
        attendance: Attendance {
            host_joined_at: a.opt_time("hostJoinedAt")?,
            participant_joined_at: a.opt_time("participantJoinedAt")?,
            joins: a
                .num("joins")
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            leaves: a
                .num("leaves")
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
        },
        links: ProviderLinks {
            join_url: a.str("joinUrl")?.to_owned(),
            host_url: a.str("hostUrl")?.to_owned(),
            host_url_fetched_at: a.opt_time("hostUrlFetchedAt")?,
            password: a.opt_str("password").map(str::to_owned),
        },
        version: u64::try_from(a.num("version")?)
            .map_err(|_| ApiError::internal("stored version out of range"))?,
        provider_event_ts: match item.get("providerEventTs") {
            Some(_) => Some(a.num("providerEventTs")?),
            None => None,
        },
    })
}

/// The sort-key range of a user's memberships between two start times (inclusive).
pub fn membership_range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> (String, String) {
    let lo = from.map_or_else(
        || "AT#".to_owned(),
        |f| format!("AT#{}", crate::domain::rfc3339(f)),
    );
    // '~' sorts after every id character, so the whole second of `to` is included.
    let hi = to.map_or_else(
        || "AT#~".to_owned(),
        |t| format!("AT#{}#~", crate::domain::rfc3339(t)),
    );
    (lo, hi)
}

fn is_conditional_failure<E>(e: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

enum TxOutcome {
    Committed,
    ConditionFailed,
    Conflict,
}

fn classify_tx_error(
    e: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<TxOutcome> {
    let TransactWriteItemsError::TransactionCanceledException(tc) = e.as_service_error()? else {
        return None;
    };
    let codes: Vec<&str> = tc
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code())
        .collect();
    if codes.contains(&"ConditionalCheckFailed") {
        Some(TxOutcome::ConditionFailed)
    } else if codes.contains(&"TransactionConflict") {
        Some(TxOutcome::Conflict)
    } else {
        None
    }
}

impl DynamoStore {
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<TxOutcome, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(TxOutcome::Committed),
                Err(e) => match classify_tx_error(&e) {
                    Some(TxOutcome::Conflict) if attempt < TRANSACTION_ATTEMPTS => {
                        let jitter = rand::random_range(10..50u64) * u64::from(attempt);
                        tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                    }
                    Some(outcome) => return Ok(outcome),
                    None => return Err(db_error("TransactWriteItems", e)),
                },
            }
        }
    }

    /// Reads items by key, consistently, 100 at a time; unprocessed keys are retried a few
    /// times with a short pause.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, ApiError> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(ApiError::internal)?,
            );
            for attempt in 1..=5u64 {
                let Some(request) = pending.take() else { break };
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| db_error("BatchGetItem", e))?;
                items.extend(
                    out.responses()
                        .and_then(|r| r.get(&self.table))
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
                if pending.is_some() {
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                }
            }
            if pending.is_some() {
                return Err(ApiError::internal("BatchGetItem left keys unprocessed"));
            }
        }
        Ok(items)
    }

    /// `ADD`s the deltas to the meeting's stats shard.
    fn count(
        &self,
        m: &Meeting,
        deltas: &[(String, i64)],
    ) -> Result<Option<TransactWriteItem>, ApiError> {
        if deltas.is_empty() {
            return Ok(None);
        }
        let mut update = Update::builder().table_name(&self.table).set_key(Some(key(
            format!("STATS#{}", m.org),
            &format!("SHARD#{}", id_hash(&m.id) % STATS_SHARDS),
        )));
        let mut adds = Vec::new();
        for (i, (name, delta)) in deltas.iter().enumerate() {
            adds.push(format!("#c{i} :d{i}"));
            update = update
                .expression_attribute_names(format!("#c{i}"), name)
                .expression_attribute_values(format!(":d{i}"), n(delta));
        }
        let update = update
            .update_expression(format!("ADD {}", adds.join(", ")))
            .build()
            .map_err(ApiError::internal)?;
        Ok(Some(TransactWriteItem::builder().update(update).build()))
    }

    fn membership(
        &self,
        m: &Meeting,
        user: &UserId,
        role: &str,
    ) -> Result<TransactWriteItem, ApiError> {
        let mut item = key(
            format!("USER#{}#{user}", m.org),
            &membership_sk(m.start_time, &m.id),
        );
        item.insert("type".into(), s("membership"));
        item.insert("meetingId".into(), s(m.id.as_str()));
        item.insert("role".into(), s(role));
        self.put(item, None)
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, ApiError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

#[async_trait]
impl MeetingStore for DynamoStore {
    async fn get_claim(&self, org: &OrgId, subject: &Subject) -> Result<Option<Claim>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(claim_pk(org, subject), "CLAIM")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| db_error("GetItem", e))?;
        out.item().map(claim_from).transpose()
    }

    async fn try_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        previous: Option<&Claim>,
        claim: &Claim,
        now: DateTime<Utc>,
    ) -> Result<bool, ApiError> {
        let mut item = key(claim_pk(org, subject), "CLAIM");
        item.insert("type".into(), s("claim"));
        item.insert("state".into(), s(ClaimState::Pending.as_str()));
        item.insert("meetingId".into(), s(claim.meeting_id.as_str()));
        item.insert("claimToken".into(), s(&claim.token));
        item.insert("reconcile".into(), AttributeValue::Bool(claim.reconcile));
        if let Some(lease) = claim.lease_until {
            item.insert("leaseUntil".into(), n(lease.timestamp_millis()));
            // Pending claims are findable by the cleanup once their lease is over.
            item.insert("duePk".into(), s(due_pk(&claim.meeting_id)));
            item.insert("dueAt".into(), n(lease.timestamp()));
        }
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match previous {
            None => request.condition_expression("attribute_not_exists(pk)"),
            // The token pins the exact claim we read; the state test repeats, server-side,
            // the takeover rule we applied to it.
            Some(prev) => request
                .condition_expression(
                    "claimToken = :prev AND (#state = :released OR (#state = :pending AND leaseUntil <= :now) OR (#state = :ready AND windowEndsAt <= :now))",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":prev", s(&prev.token))
                .expression_attribute_values(":released", s(ClaimState::Released.as_str()))
                .expression_attribute_values(":pending", s(ClaimState::Pending.as_str()))
                .expression_attribute_values(":ready", s(ClaimState::Ready.as_str()))
                .expression_attribute_values(":now", n(now.timestamp_millis())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(db_error("PutItem", e)),
        }
    }

    async fn release_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        token: &str,
        reconcile: bool,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        // A claim that may have left a provider meeting behind must not vanish (a later
        // claimant has to look for that meeting): no TTL, and it stays in the due index for
        // the cleanup's orphan reconciliation. A clean release is debris DynamoDB may drop.
        let (update, extra) = if reconcile {
            (
                "SET #state = :released, reconcile = :reconcile, dueAt = :due REMOVE leaseUntil, #ttl",
                (":due", n(now.timestamp())),
            )
        } else {
            (
                "SET #state = :released, reconcile = :reconcile, #ttl = :ttl REMOVE leaseUntil, duePk, dueAt",
                (":ttl", n((now + RELEASED_CLAIM_TTL).timestamp())),
            )
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(claim_pk(org, subject), "CLAIM")))
            .update_expression(update)
            .condition_expression("claimToken = :token AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":released", s(ClaimState::Released.as_str()))
            .expression_attribute_values(":pending", s(ClaimState::Pending.as_str()))
            .expression_attribute_values(":reconcile", AttributeValue::Bool(reconcile))
            .expression_attribute_values(extra.0, extra.1)
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        match result {
            // Already taken over by someone else: nothing of ours to release.
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(db_error("UpdateItem", e)),
        }
    }

    async fn finalize(&self, token: &str, m: &Meeting) -> Result<bool, ApiError> {
        // A conversation's claim remembers when its meeting's reuse window ends.
        let (set_window, window) = match m.expires_at {
            Some(t) => (", windowEndsAt = :window", Some(n(t.timestamp_millis()))),
            None => ("", None),
        };
        let mut claim = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(claim_pk(&m.org, &m.subject), "CLAIM")))
            .update_expression(format!(
                "SET #state = :ready{set_window} REMOVE leaseUntil, duePk, dueAt, reconcile"
            ));
        if let Some(w) = window {
            claim = claim.expression_attribute_values(":window", w);
        }
        let claim = claim
            .condition_expression("claimToken = :token AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":ready", s(ClaimState::Ready.as_str()))
            .expression_attribute_values(":pending", s(ClaimState::Pending.as_str()))
            .expression_attribute_values(":token", s(token))
            .build()
            .map_err(ApiError::internal)?;
        let mut items = vec![
            TransactWriteItem::builder().update(claim).build(),
            self.put(meeting_item(m), Some("attribute_not_exists(pk)"))?,
        ];
        let mut pmid = key(
            format!("PMID#{}#{}", m.provider.as_str(), m.provider_meeting_id),
            "PMID",
        );
        pmid.insert("type".into(), s("provider-id"));
        pmid.insert("meetingId".into(), s(m.id.as_str()));
        pmid.insert("orgId".into(), s(m.org.as_str()));
        items.push(self.put(pmid, None)?);
        for (user, role) in members(m) {
            items.push(self.membership(m, user, role)?);
        }
        items.extend(self.count(m, &counter_deltas(None, m))?);
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(true),
            TxOutcome::ConditionFailed => Ok(false),
            TxOutcome::Conflict => Err(ApiError::internal("transaction kept conflicting")),
        }
    }

    async fn save(
        &self,
        before: &Meeting,
        after: &Meeting,
        event: Option<&EventMark>,
    ) -> Result<bool, ApiError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(meeting_item(after)))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(before.version))
            .build()
            .map_err(ApiError::internal)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        // Membership keys carry the start to the second: a change within the same second keeps
        // them (deleting and putting one item in one transaction is refused).
        if membership_sk(before.start_time, &before.id)
            != membership_sk(after.start_time, &after.id)
        {
            for (user, role) in members(before) {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(
                        format!("USER#{}#{user}", before.org),
                        &membership_sk(before.start_time, &before.id),
                    )))
                    .build()
                    .map_err(ApiError::internal)?;
                items.push(TransactWriteItem::builder().delete(delete).build());
                items.push(self.membership(after, user, role)?);
            }
        }
        items.extend(self.count(after, &counter_deltas(Some(before), after))?);
        if let Some(mark) = event {
            let mut item = key(format!("WHK#{}", mark.key), "WHK");
            item.insert("type".into(), s("event"));
            item.insert("meetingId".into(), s(after.id.as_str()));
            item.insert(TTL_ATTRIBUTE.into(), n(mark.expires_at.timestamp()));
            items.push(self.put(item, Some("attribute_not_exists(pk)"))?);
        }
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(true),
            TxOutcome::ConditionFailed => Ok(false),
            TxOutcome::Conflict => Err(ApiError::internal("transaction kept conflicting")),
        }
    }

    async fn due(
        &self,
        shard: u32,
        cutoff: DateTime<Utc>,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<(Vec<DueItem>, Option<String>), ApiError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("duePk = :shard AND dueAt <= :cutoff")
            .expression_attribute_values(":shard", s(format!("DUE#{shard}")))
            .expression_attribute_values(":cutoff", n(cutoff.timestamp()))
            .limit(i32::try_from(limit).unwrap_or(100));
        if let Some(c) = cursor {
            let start: HashMap<String, String> =
                serde_json::from_str(&c).map_err(|_| ApiError::internal("bad due cursor"))?;
            let start: Item = start
                .into_iter()
                .map(|(k, v)| {
                    let value = if k == "dueAt" { n(v) } else { s(v) };
                    (k, value)
                })
                .collect();
            request = request.set_exclusive_start_key(Some(start));
        }
        let out = request.send().await.map_err(|e| db_error("Query", e))?;
        let next = out.last_evaluated_key().map(|k| {
            let plain: HashMap<&str, &str> = k
                .iter()
                .filter_map(|(name, v)| match v {
                    AttributeValue::S(x) | AttributeValue::N(x) => {
                        Some((name.as_str(), x.as_str()))
                    }
                    _ => None,
                })
                .collect();
            serde_json::to_string(&plain).unwrap_or_default()
        });
        let keys: Vec<Item> = out
            .items()
            .iter()
            .filter_map(|i| {
                Some(key(
                    Attrs(i).opt_str("pk")?.to_owned(),
                    Attrs(i).opt_str("sk")?,
                ))
            })
            .collect();
        let mut due = Vec::with_capacity(keys.len());
        for item in self.batch_get(keys).await? {
            let a = Attrs(&item);
            match a.opt_str("sk") {
                Some("MEETING") => due.push(DueItem::Meeting(Box::new(meeting_from(&item)?))),
                Some("CLAIM") => due.push(DueItem::Claim {
                    key: a.str("pk")?.to_owned(),
                    claim: claim_from(&item)?,
                }),
                _ => {}
            }
        }
        Ok((due, next))
    }

    async fn archive(
        &self,
        before: &Meeting,
        archived: &Meeting,
        keep_until: DateTime<Utc>,
    ) -> Result<bool, ApiError> {
        let mut item = meeting_item(archived);
        item.insert(TTL_ATTRIBUTE.into(), n(keep_until.timestamp()));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(before.version))
            .build()
            .map_err(ApiError::internal)?;
        let delete = |pk: String,
                      sk: &str,
                      condition: Option<(&str, AttributeValue)>|
         -> Result<TransactWriteItem, ApiError> {
            let mut d = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)));
            if let Some((expr, value)) = condition {
                d = d
                    .condition_expression(expr)
                    .expression_attribute_values(":id", value);
            }
            Ok(TransactWriteItem::builder()
                .delete(d.build().map_err(ApiError::internal)?)
                .build())
        };
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            // The subject's claim, unless it already names another meeting.
            delete(
                claim_pk(&before.org, &before.subject),
                "CLAIM",
                Some((
                    "attribute_not_exists(pk) OR meetingId = :id",
                    s(before.id.as_str()),
                )),
            )?,
            delete(
                format!(
                    "PMID#{}#{}",
                    before.provider.as_str(),
                    before.provider_meeting_id
                ),
                "PMID",
                None,
            )?,
        ];
        for (user, _) in members(before) {
            items.push(delete(
                format!("USER#{}#{user}", before.org),
                &membership_sk(before.start_time, &before.id),
                None,
            )?);
        }
        items.extend(self.count(archived, &counter_deltas(Some(before), archived))?);
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(true),
            TxOutcome::ConditionFailed => Ok(false),
            TxOutcome::Conflict => Err(ApiError::internal("transaction kept conflicting")),
        }
    }

    async fn drop_claim(&self, claim_key: &str, token: &str) -> Result<(), ApiError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(claim_key.to_owned(), "CLAIM")))
            .condition_expression("claimToken = :token AND #state <> :ready")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":ready", s(ClaimState::Ready.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(db_error("DeleteItem", e)),
        }
    }

    async fn meeting_for_provider_id(
        &self,
        provider: ProviderKind,
        provider_meeting_id: &str,
    ) -> Result<Option<MeetingId>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                format!("PMID#{}#{provider_meeting_id}", provider.as_str()),
                "PMID",
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| db_error("GetItem", e))?;
        out.item()
            .map(|i| Attrs(i).id::<MeetingId>("meetingId"))
            .transpose()
    }

    async fn event_seen(&self, event_key: &str) -> Result<bool, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("WHK#{event_key}"), "WHK")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| db_error("GetItem", e))?;
        // Expiry is the code's (guarantee 7): a mark past its ttl counts as absent.
        let now = chrono::Utc::now().timestamp();
        Ok(out
            .item()
            .is_some_and(|i| Attrs(i).num(TTL_ATTRIBUTE).is_ok_and(|t| t > now)))
    }

    async fn user_meetings(
        &self,
        q: &UserMeetingsQuery,
    ) -> Result<(Vec<MeetingId>, Option<String>), ApiError> {
        let pk = format!("USER#{}#{}", q.org, q.user);
        let (lo, hi) = membership_range(q.from, q.to);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":lo", s(&lo))
            .expression_attribute_values(":hi", s(&hi))
            .consistent_read(true)
            .limit(i32::try_from(q.limit).unwrap_or(100));
        if let Some(cursor) = &q.cursor {
            request = request.set_exclusive_start_key(Some(key(pk.clone(), cursor)));
        }
        let out = request.send().await.map_err(|e| db_error("Query", e))?;
        let ids = out
            .items()
            .iter()
            .map(|i| Attrs(i).id::<MeetingId>("meetingId"))
            .collect::<Result<Vec<_>, _>>()?;
        let next = out
            .last_evaluated_key()
            .and_then(|k| Attrs(k).opt_str("sk").map(str::to_owned));
        Ok((ids, next))
    }

    async fn get_meetings(&self, ids: &[MeetingId]) -> Result<Vec<Meeting>, ApiError> {
        let keys: Vec<Item> = ids
            .iter()
            .map(|id| key(meeting_pk(id), "MEETING"))
            .collect();
        let mut found: HashMap<String, Meeting> = HashMap::new();
        for item in self.batch_get(keys).await? {
            let m = meeting_from(&item)?;
            found.insert(m.id.as_str().to_owned(), m);
        }
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id.as_str()))
            .collect())
    }

    async fn stats(&self, org: &OrgId) -> Result<Stats, ApiError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("STATS#{org}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| db_error("Query", e))?;
        let mut stats = Stats::default();
        for item in out.items() {
            for (name, value) in item {
                let AttributeValue::N(v) = value else {
                    continue;
                };
                let v: i64 = v.parse().unwrap_or(0);
                if let Some(status) = name.strip_prefix("s_") {
                    *stats.by_status.entry(status.to_owned()).or_default() += v;
                } else if let Some(provider) = name.strip_prefix("p_") {
                    *stats.by_provider.entry(provider.to_owned()).or_default() += v;
                } else if name == "a_bothJoined" {
                    stats.both_joined += v;
                } else if name == "a_noShow" {
                    stats.no_show += v;
                }
            }
        }
        Ok(stats)
    }

    async fn get_meeting(&self, id: &MeetingId) -> Result<Option<Meeting>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(meeting_pk(id), "MEETING")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| db_error("GetItem", e))?;
        out.item().map(meeting_from).transpose()
    }

    async fn update_host_link(
        &self,
        id: &MeetingId,
        host_url: &str,
        fetched_at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(meeting_pk(id), "MEETING")))
            .update_expression("SET hostUrl = :url, hostUrlFetchedAt = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":url", s(host_url))
            .expression_attribute_values(":at", ts(fetched_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(db_error("UpdateItem", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProviderKind;

    #[test]
    fn a_meeting_survives_the_round_trip_through_its_item() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let m = Meeting {
            id: MeetingId::parse("mtg_abc", "t").unwrap(),
            org: OrgId::parse("clinic-1", "t").unwrap(),
            subject: Subject {
                kind: SubjectKind::Appointment,
                id: SubjectId::parse("appt-1", "t").unwrap(),
            },
            provider: ProviderKind::Zoom,
            provider_meeting_id: "85746065432".into(),
            provider_uuid: Some("/ab//c==".into()),
            topic: "Video consultation".into(),
            start_time: t("2026-11-21T10:00:00Z"),
            duration_minutes: 30,
            timezone: "Europe/Berlin".into(),
            status: MeetingStatus::Scheduled,
            host: UserId::parse("dr-7", "t").unwrap(),
            participants: vec![
                UserId::parse("pat-9", "t").unwrap(),
                UserId::parse("pat-1", "t").unwrap(),
            ],
            initiated_by: UserId::parse("svc-1", "t").unwrap(),
            created_at: t("2026-11-20T10:00:00.123Z"),
            updated_at: t("2026-11-20T10:00:00.123Z"),
            started_at: None,
            ended_at: None,
            expires_at: None,
            attendance: Attendance::default(),
            links: ProviderLinks {
                join_url: "j".into(),
                host_url: "h".into(),
                host_url_fetched_at: Some(t("2026-11-20T10:00:00.123Z")),
                password: Some("p".into()),
            },
            version: 1,
            provider_event_ts: None,
        };
        let item = meeting_item(&m);
        assert_eq!(meeting_from(&item).unwrap(), m);
        assert!(
            matches!(item.get("dueAt"), Some(AttributeValue::N(v)) if v == &(t("2026-11-21T11:30:00Z").timestamp()).to_string())
        );
    }
}
