//! The meeting-provider port ([`MeetingProvider`]), its error, and the registry of the
//! providers this deployment has ([`Providers`]).
//!
//! Adapters: [`zoom`] and [`zoho`] share one OAuth REST skeleton ([`api`]: token grant,
//! authorised call with one token refresh, answer classification, marker search, listing)
//! under the one retry policy ([`retry`]) and HTTP exchange ([`http`]), keeping only what
//! differs (URLs, bodies, error codes). [`jitsi`] makes no API call at all.

pub mod accounts;
pub mod api;
pub mod http;
pub mod jitsi;
pub mod retry;
pub mod shared_token;
pub mod zoho;
pub mod zoom;

pub use crate::domain::Schedule;
use crate::domain::{LinkRole, Meeting, ProviderKind, ProviderLinks, SubjectKind};
use crate::ids::{MeetingId, UserId};
use crate::secrets::SecretError;
use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The marker put into every provider meeting we create, so orphans and crashed attempts
/// can be matched to our meeting id later: `telemeet:{deployment}:{meetingId}`. It names the
/// deployment, so a staging stack sharing a provider account never deletes production's
/// meetings (guarantee 8). Carries no PHI.
pub fn marker(deployment: &str, id: &MeetingId) -> String {
    format!("{MARKER_PREFIX}{deployment}:{id}")
}

pub const MARKER_PREFIX: &str = "telemeet:";

/// What a provider delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// Already gone (deleted outside telemeet, or by an earlier attempt).
    AlreadyGone,
    /// Running now: not deleted.
    InProgress,
}

/// What we ask a provider to create.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub meeting_id: MeetingId,
    pub schedule: Schedule,
    pub passcode: String,
    /// Conversation rooms let either side in first (both wait for each other in the room).
    pub kind: SubjectKind,
    /// The provider user hosting it (host directory); `None`: the account's default user.
    pub host_user: Option<String>,
}

/// What a provider tells us about a meeting it holds.
#[derive(Debug, Clone)]
pub struct ProviderMeeting {
    pub provider_meeting_id: String,
    pub uuid: Option<String>,
    pub links: ProviderLinks,
    /// The provider's own schedule, when its answer carries one.
    pub schedule: Option<Schedule>,
}

/// A provider meeting carrying our marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    pub provider_meeting_id: String,
    /// The deployment the marker names (`None`: a marker from before markers named one,
    /// which could be any deployment's).
    pub deployment: Option<String>,
    /// What the marker names (our meeting id, unchecked).
    pub meeting_id: String,
    /// When the provider created it, if it says.
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Down, slow or 5xx. `ambiguous`: the request may have taken effect anyway;
    /// `in_flight`: it may still take effect later (we stopped waiting for it).
    #[error("{cause}")]
    Unavailable {
        retry_after: Option<u64>,
        ambiguous: bool,
        in_flight: bool,
        cause: String,
    },
    #[error("the provider is rate limiting{}", if *daily { " (daily limit)" } else { "" })]
    RateLimited {
        retry_after: Option<u64>,
        daily: bool,
    },
    /// The provider refused the request (credentials, validation, permissions). `code` is
    /// the provider's own error code when it gave one.
    #[error("{cause}")]
    Rejected { code: Option<i64>, cause: String },
    /// The meeting does not exist at the provider.
    #[error("the meeting does not exist at the provider")]
    NotFound,
    /// The host user's own daily cap of meeting creates and updates (Zoom: 100 a day per
    /// user) is spent until the provider's day ends: for that host only.
    #[error("the host user's daily limit at the provider is reached")]
    HostDailyLimit { retry_after: u64 },
    /// The provider does not know the host user meetings are made for (Zoom's 1001).
    #[error("the provider does not know the host user")]
    UnknownHost,
    /// The provider's secret could not be read or parsed: a configuration matter.
    #[error("the provider's secret is unusable")]
    Secret(#[from] SecretError),
    /// The table that shares a provider token across containers failed.
    #[error("the shared provider token could not be read or written")]
    TokenStore(#[source] StoreError),
}

impl ProviderError {
    pub fn unavailable(cause: impl Into<String>) -> Self {
        Self::Unavailable {
            retry_after: None,
            ambiguous: false,
            in_flight: false,
            cause: cause.into(),
        }
    }

    pub fn rejected(cause: impl Into<String>) -> Self {
        Self::Rejected {
            code: None,
            cause: cause.into(),
        }
    }

    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            Self::Unavailable {
                ambiguous: true,
                ..
            }
        )
    }

    /// The provider cannot take the request now (down, slow, rate limited): a fallback may.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. }
                | Self::RateLimited { .. }
                | Self::HostDailyLimit { .. }
                | Self::TokenStore(_)
        )
    }
}

/// A video provider. Every call finishes by `deadline` (retries included).
#[async_trait]
pub trait MeetingProvider: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// Creates a meeting carrying [`marker`] of `spec.meeting_id`; never two for one id.
    async fn create(
        &self,
        spec: &CreateSpec,
        deadline: Instant,
    ) -> Result<ProviderMeeting, ProviderError>;

    /// A meeting created earlier for `meeting_id` (found by its marker) under `host_user`
    /// (`None`: the account's default user), if any.
    async fn find_by_marker(
        &self,
        meeting_id: &MeetingId,
        host_user: Option<&str>,
        deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError>;

    /// The account's default host user (Zoom's `userId`/`defaultUser`, Zoho's presenter), for
    /// hosts the directory does not map. `None`: unmapped hosts cannot host here.
    async fn default_host(&self, _deadline: Instant) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }

    /// [`Self::default_host`]'s answer when it is known without a call (the secret read,
    /// the user looked up before); `None` when finding it out takes one.
    fn known_default_host(&self) -> Option<Option<String>> {
        None
    }

    /// Checks the credentials with the provider (a token grant; Jitsi: their shape and key),
    /// caching nothing. Refused credentials are [`ProviderError::Rejected`].
    async fn verify(&self, deadline: Instant) -> Result<(), ProviderError>;

    /// How long a stored host link may be handed out after it was generated; `None` when
    /// it does not go stale.
    fn host_link_max_age(&self) -> Option<Duration> {
        None
    }

    /// How long a host link lives after it was generated, for the link's `expiresAt`.
    fn host_link_lifetime(&self) -> Option<Duration> {
        None
    }

    /// A newly generated host link and when it was generated.
    async fn fresh_host_link(
        &self,
        meeting: &Meeting,
        deadline: Instant,
    ) -> Result<(String, DateTime<Utc>), ProviderError>;

    /// Reschedules the provider meeting.
    async fn update(
        &self,
        meeting: &Meeting,
        schedule: &Schedule,
        deadline: Instant,
    ) -> Result<(), ProviderError>;

    /// Deletes the provider meeting unless it is running.
    async fn delete(
        &self,
        provider_meeting_id: &str,
        deadline: Instant,
    ) -> Result<Deletion, ProviderError>;

    /// Every provider meeting carrying our marker (for the cleanup's orphan pass), of
    /// `host_user` where lists are per host (`None`: the account's default user).
    async fn marked_meetings(
        &self,
        _host_user: Option<&str>,
        _deadline: Instant,
    ) -> Result<Vec<Marked>, ProviderError> {
        Ok(Vec::new())
    }

    /// Whether meetings are listed per host user (Zoom), so that orphans are looked for
    /// under each, or per account (Zoho's organisation).
    fn lists_per_host(&self) -> bool {
        false
    }

    /// Ends a meeting in progress.
    async fn end(&self, meeting: &Meeting, deadline: Instant) -> Result<(), ProviderError>;

    /// A link minted for this one caller (Jitsi's JWT links). `None`: the provider's links
    /// are the stored ones (Zoom, Zoho).
    async fn personal_link(
        &self,
        _meeting: &Meeting,
        _role: LinkRole,
        _user: &UserId,
    ) -> Result<Option<PersonalLink>, ProviderError> {
        Ok(None)
    }
}

/// A per-caller link, or the news that the meeting's time for links has passed.
pub enum PersonalLink {
    Issued {
        url: String,
        expires_at: DateTime<Utc>,
    },
    Expired,
}

/// The providers this deployment can use, and the default one.
#[derive(Clone)]
pub struct Providers {
    primary: ProviderKind,
    fallback: Option<ProviderKind>,
    all: HashMap<ProviderKind, Arc<dyn MeetingProvider>>,
}

impl Providers {
    pub fn new(
        primary: ProviderKind,
        fallback: Option<ProviderKind>,
        providers: Vec<Arc<dyn MeetingProvider>>,
    ) -> Self {
        Self {
            primary,
            fallback: fallback.filter(|f| *f != primary),
            all: providers.into_iter().map(|p| (p.kind(), p)).collect(),
        }
    }

    pub fn primary(&self) -> ProviderKind {
        self.primary
    }

    /// The deployment's fallback provider (`FALLBACK_PROVIDER`), when it has one.
    pub fn fallback_kind(&self) -> Option<ProviderKind> {
        self.fallback.filter(|f| self.all.contains_key(f))
    }

    /// Where meetings go when the primary is unavailable (`FALLBACK_PROVIDER`).
    pub fn fallback(&self) -> Option<&Arc<dyn MeetingProvider>> {
        self.fallback.and_then(|f| self.all.get(&f))
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn MeetingProvider>> {
        self.all.values()
    }

    pub fn get(&self, kind: ProviderKind) -> Option<&Arc<dyn MeetingProvider>> {
        self.all.get(&kind)
    }
}
