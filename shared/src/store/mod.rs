//! The store port. The table design it implies is documented at the crate root.

pub mod dynamo;

use crate::domain::{Meeting, Subject};
use crate::error::ApiError;
use crate::ids::{MeetingId, OrgId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

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
}

impl Claim {
    /// Whether a new caller may take this claim over at `now`.
    pub fn is_takeable(&self, now: DateTime<Utc>) -> bool {
        match self.state {
            ClaimState::Released => true,
            ClaimState::Pending => self.lease_until.is_none_or(|t| t <= now),
            ClaimState::Ready => false,
        }
    }
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

    /// Stores a freshly generated host link.
    async fn update_host_link(
        &self,
        id: &MeetingId,
        host_url: &str,
        fetched_at: DateTime<Utc>,
    ) -> Result<(), ApiError>;
}
