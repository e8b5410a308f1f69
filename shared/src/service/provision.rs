//! Provisioning a subject's meeting exactly once (guarantee 1), following the claim rule
//! (`crate::domain::claim::next_step`): reuse the meeting, wait for the caller creating it,
//! or claim the subject and create it — adopting what an earlier attempt left at the
//! provider rather than creating a second one.

use super::{Service, ServiceError, ServiceResult};
use crate::clock::{Wait, timeout_at};
use crate::domain::notice::Signals;
use crate::domain::org::{self, Spend};
use crate::domain::request::AppointmentMeetingRequest;
use crate::domain::{
    Account, Caller, Claim, ClaimState, ClaimStep, DomainError, Meeting, MeetingStatus, OrgProfile,
    ProviderKind, Subject, SubjectKind, claim, policy,
};
use crate::ids::UserId;
use crate::providers::{CreateSpec, MeetingProvider, ProviderError, ProviderMeeting};
use crate::store::{ClaimAttempt, Claimed, OrgView};
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

/// Claim attempts of one call at most (each lost to a concurrent writer or a changed org
/// view): past them the caller is told to try again.
const MAX_ATTEMPTS: u32 = 8;

/// The provider to create with, and the fallback when it is unavailable.
struct Target {
    primary: Placed,
    fallback: Option<Placed>,
    /// The provider user an earlier attempt (being taken over) created under, when it is
    /// not today's host user: its meeting is looked for there too.
    earlier_user: Option<String>,
    /// The primary host's daily budget refused the claim's spend: `Retry-After` seconds.
    primary_spent: Option<u64>,
}

/// A provider as this org uses it: in whose account, under which host user, spending
/// from which daily budget.
struct Placed {
    provider: Arc<dyn MeetingProvider>,
    account: Account,
    host_user: Option<String>,
    budget: Option<Spend>,
    /// Its budget was spent with the claim.
    prepaid: bool,
}

/// Where a provider would be placed for this org and host.
enum Placing {
    At(Placed),
    /// Neither the org nor the deployment has the provider.
    NotConfigured,
    /// The host's provider user is not known without a call.
    NeedsCall,
}

/// What the provider side produced: the meeting, whether it was adopted (made by an
/// earlier attempt), and where it lives.
struct Made {
    meeting: ProviderMeeting,
    adopted: bool,
    at: ProviderKind,
    account: Account,
    provider_user: Option<String>,
}

/// One provisioning call's state between claim attempts.
struct Attempting {
    /// The org view decided on; `cached` until a read or a refusal has confirmed it.
    view: OrgView,
    cached: bool,
    /// The stored claim as last seen (`None` at first: most creates find none, and a
    /// refused claim write returns the stored one).
    found: Option<Claim>,
    /// Where a new meeting goes, once known without a provider call.
    target: Option<Target>,
    attempts: u32,
}

/// What one claim step came to.
enum Step {
    Done(Box<Provisioned>),
    Again,
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
        may_provision(caller, subject, req)?;
        let mut at = self.attempting(caller, &req.host).await?;
        let give_up_at = deadline.min(self.clock.instant() + self.settings.claim_wait);
        let mut pause = FIRST_POLL;
        loop {
            if let Err(e) = policy::may_host(caller, &req.host, at.view.host.is_some()) {
                // A refusal is never decided on a cached view: read it, then decide.
                self.reread_or(caller, &mut at, e.into()).await?;
                continue;
            }
            let req = &self.with_org_window(req, &at.view.profile);
            match claim::next_step(at.found.as_ref(), self.clock.now()) {
                ClaimStep::Reuse(id) => return self.reuse(caller, subject, req, &id).await,
                ClaimStep::Wait => {
                    // Someone else is creating it: wait for their meeting.
                    if self.clock.instant() + pause > give_up_at {
                        return Err(DomainError::Provisioning.into());
                    }
                    self.clock.sleep(pause, Wait::ClaimPoll).await;
                    pause = (pause * 2).min(POLL_CAP);
                    at.found = self.stores.claims.get_claim(&caller.org, subject).await?;
                }
                ClaimStep::Claim {
                    continues,
                    reconcile,
                } => {
                    let work = (subject, req, deadline);
                    let step = self.claim_step(caller, work, &mut at, (continues, reconcile));
                    if let Step::Done(made) = step.await? {
                        return Ok(*made);
                    }
                }
            }
        }
    }

    /// The org view from this container's cache, else read.
    async fn attempting(&self, caller: &Caller, host: &UserId) -> ServiceResult<Attempting> {
        let (view, cached) = match self.views.get(&caller.org, host) {
            Some(v) => (v, true),
            None => (self.stores.orgs.read_view(&caller.org, host).await?, false),
        };
        Ok(Attempting {
            view,
            cached,
            found: None,
            target: None,
            attempts: 0,
        })
    }

    /// `error` was decided on the view: from a cached view, the view is read again (and
    /// decided on again); from a confirmed one, it is the answer.
    async fn reread_or(
        &self,
        caller: &Caller,
        at: &mut Attempting,
        error: ServiceError,
    ) -> ServiceResult<()> {
        if !at.cached {
            return Err(error);
        }
        at.view = self
            .stores
            .orgs
            .read_view(&caller.org, &at.view.host_user)
            .await?;
        self.views.keep(&caller.org, &at.view);
        at.cached = false;
        at.target = None;
        Ok(())
    }

    /// Claims the subject (with the caller's budget, and the host's when the target is known
    /// without a call, in one write), then makes the meeting. `Step::Again`: the claim's
    /// write was refused and `at` holds what refused it.
    async fn claim_step(
        &self,
        caller: &Caller,
        (subject, req, deadline): (&Subject, &AppointmentMeetingRequest, Instant),
        at: &mut Attempting,
        (continues, reconcile): (Option<crate::ids::MeetingId>, bool),
    ) -> ServiceResult<Step> {
        at.attempts += 1;
        if at.attempts > MAX_ATTEMPTS {
            return Err(DomainError::Provisioning.into());
        }
        self.may_start_next(caller, at.found.as_ref()).await?;
        if at.target.is_none() {
            match self.target(caller, req, &at.view, None).await {
                Ok(t) => at.target = t,
                Err(e) if at.cached => {
                    return self.reread_or(caller, at, e).await.map(|()| Step::Again);
                }
                // A reuse never depends on today's host mapping: the claim is tried without
                // a target, and only a claim won answers the error (as its holder).
                Err(_) => {}
            }
        }
        let ours = self.new_claim(continues, reconcile, at.target.as_ref());
        let spends = self.spends(caller, at.target.as_ref());
        let attempt = ClaimAttempt {
            previous: at.found.as_ref(),
            claim: &ours,
            now: self.clock.now(),
            spends: &spends,
            view: &at.view,
        };
        let claimed = self
            .stores
            .claims
            .attempt_claim(&caller.org, subject, &attempt);
        if !self.taken(caller, at, claimed.await?, &ours, &spends)? {
            return Ok(Step::Again);
        }
        if spends.len() > 2
            && let Some(t) = at.target.as_mut()
        {
            t.primary.prepaid = true;
        }
        let spent = [spends[0].clone(), spends[1].clone()];
        let made = self.as_claimant(caller, subject, req, (at, &ours, &spent), deadline);
        Ok(made.await?.map_or(Step::Again, |m| Step::Done(Box::new(m))))
    }

    /// Whether the claim is ours; else `at` takes in what refused it.
    fn taken(
        &self,
        caller: &Caller,
        at: &mut Attempting,
        claimed: Claimed,
        ours: &Claim,
        spends: &[Spend],
    ) -> ServiceResult<bool> {
        if let Claimed::ViewChanged(view) = claimed {
            at.view = *view;
            at.cached = false;
            at.target = None;
            self.views.keep(&caller.org, &at.view);
            return Ok(false);
        }
        // Any other answer found the view as it was decided on.
        at.cached = false;
        self.views.keep(&caller.org, &at.view);
        match claimed {
            Claimed::Taken => {}
            // Our own write whose answer was lost and retried: the claim is ours.
            Claimed::Lost(Some(c)) if c.token == ours.token && c.state == ClaimState::Pending => {}
            Claimed::Lost(stored) => {
                at.found = stored;
                return Ok(false);
            }
            Claimed::OverBudget(i) => {
                self.over_budget(i, spends, at.target.as_mut())?;
                return Ok(false);
            }
            Claimed::ViewChanged(_) => return Ok(false),
        }
        if at.found.is_some() {
            tracing::info!(meetingId = %ours.meeting_id, reconcile = ours.reconcile, "took over a subject claim");
        }
        Ok(true)
    }

    /// A spend refused the claim: the caller's budgets answer 429; the primary host's
    /// daily budget sends the create to the fallback (the claim is tried again without
    /// that spend), or answers 429 when there is none.
    fn over_budget(
        &self,
        i: usize,
        spends: &[Spend],
        target: Option<&mut Target>,
    ) -> ServiceResult<()> {
        let now = self.clock.now();
        let retry_after = spends.get(i).map_or(1, |s| s.retry_after(now));
        if i < 2 {
            let which = if i == 0 { "caller" } else { "org" };
            tracing::warn!(budget = which, "a caller's budget of new meetings is spent");
            crate::metrics::count("BudgetRefused", &[("budget", which)]);
            return Err(DomainError::OverBudget { retry_after }.into());
        }
        let Some(target) = target else {
            return Err(ServiceError::Inconsistent(
                "a host spend without a target".into(),
            ));
        };
        let kind = target.primary.provider.kind();
        tracing::warn!(provider = %kind, "a host's daily provider budget is spent");
        crate::metrics::count("HostBudgetRefused", &[("provider", kind.as_str())]);
        if target.fallback.is_none() {
            return Err(DomainError::HostBudgetSpent { retry_after }.into());
        }
        target.primary_spent = Some(retry_after);
        Ok(())
    }

    /// Holding the claim: where the meeting goes (when that took a call), then the
    /// meeting. `Ok(None)`: the claim was taken over meanwhile (the taker adopts our
    /// provider meeting by its marker; the loop answers whatever it commits).
    async fn as_claimant(
        &self,
        caller: &Caller,
        subject: &Subject,
        req: &AppointmentMeetingRequest,
        (at, ours, spent): (&mut Attempting, &Claim, &[Spend; 2]),
        deadline: Instant,
    ) -> ServiceResult<Option<Provisioned>> {
        if at.target.is_none() {
            let placed = self.target(caller, req, &at.view, Some(deadline)).await;
            match placed {
                Ok(t) => at.target = t,
                Err(e) => {
                    self.release(caller, subject, ours, ours.reconcile).await;
                    self.refund_if_nothing_made(&e, spent).await;
                    return Err(e);
                }
            }
        }
        let Some(target) = at.target.as_mut() else {
            return Err(ServiceError::Inconsistent("no target after a call".into()));
        };
        target.earlier_user = earlier_user(at.found.as_ref(), ours.reconcile, target);
        let made = self
            .as_holder(caller, subject, req, target, ours, deadline)
            .await;
        let meeting = match made {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.refund_if_nothing_made(&e, spent).await;
                return Err(e);
            }
        };
        tracing::info!(meetingId = %meeting.id, provider = %meeting.provider, "meeting created");
        crate::metrics::count(
            "MeetingsCreated",
            &[("provider", meeting.provider.as_str())],
        );
        Ok(Some(Provisioned {
            meeting,
            created: true,
        }))
    }

    /// A conversation's reuse window and an appointment's no-show grace are the org's when
    /// it set them.
    fn with_org_window(
        &self,
        req: &AppointmentMeetingRequest,
        profile: &OrgProfile,
    ) -> AppointmentMeetingRequest {
        let mut req = req.clone();
        if req.reuse_window.is_some()
            && let Some(s) = profile.settings.conversation_reuse_seconds
        {
            req.set_reuse_window(chrono::Duration::seconds(i64::from(s)));
        }
        if req.no_show_after_minutes.is_some()
            && let Some(grace) = profile.settings.no_show_grace_minutes
        {
            req.no_show_after_minutes = (grace > 0).then_some(grace);
        }
        req
    }

    /// The requested provider (no fallback from a provider the caller named), else the
    /// org's primary with its fallback, else the deployment's; each at the org's own
    /// connection when it has one, under the host's provider user. With no `lookup`
    /// deadline nothing is called: `Ok(None)` when that would take a call.
    async fn target(
        &self,
        caller: &Caller,
        req: &AppointmentMeetingRequest,
        view: &OrgView,
        lookup: Option<Instant>,
    ) -> ServiceResult<Option<Target>> {
        let settings = &view.profile.settings;
        let kind = req
            .provider
            .or(settings.provider)
            .unwrap_or(self.providers.primary());
        let primary = match self.place(caller, view, kind, lookup).await? {
            Placing::At(p) => p,
            Placing::NeedsCall => return Ok(None),
            Placing::NotConfigured => {
                return Err(DomainError::Invalid(crate::domain::Invalid::new(
                    "provider",
                    "is not configured for this deployment",
                ))
                .into());
            }
        };
        let fallback_kind = match req.provider {
            Some(_) => None,
            None => settings.fallback.or(self.providers.fallback_kind()),
        };
        let mut fallback = None;
        if let Some(f) = fallback_kind.filter(|f| *f != kind) {
            // A fallback this host cannot use is no fallback (the primary's answer stands).
            match self.place(caller, view, f, lookup).await {
                Ok(Placing::At(placed)) => fallback = Some(placed),
                Ok(Placing::NeedsCall) => return Ok(None),
                Ok(Placing::NotConfigured) => {}
                Err(e) => {
                    tracing::warn!(provider = %f, cause = %crate::telemetry::cause(&e), "the fallback provider cannot take this host");
                }
            }
        }
        Ok(Some(Target {
            primary,
            fallback,
            earlier_user: None,
            primary_spent: None,
        }))
    }

    /// `kind` as this org uses it: its own connection or the deployment's, and the host's
    /// provider user (the directory's, else the account's default, else 422 before any
    /// provider call; without `lookup`, only a default known without a call).
    async fn place(
        &self,
        caller: &Caller,
        view: &OrgView,
        kind: ProviderKind,
        lookup: Option<Instant>,
    ) -> ServiceResult<Placing> {
        let Some((provider, account)) = self.account(caller, view, kind) else {
            return Ok(Placing::NotConfigured);
        };
        if !org::has_host_users(kind) {
            return Ok(Placing::At(Placed {
                provider,
                account,
                host_user: None,
                budget: None,
                prepaid: false,
            }));
        }
        // The directory maps hosts within the org's own account only: in the deployment's
        // shared account an org could otherwise name another org's user (and get a start_url
        // that logs in as them). There, hosts are the account's default user.
        let mapped = view
            .host
            .as_ref()
            .filter(|_| account == Account::Org)
            .and_then(|h| h.user_at(kind))
            .map(str::to_owned);
        let default = match (mapped, lookup) {
            (Some(u), _) => Some(u),
            (None, Some(deadline)) => provider.default_host(deadline).await?,
            (None, None) => match provider.known_default_host() {
                Some(known) => known,
                None => return Ok(Placing::NeedsCall),
            },
        };
        let host_user = default.ok_or(DomainError::HostNotMapped(kind))?;
        let budget = (kind == ProviderKind::Zoom)
            .then(|| self.host_budget(caller, view, kind, account, &host_user));
        Ok(Placing::At(Placed {
            provider,
            account,
            host_user: Some(host_user),
            budget,
            prepaid: false,
        }))
    }

    /// The org's own connection for `kind`, else the deployment's; `None` when neither is.
    fn account(
        &self,
        caller: &Caller,
        view: &OrgView,
        kind: ProviderKind,
    ) -> Option<(Arc<dyn MeetingProvider>, Account)> {
        if view.profile.connection(kind).is_some() {
            return Some((self.orgs.adapter(&caller.org, kind), Account::Org));
        }
        self.providers
            .get(kind)
            .map(|p| (p.clone(), Account::Deployment))
    }

    /// The host's daily spend: the org connection's limit, else the deployment's.
    fn host_budget(
        &self,
        caller: &Caller,
        view: &OrgView,
        kind: ProviderKind,
        account: Account,
        host_user: &str,
    ) -> Spend {
        let limit = view
            .profile
            .connection(kind)
            .and_then(|c| c.host_daily_budget())
            .unwrap_or(self.settings.host_daily_budget);
        org::host_spend(
            kind,
            account,
            &caller.org,
            host_user,
            limit,
            self.clock.now(),
        )
    }

    /// What a claim spends: one new meeting from the calling user's budget and the org's,
    /// and from the primary host's daily budget when it is known (and not refused already).
    /// The spend is the claim's: a refused claim (a reuse) spends nothing.
    fn spends(&self, caller: &Caller, target: Option<&Target>) -> Vec<Spend> {
        let mut spends = org::caller_spends(
            &self.settings.create_budgets,
            &caller.org,
            &caller.user_id,
            caller.role,
            self.clock.now(),
        )
        .to_vec();
        if let Some(t) = target.filter(|t| t.primary_spent.is_none())
            && let Some(budget) = &t.primary.budget
        {
            spends.push(budget.clone());
        }
        spends
    }

    /// A create that surely made nothing (refused, not ambiguous) costs the caller nothing:
    /// a patient retrying while a host's budget is spent keeps their own. Best effort.
    async fn refund_if_nothing_made(&self, e: &ServiceError, spent: &[Spend; 2]) {
        if matches!(e, ServiceError::Provider(p) if p.is_ambiguous()) {
            return;
        }
        if let Err(e) = self.stores.budgets.give_back(spent).await {
            tracing::warn!(cause = %crate::telemetry::cause(&e), "could not give a caller's budget back");
        }
    }

    /// One create from the host user's daily budget at this provider: `Ok(true)` spent (or
    /// no budget applies), `Ok(false)` spent already today.
    async fn spend_host_budget(&self, placed: &Placed) -> ServiceResult<bool> {
        let Some(budget) = &placed.budget else {
            return Ok(true);
        };
        let spent = self
            .stores
            .budgets
            .spend(std::slice::from_ref(budget))
            .await?
            .is_none();
        if !spent {
            tracing::warn!(provider = %placed.provider.kind(), "a host's daily provider budget is spent");
            crate::metrics::count(
                "HostBudgetRefused",
                &[("provider", placed.provider.kind().as_str())],
            );
        }
        Ok(spent)
    }

    /// The ready claim's meeting, if the caller may have it.
    async fn reuse(
        &self,
        caller: &Caller,
        subject: &Subject,
        req: &AppointmentMeetingRequest,
        id: &crate::ids::MeetingId,
    ) -> ServiceResult<Provisioned> {
        let meeting = self.stores.meetings.get_meeting(id).await?.ok_or_else(|| {
            ServiceError::Inconsistent("a ready claim without its meeting".into())
        })?;
        let meeting = policy::visible(caller, meeting)?;
        if subject.kind == SubjectKind::Appointment {
            policy::may_reuse_appointment(caller, &meeting)?;
        }
        policy::same_people(&meeting, &req.host, &req.participants)?;
        let meeting = match subject.kind {
            SubjectKind::Conversation => self.ring(caller, meeting).await?,
            SubjectKind::Appointment => meeting,
        };
        Ok(Provisioned {
            meeting,
            created: false,
        })
    }

    /// A PUT on a live conversation is a call: the record counts it (one update that never
    /// conflicts), and that change is the `conversation.call` the other side's app rings
    /// on. The meeting's facts (and `updatedAt`) stay; only the version moves.
    async fn ring(&self, caller: &Caller, meeting: Meeting) -> ServiceResult<Meeting> {
        self.stores
            .meetings
            .ring(&meeting.id, &caller.user_id)
            .await?
            .ok_or_else(|| ServiceError::Inconsistent("a ringing meeting vanished".into()))
    }

    /// Claiming over a ready claim means a conversation's window is over: who may start its
    /// next meeting (one read, on this path only).
    async fn may_start_next(&self, caller: &Caller, found: Option<&Claim>) -> ServiceResult<()> {
        let Some(previous) = found.filter(|c| c.state == ClaimState::Ready) else {
            return Ok(());
        };
        if matches!(
            caller.role,
            crate::domain::Role::Service | crate::domain::Role::Admin
        ) {
            return Ok(());
        }
        let meeting = self
            .stores
            .meetings
            .get_meeting(&previous.meeting_id)
            .await?;
        Ok(policy::may_start_next(caller, meeting.as_ref())?)
    }

    /// Our claim: the meeting it continues (or a new id), and the provider user it will
    /// create under when that is known now (a taker-over looks for our meeting there).
    fn new_claim(
        &self,
        continues: Option<crate::ids::MeetingId>,
        reconcile: bool,
        target: Option<&Target>,
    ) -> Claim {
        Claim {
            provider_user: target.and_then(|t| t.primary.host_user.clone()),
            state: ClaimState::Pending,
            meeting_id: continues.unwrap_or_else(|| self.ids.meeting_id()),
            token: self.ids.claim_token(),
            lease_until: Some(self.clock.now() + self.settings.claim_lease),
            reconcile,
            window_ends_at: None,
        }
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
                }
                .into())
            });
        match outcome {
            Ok(made) => self.record(caller, subject, req, claim, made).await,
            Err(e) => {
                let ambiguous = matches!(&e, ServiceError::Provider(p) if p.is_ambiguous());
                self.release(caller, subject, claim, claim.reconcile || ambiguous)
                    .await;
                Err(e)
            }
        }
    }

    /// Adopts what an earlier attempt made (when the claim says to look), else creates the
    /// meeting: at the primary, or at the fallback while the primary is unavailable or its
    /// host's daily budget is spent (a primary meeting that landed anyway is an orphan for
    /// the cleanup).
    async fn provider_side(
        &self,
        subject: &Subject,
        req: &AppointmentMeetingRequest,
        target: &Target,
        claim: &Claim,
        deadline: Instant,
    ) -> ServiceResult<Made> {
        let primary = &target.primary;
        if claim.reconcile
            && let Some(adopted) = self.adopt(target, claim, deadline).await?
        {
            return Ok(adopted);
        }
        let passcode = self.ids.passcode(PASSCODE_LEN);
        let spec = |placed: &Placed| CreateSpec {
            meeting_id: claim.meeting_id.clone(),
            schedule: req.schedule(),
            passcode: passcode.clone(),
            kind: subject.kind,
            host_user: placed.host_user.clone(),
        };
        let error = match target.primary_spent {
            Some(retry_after) => DomainError::HostBudgetSpent { retry_after }.into(),
            None => match self.create_at(primary, &spec(primary), deadline).await {
                Ok(m) => return Ok(made(m, primary, false)),
                Err(e) => e,
            },
        };
        let falls_back = match &error {
            ServiceError::Provider(p) => p.is_unavailable(),
            ServiceError::Domain(DomainError::HostBudgetSpent { .. }) => true,
            _ => false,
        };
        let Some(fallback) = target.fallback.as_ref().filter(|_| falls_back) else {
            return Err(error);
        };
        tracing::warn!(meetingId = %claim.meeting_id, from = %primary.provider.kind(), to = %fallback.provider.kind(), "primary provider unavailable, using the fallback");
        let m = self.create_at(fallback, &spec(fallback), deadline).await?;
        Ok(made(m, fallback, false))
    }

    /// The provider meeting an earlier attempt made, looked for under the user it created
    /// under and under today's host user.
    async fn adopt(
        &self,
        target: &Target,
        claim: &Claim,
        deadline: Instant,
    ) -> ServiceResult<Option<Made>> {
        let primary = &target.primary;
        // The earlier user first: that is where a meeting of this marker most likely is.
        let mut users = vec![primary.host_user.as_deref()];
        if let Some(earlier) = target.earlier_user.as_deref() {
            users.insert(0, Some(earlier));
        }
        for user in users {
            let found = primary
                .provider
                .find_by_marker(&claim.meeting_id, user, deadline)
                .await;
            let found = match found {
                // The earlier user has left the account: nothing of theirs to adopt.
                Err(ProviderError::UnknownHost) if user != primary.host_user.as_deref() => None,
                other => other?,
            };
            if let Some(found) = found {
                tracing::info!(meetingId = %claim.meeting_id, "adopted the provider meeting of an earlier attempt");
                let mut adopted = made(found, primary, true);
                adopted.provider_user = user.map(str::to_owned);
                return Ok(Some(adopted));
            }
        }
        Ok(None)
    }

    /// One create at `placed`, within its host's daily budget. The provider's own daily
    /// refusal (Zoom's per-host cap) spends the budget to its end: no more calls today.
    async fn create_at(
        &self,
        placed: &Placed,
        spec: &CreateSpec,
        deadline: Instant,
    ) -> ServiceResult<ProviderMeeting> {
        let now = self.clock.now();
        if !placed.prepaid && !self.spend_host_budget(placed).await? {
            let retry_after = placed.budget.as_ref().map_or(1, |b| b.retry_after(now));
            return Err(DomainError::HostBudgetSpent { retry_after }.into());
        }
        let error = match placed.provider.create(spec, deadline).await {
            Ok(m) => return Ok(m),
            Err(e) => e,
        };
        if let (ProviderError::HostDailyLimit { .. }, Some(budget)) = (&error, &placed.budget)
            && let Err(e) = self.stores.budgets.exhaust(budget).await
        {
            tracing::warn!(cause = %crate::telemetry::cause(&e), "could not record a host's spent daily budget");
        }
        Err(match error {
            ProviderError::UnknownHost => DomainError::HostNotMapped(placed.provider.kind()).into(),
            e => e.into(),
        })
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
            account: made.account,
            provider_user: made.provider_user,
            kept_until: None,
            room_closed_at: None,
            signals: Signals {
                no_show_after_minutes: req.no_show_after_minutes,
                // A conversation's PUT rings the other side (`conversation.call`).
                calls: u32::from(subject.kind == SubjectKind::Conversation),
                last_caller: Some(caller.user_id.clone()),
                ..Signals::default()
            },
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

fn made(meeting: ProviderMeeting, at: &Placed, adopted: bool) -> Made {
    Made {
        meeting,
        adopted,
        at: at.provider.kind(),
        account: at.account,
        provider_user: at.host_user.clone(),
    }
}

/// The user the attempt being taken over created under, when it may have made something
/// and is not today's host user.
fn earlier_user(found: Option<&Claim>, reconcile: bool, target: &Target) -> Option<String> {
    found
        .filter(|_| reconcile)
        .and_then(|c| c.provider_user.clone())
        .filter(|u| Some(u) != target.primary.host_user.as_ref())
}

/// Who may create or reuse the subject's meeting (checked before anything is read).
fn may_provision(
    caller: &Caller,
    subject: &Subject,
    req: &AppointmentMeetingRequest,
) -> Result<(), DomainError> {
    match subject.kind {
        SubjectKind::Appointment => policy::may_provision_appointment(caller, &req.host),
        SubjectKind::Conversation => {
            policy::may_provision_conversation(caller, &req.host, &req.participants)
        }
    }
}
