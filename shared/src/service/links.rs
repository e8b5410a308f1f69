//! Role-specific links (guarantee 2): the host gets the host link (a Zoom start_url,
//! refreshed when it may be stale; a Jitsi moderator token), everyone else the join link.
//! Every issued link is audit-logged, never the link itself.

use super::{Service, ServiceResult};
use crate::clock::Wait;
use crate::domain::{Caller, DomainError, LinkRole, Meeting, policy};
use crate::ids::MeetingId;
use crate::providers::{MeetingProvider, PersonalLink, ProviderError};
use chrono::{DateTime, Utc};
use std::time::Instant;

/// A link handed to one caller. Its `Debug` shows no URL or passcode.
#[derive(Clone)]
pub struct Link {
    pub url: String,
    pub role: LinkRole,
    pub password: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// The caller's link to a meeting, of `role` or their own by default.
    pub async fn link(
        &self,
        caller: &Caller,
        id: &MeetingId,
        role: Option<LinkRole>,
        deadline: Instant,
    ) -> ServiceResult<Link> {
        let meeting = self.meeting(caller, id).await?;
        let role = role.unwrap_or_else(|| policy::default_link_role(caller, &meeting));
        policy::may_get_link(caller, &meeting, role)?;
        if !meeting.status.joinable() {
            return Err(DomainError::NotJoinable {
                status: meeting.status,
                links_expired: false,
            }
            .into());
        }
        let provider = self.provider_of(&meeting)?;
        let link = match provider
            .personal_link(&meeting, role, &caller.user_id)
            .await?
        {
            Some(PersonalLink::Issued { url, expires_at }) => Link {
                url,
                role,
                password: None,
                expires_at: Some(expires_at),
            },
            Some(PersonalLink::Expired) => {
                return Err(DomainError::NotJoinable {
                    status: meeting.status,
                    links_expired: true,
                }
                .into());
            }
            None if role == LinkRole::Participant => Link {
                url: meeting.links.join_url.clone(),
                role,
                password: meeting.links.password.clone(),
                expires_at: None,
            },
            None => {
                self.host_link(provider.as_ref(), &meeting, deadline)
                    .await?
            }
        };
        tracing::info!(
            audit = "link_issued",
            meetingId = %meeting.id,
            role = role.as_str(),
            callerId = %caller.user_id,
            callerRole = caller.role.as_str(),
            "link issued"
        );
        crate::metrics::count("LinksIssued", &[("role", role.as_str())]);
        Ok(link)
    }

    /// The stored host link while it is fresh enough, else a new one from the provider
    /// (stored for the next caller).
    async fn host_link(
        &self,
        provider: &dyn MeetingProvider,
        meeting: &Meeting,
        deadline: Instant,
    ) -> ServiceResult<Link> {
        let now = self.clock.now();
        let stale = match (
            provider.host_link_max_age(),
            meeting.links.host_url_fetched_at,
        ) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(max_age), Some(at)) => now - at >= max_age,
        };
        let (url, generated_at) = if stale {
            let (url, at) = self.fresh_host_link(provider, meeting, deadline).await?;
            self.stores
                .meetings
                .update_host_link(&meeting.id, &url, at)
                .await?;
            (url, Some(at))
        } else {
            (
                meeting.links.host_url.clone(),
                meeting.links.host_url_fetched_at,
            )
        };
        Ok(Link {
            url,
            role: LinkRole::Host,
            password: meeting.links.password.clone(),
            expires_at: provider
                .host_link_lifetime()
                .zip(generated_at)
                .map(|(lifetime, at)| at + lifetime),
        })
    }

    /// A new host link. One "not found" is asked again a second later before it stands:
    /// a meeting that exists can answer 404/3001 once (Moodle's mod_zoom marks meetings
    /// deleted after such an answer and loses them).
    async fn fresh_host_link(
        &self,
        provider: &dyn MeetingProvider,
        meeting: &Meeting,
        deadline: Instant,
    ) -> Result<(String, DateTime<Utc>), ProviderError> {
        match provider.fresh_host_link(meeting, deadline).await {
            Err(ProviderError::NotFound) if self.clock.left(deadline) > NOT_FOUND_RECHECK * 2 => {
                tracing::warn!(meetingId = %meeting.id, "the provider said the meeting is gone; asking once more");
                self.clock
                    .sleep(NOT_FOUND_RECHECK, Wait::ProviderRetry)
                    .await;
                provider.fresh_host_link(meeting, deadline).await
            }
            other => other,
        }
    }
}

/// How long a host link refresh waits before asking again after one "not found".
const NOT_FOUND_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);
