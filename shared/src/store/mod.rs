//! The store port. The table design it implies is documented at the crate root.

pub mod dynamo;

use crate::domain::{Meeting, ProviderKind, Subject};
use crate::error::ApiError;
use crate::ids::{MeetingId, OrgId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

pub use dynamo::DynamoStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// Someone is creating the provider meeting until `lease_until`.
    Pending,
    /// The meeting exists.
    Ready,
    /// A provider call failed; anyone may claim again.
    Released,
}

impl ClaimState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Released => "released",
        }
    }
}

/// The per-subject claim that makes provisioning happen exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub state: ClaimState,
    /// Kept across takeovers, so every attempt for a subject marks its provider meeting
    /// with the same id and a taker-over can find what a crashed holder created.
    pub meeting_id: MeetingId,
    pub token: String,
    pub lease_until: Option<DateTime<Utc>>,
    /// A previous attempt may have created a provider meeting: look it up before creating.
    pub reconcile: bool,
    /// Conversations: the end of the reuse window of the ready meeting. After it, the claim
    /// may be taken for a new meeting (expiry is the code's, not TTL's).
    pub window_ends_at: Option<DateTime<Utc>>,
}

impl Claim {
    /// Whether a new caller may take this claim over at `now`.
    pub fn is_takeable(&self, now: DateTime<Utc>) -> bool {
        match self.state {
            ClaimState::Released => true,
            ClaimState::Pending => self.lease_until.is_none_or(|t| t <= now),
            ClaimState::Ready => self.window_ends_at.is_some_and(|t| t <= now),
        }
    }
}

/// The dedupe mark of one provider event, kept until `expires_at` (past the provider's
/// redelivery window).
#[derive(Debug, Clone)]
pub struct EventMark {
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

/// Something the due index says is due.
#[derive(Debug, Clone)]
pub enum DueItem {
    Meeting(Box<Meeting>),
    /// A claim whose lease ran out, or released after an ambiguous provider failure.
    Claim {
        key: String,
        claim: Claim,
    },
}

/// A page request over one user's memberships.
#[derive(Debug, Clone)]
pub struct UserMeetingsQuery {
    pub org: OrgId,
    pub user: UserId,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
    /// The opaque position a previous page returned (a sort key of this user's partition).
    pub cursor: Option<String>,
}

/// Counters of an org's meetings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub by_status: BTreeMap<String, i64>,
    pub by_provider: BTreeMap<String, i64>,
    /// Ended meetings both sides joined.
    pub both_joined: i64,
    /// Ended meetings somebody never joined.
    pub no_show: i64,
}

#[async_trait]
pub trait MeetingStore: Send + Sync {
    /// Strongly consistent read of the subject's claim.
    async fn get_claim(&self, org: &OrgId, subject: &Subject) -> Result<Option<Claim>, ApiError>;

    /// Writes `claim` (state pending) only if the stored claim is still `previous`
    /// (absent when `None`) and still takeable at `now`. `Ok(false)`: someone else won.
    async fn try_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        previous: Option<&Claim>,
        claim: &Claim,
        now: DateTime<Utc>,
    ) -> Result<bool, ApiError>;

    /// Gives a pending claim up after a failed provider call.
    async fn release_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        token: &str,
        reconcile: bool,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError>;

    /// One transaction: claim → ready, and the meeting, its provider-id item and the
    /// memberships written, all conditioned on `token` still holding the pending claim.
    /// `Ok(false)`: the claim was taken over meanwhile and nothing was written.
    async fn finalize(&self, token: &str, meeting: &Meeting) -> Result<bool, ApiError>;

    /// Strongly consistent read of a meeting.
    async fn get_meeting(&self, id: &MeetingId) -> Result<Option<Meeting>, ApiError>;

    /// Replaces `before` by `after` (the same meeting, `version` one higher) unless someone
    /// changed it meanwhile, moving its membership items when the start time changed and
    /// keeping the stats counters, in one transaction. `Ok(false)`: a concurrent change won.
    /// With `event`, the provider event's dedupe mark is written in the same transaction
    /// and must not exist yet, so a redelivered event changes nothing twice.
    async fn save(
        &self,
        before: &Meeting,
        after: &Meeting,
        event: Option<&EventMark>,
    ) -> Result<bool, ApiError>;

    /// The meeting a provider meeting id belongs to (a strongly consistent read of the
    /// provider-id item, written with the meeting, so events right after create find it).
    async fn meeting_for_provider_id(
        &self,
        provider: ProviderKind,
        provider_meeting_id: &str,
    ) -> Result<Option<MeetingId>, ApiError>;

    /// Whether a provider event was already applied.
    async fn event_seen(&self, key: &str) -> Result<bool, ApiError>;

    /// One page of a user's meetings by start time: ids in `[from, to]` after `cursor`, at
    /// most `limit`, and the cursor of the next page.
    async fn user_meetings(
        &self,
        query: &UserMeetingsQuery,
    ) -> Result<(Vec<MeetingId>, Option<String>), ApiError>;

    /// The meetings with these ids that exist, in the order asked.
    async fn get_meetings(&self, ids: &[MeetingId]) -> Result<Vec<Meeting>, ApiError>;

    /// The org's counters.
    async fn stats(&self, org: &OrgId) -> Result<Stats, ApiError>;

    /// One page of what is due at `cutoff` in one shard of the due index (its keys, then the
    /// items themselves), and the cursor of the next page.
    async fn due(
        &self,
        shard: u32,
        cutoff: DateTime<Utc>,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<(Vec<DueItem>, Option<String>), ApiError>;

    /// Archives a finished meeting in one transaction: status `archived` with a TTL of
    /// `keep_until`, out of the due index; its subject claim (so a later PUT may create a
    /// fresh meeting), provider-id and membership items removed; counters moved.
    /// `Ok(false)`: it changed meanwhile.
    async fn archive(
        &self,
        before: &Meeting,
        archived: &Meeting,
        keep_until: DateTime<Utc>,
    ) -> Result<bool, ApiError>;

    /// Removes a claim that never became a meeting, if it is still the one read.
    async fn drop_claim(&self, key: &str, token: &str) -> Result<(), ApiError>;

    /// Stores a freshly generated host link.
    async fn update_host_link(
        &self,
        id: &MeetingId,
        host_url: &str,
        fetched_at: DateTime<Utc>,
    ) -> Result<(), ApiError>;
}

/// A provider access token shared by every container through the table, with the refresh
/// lock and the refresh budget that keep new tokens rare (Zoho grants only 10 access tokens
/// per refresh token per 10 minutes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedTokenRecord {
    /// The token, sealed (never stored in the clear), and when it expires.
    pub sealed: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// A container is fetching a new token until then.
    pub locked_until: Option<DateTime<Utc>>,
    /// The budget window: when it began and how many refreshes were started in it.
    pub window_start: Option<DateTime<Utc>>,
    pub refreshes: u32,
    /// Bumped by every write; conditional writes compare it. 0: no record yet.
    pub version: i64,
}

/// The shared-token port. Every write is conditional on the version the caller read, so
/// containers racing for a refresh cannot both win.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Strongly consistent read; a default record when there is none.
    async fn read_token(&self, key: &str) -> Result<SharedTokenRecord, ApiError>;

    /// Takes the refresh lock until `locked_until` and records the budget window, if the
    /// record is still at `seen_version`. `Ok(false)`: someone else changed it first.
    async fn lock_token(
        &self,
        key: &str,
        seen_version: i64,
        locked_until: DateTime<Utc>,
        window_start: DateTime<Utc>,
        refreshes: u32,
    ) -> Result<bool, ApiError>;

    /// Stores a new token and drops the lock, if the lock is still ours (`locked_version`,
    /// the version our lock wrote). `Ok(false)`: it was not.
    async fn store_token(
        &self,
        key: &str,
        locked_version: i64,
        sealed: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, ApiError>;

    /// Drops our lock after a failed refresh (the budget keeps counting the attempt).
    async fn unlock_token(&self, key: &str, locked_version: i64) -> Result<(), ApiError>;
}
