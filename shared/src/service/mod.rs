//! The application's use cases, one module each: [`provision`] (a subject's meeting,
//! exactly once), [`links`] (role-specific links), [`manage`] (reschedule, cancel, start,
//! end), [`list`] (a user's meetings, an org's stats), [`events`] (provider events, exactly
//! once). Each reads the domain rules (`crate::domain`) and talks to the ports: the stores
//! (`crate::store::Stores`), the providers, the clock and the id generator.

pub mod events;
pub mod links;
pub mod list;
pub mod manage;
pub mod org;
pub mod provision;
pub mod subscriptions;
#[cfg(test)]
mod tests;
pub mod views;

use crate::clock::Clock;
use crate::domain::org::CreateBudgets;
use crate::domain::{Account, Caller, ClaimState, DomainError, Meeting, Subject, policy};
use crate::ids::{IdGenerator, MeetingId};
use crate::notify::ssrf::{LocalMode, Resolver};
use crate::providers::accounts::OrgAccounts;
use crate::providers::retry::RetryPolicy;
use crate::providers::{MeetingProvider, ProviderError, Providers};
use crate::store::{StoreError, Stores};
use chrono::Duration;
use std::sync::Arc;

pub use events::EventOutcome;
pub use links::Link;
pub use list::{MeetingPage, PageRequest};
pub use provision::Provisioned;

/// Why a use case failed: a domain rule refused it, or a port failed. The HTTP edge maps
/// each to the contract's error body once (`crate::http::error`).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("the video provider failed")]
    Provider(#[from] ProviderError),
    #[error("Secrets Manager failed")]
    Secret(#[from] crate::secrets::SecretError),
    /// The stored state contradicts itself, or the deployment lacks what a record needs.
    #[error("{0}")]
    Inconsistent(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a claim holder may take to create the provider meeting before anyone else
    /// may take over.
    pub claim_lease: Duration,
    /// The holder stops its provider work this long before its lease ends, so a taker-over
    /// never runs while a create of ours may still land.
    pub lease_margin: Duration,
    /// How long a caller that lost the claim waits for the winner's meeting.
    pub claim_wait: std::time::Duration,
    /// Timeouts, attempts and backoff of every provider call.
    pub provider_retry: RetryPolicy,
    /// How long a conversation meeting is reused (`CONVERSATION_REUSE_SECONDS`).
    pub conversation_reuse: Duration,
    /// Creates and updates sent per Zoom host user per UTC day (`ZOOM_HOST_DAILY_BUDGET`).
    pub host_daily_budget: u32,
    /// New meetings per caller and org (`CREATE_BUDGETS`).
    pub create_budgets: CreateBudgets,
    /// `DEPLOYMENT_ID`: named in provider markers; the cleanup deletes only its own.
    pub deployment: String,
    /// Whether event subscriptions may name loopback `http` receivers. Set in code by the
    /// local gateway only: no environment variable reads it, so no template can set it.
    pub events_local_mode: LocalMode,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            claim_lease: Duration::seconds(30),
            lease_margin: Duration::seconds(5),
            claim_wait: std::time::Duration::from_secs(8),
            provider_retry: RetryPolicy::default(),
            conversation_reuse: Duration::seconds(3600),
            host_daily_budget: 100,
            create_budgets: CreateBudgets::default(),
            deployment: crate::config::LOCAL_DEPLOYMENT.to_owned(),
            events_local_mode: LocalMode(false),
        }
    }
}

pub struct Service {
    pub stores: Stores,
    /// The deployment's own provider accounts.
    pub providers: Providers,
    /// Orgs' own provider accounts.
    pub orgs: OrgAccounts,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub settings: Settings,
    /// Resolves subscription hosts for the SSRF check (tests inject answers).
    pub resolver: Arc<dyn Resolver>,
    /// The org views creates were decided on (checked by each claim's write).
    pub views: views::OrgViews,
}

impl Service {
    /// The meeting, if it exists and the caller may see it; a conversation meeting past its
    /// reuse window reads `expired` (guarantee 7).
    pub async fn meeting(&self, caller: &Caller, id: &MeetingId) -> ServiceResult<Meeting> {
        let mut meeting = self
            .stores
            .meetings
            .get_meeting(id)
            .await?
            .filter(|m| !m.is_gone(self.clock.now()))
            .ok_or(DomainError::NotFound("Meeting"))?;
        meeting.status = meeting.status_at(self.clock.now());
        Ok(policy::visible(caller, meeting)?)
    }

    /// The subject's meeting, if it has one and the caller may see it.
    pub async fn meeting_for_subject(
        &self,
        caller: &Caller,
        subject: &Subject,
    ) -> ServiceResult<Meeting> {
        let claim = self.stores.claims.get_claim(&caller.org, subject).await?;
        match claim {
            Some(c) if c.state == ClaimState::Ready => self.meeting(caller, &c.meeting_id).await,
            _ => Err(DomainError::NotFound("Meeting").into()),
        }
    }

    /// The provider a meeting lives at, in the account it was made in (configured, or the
    /// record is not servable here).
    pub fn provider_of(&self, meeting: &Meeting) -> ServiceResult<Arc<dyn MeetingProvider>> {
        if meeting.account == Account::Org {
            return Ok(self.orgs.adapter(&meeting.org, meeting.provider));
        }
        self.providers
            .get(meeting.provider)
            .cloned()
            .ok_or_else(|| {
                ServiceError::Inconsistent(format!(
                    "provider {} is not configured",
                    meeting.provider
                ))
            })
    }

    /// Stores `after` in place of `before` (its next version), or 409 when someone changed
    /// it meanwhile.
    async fn commit(&self, before: &Meeting, after: Meeting) -> ServiceResult<Meeting> {
        let after = after.next_version(before, self.clock.now());
        if self.stores.meetings.save(before, &after, None).await? {
            Ok(after)
        } else {
            Err(DomainError::ConcurrentChange.into())
        }
    }
}
