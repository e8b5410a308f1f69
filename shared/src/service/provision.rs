//! Provisioning a subject's meeting exactly once (guarantee 1), following the claim rule
//! (`crate::domain::claim::next_step`): reuse the meeting, wait for the caller creating it,
//! or claim the subject and create it — adopting what an earlier attempt left at the
//! provider rather than creating a second one.

use super::{Service, ServiceError, ServiceResult};
use crate::clock::{Wait, timeout_at};
use crate::domain::request::AppointmentMeetingRequest;
use crate::domain::{
    Caller, Claim, ClaimState, ClaimStep, DomainError, Meeting, MeetingStatus, ProviderKind,
    Subject, SubjectKind, claim, policy,
};
use crate::providers::{CreateSpec, MeetingProvider, ProviderError, ProviderMeeting};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Zoom allows passcodes of up to 10 characters.
const PASSCODE_LEN: usize = 10;
/// A caller waiting for another's meeting looks again after this, doubling up to the cap.
const FIRST_POLL: Duration = Duration::from_millis(20);
const POLL_CAP: Duration = Duration::from_millis(200);

/// The result of a provisioning call: the meeting and whether this call created it.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub meeting: Meeting,
    pub created: bool,
}

/// The provider to create with, and the fallback when it is unavailable.
struct Target {
    primary: Arc<dyn MeetingProvider>,
    fallback: Option<Arc<dyn MeetingProvider>>,
}

/// What the provider side produced: the meeting, whether it was adopted (made by an
/// earlier attempt), and where it lives.
struct Made {
    meeting: ProviderMeeting,
    adopted: bool,
    at: ProviderKind,
}

impl Service {
    /// Creates the subject's meeting or returns the one that exists (guarantee 1).
    /// Nothing of this call runs past `deadline` (the request's own time budget).
    pub async fn provision(
        &self,
        caller: &Caller,
        subject: &Subject,
        req: &AppointmentMeetingRequest,
        deadline: Instant,
    ) -> ServiceResult<Provisioned> {
        match subject.kind {
            SubjectKind::Appointment => policy::may_provision_appointment(caller, &req.host)?,
            SubjectKind::Conversation => {
                policy::may_provision_conversation(caller, &req.host, &req.participants)?
            }
        }
        let target = self.target(req)?;
        let give_up_at = deadline.min(self.clock.instant() + self.settings.claim_wait);
        let mut pause = FIRST_POLL;
        loop {
            let now = self.clock.now();
            let found = self.stores.claims.get_claim(&caller.org, subject).await?;
            match claim::next_step(found.as_ref(), now) {
                ClaimStep::Reuse(id) => return self.reuse(caller, subject, &id).await,
                ClaimStep::Wait => {
                    // Someone else is creating it: wait for their meeting.
                    if self.clock.instant() + pause > give_up_at {
                        return Err(DomainError::Provisioning.into());
                    }
                    self.clock.sleep(pause, Wait::ClaimPoll).await;
                    pause = (pause * 2).min(POLL_CAP);
                }
                ClaimStep::Claim {
                    continues,
                    reconcile,
                } => {
                    let ours = self.new_claim(continues, reconcile);
                    if !self.take(caller, subject, found.as_ref(), &ours).await? {
                        continue;
                    }
                    if let Some(meeting) = self
                        .as_holder(caller, subject, req, &target, &ours, deadline)
                        .await?
                    {
                        tracing::info!(meetingId = %meeting.id, provider = %meeting.provider, "meeting created");
                        crate::metrics::count(
                            "MeetingsCreated",
                            &[("provider", meeting.provider.as_str())],
                        );
                        return Ok(Provisioned {
                            meeting,
                            created: true,
                        });
                    }
                    // Our claim was taken over while we worked; the taker adopts our
                    // provider meeting by its marker. Answer whatever it commits.
                }
            }
        }
    }

    /// The requested provider (no fallback from a provider the caller named), else the
    /// deployment's primary with its fallback.
    fn target(&self, req: &AppointmentMeetingRequest) -> ServiceResult<Target> {
        let kind = req.provider.unwrap_or(self.providers.primary());
        let primary = self
            .providers
            .get(kind)
            .cloned()
            .ok_or(DomainError::Invalid(crate::domain::Invalid::new(
                "provider",
                "is not configured for this deployment",
            )))?;
        let fallback = match req.provider {
            Some(_) => None,
            None => self.providers.fallback().cloned(),
        };
        Ok(Target { primary, fallback })
    }

    /// The ready claim's meeting, if the caller may have it.
    async fn reuse(
        &self,
        caller: &Caller,
        subject: &Subject,
        id: &crate::ids::MeetingId,
    ) -> ServiceResult<Provisioned> {
        let meeting = self.stores.meetings.get_meeting(id).await?.ok_or_else(|| {
            ServiceError::Inconsistent("a ready claim without its meeting".into())
        })?;
        let meeting = policy::visible(caller, meeting)?;
        if subject.kind == SubjectKind::Appointment {
            policy::may_reuse_appointment(caller, &meeting)?;
        }
        Ok(Provisioned {
            meeting,
            created: false,
        })
    }

    fn new_claim(&self, continues: Option<crate::ids::MeetingId>, reconcile: bool) -> Claim {
        Claim {
            state: ClaimState::Pending,
            meeting_id: continues.unwrap_or_else(|| self.ids.meeting_id()),
            token: self.ids.claim_token(),
            lease_until: Some(self.clock.now() + self.settings.claim_lease),
            reconcile,
            window_ends_at: None,
        }
    }

    /// Writes our claim over `found`. A conditional write whose answer was lost and retried
    /// by the SDK fails its condition although it took effect: then the claim is ours too.
    async fn take(
        &self,
        caller: &Caller,
        subject: &Subject,
        found: Option<&Claim>,
        ours: &Claim,
    ) -> ServiceResult<bool> {
        let claims = &self.stores.claims;
        let won = claims
            .try_claim(&caller.org, subject, found, ours, self.clock.now())
            .await?
            || claims
                .get_claim(&caller.org, subject)
                .await?
                .is_some_and(|c| c.state == ClaimState::Pending && c.token == ours.token);
        if won && found.is_some() {
            tracing::info!(meetingId = %ours.meeting_id, reconcile = ours.reconcile, "took over a subject claim");
        }
        Ok(won)
    }

    /// Holding `claim`: the provider side, within what is left of the lease (less a margin:
    /// nobody takes over while a create of ours may still land) and of the request's time,
    /// then the record. `Ok(None)`: the claim was lost meanwhile.
    async fn as_holder(
        &self,
        caller: &Caller,
        subject: &Subject,
        req: &AppointmentMeetingRequest,
        target: &Target,
        claim: &Claim,
        deadline: Instant,
    ) -> ServiceResult<Option<Meeting>> {
        let lease_end =
            claim.lease_until.unwrap_or_else(|| self.clock.now()) - self.settings.lease_margin;
        let lease_left = (lease_end - self.clock.now()).to_std().unwrap_or_default();
        let until = deadline.min(self.clock.instant() + lease_left);
        let work = self.provider_side(subject, req, target, claim, until);
        let outcome = timeout_at(self.clock.as_ref(), until, work)
            .await
            .unwrap_or_else(|_| {
                // A create may still land at the provider: whoever claims next looks first.
                Err(ProviderError::Unavailable {
                    retry_after: None,
                    ambiguous: true,
                    in_flight: true,
                    cause: "provider work outlasted the claim's budget".into(),
                })
            });
        match outcome {
            Ok(made) => self.record(caller, subject, req, claim, made).await,
            Err(e) => {
                self.release(caller, subject, claim, claim.reconcile || e.is_ambiguous())
                    .await;
                Err(e.into())
            }
        }
    }

    /// Adopts what an earlier attempt made (when the claim says to look), else creates the
    /// meeting: at the primary, or at the fallback while the primary is unavailable (a
    /// primary meeting that landed anyway is an orphan for the cleanup).
    async fn provider_side(
        &self,
        subject: &Subject,
        req: &AppointmentMeetingRequest,
        target: &Target,
        claim: &Claim,
        deadline: Instant,
    ) -> Result<Made, ProviderError> {
        let primary = target.primary.as_ref();
        if claim.reconcile
            && let Some(found) = primary.find_by_marker(&claim.meeting_id, deadline).await?
        {
            tracing::info!(meetingId = %claim.meeting_id, "adopted the provider meeting of an earlier attempt");
            return Ok(Made {
                meeting: found,
                adopted: true,
                at: primary.kind(),
            });
        }
        let spec = CreateSpec {
            meeting_id: claim.meeting_id.clone(),
            schedule: req.schedule(),
            passcode: self.ids.passcode(PASSCODE_LEN),
            kind: subject.kind,
        };
        let created = |meeting, at: &dyn MeetingProvider| Made {
            meeting,
            adopted: false,
            at: at.kind(),
        };
        let error = match primary.create(&spec, deadline).await {
            Ok(m) => return Ok(created(m, primary)),
            Err(e) => e,
        };
        let Some(fallback) = target
            .fallback
            .as_deref()
            .filter(|_| error.is_unavailable())
        else {
            return Err(error);
        };
        tracing::warn!(meetingId = %claim.meeting_id, from = %primary.kind(), to = %fallback.kind(), "primary provider unavailable, using the fallback");
        let m = fallback.create(&spec, deadline).await?;
        Ok(created(m, fallback))
    }

    /// Commits the meeting with the claim. An adopted meeting was created for an earlier
    /// request: the provider's schedule is the truth, so the record matches the room.
    async fn record(
        &self,
        caller: &Caller,
        subject: &Subject,
        req: &AppointmentMeetingRequest,
        claim: &Claim,
        made: Made,
    ) -> ServiceResult<Option<Meeting>> {
        let schedule = made
            .meeting
            .schedule
            .clone()
            .filter(|_| made.adopted)
            .unwrap_or_else(|| req.schedule());
        let now = self.clock.now();
        let meeting = Meeting {
            id: claim.meeting_id.clone(),
            org: caller.org.clone(),
            subject: subject.clone(),
            provider: made.at,
            provider_meeting_id: made.meeting.provider_meeting_id,
            provider_uuid: made.meeting.uuid,
            topic: schedule.topic,
            start_time: schedule.start_time,
            duration_minutes: schedule.duration_minutes,
            timezone: schedule.timezone,
            status: MeetingStatus::Scheduled,
            host: req.host.clone(),
            participants: req.participants.clone(),
            initiated_by: caller.user_id.clone(),
            created_at: now,
            updated_at: now,
            started_at: None,
            ended_at: None,
            expires_at: req.reuse_window.map(|w| now + w),
            attendance: Default::default(),
            links: made.meeting.links,
            version: 1,
            provider_event_ts: None,
        };
        let committed = self.stores.claims.finalize(&claim.token, &meeting).await?;
        Ok(committed.then_some(meeting))
    }

    /// Gives the claim up after a failed provider call; `reconcile` when the failure was
    /// ambiguous (the next claimant looks for what we may have made). Best effort: the
    /// lease frees the subject anyway.
    async fn release(&self, caller: &Caller, subject: &Subject, claim: &Claim, reconcile: bool) {
        let released = self
            .stores
            .claims
            .release_claim(
                &caller.org,
                subject,
                &claim.token,
                reconcile,
                self.clock.now(),
            )
            .await;
        if let Err(e) = released {
            tracing::error!(cause = %crate::telemetry::cause(&e), "could not release a claim");
        }
    }
}
