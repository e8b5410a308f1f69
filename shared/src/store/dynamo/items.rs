//! The items as stored: one serde struct per item type, read and written with serde_dynamo.
//! Attribute names are the camelCase of the field names; times are RFC 3339 strings to the
//! millisecond, except `ttl` and `dueAt` (epoch seconds, as TTL and the index need) and the
//! claim's lease and window ends (epoch milliseconds, compared in condition expressions).

use super::super::keys::{self, Key, TTL_ATTRIBUTE};
use crate::domain::{
    Account, Attendance, Claim, ClaimState, Connection, DueFor, HostEntry, LinkRole, Meeting,
    MeetingStatus, OrgProfile, OrgSettings, ProviderKind, ProviderLinks, Subject, SubjectKind,
};
use crate::ids::{MeetingId, OrgId, SubjectId, UserId};
use crate::store::{Rev, SharedTokenRecord, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

/// Times as RFC 3339 to the millisecond.
mod millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::domain::rfc3339_millis(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

/// The key attributes alone (what the due index projects).
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyItem {
    pub pk: String,
    pub sk: String,
}

impl From<&Key> for KeyItem {
    fn from(k: &Key) -> Self {
        Self {
            pk: k.pk.clone(),
            sk: k.sk.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    item_type: String,
    meeting_id: MeetingId,
    org_id: OrgId,
    subject_type: SubjectKind,
    subject_id: SubjectId,
    provider: ProviderKind,
    provider_meeting_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_uuid: Option<String>,
    topic: String,
    #[serde(with = "millis")]
    start_time: DateTime<Utc>,
    duration_minutes: u32,
    timezone: String,
    status: MeetingStatus,
    host_user_id: UserId,
    participant_user_ids: Vec<UserId>,
    initiated_by: UserId,
    #[serde(with = "millis")]
    created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    updated_at: DateTime<Utc>,
    join_url: String,
    host_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    host_url_fetched_at: Option<DateTime<Utc>>,
    version: u64,
    #[serde(default)]
    joins: u32,
    #[serde(default)]
    leaves: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_event_ts: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    started_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    ended_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    room_closed_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    expires_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    host_joined_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    participant_joined_at: Option<DateTime<Utc>>,
    /// In the due index until archived.
    /// `org` when made under the org's own connection; absent: the deployment's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
    /// Platform-event facts ([`crate::domain::notice::Signals`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    no_show_after_minutes: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    no_show_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    waiting: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    calls: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_caller: Option<UserId>,
    /// In the notice index (`notice-index`) while a no-show check is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notice_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notice_at: Option<i64>,
}

impl MeetingItem {
    /// Empties [`LINK_ATTRIBUTES`] (the provider-id entry's copy keeps no link).
    fn drop_links(&mut self) {
        self.join_url.clear();
        self.host_url.clear();
        self.host_url_fetched_at = None;
        self.password = None;
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl MeetingItem {
    /// The item of `m`; `keep_until` sets its TTL (archived records).
    pub fn of(m: &Meeting, keep_until: Option<DateTime<Utc>>) -> Self {
        let key = keys::meeting(&m.id);
        let due = m.due_slot();
        // An archived record is out of every index.
        let no_show = crate::domain::notice::no_show_due(m).filter(|_| keep_until.is_none());
        Self {
            pk: key.pk,
            sk: key.sk,
            item_type: "meeting".into(),
            meeting_id: m.id.clone(),
            org_id: m.org.clone(),
            subject_type: m.subject.kind,
            subject_id: m.subject.id.clone(),
            provider: m.provider,
            provider_meeting_id: m.provider_meeting_id.clone(),
            provider_uuid: m.provider_uuid.clone(),
            topic: m.topic.clone(),
            start_time: m.start_time,
            duration_minutes: m.duration_minutes,
            timezone: m.timezone.clone(),
            status: m.status,
            host_user_id: m.host.clone(),
            participant_user_ids: m.participants.clone(),
            initiated_by: m.initiated_by.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            join_url: m.links.join_url.clone(),
            host_url: m.links.host_url.clone(),
            password: m.links.password.clone(),
            host_url_fetched_at: m.links.host_url_fetched_at,
            version: m.version,
            joins: m.attendance.joins,
            leaves: m.attendance.leaves,
            provider_event_ts: m.provider_event_ts,
            started_at: m.started_at,
            ended_at: m.ended_at,
            expires_at: m.expires_at,
            host_joined_at: m.attendance.host_joined_at,
            participant_joined_at: m.attendance.participant_joined_at,
            account: (m.account == Account::Org).then(|| "org".to_owned()),
            provider_user: m.provider_user.clone(),
            room_closed_at: m.room_closed_at,
            due_pk: due.map(|(what, _)| keys::due_shard(what, &m.id)),
            due_at: due.map(|(_, t)| t.timestamp()),
            ttl: keep_until.map(|t| t.timestamp()),
            no_show_after_minutes: m.signals.no_show_after_minutes,
            no_show_at: m.signals.no_show_at,
            waiting: m.signals.waiting,
            calls: m.signals.calls,
            last_caller: m.signals.last_caller.clone(),
            notice_pk: no_show.map(|_| keys::notice_shard(&m.id)),
            notice_at: no_show.map(|t| t.timestamp()),
        }
    }

    pub fn into_meeting(self) -> Meeting {
        Meeting {
            id: self.meeting_id,
            org: self.org_id,
            subject: Subject {
                kind: self.subject_type,
                id: self.subject_id,
            },
            provider: self.provider,
            provider_meeting_id: self.provider_meeting_id,
            provider_uuid: self.provider_uuid,
            topic: self.topic,
            start_time: self.start_time,
            duration_minutes: self.duration_minutes,
            timezone: self.timezone,
            status: self.status,
            host: self.host_user_id,
            participants: self.participant_user_ids,
            initiated_by: self.initiated_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.started_at,
            ended_at: self.ended_at,
            expires_at: self.expires_at,
            attendance: Attendance {
                host_joined_at: self.host_joined_at,
                participant_joined_at: self.participant_joined_at,
                joins: self.joins,
                leaves: self.leaves,
            },
            links: ProviderLinks {
                join_url: self.join_url,
                host_url: self.host_url,
                host_url_fetched_at: self.host_url_fetched_at,
                password: self.password,
            },
            version: self.version,
            provider_event_ts: self.provider_event_ts,
            account: match self.account.as_deref() {
                Some("org") => Account::Org,
                _ => Account::Deployment,
            },
            provider_user: self.provider_user,
            kept_until: self.ttl.and_then(|t| DateTime::from_timestamp(t, 0)),
            room_closed_at: self.room_closed_at,
            signals: crate::domain::notice::Signals {
                no_show_after_minutes: self.no_show_after_minutes,
                no_show_at: self.no_show_at,
                waiting: self.waiting,
                calls: self.calls,
                last_caller: self.last_caller,
            },
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    item_type: String,
    state: String,
    meeting_id: MeetingId,
    claim_token: String,
    #[serde(default)]
    reconcile: bool,
    /// Epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease_until: Option<i64>,
    /// Epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_ends_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_user: Option<String>,
}

impl ClaimItem {
    pub fn of(key: Key, c: &Claim) -> Self {
        let due_at = c.due_at();
        Self {
            pk: key.pk,
            sk: key.sk,
            item_type: "claim".into(),
            state: c.state.as_str().into(),
            meeting_id: c.meeting_id.clone(),
            claim_token: c.token.clone(),
            reconcile: c.reconcile,
            lease_until: c.lease_until.map(|t| t.timestamp_millis()),
            window_ends_at: c.window_ends_at.map(|t| t.timestamp_millis()),
            due_pk: due_at.map(|_| keys::due_shard(DueFor::Archive, &c.meeting_id)),
            due_at: due_at.map(|t| t.timestamp()),
            provider_user: c.provider_user.clone(),
        }
    }

    pub fn pk(&self) -> &str {
        &self.pk
    }

    pub fn into_claim(self) -> Result<Claim, StoreError> {
        Ok(Claim {
            state: ClaimState::parse(&self.state)
                .ok_or_else(|| StoreError::malformed("claim", format!("state {:?}", self.state)))?,
            meeting_id: self.meeting_id,
            token: self.claim_token,
            lease_until: self.lease_until.and_then(DateTime::from_timestamp_millis),
            reconcile: self.reconcile,
            window_ends_at: self
                .window_ends_at
                .and_then(DateTime::from_timestamp_millis),
            provider_user: self.provider_user,
        })
    }
}

/// The meeting item's link attributes: a provider event's write leaves them as they are.
pub const LINK_ATTRIBUTES: [&str; 4] = ["joinUrl", "hostUrl", "hostUrlFetchedAt", "password"];

/// The provider id → meeting entry, written with the meeting.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderIdItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    item_type: String,
    pub meeting_id: MeetingId,
    org_id: OrgId,
    /// The meeting as its last save wrote it, so a provider event finds it in one read.
    /// Without its links ([`LINK_ATTRIBUTES`]): a link is kept once, and the host link is
    /// refreshed without a save.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meeting: Option<Box<MeetingItem>>,
}

impl ProviderIdItem {
    pub fn of(m: &Meeting) -> Self {
        let key = keys::provider_id(m.provider, &m.provider_meeting_id);
        let mut copy = MeetingItem::of(m, None);
        copy.drop_links();
        Self {
            pk: key.pk,
            sk: key.sk,
            item_type: "provider-id".into(),
            meeting_id: m.id.clone(),
            org_id: m.org.clone(),
            meeting: Some(Box::new(copy)),
        }
    }

    /// The copy it holds (entries written before copies were kept hold none).
    pub fn copy(self) -> Option<Meeting> {
        self.meeting.map(|m| m.into_meeting())
    }
}

/// One person's place in a meeting, sorted by start time in their partition.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipItem {
    pk: String,
    pub sk: String,
    #[serde(rename = "type")]
    item_type: String,
    pub meeting_id: MeetingId,
    role: LinkRole,
}

impl MembershipItem {
    pub fn of(m: &Meeting, user: &UserId, role: LinkRole) -> Self {
        let key = keys::membership(&m.org, user, m.start_time, &m.id);
        Self {
            pk: key.pk,
            sk: key.sk,
            item_type: "membership".into(),
            meeting_id: m.id.clone(),
            role,
        }
    }
}

/// A provider event's dedupe mark.
#[derive(Debug, Serialize, Deserialize)]
pub struct MarkItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    item_type: String,
    #[serde(rename = "meetingId")]
    meeting_id: MeetingId,
    pub ttl: i64,
}

impl MarkItem {
    pub fn of(event_key: &str, meeting: &MeetingId, expires_at: DateTime<Utc>) -> Self {
        let key = keys::event_mark(event_key);
        Self {
            pk: key.pk,
            sk: key.sk,
            item_type: "event".into(),
            meeting_id: meeting.clone(),
            ttl: expires_at.timestamp(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenItem {
    #[serde(default)]
    sealed: Option<String>,
    #[serde(default, with = "millis::option")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default, with = "millis::option")]
    locked_until: Option<DateTime<Utc>>,
    /// Start times of the recent refreshes (RFC 3339).
    #[serde(default)]
    refresh_times: Vec<String>,
    /// The fixed budget window items written before `refreshTimes`.
    #[serde(default, with = "millis::option")]
    window_start: Option<DateTime<Utc>>,
    #[serde(default)]
    refreshes: u32,
    version: i64,
}

/// An item's refresh times; an item from before them counts its fixed window's refreshes as
/// started when that window began.
fn token_refreshes(t: &TokenItem) -> Vec<DateTime<Utc>> {
    if t.refresh_times.is_empty() {
        let start = t.window_start.into_iter();
        return start
            .flat_map(|w| std::iter::repeat_n(w, t.refreshes as usize))
            .collect();
    }
    t.refresh_times
        .iter()
        .filter_map(|r| DateTime::parse_from_rfc3339(r).ok())
        .map(|r| r.with_timezone(&Utc))
        .collect()
}

impl From<TokenItem> for SharedTokenRecord {
    fn from(t: TokenItem) -> Self {
        let refreshes = token_refreshes(&t);
        Self {
            sealed: t.sealed,
            expires_at: t.expires_at,
            locked_until: t.locked_until,
            refreshes,
            version: t.version,
        }
    }
}

/// An org's profile: settings and the public half of each provider connection, each in an
/// attribute of its own so one can change without reading the others.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileItem {
    #[serde(default)]
    provider: Option<ProviderKind>,
    #[serde(default)]
    fallback_provider: Option<ProviderKind>,
    #[serde(default)]
    conversation_reuse_seconds: Option<u32>,
    #[serde(default)]
    no_show_grace_minutes: Option<u32>,
    #[serde(default, with = "millis::option")]
    settings_updated_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "connZoom")]
    zoom: Option<ConnectionItem>,
    #[serde(default, rename = "connJitsi")]
    jitsi: Option<ConnectionItem>,
    #[serde(default, rename = "connZoho")]
    zoho: Option<ConnectionItem>,
    #[serde(default)]
    rev: Option<String>,
}

/// The attribute every write of a profile or host entry sets to a new [`new_rev`], so a
/// create's claim can require the org view it decided on unchanged.
pub const REV: &str = "rev";

/// A fresh revision: unique enough that no two writes of one item share it.
pub fn new_rev() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn rev_of(rev: Option<String>) -> Rev {
    rev.map_or(Rev::Unmarked, Rev::At)
}

/// The attribute holding a connection's public half.
pub fn connection_attribute(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Zoom => "connZoom",
        ProviderKind::Jitsi => "connJitsi",
        ProviderKind::Zoho => "connZoho",
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionItem {
    #[serde(with = "millis")]
    verified_at: DateTime<Utc>,
    #[serde(default)]
    ids: serde_json::Map<String, serde_json::Value>,
}

impl ConnectionItem {
    pub fn of(c: &Connection) -> Self {
        Self {
            verified_at: c.verified_at,
            ids: c.ids.clone(),
        }
    }

    fn into_connection(self, provider: ProviderKind) -> Connection {
        Connection {
            provider,
            verified_at: self.verified_at,
            ids: self.ids,
        }
    }
}

impl ProfileItem {
    /// The profile and its revision.
    pub fn into_profile_at(mut self) -> (OrgProfile, Rev) {
        let rev = rev_of(self.rev.take());
        (self.into_profile(), rev)
    }

    pub fn into_profile(self) -> OrgProfile {
        let mut connections = std::collections::BTreeMap::new();
        for (kind, c) in [
            (ProviderKind::Zoom, self.zoom),
            (ProviderKind::Jitsi, self.jitsi),
            (ProviderKind::Zoho, self.zoho),
        ] {
            if let Some(c) = c {
                connections.insert(kind.as_str(), c.into_connection(kind));
            }
        }
        OrgProfile {
            settings: OrgSettings {
                provider: self.provider,
                fallback: self.fallback_provider,
                conversation_reuse_seconds: self.conversation_reuse_seconds,
                no_show_grace_minutes: self.no_show_grace_minutes,
                updated_at: self.settings_updated_at,
            },
            connections,
        }
    }
}

/// One host directory entry: `ORG#{org}` / `HOST#{userId}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    item_type: String,
    user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    zoom_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    zoho_presenter: Option<String>,
    #[serde(with = "millis")]
    updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rev: Option<String>,
}

impl HostItem {
    pub fn of(org: &OrgId, h: &HostEntry) -> Self {
        let key = keys::org_host(org, &h.user);
        Self {
            pk: key.pk,
            sk: key.sk,
            item_type: "host".into(),
            user_id: h.user.clone(),
            zoom_user: h.zoom_user.clone(),
            zoho_presenter: h.zoho_presenter.clone(),
            updated_at: h.updated_at,
            rev: Some(new_rev()),
        }
    }

    /// The entry and its revision.
    pub fn into_entry_at(mut self) -> (HostEntry, Rev) {
        let rev = rev_of(self.rev.take());
        (self.into_entry(), rev)
    }

    pub fn into_entry(self) -> HostEntry {
        HostEntry {
            user: self.user_id,
            zoom_user: self.zoom_user,
            zoho_presenter: self.zoho_presenter,
            updated_at: self.updated_at,
        }
    }
}

/// An event subscription: `ORG#{org}` / `WEBHOOK#{id}` (its secrets are in Secrets Manager).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    item_type: String,
    subscription_id: String,
    org_id: OrgId,
    url: String,
    events: Vec<String>,
    #[serde(with = "millis")]
    created_at: DateTime<Utc>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    disabled_at: Option<DateTime<Utc>>,
}

impl SubscriptionItem {
    pub fn of(s: &crate::domain::subscription::Subscription) -> Self {
        let key = keys::subscription(&s.org, &s.id);
        Self {
            pk: key.pk,
            sk: key.sk,
            item_type: "subscription".into(),
            subscription_id: s.id.clone(),
            org_id: s.org.clone(),
            url: s.url.clone(),
            events: s.events.clone(),
            created_at: s.created_at,
            disabled_at: s.disabled_at,
        }
    }

    pub fn into_subscription(self) -> crate::domain::subscription::Subscription {
        crate::domain::subscription::Subscription {
            id: self.subscription_id,
            org: self.org_id,
            url: self.url,
            events: self.events,
            created_at: self.created_at,
            disabled_at: self.disabled_at,
        }
    }
}

/// An org's entry in the list of connections (`CONNECTIONS` / `{provider}#{org}`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionEntryItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    item_type: String,
    org: OrgId,
    provider: ProviderKind,
}

impl ConnectionEntryItem {
    pub fn of(org: &OrgId, kind: ProviderKind) -> Self {
        let key = keys::connection_entry(kind, org);
        Self {
            pk: key.pk,
            sk: key.sk,
            item_type: "connection".into(),
            org: org.clone(),
            provider: kind,
        }
    }

    pub fn into_pair(self) -> (OrgId, ProviderKind) {
        (self.org, self.provider)
    }
}

/// `value` as a stored item.
pub fn item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Build(e.into()))
}

/// A stored item as `T`; `what` names it when it is malformed.
pub fn read<T: serde::de::DeserializeOwned>(
    what: &'static str,
    item: Item,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::malformed(what, e))
}

/// The key attributes of `key`.
pub fn key(key: &Key) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(key.pk.clone())),
        ("sk".to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// Values for expressions.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn time(t: DateTime<Utc>) -> AttributeValue {
    s(crate::domain::rfc3339_millis(t))
}

/// The `ttl` attribute's name, for expressions (`#ttl`).
pub const TTL: &str = TTL_ATTRIBUTE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sample_meeting;

    #[test]
    fn the_provider_id_entrys_copy_holds_every_fact_but_no_link() {
        // Whole milliseconds: the item keeps times to the millisecond.
        let at = DateTime::from_timestamp_millis(1_795_000_000_123).expect("time");
        let mut m = sample_meeting(at);
        m.links = ProviderLinks {
            join_url: "https://zoom.example/j/1".into(),
            host_url: "https://zoom.example/s/1?zak=secret".into(),
            host_url_fetched_at: Some(at),
            password: Some("pass".into()),
        };
        let entry = item(&ProviderIdItem::of(&m)).expect("item");
        let Some(AttributeValue::M(copy)) = entry.get("meeting") else {
            panic!("the entry holds the meeting");
        };
        for a in LINK_ATTRIBUTES {
            let empty = match copy.get(a) {
                None => true,
                Some(AttributeValue::S(v)) => v.is_empty(),
                Some(_) => false,
            };
            assert!(empty, "{a} is not kept in the copy");
        }
        let back: ProviderIdItem = read("provider id", entry).expect("read");
        let mut without = m.clone();
        without.links = ProviderLinks::default();
        assert_eq!(back.copy(), Some(without), "every other fact is kept");
    }

    #[test]
    fn a_meeting_survives_the_round_trip_through_its_item() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .with_timezone(&Utc)
        };
        let mut m = sample_meeting(t("2026-11-21T10:00:00Z"));
        m.provider_uuid = Some("/ab//c==".into());
        m.timezone = "Europe/Berlin".into();
        m.participants
            .push(UserId::parse("pat-1", "t").expect("id"));
        m.created_at = t("2026-11-20T10:00:00.123Z");
        m.links = ProviderLinks {
            join_url: "j".into(),
            host_url: "h".into(),
            host_url_fetched_at: Some(t("2026-11-20T10:00:00.123Z")),
            password: Some("p".into()),
        };
        let stored = item(&MeetingItem::of(&m, None)).expect("item");
        assert!(
            matches!(stored.get("dueAt"), Some(AttributeValue::N(v)) if *v == t("2026-11-21T11:30:00Z").timestamp().to_string())
        );
        assert!(
            matches!(stored.get("participantUserIds"), Some(AttributeValue::L(l)) if l.len() == 2)
        );
        assert!(
            !stored.contains_key("ttl") && !stored.contains_key("startedAt"),
            "absent, not NULL"
        );
        let back: MeetingItem = read("meeting", stored).expect("read");
        assert_eq!(back.into_meeting(), m);
    }

    #[test]
    fn an_archived_meeting_leaves_the_due_index_and_carries_its_ttl_in_epoch_seconds() {
        let mut m = sample_meeting(Utc::now());
        m.status = MeetingStatus::Archived;
        let keep = Utc::now() + chrono::Duration::days(365);
        let stored = item(&MeetingItem::of(&m, Some(keep))).expect("item");
        assert!(!stored.contains_key("duePk") && !stored.contains_key("dueAt"));
        assert_eq!(
            stored.get(TTL_ATTRIBUTE),
            Some(&AttributeValue::N(keep.timestamp().to_string()))
        );
    }

    #[test]
    fn a_malformed_item_is_an_error_not_a_panic() {
        let mut stored = item(&MeetingItem::of(&sample_meeting(Utc::now()), None)).expect("item");
        stored.insert("status".into(), s("teleported"));
        assert!(matches!(
            read::<MeetingItem>("meeting", stored),
            Err(StoreError::Malformed { .. })
        ));
    }
}
