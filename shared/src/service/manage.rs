//! The meeting lifecycle after creation: reschedule, cancel, start and end. The provider
//! side first, then the versioned record (a concurrent change answers 409).

use super::{Service, ServiceResult};
use crate::domain::meeting::Transition;
use crate::domain::org::{self, Spend};
use crate::domain::request::RescheduleRequest;
use crate::domain::{Account, Caller, DomainError, Meeting, MeetingStatus, ProviderKind, policy};
use crate::ids::MeetingId;
use crate::providers::{Deletion, MeetingProvider, ProviderError};
use std::sync::Arc;
use std::time::Instant;

impl Service {
    /// The meeting, if the caller may see it and manage it, and its provider.
    async fn managed(
        &self,
        caller: &Caller,
        id: &MeetingId,
    ) -> ServiceResult<(Meeting, Arc<dyn MeetingProvider>)> {
        let meeting = self.meeting(caller, id).await?;
        policy::may_manage(caller, &meeting)?;
        let provider = self.provider_of(&meeting)?;
        Ok((meeting, provider))
    }

    /// `PATCH /meetings/{id}`: only while scheduled.
    pub async fn reschedule(
        &self,
        caller: &Caller,
        id: &MeetingId,
        changes: &RescheduleRequest,
        deadline: Instant,
    ) -> ServiceResult<Meeting> {
        let (meeting, provider) = self.managed(caller, id).await?;
        if meeting.status != MeetingStatus::Scheduled {
            return Err(DomainError::NotReschedulable(meeting.status).into());
        }
        let schedule = changes.applied_to(meeting.schedule());
        let budget = self
            .update_budget(&meeting, provider.as_ref(), deadline)
            .await?;
        if let Err(e) = provider.update(&meeting, &schedule, deadline).await {
            if let (ProviderError::HostDailyLimit { .. }, Some(b)) = (&e, &budget)
                && let Err(store) = self.stores.budgets.exhaust(b).await
            {
                tracing::warn!(cause = %crate::telemetry::cause(&store), "could not record a host's spent daily budget");
            }
            return Err(e.into());
        }
        let saved = self.commit(&meeting, meeting.rescheduled(schedule)).await?;
        tracing::info!(meetingId = %saved.id, "meeting rescheduled");
        Ok(saved)
    }

    /// An update spends from the host user's daily budget as a create does (Zoom counts
    /// both): past it, 429 and no provider call.
    async fn update_budget(
        &self,
        meeting: &Meeting,
        provider: &dyn MeetingProvider,
        deadline: Instant,
    ) -> ServiceResult<Option<Spend>> {
        if meeting.provider != ProviderKind::Zoom {
            return Ok(None);
        }
        let user = match &meeting.provider_user {
            Some(u) => u.clone(),
            None => provider.default_host(deadline).await?.unwrap_or_default(),
        };
        let limit = match meeting.account {
            Account::Deployment => self.settings.host_daily_budget,
            Account::Org => {
                let (profile, _) = self.stores.orgs.org_view(&meeting.org, None).await?;
                profile
                    .connection(meeting.provider)
                    .and_then(|c| c.host_daily_budget())
                    .unwrap_or(self.settings.host_daily_budget)
            }
        };
        let now = self.clock.now();
        let spend = org::host_spend(
            meeting.provider,
            meeting.account,
            &meeting.org,
            &user,
            limit,
            now,
        );
        if self
            .stores
            .budgets
            .spend(std::slice::from_ref(&spend))
            .await?
            .is_some()
        {
            tracing::warn!(meetingId = %meeting.id, "a host's daily provider budget is spent");
            return Err(DomainError::HostBudgetSpent {
                retry_after: spend.retry_after(now),
            }
            .into());
        }
        Ok(Some(spend))
    }

    /// `DELETE /meetings/{id}`: deleted at the provider (already gone counts), then
    /// `cancelled`. Repeating it answers the same cancelled meeting.
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: &MeetingId,
        deadline: Instant,
    ) -> ServiceResult<Meeting> {
        self.transition(caller, id, MeetingStatus::Cancelled, deadline)
            .await
    }

    /// `POST /meetings/{id}/start`: marks the meeting started (the provider starts it when
    /// the host opens the host link). Repeating it answers the same meeting.
    pub async fn start(
        &self,
        caller: &Caller,
        id: &MeetingId,
        deadline: Instant,
    ) -> ServiceResult<Meeting> {
        self.transition(caller, id, MeetingStatus::Started, deadline)
            .await
    }

    /// `POST /meetings/{id}/end`: ended at the provider (one already gone counts), then
    /// `ended`; a conversation's room is deleted there too. Repeating it answers the same
    /// meeting.
    pub async fn end(
        &self,
        caller: &Caller,
        id: &MeetingId,
        deadline: Instant,
    ) -> ServiceResult<Meeting> {
        self.transition(caller, id, MeetingStatus::Ended, deadline)
            .await
    }

    /// Moves a meeting to `target` by the transition table: the provider side first, then
    /// the record. Already there: answered as it is, with no provider call.
    async fn transition(
        &self,
        caller: &Caller,
        id: &MeetingId,
        target: MeetingStatus,
        deadline: Instant,
    ) -> ServiceResult<Meeting> {
        let (meeting, provider) = self.managed(caller, id).await?;
        let now = self.clock.now();
        let mut after = match meeting.transition(target, now)? {
            Transition::Already => return Ok(meeting),
            Transition::To(after) => *after,
        };
        match target {
            MeetingStatus::Cancelled => {
                delete_at_provider(provider.as_ref(), &meeting, deadline).await?
            }
            // A conversation room lets people in without their host: ending it here
            // closes it at the provider for good, not a week later.
            MeetingStatus::Ended if meeting.room_close_at().is_some() => {
                delete_at_provider(provider.as_ref(), &meeting, deadline).await?;
                after.room_closed_at = Some(now);
            }
            MeetingStatus::Ended => match provider.end(&meeting, deadline).await {
                Ok(()) | Err(ProviderError::NotFound) => {}
                Err(e) => return Err(e.into()),
            },
            _ => {}
        }
        let saved = self.commit(&meeting, after).await?;
        tracing::info!(meetingId = %saved.id, status = target.as_str(), "meeting status changed");
        Ok(saved)
    }
}

/// Deletes the provider meeting; one running now is ended first, then deleted.
async fn delete_at_provider(
    provider: &dyn MeetingProvider,
    meeting: &Meeting,
    deadline: Instant,
) -> Result<(), ProviderError> {
    let id = &meeting.provider_meeting_id;
    if provider.delete(id, deadline).await? != Deletion::InProgress {
        return Ok(());
    }
    provider.end(meeting, deadline).await?;
    match provider.delete(id, deadline).await? {
        Deletion::InProgress => Err(ProviderError::unavailable(
            "meeting still in progress after ending it",
        )),
        _ => Ok(()),
    }
}
