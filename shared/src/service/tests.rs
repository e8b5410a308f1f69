//! Service-level tests on the in-memory store and a scripted provider: the use cases'
//! rules (provisioning exactly once, links, transitions, events) without moto. The
//! black-box suite (tests/integration) proves the same against the real adapters.

use super::{Service, ServiceError, Settings};
use crate::clock::{ManualClock, manual};
use crate::domain::event::{EventKind, ProviderEvent};
use crate::domain::org::EventScope;
use crate::domain::request::AppointmentMeetingRequest;
use crate::domain::{
    Caller, DomainError, LinkRole, Meeting, MeetingStatus, ProviderKind, ProviderLinks, Role,
    Subject, SubjectKind,
};
use crate::ids::{MeetingId, OrgId, RandomIds, SubjectId, UserId};
use crate::providers::{
    CreateSpec, Deletion, MeetingProvider, ProviderError, ProviderMeeting, Providers, Schedule,
};
use crate::service::EventOutcome;
use crate::store::{MemoryStore, Stores};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the scripted provider answers a create with (`Ok` when the script is empty).
enum Script {
    Down,
    /// The create lands but its answer is lost.
    LostAnswer,
}

/// A provider that keeps its meetings in memory and answers creates by script.
#[derive(Default)]
struct Scripted {
    kind: Option<ProviderKind>,
    /// The world's clock: the provider's "now" for the links it makes.
    clock: Option<Arc<ManualClock>>,
    creates: AtomicUsize,
    refreshes: AtomicUsize,
    deletes: AtomicUsize,
    script: Mutex<VecDeque<Script>>,
    made: Mutex<Vec<(MeetingId, ProviderMeeting)>>,
}

impl Scripted {
    fn new(kind: ProviderKind, clock: &Arc<ManualClock>) -> Arc<Self> {
        Arc::new(Self {
            kind: Some(kind),
            clock: Some(clock.clone()),
            ..Default::default()
        })
    }

    fn now(&self) -> DateTime<Utc> {
        use crate::clock::Clock;
        self.clock.as_ref().map_or_else(Utc::now, |c| c.now())
    }

    fn then(&self, s: Script) {
        self.script.lock().unwrap().push_back(s);
    }

    fn count(n: &AtomicUsize) -> usize {
        n.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl MeetingProvider for Scripted {
    async fn default_host(&self, _deadline: Instant) -> Result<Option<String>, ProviderError> {
        Ok(Some("host@scripted.invalid".into()))
    }

    fn known_default_host(&self) -> Option<Option<String>> {
        Some(Some("host@scripted.invalid".into()))
    }

    async fn verify(&self, _deadline: Instant) -> Result<(), ProviderError> {
        Ok(())
    }

    fn kind(&self) -> ProviderKind {
        self.kind.unwrap_or(ProviderKind::Zoom)
    }

    async fn create(
        &self,
        spec: &CreateSpec,
        _deadline: Instant,
    ) -> Result<ProviderMeeting, ProviderError> {
        let n = self.creates.fetch_add(1, Ordering::SeqCst);
        // Let concurrent callers interleave, as a real network call would.
        tokio::task::yield_now().await;
        let meeting = ProviderMeeting {
            provider_meeting_id: format!("{}", 1000 + n),
            uuid: None,
            links: ProviderLinks {
                join_url: format!("https://provider.test/j/{n}"),
                host_url: format!("https://provider.test/s/{n}?v=0"),
                host_url_fetched_at: Some(self.now()),
                password: Some("pw".into()),
            },
            schedule: None,
        };
        let script = self.script.lock().unwrap().pop_front();
        if !matches!(script, Some(Script::Down)) {
            self.made
                .lock()
                .unwrap()
                .push((spec.meeting_id.clone(), meeting.clone()));
        }
        match script {
            None => Ok(meeting),
            Some(Script::Down) => Err(ProviderError::unavailable("down")),
            Some(Script::LostAnswer) => Err(ProviderError::Unavailable {
                retry_after: None,
                ambiguous: true,
                in_flight: false,
                cause: "answer lost".into(),
            }),
        }
    }

    async fn find_by_marker(
        &self,
        id: &MeetingId,
        _host_user: Option<&str>,
        _deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError> {
        Ok(self
            .made
            .lock()
            .unwrap()
            .iter()
            .find(|(m, _)| m == id)
            .map(|(_, p)| p.clone()))
    }

    fn host_link_max_age(&self) -> Option<Duration> {
        Some(Duration::minutes(90))
    }

    async fn fresh_host_link(
        &self,
        _m: &Meeting,
        _deadline: Instant,
    ) -> Result<(String, DateTime<Utc>), ProviderError> {
        let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
        Ok((format!("https://provider.test/s/fresh?v={n}"), self.now()))
    }

    async fn update(
        &self,
        _m: &Meeting,
        _s: &Schedule,
        _deadline: Instant,
    ) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn delete(&self, _id: &str, _deadline: Instant) -> Result<Deletion, ProviderError> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        Ok(Deletion::Deleted)
    }

    async fn end(&self, _m: &Meeting, _deadline: Instant) -> Result<(), ProviderError> {
        Ok(())
    }
}

struct World {
    service: Arc<Service>,
    clock: Arc<ManualClock>,
    zoom: Arc<Scripted>,
    jitsi: Arc<Scripted>,
}

fn world(fallback: bool) -> World {
    world_with(fallback, Settings::default())
}

fn world_with(fallback: bool, settings: Settings) -> World {
    let clock = manual();
    let (zoom, jitsi) = (
        Scripted::new(ProviderKind::Zoom, &clock),
        Scripted::new(ProviderKind::Jitsi, &clock),
    );
    let providers: Vec<Arc<dyn MeetingProvider>> = vec![zoom.clone(), jitsi.clone()];
    let stores = Stores::of(Arc::new(MemoryStore::new()));
    let secrets = Arc::new(crate::secrets::MemorySecrets::default());
    let orgs =
        crate::providers::accounts::OrgAccounts::new(crate::providers::accounts::OrgAccountParts {
            prefix: "test/orgs/".into(),
            http: reqwest::Client::new(),
            zoom: crate::providers::zoom::ZoomConfig {
                api_base_url: "http://127.0.0.1:9/v2".into(),
                oauth_token_url: "http://127.0.0.1:9/oauth/token".into(),
                deployment: "local".into(),
            },
            zoho: crate::providers::zoho::ZohoConfig {
                accounts_url: None,
                api_base_url: None,
                deployment: "local".into(),
            },
            jitsi: crate::providers::jitsi::JitsiConfig::default(),
            secrets: secrets.clone(),
            writer: secrets,
            kms_key_id: None,
            tokens: stores.tokens.clone(),
            clock: clock.clone(),
            retry: Settings::default().provider_retry,
        });
    let service = Service {
        stores,
        orgs,
        providers: Providers::new(
            ProviderKind::Zoom,
            fallback.then_some(ProviderKind::Jitsi),
            providers,
        ),
        clock: clock.clone(),
        ids: Arc::new(RandomIds),
        settings,
        resolver: Arc::new(crate::notify::ssrf::SystemResolver),
        views: Default::default(),
    };
    World {
        service: Arc::new(service),
        clock,
        zoom,
        jitsi,
    }
}

fn caller(user: &str, role: Role) -> Caller {
    Caller {
        user_id: UserId::parse(user, "t").unwrap(),
        role,
        org: OrgId::parse("clinic-1", "t").unwrap(),
    }
}

fn appointment(id: &str) -> Subject {
    Subject {
        kind: SubjectKind::Appointment,
        id: SubjectId::parse(id, "t").unwrap(),
    }
}

fn body() -> AppointmentMeetingRequest {
    let json = r#"{"hostUserId":"dr-7","participantUserIds":["pat-9"],"startTime":"2030-01-01T10:00:00Z"}"#;
    AppointmentMeetingRequest::parse(json.as_bytes()).unwrap()
}

impl World {
    fn deadline(&self) -> Instant {
        use crate::clock::Clock;
        self.clock.instant() + std::time::Duration::from_secs(30)
    }

    async fn link(
        &self,
        who: &Caller,
        id: &MeetingId,
        role: Option<LinkRole>,
    ) -> Result<super::Link, ServiceError> {
        self.service.link(who, id, role, self.deadline()).await
    }

    async fn provision(
        &self,
        who: &Caller,
        subject: &str,
    ) -> Result<super::Provisioned, ServiceError> {
        self.service
            .provision(who, &appointment(subject), &body(), self.deadline())
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guarantee_1_concurrent_provisions_of_one_subject_create_one_meeting() {
    // Every waiting loser moves the one manual clock by its whole pause, on four threads at
    // once, so 19 of them age the winner's lease and deadline (and each other's wait) far
    // faster than real time would. Budgets long enough for that keep the test about
    // exactly-once, not about how the threads happen to be scheduled.
    let settings = Settings {
        claim_wait: std::time::Duration::from_secs(3600),
        claim_lease: Duration::hours(2),
        ..Settings::default()
    };
    let w = Arc::new(world_with(false, settings));
    let svc = caller("svc-1", Role::Service);
    let deadline = {
        use crate::clock::Clock;
        w.clock.instant() + std::time::Duration::from_secs(7200)
    };
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (w, svc) = (w.clone(), svc.clone());
            tokio::spawn(async move {
                w.service
                    .provision(&svc, &appointment("appt-1"), &body(), deadline)
                    .await
            })
        })
        .collect();
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let p = t.await.unwrap().map_err(|e| format!("{e:?}")).unwrap();
        created += usize::from(p.created);
        ids.insert(p.meeting.id);
    }
    assert_eq!((created, ids.len()), (1, 1));
    assert_eq!(
        Scripted::count(&w.zoom.creates),
        1,
        "one create at the provider"
    );
}

#[tokio::test]
async fn guarantee_1_a_repeat_answers_the_stored_meeting_with_no_provider_call() {
    let w = world(false);
    let svc = caller("svc-1", Role::Service);
    let first = w.provision(&svc, "appt-1").await.unwrap();
    let again = w
        .provision(&caller("dr-7", Role::Practitioner), "appt-1")
        .await
        .unwrap();
    assert!(first.created && !again.created);
    assert_eq!(first.meeting, again.meeting);
    assert_eq!(Scripted::count(&w.zoom.creates), 1);
    // Only the host may reuse it as a practitioner; a patient never provisions.
    let other = w
        .provision(&caller("dr-8", Role::Practitioner), "appt-1")
        .await;
    assert!(matches!(
        other,
        Err(ServiceError::Domain(DomainError::Forbidden))
    ));
    let patient = w.provision(&caller("pat-9", Role::Patient), "appt-1").await;
    assert!(matches!(
        patient,
        Err(ServiceError::Domain(DomainError::Forbidden))
    ));
}

#[tokio::test]
async fn guarantee_1_a_failed_create_frees_the_subject_and_a_lost_answer_is_adopted() {
    let w = world(false);
    let svc = caller("svc-1", Role::Service);
    w.zoom.then(Script::Down);
    let down = w.provision(&svc, "appt-1").await;
    assert!(matches!(
        down,
        Err(ServiceError::Provider(ProviderError::Unavailable { .. }))
    ));
    let made = w.provision(&svc, "appt-1").await.unwrap();
    assert!(made.created);
    assert_eq!(
        Scripted::count(&w.zoom.creates),
        2,
        "a clean failure is simply retried"
    );

    // The create lands but its answer is lost: the next caller finds it by marker.
    w.zoom.then(Script::LostAnswer);
    assert!(w.provision(&svc, "appt-2").await.is_err());
    let adopted = w.provision(&svc, "appt-2").await.unwrap();
    assert!(adopted.created);
    assert_eq!(
        Scripted::count(&w.zoom.creates),
        3,
        "adopted, not created again"
    );
    assert_eq!(adopted.meeting.provider_meeting_id, "1002");
}

#[tokio::test]
async fn the_fallback_takes_new_meetings_while_the_primary_is_down_unless_one_was_named() {
    let w = world(true);
    let svc = caller("svc-1", Role::Service);
    w.zoom.then(Script::Down);
    let made = w.provision(&svc, "appt-1").await.unwrap();
    assert_eq!(made.meeting.provider, ProviderKind::Jitsi);
    assert_eq!(
        (
            Scripted::count(&w.zoom.creates),
            Scripted::count(&w.jitsi.creates)
        ),
        (1, 1)
    );
    w.zoom.then(Script::Down);
    let mut named = body();
    named.provider = Some(ProviderKind::Zoom);
    let refused = w
        .service
        .provision(&svc, &appointment("appt-2"), &named, w.deadline())
        .await;
    assert!(
        matches!(refused, Err(ServiceError::Provider(_))),
        "no fallback from a named provider"
    );
}

#[tokio::test]
async fn guarantee_2_links_are_role_specific_and_a_stale_host_link_is_refreshed_once() {
    let w = world(false);
    let svc = caller("svc-1", Role::Service);
    let m = w.provision(&svc, "appt-1").await.unwrap().meeting;
    let host = caller("dr-7", Role::Practitioner);
    let patient = caller("pat-9", Role::Patient);
    let join = w.link(&patient, &m.id, None).await.unwrap();
    assert_eq!(
        (join.role, join.url),
        (LinkRole::Participant, m.links.join_url.clone())
    );
    let refused = w.link(&patient, &m.id, Some(LinkRole::Host)).await;
    assert!(matches!(
        refused,
        Err(ServiceError::Domain(DomainError::Forbidden))
    ));
    let stranger = w.link(&caller("pat-1", Role::Patient), &m.id, None).await;
    assert!(matches!(
        stranger,
        Err(ServiceError::Domain(DomainError::NotFound(_)))
    ));
    let start = w.link(&host, &m.id, None).await.unwrap();
    assert_eq!(
        (start.role, start.url),
        (LinkRole::Host, m.links.host_url.clone())
    );
    assert_eq!(Scripted::count(&w.zoom.refreshes), 0, "fresh enough");
    w.clock.advance(Duration::minutes(91));
    let fresh = w.link(&host, &m.id, None).await.unwrap();
    assert_eq!(fresh.url, "https://provider.test/s/fresh?v=1");
    assert_eq!(w.link(&host, &m.id, None).await.unwrap().url, fresh.url);
    assert_eq!(
        Scripted::count(&w.zoom.refreshes),
        1,
        "stored for the next caller"
    );
}

#[tokio::test]
async fn transitions_follow_the_table_repeats_answer_the_same_and_cancel_deletes_at_the_provider() {
    let w = world(false);
    let svc = caller("svc-1", Role::Service);
    let m = w.provision(&svc, "appt-1").await.unwrap().meeting;
    let started = w.service.start(&svc, &m.id, w.deadline()).await.unwrap();
    assert_eq!(
        (started.status, started.version),
        (MeetingStatus::Started, 2)
    );
    let ended = w.service.end(&svc, &m.id, w.deadline()).await.unwrap();
    assert_eq!(ended.status, MeetingStatus::Ended);
    let again = w.service.end(&svc, &m.id, w.deadline()).await.unwrap();
    assert_eq!(again, ended, "a repeat answers the same");
    let back = w.service.start(&svc, &m.id, w.deadline()).await;
    assert!(matches!(
        back,
        Err(ServiceError::Domain(DomainError::Transition { .. }))
    ));
    let patient = w
        .service
        .end(&caller("pat-9", Role::Patient), &m.id, w.deadline())
        .await;
    assert!(matches!(
        patient,
        Err(ServiceError::Domain(DomainError::Forbidden))
    ));

    let other = w.provision(&svc, "appt-2").await.unwrap().meeting;
    let cancelled = w
        .service
        .cancel(&svc, &other.id, w.deadline())
        .await
        .unwrap();
    assert_eq!(cancelled.status, MeetingStatus::Cancelled);
    assert_eq!(Scripted::count(&w.zoom.deletes), 1);
    let stats = w.service.stats(&svc).await.unwrap();
    assert_eq!(
        (
            stats.by_status.get("ended"),
            stats.by_status.get("cancelled")
        ),
        (Some(&1), Some(&1))
    );
    assert_eq!(stats.by_status.get("scheduled"), Some(&0));
}

#[tokio::test]
async fn guarantee_7_a_provider_event_applies_once_until_its_mark_expires() {
    let w = world(false);
    let svc = caller("svc-1", Role::Service);
    let m = w.provision(&svc, "appt-1").await.unwrap().meeting;
    let joined = ProviderEvent {
        provider: ProviderKind::Zoom,
        provider_meeting_id: m.provider_meeting_id.clone(),
        dedupe_key: "join-1".into(),
        at_ms: None,
        kind: EventKind::ParticipantJoined {
            host: false,
            at: None,
        },
    };
    assert_eq!(
        w.service
            .provider_event(&joined, &EventScope::Deployment)
            .await
            .unwrap(),
        EventOutcome::Applied
    );
    assert_eq!(
        w.service
            .provider_event(&joined, &EventScope::Deployment)
            .await
            .unwrap(),
        EventOutcome::Duplicate
    );
    // Three days on the mark has expired: expiry is the code's, whatever TTL has removed.
    w.clock.advance(Duration::days(3) + Duration::seconds(1));
    assert_eq!(
        w.service
            .provider_event(&joined, &EventScope::Deployment)
            .await
            .unwrap(),
        EventOutcome::Applied
    );
    let after = w.service.meeting(&svc, &m.id).await.unwrap();
    assert_eq!(after.attendance.joins, 2);
    let stranger = ProviderEvent {
        provider_meeting_id: "999".into(),
        ..joined
    };
    assert_eq!(
        w.service
            .provider_event(&stranger, &EventScope::Deployment)
            .await
            .unwrap(),
        EventOutcome::NotOurs
    );
}

#[tokio::test]
async fn a_create_that_surely_made_nothing_costs_the_caller_no_budget() {
    let settings = Settings {
        create_budgets: "patient=1/3600".parse().unwrap(),
        ..Settings::default()
    };
    let w = world_with(false, settings);
    let patient = caller("pat-9", Role::Patient);
    let room = |id: &str| {
        let req = AppointmentMeetingRequest::parse_conversation(
            br#"{"hostUserId":"dr-7","participantUserIds":["pat-9"]}"#,
            crate::clock::Clock::now(w.clock.as_ref()),
            Duration::hours(1),
        )
        .unwrap();
        let subject = Subject {
            kind: SubjectKind::Conversation,
            id: SubjectId::parse(id, "t").unwrap(),
        };
        (subject, req)
    };
    w.zoom.then(Script::Down);
    let (subject, req) = room("conv-1");
    let down = w
        .service
        .provision(&patient, &subject, &req, w.deadline())
        .await;
    assert!(matches!(down, Err(ServiceError::Provider(_))), "{down:?}");
    // The provider refused before making anything: the one allowed meeting is still there.
    let made = w
        .service
        .provision(&patient, &subject, &req, w.deadline())
        .await;
    assert!(made.is_ok_and(|p| p.created));
    let (other, req) = room("conv-2");
    let over = w
        .service
        .provision(&patient, &other, &req, w.deadline())
        .await;
    assert!(
        matches!(
            over,
            Err(ServiceError::Domain(DomainError::OverBudget { .. }))
        ),
        "{over:?}"
    );
}
