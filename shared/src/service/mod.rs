//! The domain rules: provisioning a subject's meeting exactly once, reading meetings, and
//! issuing role-specific links.

use crate::clock::Clock;
use crate::domain::ProviderKind;
use crate::domain::request::AppointmentMeetingRequest;
use crate::domain::{Caller, LinkRole, Meeting, MeetingStatus, Subject, SubjectKind, policy};
use crate::error::{ApiError, ErrorCode};
use crate::ids::{IdGenerator, MeetingId};
use crate::providers::PersonalLink;
use crate::providers::retry::RetryPolicy;
use crate::providers::{
    CreateSpec, MeetingProvider, ProviderError, ProviderMeeting, Providers, Schedule,
};
use crate::store::{Claim, ClaimState, MeetingStore};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

mod events;
pub mod manage;
pub use events::EventOutcome;
pub use manage::{MeetingPage, PageRequest};

/// Zoom allows passcodes of up to 10 characters.
const PASSCODE_LEN: usize = 10;

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            claim_lease: Duration::seconds(30),
            lease_margin: Duration::seconds(5),
            claim_wait: std::time::Duration::from_secs(8),
            provider_retry: RetryPolicy::default(),
            conversation_reuse: Duration::seconds(3600),
        }
    }
}

pub struct Service {
    pub store: Arc<dyn MeetingStore>,
    pub providers: Providers,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub settings: Settings,
}

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

impl Link {
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "url": self.url, "role": self.role.as_str() });
        if let Some(p) = &self.password {
            v["password"] = json!(p);
        }
        if let Some(t) = self.expires_at {
            v["expiresAt"] = json!(crate::domain::rfc3339(t));
        }
        v
    }
}

/// The result of a provisioning call: the meeting and whether this call created it.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub meeting: Meeting,
    pub created: bool,
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
    ) -> Result<Provisioned, ApiError> {
        match subject.kind {
            SubjectKind::Appointment => policy::may_provision_appointment(caller, &req.host)?,
            SubjectKind::Conversation => {
                policy::may_provision_conversation(caller, &req.host, &req.participants)?
            }
        }
        let kind = req.provider.unwrap_or(self.providers.primary());
        let provider = self
            .providers
            .get(kind)
            .ok_or_else(|| {
                ApiError::validation("provider", "is not configured for this deployment")
            })?
            .clone();
        // A provider the caller named is their choice: no fallback from it.
        let fallback = match req.provider {
            Some(_) => None,
            None => self.providers.fallback().cloned(),
        };
        let give_up_at = deadline.min(Instant::now() + self.settings.claim_wait);
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            let now = self.clock.now();
            let claim = self.store.get_claim(&caller.org, subject).await?;
            match &claim {
                Some(c) if c.state == ClaimState::Ready && !c.is_takeable(now) => {
                    let meeting = self
                        .store
                        .get_meeting(&c.meeting_id)
                        .await?
                        .ok_or_else(|| ApiError::internal("ready claim without its meeting"))?;
                    let meeting = policy::visible(caller, meeting)?;
                    if subject.kind == SubjectKind::Appointment {
                        policy::may_reuse_appointment(caller, &meeting)?;
                    }
                    return Ok(Provisioned {
                        meeting,
                        created: false,
                    });
                }
                Some(c) if !c.is_takeable(now) => {
                    // Someone else is creating it: wait for their meeting.
                    if Instant::now() + pause > give_up_at {
                        return Err(ApiError::new(
                            ErrorCode::Conflict,
                            "The meeting is being created by another request; retry shortly",
                        )
                        .with_details(json!({ "reason": "MEETING_PROVISIONING" }))
                        .with_retry_after(1));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                    continue;
                }
                _ => {}
            }
            // A conversation whose window is over gets a new meeting; any other takeover
            // continues the same one.
            let fresh = claim.as_ref().is_none_or(|c| c.state == ClaimState::Ready);
            let ours = Claim {
                state: ClaimState::Pending,
                meeting_id: match &claim {
                    Some(c) if !fresh => c.meeting_id.clone(),
                    _ => self.ids.meeting_id(),
                },
                token: self.ids.claim_token(),
                lease_until: Some(now + self.settings.claim_lease),
                // A pending claim we take over, or an ambiguous failure, may have left a
                // provider meeting behind: adopt it rather than create a second one.
                reconcile: !fresh
                    && claim
                        .as_ref()
                        .is_some_and(|c| c.reconcile || c.state == ClaimState::Pending),
                window_ends_at: None,
            };
            let won = self
                .store
                .try_claim(&caller.org, subject, claim.as_ref(), &ours, now)
                .await?
                || self.holds(caller, subject, &ours.token).await?;
            if !won {
                continue;
            }
            if claim.is_some() {
                tracing::info!(meetingId = %ours.meeting_id, reconcile = ours.reconcile, "took over a subject claim");
            }
            // Provider work must end before the lease does (minus a margin) and before the
            // request's deadline.
            let lease_left =
                (now + self.settings.claim_lease - self.settings.lease_margin - self.clock.now())
                    .to_std()
                    .unwrap_or_default();
            let budget = lease_left.min(deadline.saturating_duration_since(Instant::now()));
            if let Some(meeting) = self
                .create_as_holder(
                    caller,
                    subject,
                    req,
                    (provider.as_ref(), fallback.as_deref()),
                    &ours,
                    budget,
                )
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
            // Our claim was taken over while we worked; the taker adopts our provider
            // meeting by its marker. Answer whatever it commits.
        }
    }

    /// Whether `token` holds the subject's pending claim: a conditional write whose answer
    /// was lost and retried by the SDK fails its condition although it took effect.
    async fn holds(
        &self,
        caller: &Caller,
        subject: &Subject,
        token: &str,
    ) -> Result<bool, ApiError> {
        Ok(self
            .store
            .get_claim(&caller.org, subject)
            .await?
            .is_some_and(|c| c.state == ClaimState::Pending && c.token == token))
    }

    /// Runs the provider side while holding `claim`, within `budget`. `Ok(None)`: the claim
    /// was lost meanwhile.
    async fn create_as_holder(
        &self,
        caller: &Caller,
        subject: &Subject,
        req: &AppointmentMeetingRequest,
        (provider, fallback): (&dyn MeetingProvider, Option<&dyn MeetingProvider>),
        claim: &Claim,
        budget: std::time::Duration,
    ) -> Result<Option<Meeting>, ApiError> {
        let spec = CreateSpec {
            meeting_id: claim.meeting_id.clone(),
            topic: req.topic.clone(),
            start_time: req.start_time,
            duration_minutes: req.duration_minutes,
            timezone: req.timezone.clone(),
            passcode: self.ids.passcode(PASSCODE_LEN),
            kind: subject.kind,
        };
        let provider_deadline = Instant::now() + budget;
        let work = async {
            if claim.reconcile
                && let Some(found) = provider
                    .find_by_marker(&claim.meeting_id, provider_deadline)
                    .await?
            {
                tracing::info!(meetingId = %claim.meeting_id, "adopted the provider meeting of an earlier attempt");
                return Ok((found, true, provider.kind()));
            }
            match provider.create(&spec, provider_deadline).await {
                Ok(m) => Ok((m, false, provider.kind())),
                // The primary is down after its retries: the fallback provider takes the
                // meeting (a primary meeting that landed anyway is an orphan for the cleanup).
                Err(e) if e.is_unavailable() && fallback.is_some() => {
                    let Some(fallback) = fallback else {
                        return Err(e);
                    };
                    tracing::warn!(meetingId = %claim.meeting_id, from = %provider.kind(), to = %fallback.kind(), "primary provider unavailable, using the fallback");
                    let m = fallback.create(&spec, provider_deadline).await?;
                    Ok((m, false, fallback.kind()))
                }
                Err(e) => Err(e),
            }
        };
        let outcome = tokio::time::timeout(budget, work)
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
        let (pm, adopted, created_by): (ProviderMeeting, bool, ProviderKind) = match outcome {
            Ok(found) => found,
            Err(e) => {
                let reconcile = claim.reconcile || e.is_ambiguous();
                if let Err(release) = self
                    .store
                    .release_claim(
                        &caller.org,
                        subject,
                        &claim.token,
                        reconcile,
                        self.clock.now(),
                    )
                    .await
                {
                    // The lease still frees the subject later.
                    tracing::error!(
                        cause = release.cause.as_deref().unwrap_or(""),
                        "could not release a claim"
                    );
                }
                return Err(e.into());
            }
        };
        // An adopted meeting was created from an earlier request: the provider's schedule is
        // the truth, so the record matches the room people will join.
        let schedule = pm.schedule.clone().filter(|_| adopted).unwrap_or(Schedule {
            topic: req.topic.clone(),
            start_time: req.start_time,
            duration_minutes: req.duration_minutes,
            timezone: req.timezone.clone(),
        });
        let now = self.clock.now();
        let meeting = Meeting {
            id: claim.meeting_id.clone(),
            org: caller.org.clone(),
            subject: subject.clone(),
            provider: created_by,
            provider_meeting_id: pm.provider_meeting_id,
            provider_uuid: pm.uuid,
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
            links: pm.links,
            version: 1,
            provider_event_ts: None,
        };
        Ok(self
            .store
            .finalize(&claim.token, &meeting)
            .await?
            .then_some(meeting))
    }

    /// The subject's meeting, if it exists and the caller may see it.
    pub async fn meeting_for_subject(
        &self,
        caller: &Caller,
        subject: &Subject,
    ) -> Result<Meeting, ApiError> {
        let claim = self.store.get_claim(&caller.org, subject).await?;
        let id = match claim {
            Some(c) if c.state == ClaimState::Ready => c.meeting_id,
            _ => return Err(ApiError::not_found("Meeting")),
        };
        self.meeting(caller, &id).await
    }

    pub async fn meeting(&self, caller: &Caller, id: &MeetingId) -> Result<Meeting, ApiError> {
        let mut meeting = self
            .store
            .get_meeting(id)
            .await?
            .ok_or_else(|| ApiError::not_found("Meeting"))?;
        // Guarantee 7: a conversation meeting past its reuse window reads `expired`, whatever
        // TTL has or has not removed yet.
        if meeting.expires_at.is_some_and(|t| t <= self.clock.now())
            && meeting.status.can_become(MeetingStatus::Expired)
        {
            meeting.status = MeetingStatus::Expired;
        }
        policy::visible(caller, meeting)
    }

    /// The caller's link to a meeting (guarantee 2). Every issued link is audit-logged.
    pub async fn link(
        &self,
        caller: &Caller,
        id: &MeetingId,
        role: Option<LinkRole>,
        deadline: Instant,
    ) -> Result<Link, ApiError> {
        let meeting = self.meeting(caller, id).await?;
        let role = role.unwrap_or_else(|| policy::default_link_role(caller, &meeting));
        policy::may_get_link(caller, &meeting, role)?;
        if !meeting.status.joinable() {
            return Err(ApiError::new(
                ErrorCode::MeetingNotJoinable,
                format!("The meeting is {}", meeting.status.as_str()),
            )
            .with_details(json!({ "status": meeting.status.as_str() })));
        }
        let provider = self.providers.get(meeting.provider).ok_or_else(|| {
            ApiError::internal(format!("provider {} is not configured", meeting.provider))
        })?;
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
                return Err(ApiError::new(
                    ErrorCode::MeetingNotJoinable,
                    "The meeting's time for joining has passed",
                )
                .with_details(
                    json!({ "status": meeting.status.as_str(), "reason": "LINKS_EXPIRED" }),
                ));
            }
            None => match role {
                LinkRole::Participant => Link {
                    url: meeting.links.join_url.clone(),
                    role,
                    password: meeting.links.password.clone(),
                    expires_at: None,
                },
                LinkRole::Host => {
                    self.host_link(provider.as_ref(), &meeting, deadline)
                        .await?
                }
            },
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

    async fn host_link(
        &self,
        provider: &dyn MeetingProvider,
        meeting: &Meeting,
        deadline: Instant,
    ) -> Result<Link, ApiError> {
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
            let (url, at) = provider.fresh_host_link(meeting, deadline).await?;
            self.store.update_host_link(&meeting.id, &url, at).await?;
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
}
