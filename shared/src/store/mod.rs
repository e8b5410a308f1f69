//! The store: narrow ports, one per aggregate, so each caller depends on only what it uses
//! (the webhook on meetings and marks, the cleanup on the due index, …), with a DynamoDB
//! adapter ([`dynamo`]) and an in-memory one ([`memory`]) that keep the same rules.
//!
//! Every key is built in [`keys`]; the single-table design is documented at the crate root.
//! Every write that races is conditional, and reports a lost race as `Ok(false)`.

pub mod dynamo;
pub mod keys;
pub mod memory;

use crate::domain::org::Spend;
use crate::domain::subscription::Subscription;
use crate::domain::{
    Claim, Connection, DueFor, HostEntry, Meeting, OrgProfile, OrgSettings, ProviderKind, Stats,
    Subject,
};
use crate::ids::{MeetingId, OrgId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The store failed (never "not found" or a lost race: those are answers, not errors).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB {op} failed")]
    Call {
        op: &'static str,
        #[source]
        source: BoxError,
    },
    /// A stored item does not have the shape this code writes.
    #[error("a stored {what} is malformed")]
    Malformed {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    /// Concurrent transactions on the same items kept conflicting through the retries.
    #[error("a transaction kept conflicting")]
    Contended,
    #[error("DynamoDB {0} left keys unprocessed")]
    Unprocessed(&'static str),
    /// A request the SDK would not build (a bug).
    #[error("building a DynamoDB request failed")]
    Build(#[source] BoxError),
}

impl StoreError {
    pub(crate) fn malformed(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Malformed {
            what,
            source: source.into(),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The dedupe mark of one provider event, kept until `expires_at` (past the provider's
/// redelivery window). A mark past its expiry counts as absent, whatever TTL has removed.
#[derive(Debug, Clone)]
pub struct EventMark {
    pub key: String,
    pub expires_at: DateTime<Utc>,
    /// When it is written: a stored mark older than this counts as absent.
    pub now: DateTime<Utc>,
}

/// How a provider event's write ended ([`MeetingStore::save_event`]).
#[derive(Debug)]
pub enum EventSave {
    Applied,
    /// Its dedupe mark is there: this very event was applied before.
    Duplicate,
    /// The meeting changed since `before` was read: as it is now (`None`: it is gone).
    Stale(Option<Box<Meeting>>),
}

/// Something the due index says is due.
#[derive(Debug, Clone)]
pub enum DueItem {
    Meeting(Box<Meeting>),
    /// A claim whose lease ran out, or released after an ambiguous provider failure.
    /// `key` names it for [`DueIndex::drop_claim`].
    Claim {
        key: String,
        claim: Claim,
    },
    /// An item in the index that does not read as either (written by something else, or
    /// damaged). `key` is its partition key (an id, no patient data): the cleanup logs and
    /// counts it and goes on with the rest of the page.
    Unreadable {
        key: String,
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
    /// The position a previous page returned (a sort key of this user's partition).
    pub cursor: Option<String>,
}

/// What an item was when read, so that a later write can require it unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rev {
    /// There was no item.
    Absent,
    /// An item from before revisions were written (its next write gives it one).
    Unmarked,
    At(String),
}

/// The org as a create decides on it: its profile and the host's directory entry, each
/// with its revision, so the claim's write can require both unchanged instead of a read.
#[derive(Debug, Clone)]
pub struct OrgView {
    pub profile: OrgProfile,
    pub profile_rev: Rev,
    pub host_user: UserId,
    pub host: Option<HostEntry>,
    pub host_rev: Rev,
}

/// A claim to write ([`ClaimStore::attempt_claim`]), and what it is written with.
#[derive(Debug, Clone, Copy)]
pub struct ClaimAttempt<'a> {
    /// The stored claim it replaces (`None`: there is none).
    pub previous: Option<&'a Claim>,
    pub claim: &'a Claim,
    pub now: DateTime<Utc>,
    /// Spent with the claim or not at all.
    pub spends: &'a [Spend],
    /// Required unchanged.
    pub view: &'a OrgView,
}

/// How a claim attempt ended. Of several refusals, the first listed here is told.
#[derive(Debug)]
pub enum Claimed {
    Taken,
    /// The org view changed: as it is now.
    ViewChanged(Box<OrgView>),
    /// The stored claim is not `previous`, or not takeable: as it is (`None`: gone).
    Lost(Option<Claim>),
    /// `spends[i]` is at its limit (of several, the one whose window ends last).
    OverBudget(usize),
}

/// The per-subject claims of guarantee 1.
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Strongly consistent read of the subject's claim.
    async fn get_claim(&self, org: &OrgId, subject: &Subject) -> StoreResult<Option<Claim>>;

    /// One write: `attempt.claim` (state pending) only if the stored claim is still
    /// `attempt.previous` (absent when `None`) and takeable at `attempt.now` by the takeover
    /// table, with its spends, and only while the org view it was decided on is unchanged.
    /// A refusal says why and returns what refused it (nothing is written).
    async fn attempt_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        attempt: &ClaimAttempt<'_>,
    ) -> StoreResult<Claimed>;

    /// Gives a pending claim up after a failed provider call; `reconcile` keeps it findable
    /// by the cleanup (an ambiguous failure may have left a provider meeting).
    async fn release_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        token: &str,
        reconcile: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// One write: claim → ready, and the meeting, its provider-id entry, memberships and
    /// counters, all conditioned on `token` still holding the pending claim.
    /// `Ok(false)`: the claim was taken over meanwhile and nothing was written.
    async fn finalize(&self, token: &str, meeting: &Meeting) -> StoreResult<bool>;
}

/// Meetings by id and by provider id.
#[async_trait]
pub trait MeetingStore: Send + Sync {
    /// Strongly consistent read of a meeting.
    async fn get_meeting(&self, id: &MeetingId) -> StoreResult<Option<Meeting>>;

    /// The meetings with these ids that exist, in the order asked.
    async fn get_meetings(&self, ids: &[MeetingId]) -> StoreResult<Vec<Meeting>>;

    /// Replaces `before` by `after` (the same meeting, `version` one higher) unless someone
    /// changed it meanwhile, moving its memberships when the start time changed and keeping
    /// the counters, in one write. With `event`, the provider event's dedupe mark is written
    /// in the same write and must not be there yet. `Ok(false)`: a concurrent change won.
    async fn save(
        &self,
        before: &Meeting,
        after: &Meeting,
        event: Option<&EventMark>,
    ) -> StoreResult<bool>;

    /// Records a call on a conversation meeting (`calls` + 1, `lastCaller`, `version` + 1) in
    /// one unconditional update, so concurrent callers never conflict; the meeting after it,
    /// `None` when it is gone.
    async fn ring(&self, id: &MeetingId, caller: &UserId) -> StoreResult<Option<Meeting>>;

    /// Stores a freshly generated host link (no version bump: it changes no fact).
    async fn update_host_link(
        &self,
        id: &MeetingId,
        host_url: &str,
        fetched_at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// The meeting a provider meeting belongs to, in one strongly consistent read (`None`:
    /// not ours). It is the copy its provider-id entry holds, written with the meeting by
    /// every save, so an event right after create finds it; it may lag a change that is no
    /// save (a call, a host link), which [`Self::save_event`] then reports as `Stale`.
    async fn meeting_by_provider_id(
        &self,
        provider: ProviderKind,
        provider_meeting_id: &str,
    ) -> StoreResult<Option<Meeting>>;

    /// A provider event's change in one write: `after` in place of `before` unless the
    /// meeting changed meanwhile, with the event's dedupe mark, which must not be there yet,
    /// the provider-id entry's copy, memberships and counters. A refusal says why, with the
    /// meeting as it is now, at no extra read.
    async fn save_event(
        &self,
        before: &Meeting,
        after: &Meeting,
        mark: &EventMark,
    ) -> StoreResult<EventSave>;
}

/// Dedupe marks of provider events.
#[async_trait]
pub trait MarkStore: Send + Sync {
    /// Whether a provider event was already applied (a mark past its expiry at `now` is not).
    async fn event_seen(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool>;
}

/// Who is in which meeting, by start time.
#[async_trait]
pub trait MemberIndex: Send + Sync {
    /// One page of a user's meetings by start time: ids in `[from, to]` after `cursor`, at
    /// most `limit`, and the cursor of the next page.
    async fn user_meetings(
        &self,
        query: &UserMeetingsQuery,
    ) -> StoreResult<(Vec<MeetingId>, Option<String>)>;
}

/// An org's counters.
#[async_trait]
pub trait StatsStore: Send + Sync {
    async fn stats(&self, org: &OrgId) -> StoreResult<Stats>;
}

/// What the weekly cleanup reads and writes.
#[async_trait]
pub trait DueIndex: Send + Sync {
    /// One page of what is due for `what` at `cutoff` in one shard of the due index, and the
    /// cursor of the next page. Its cost follows what is due, never the table.
    async fn due(
        &self,
        what: DueFor,
        shard: u32,
        cutoff: DateTime<Utc>,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<(Vec<DueItem>, Option<String>)>;

    /// Archives a finished meeting in one write: status `archived` with a TTL of
    /// `keep_until`, out of the due index; its subject claim, if it still names this meeting
    /// (so a later PUT may create a fresh one), its provider-id entry and memberships
    /// removed; counters moved.
    /// `Ok(false)`: it changed meanwhile.
    async fn archive(
        &self,
        before: &Meeting,
        archived: &Meeting,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Removes a claim that never became a meeting, if it is still the one read.
    async fn drop_claim(&self, key: &str, token: &str) -> StoreResult<()>;

    /// One page of the meetings whose no-show check is due at `cutoff` in one shard of the
    /// notice index, and the cursor of the next page (its cost follows what is due).
    async fn no_shows(
        &self,
        shard: u32,
        cutoff: DateTime<Utc>,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<(Vec<Meeting>, Option<String>)>;
}

/// A provider access token shared by every container through the table, with the refresh
/// lock and the refresh budget that keep new tokens rare (Zoho grants only 10 access tokens
/// per refresh token per 10 minutes; Zoom's grant is a round trip a cold container skips).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedTokenRecord {
    /// The token, sealed (never stored in the clear), and when it expires.
    pub sealed: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// A container is fetching a new token until then.
    pub locked_until: Option<DateTime<Utc>>,
    /// When each refresh of the budget's last window started (older ones may linger until
    /// the next lock drops them): the budget is a sliding window over these.
    pub refreshes: Vec<DateTime<Utc>>,
    /// Bumped by every write; conditional writes compare it. 0: no record yet.
    pub version: i64,
}

/// The shared-token port. Every write is conditional on the version the caller read, so
/// containers racing for a refresh cannot both win.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Strongly consistent read; a default record when there is none.
    async fn read_token(&self, key: &str) -> StoreResult<SharedTokenRecord>;

    /// Takes the refresh lock until `locked_until`, drops the token it replaces (so a
    /// refused one is never read again) and records the recent refreshes' start times (this
    /// one's included), if the record is still at `seen_version`. `Ok(false)`: someone else
    /// changed it first.
    async fn lock_token(
        &self,
        key: &str,
        seen_version: i64,
        locked_until: DateTime<Utc>,
        refreshes: &[DateTime<Utc>],
    ) -> StoreResult<bool>;

    /// Stores a new token and drops the lock, if the lock is still ours (`locked_version`,
    /// the version our lock wrote). `Ok(false)`: it was not.
    async fn store_token(
        &self,
        key: &str,
        locked_version: i64,
        sealed: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Drops our lock after a failed refresh (the budget keeps counting the attempt).
    async fn unlock_token(&self, key: &str, locked_version: i64) -> StoreResult<()>;
}

/// An org's profile (settings and the public half of its connections) and host directory.
#[async_trait]
pub trait OrgStore: Send + Sync {
    /// The org's profile (empty when it has none) and, when asked, one host's entry: one
    /// read, consistent.
    async fn org_view(
        &self,
        org: &OrgId,
        host: Option<&UserId>,
    ) -> StoreResult<(OrgProfile, Option<HostEntry>)>;

    /// [`Self::org_view`] for a create: the host's entry too, and both revisions.
    async fn read_view(&self, org: &OrgId, host: &UserId) -> StoreResult<OrgView>;

    async fn put_settings(&self, org: &OrgId, settings: &OrgSettings) -> StoreResult<()>;

    async fn put_connection(&self, org: &OrgId, connection: &Connection) -> StoreResult<()>;

    /// `Ok(false)`: the org had no such connection.
    async fn delete_connection(&self, org: &OrgId, kind: ProviderKind) -> StoreResult<bool>;

    async fn put_host(&self, org: &OrgId, host: &HostEntry) -> StoreResult<()>;

    /// The removed entry, if there was one.
    async fn delete_host(&self, org: &OrgId, user: &UserId) -> StoreResult<Option<HostEntry>>;

    /// One page of the orgs with a connection of their own, as `(org, provider)` by
    /// provider then org, and the cursor of the next page: the cleanup's way to every org's
    /// own account (never a request path).
    async fn connected_orgs(
        &self,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<(Vec<(OrgId, ProviderKind)>, Option<String>)>;

    /// One page of the host directory by user id, and the cursor of the next page.
    async fn list_hosts(
        &self,
        org: &OrgId,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<(Vec<HostEntry>, Option<String>)>;
}

/// Counters that bound what is created or sent (caller budgets, per-host daily budgets).
/// A counter's key names its window, so a counter of a past window is simply never read
/// again (guarantee 7: TTL only tidies up).
#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Spends one from every counter, or from none: `Ok(None)` spent, `Ok(Some(i))`
    /// counter `i` is at its limit (nothing is spent; of several, the one whose window ends
    /// last, so a `Retry-After` from it is long enough for all).
    async fn spend(&self, spends: &[Spend]) -> StoreResult<Option<usize>>;

    /// Gives back what a spend took, when what it paid for was surely not made.
    async fn give_back(&self, spends: &[Spend]) -> StoreResult<()>;

    /// The counter is spent to its limit: the provider said so itself.
    async fn exhaust(&self, spend: &Spend) -> StoreResult<()>;
}

/// An org's event subscriptions (`ORG#{org}` / `WEBHOOK#{id}`): read on every event's
/// fan-out (one Query per org) and on every delivery.
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    async fn put_subscription(&self, s: &Subscription) -> StoreResult<()>;

    /// Every subscription of the org, disabled ones included, by id.
    async fn subscriptions(&self, org: &OrgId) -> StoreResult<Vec<Subscription>>;

    async fn get_subscription(&self, org: &OrgId, id: &str) -> StoreResult<Option<Subscription>>;

    /// `Ok(false)`: there was none.
    async fn delete_subscription(&self, org: &OrgId, id: &str) -> StoreResult<bool>;

    /// The receiver answered 410 Gone: nothing more goes there (if it still exists).
    async fn disable_subscription(
        &self,
        org: &OrgId,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
}

/// One handle per port. An adapter implementing them all fills every one ([`Stores::of`]);
/// a test may replace one port alone (say, a claim store that dies before its final write).
#[derive(Clone)]
pub struct Stores {
    pub claims: Arc<dyn ClaimStore>,
    pub meetings: Arc<dyn MeetingStore>,
    pub marks: Arc<dyn MarkStore>,
    pub members: Arc<dyn MemberIndex>,
    pub stats: Arc<dyn StatsStore>,
    pub due: Arc<dyn DueIndex>,
    pub tokens: Arc<dyn TokenStore>,
    pub orgs: Arc<dyn OrgStore>,
    pub budgets: Arc<dyn BudgetStore>,
    pub subscriptions: Arc<dyn SubscriptionStore>,
}

impl Stores {
    pub fn of<S>(store: Arc<S>) -> Self
    where
        S: ClaimStore
            + MeetingStore
            + MarkStore
            + MemberIndex
            + StatsStore
            + DueIndex
            + TokenStore
            + OrgStore
            + BudgetStore
            + SubscriptionStore
            + 'static,
    {
        Self {
            claims: store.clone(),
            meetings: store.clone(),
            marks: store.clone(),
            members: store.clone(),
            stats: store.clone(),
            due: store.clone(),
            tokens: store.clone(),
            orgs: store.clone(),
            budgets: store.clone(),
            subscriptions: store,
        }
    }
}
