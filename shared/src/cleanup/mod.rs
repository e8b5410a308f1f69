//! The weekly cleanup (guarantee 8): finds what is due through the sparse `due-index` (never
//! a Scan, so its cost follows the due set, not the table), deletes finished meetings at
//! their provider within a rate limit, archives the records, removes orphans and stale
//! claims, and stops cleanly before the Lambda deadline. "Now" is the scheduled event's time.
//!
//! A second, frequent pass (`detail.pass = "close-rooms"`) closes conversation rooms at the
//! provider once their window ends or they end: such a room lets either side in without the
//! other, so it must not stay open at Zoom for the week until the weekly run.
//!
//! Capacity follows the work: each provider account is paced apart (`pacer::Pacers`),
//! and with a work queue ([`fanout`]) the weekly run only plans, handing each account's
//! due meetings to workers that run accounts in parallel and continue until none is left.

pub mod fanout;
mod orphans;
mod pacer;

use crate::App;
use crate::clock::Clock;
use crate::domain::{Claim, DueFor, Invalid, Meeting, MeetingStatus};
use crate::ids::MeetingId;
use crate::providers::Deletion;
use crate::store::DueItem;
use crate::store::keys::DUE_SHARDS;
use crate::telemetry::cause;
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
pub use pacer::AccountKey;
use pacer::Pacers;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Items read from the due index per page.
const DUE_PAGE: usize = 100;

#[derive(Debug, Clone)]
pub struct CleanupSettings {
    /// Meetings are cleaned up this long after they became due (their end plus grace).
    pub retention: Duration,
    /// Archived records stay this long (audit), then DynamoDB's TTL removes them.
    pub archive_keep: Duration,
    /// Provider calls per second, at most (Zoom's per-second limits).
    pub provider_rate: u32,
    /// Meetings processed at once.
    pub concurrency: usize,
    /// Time kept back from the deadline: no new meeting is started within it.
    pub margin: std::time::Duration,
    /// A provider meeting with our marker but no record is an orphan only when older than
    /// this (a younger one may belong to a claim still being provisioned).
    pub orphan_min_age: Duration,
}

impl Default for CleanupSettings {
    fn default() -> Self {
        Self {
            retention: Duration::days(7),
            archive_keep: Duration::days(365),
            provider_rate: 10,
            concurrency: 4,
            margin: std::time::Duration::from_secs(10),
            orphan_min_age: Duration::hours(1),
        }
    }
}

impl CleanupSettings {
    /// `CLEANUP_RETENTION_DAYS`, `ARCHIVE_RETENTION_DAYS`, `CLEANUP_PROVIDER_RATE`.
    pub fn from_env() -> Result<Self, String> {
        let mut s = Self::default();
        let num = |name: &str| -> Result<Option<i64>, String> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => v
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or_else(|| format!("{name} must be a positive whole number")),
                _ => Ok(None),
            }
        };
        if let Some(d) = num("CLEANUP_RETENTION_DAYS")? {
            s.retention = Duration::days(d);
        }
        if let Some(d) = num("ARCHIVE_RETENTION_DAYS")? {
            s.archive_keep = Duration::days(d);
        }
        if let Some(r) = num("CLEANUP_PROVIDER_RATE")? {
            s.provider_rate = u32::try_from(r).map_err(|_| "CLEANUP_PROVIDER_RATE is too large")?;
        }
        Ok(s)
    }
}

/// Which pass a scheduled event asks for (`detail.pass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pass {
    /// `weekly` (the default): finished meetings deleted at the provider and archived,
    /// stale claims and orphans removed.
    Weekly,
    /// `close-rooms`: conversation rooms whose window closed, or that ended, deleted at the
    /// provider. The weekly run then only archives them.
    CloseRooms,
}

impl Pass {
    fn of(event: &Value) -> Result<Self, Invalid> {
        match event["detail"]["pass"].as_str() {
            None | Some("weekly") => Ok(Self::Weekly),
            Some("close-rooms") => Ok(Self::CloseRooms),
            Some(_) => Err(Invalid::new(
                "detail.pass",
                "must be \"weekly\" or \"close-rooms\"",
            )),
        }
    }

    pub fn is_weekly(event: &Value) -> Result<bool, Invalid> {
        Self::of(event).map(|p| p == Self::Weekly)
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::CloseRooms => "close-rooms",
        }
    }
}

/// The run's counts.
#[derive(Debug, Default)]
pub struct Summary {
    pub examined: AtomicU64,
    pub provider_deleted: AtomicU64,
    pub rooms_closed: AtomicU64,
    pub archived: AtomicU64,
    pub orphans_deleted: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    pub dry_run: bool,
}

/// The summary's counts by their report names (also the metric names, `Cleanup…`).
const COUNTS: [(&str, &str); 7] = [
    ("examined", "CleanupExamined"),
    ("providerDeleted", "CleanupProviderDeleted"),
    ("roomsClosed", "CleanupRoomsClosed"),
    ("archived", "CleanupArchived"),
    ("orphansDeleted", "CleanupOrphansDeleted"),
    ("skipped", "CleanupSkipped"),
    ("failed", "CleanupFailed"),
];

impl Summary {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn counts(&self) -> [u64; 7] {
        [
            &self.examined,
            &self.provider_deleted,
            &self.rooms_closed,
            &self.archived,
            &self.orphans_deleted,
            &self.skipped,
            &self.failed,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }

    /// The report the run returns: `{"pass","examined",…,"dryRun","complete"}`.
    pub fn to_json(&self, pass: Pass, complete: bool) -> Value {
        let mut report: serde_json::Map<String, Value> = COUNTS
            .iter()
            .zip(self.counts())
            .map(|((name, _), n)| ((*name).to_owned(), json!(n)))
            .collect();
        report.insert("pass".into(), json!(pass.as_str()));
        report.insert("dryRun".into(), json!(self.dry_run));
        report.insert("complete".into(), json!(complete));
        Value::Object(report)
    }

    /// One log line with a field per count (the template's metric filters and alarms read
    /// them) and one metric per count.
    fn log(&self, pass: Pass, now: DateTime<Utc>, complete: bool, started: Instant) {
        let [
            examined,
            provider_deleted,
            rooms_closed,
            archived,
            orphans_deleted,
            skipped,
            failed,
        ] = self.counts();
        tracing::info!(
            pass = pass.as_str(),
            examined,
            provider_deleted,
            rooms_closed,
            archived,
            orphans_deleted,
            skipped,
            failed,
            complete,
            dry_run = self.dry_run,
            now = %crate::domain::rfc3339(now),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "cleanup summary"
        );
        for ((_, metric), n) in COUNTS.iter().zip(self.counts()) {
            crate::metrics::emit(metric, n as f64, crate::metrics::Unit::Count, &[]);
        }
    }
}

/// What a run is asked to do, from a scheduled event or a work message.
#[derive(Debug, Clone, Copy)]
struct Header {
    now: DateTime<Utc>,
    pass: Pass,
    dry_run: bool,
}

impl Header {
    /// A scheduled event's `time`, `detail.pass` and `detail.dryRun`.
    fn of(event: &Value) -> Result<Self, Invalid> {
        let now = event["time"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or(Invalid::new(
                "time",
                "must be the scheduled event's RFC 3339 time",
            ))?;
        Ok(Self {
            now,
            pass: Pass::of(event)?,
            dry_run: event["detail"]["dryRun"].as_bool().unwrap_or(false),
        })
    }
}

/// Where a walk over the due index is: the part of it (`Run::due_parts`), the shard and
/// the cursor of the page to read next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Position {
    part: usize,
    shard: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

/// How a walk over the due index ended.
enum Walk {
    Done,
    /// Out of time: the rest starts here.
    Stopped(Position),
    /// Walked to the end, but a page or an item could not be read or handed over (counted
    /// failed, logged): that part is the next run's, every other shard was done.
    Partial,
}

struct Run<'a> {
    app: &'a App,
    clock: &'a dyn Clock,
    settings: &'a CleanupSettings,
    pass: Pass,
    now: DateTime<Utc>,
    deadline: Instant,
    summary: Summary,
    pacers: Pacers,
    /// Set when this run plans for workers instead of doing the meetings itself.
    planner: Option<fanout::Planner<'a>>,
    /// Some of the due set was left unread (a failed page, an unreadable item): the run
    /// goes on with the rest but is not complete.
    left_behind: AtomicBool,
}

impl<'a> Run<'a> {
    fn new(app: &'a App, settings: &'a CleanupSettings, header: Header, deadline: Instant) -> Self {
        Self {
            app,
            clock: app.service.clock.as_ref(),
            settings,
            pass: header.pass,
            now: header.now,
            deadline,
            summary: Summary {
                dry_run: header.dry_run,
                ..Summary::default()
            },
            pacers: Pacers::new(settings.provider_rate),
            planner: None,
            left_behind: AtomicBool::new(false),
        }
    }

    fn header(&self) -> Header {
        Header {
            now: self.now,
            pass: self.pass,
            dry_run: self.summary.dry_run,
        }
    }
}

impl Run<'_> {
    fn time_left(&self) -> bool {
        self.clock.instant() + self.settings.margin < self.deadline
    }

    /// One meeting, start to end (never half of it): delete at the provider, then archive.
    async fn meeting(&self, m: Meeting) {
        Summary::add(&self.summary.examined);
        if m.status == MeetingStatus::Archived {
            return;
        }
        // A cancelled meeting was deleted at the provider when it was cancelled; a closed
        // conversation room when it was closed.
        let deleted = m.status == MeetingStatus::Cancelled || m.room_closed_at.is_some();
        if !deleted && !self.delete_at_provider(&m).await {
            return;
        }
        if self.summary.dry_run {
            Summary::add(&self.summary.archived);
            return;
        }
        let mut archived = m.clone();
        archived.status = MeetingStatus::Archived;
        let archived = archived.next_version(&m, self.now);
        let keep_until = self.now + self.settings.archive_keep;
        match self
            .app
            .service
            .stores
            .due
            .archive(&m, &archived, keep_until)
            .await
        {
            Ok(true) => Summary::add(&self.summary.archived),
            Ok(false) => Summary::add(&self.summary.skipped),
            Err(e) => {
                tracing::error!(meetingId = %m.id, cause = %cause(&e), "cleanup: archive failed");
                Summary::add(&self.summary.failed);
            }
        }
    }

    /// A conversation room past its window (or ended): deleted at the provider, then marked
    /// closed, which moves it to the weekly cleanup's part of the index. One in progress is
    /// left for the next run (a visit running over its window is not cut off).
    async fn close_room(&self, m: Meeting) {
        Summary::add(&self.summary.examined);
        // The index is eventually consistent: the item just read decides.
        if m.room_close_at().is_none_or(|at| at > self.now) {
            Summary::add(&self.summary.skipped);
            return;
        }
        if !self.delete_at_provider(&m).await || self.summary.dry_run {
            return;
        }
        let mut closed = m.clone();
        closed.room_closed_at = Some(self.now);
        let closed = closed.next_version(&m, self.now);
        match self
            .app
            .service
            .stores
            .meetings
            .save(&m, &closed, None)
            .await
        {
            Ok(true) => Summary::add(&self.summary.rooms_closed),
            // Changed meanwhile (an event): the next run reads it again.
            Ok(false) => Summary::add(&self.summary.skipped),
            Err(e) => {
                tracing::error!(meetingId = %m.id, cause = %cause(&e), "cleanup: marking a room closed failed");
                Summary::add(&self.summary.failed);
            }
        }
    }

    /// The provider delete of a finished meeting, paced; whether the meeting may be archived.
    async fn delete_at_provider(&self, m: &Meeting) -> bool {
        // In the account it was made in: the deployment's, or its org's own.
        let Ok(provider) = self.app.service.provider_of(m) else {
            tracing::error!(meetingId = %m.id, provider = %m.provider, "cleanup: provider not configured");
            Summary::add(&self.summary.failed);
            return false;
        };
        if self.summary.dry_run {
            Summary::add(&self.summary.provider_deleted);
            return true;
        }
        self.pacers.wait(&AccountKey::of(m), self.clock).await;
        match provider.delete(&m.provider_meeting_id, self.deadline).await {
            Ok(Deletion::Deleted) => Summary::add(&self.summary.provider_deleted),
            Ok(Deletion::AlreadyGone) => {
                tracing::info!(meetingId = %m.id, "cleanup: provider meeting already gone");
            }
            Ok(Deletion::InProgress) => {
                // Running now: left for the next run.
                Summary::add(&self.summary.skipped);
                return false;
            }
            Err(e) => {
                tracing::warn!(meetingId = %m.id, cause = %cause(&e), "cleanup: provider delete failed; retried next run");
                Summary::add(&self.summary.failed);
                return false;
            }
        }
        true
    }

    /// A claim whose lease ran out (or released after an ambiguous failure) never became a
    /// meeting; whatever it left at the provider is removed by the orphan pass.
    async fn claim(&self, key: String, claim: Claim) {
        Summary::add(&self.summary.examined);
        if !claim.is_takeable(self.now) {
            Summary::add(&self.summary.skipped);
            return;
        }
        if self.summary.dry_run {
            return;
        }
        if let Err(e) = self
            .app
            .service
            .stores
            .due
            .drop_claim(&key, &claim.token)
            .await
        {
            tracing::error!(cause = %cause(&e), "cleanup: dropping a stale claim failed");
            Summary::add(&self.summary.failed);
        }
    }

    /// What this pass reads of the due index, and up to when. The weekly run also takes
    /// rooms the frequent pass never managed to close (in progress for days, a provider
    /// fault): nothing stays in the index for ever.
    fn due_parts(&self) -> Vec<(DueFor, DateTime<Utc>)> {
        match self.pass {
            Pass::Weekly => {
                let cutoff = self.now - self.settings.retention;
                vec![(DueFor::Archive, cutoff), (DueFor::RoomClose, cutoff)]
            }
            Pass::CloseRooms => vec![(DueFor::RoomClose, self.now)],
        }
    }

    /// Every due item of every shard, a page at a time.
    async fn due_pass(&self) -> Walk {
        self.walk(Position::default()).await
    }

    /// Part of the due set stays for the next run (the caller logged and counted why).
    fn leave_behind(&self) {
        self.left_behind.store(true, Ordering::Relaxed);
    }

    /// A due item that does not read: logged by its key (an id), counted, left in the index.
    fn unreadable(&self, key: &str) {
        tracing::error!(
            key,
            "cleanup: a due item does not read as a meeting or a claim; left for the next run"
        );
        Summary::add(&self.summary.failed);
        self.leave_behind();
    }

    /// The due index from `from` on, part by part, shard by shard.
    async fn walk(&self, from: Position) -> Walk {
        let parts = self.due_parts();
        let mut at = from;
        while let Some(&(what, cutoff)) = parts.get(at.part) {
            while at.shard < DUE_SHARDS {
                if let Some(stop) = self.due_shard(what, cutoff, &mut at).await {
                    return stop;
                }
                at.shard += 1;
                at.cursor = None;
            }
            at.part += 1;
            at.shard = 0;
        }
        if self.left_behind.load(Ordering::Relaxed) {
            Walk::Partial
        } else {
            Walk::Done
        }
    }

    /// One shard of one part of the index, from `at.cursor` on. `None`: done with it (all
    /// of it, or up to a page that failed, whose rest is the next run's: one failed read
    /// must not stop the other shards); else out of time (`at` names the page to read next).
    async fn due_shard(
        &self,
        what: DueFor,
        cutoff: DateTime<Utc>,
        at: &mut Position,
    ) -> Option<Walk> {
        loop {
            if !self.time_left() {
                return Some(Walk::Stopped(at.clone()));
            }
            let page = self
                .app
                .service
                .stores
                .due
                .due(what, at.shard, cutoff, at.cursor.clone(), DUE_PAGE)
                .await;
            let (items, next) = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(shard = at.shard, cause = %cause(&e), "cleanup: reading the due index failed; the rest of the shard is left for the next run");
                    Summary::add(&self.summary.failed);
                    self.leave_behind();
                    return None;
                }
            };
            if let Some(planner) = &self.planner {
                // A refused hand-over (counted, logged): the queue may take the next shard's.
                if !planner.page(self, items).await {
                    self.leave_behind();
                    return None;
                }
            } else if !self.due_page(items).await.is_empty() {
                return Some(Walk::Stopped(at.clone()));
            }
            match next {
                Some(c) => at.cursor = Some(c),
                None => return None,
            }
        }
    }

    /// One page of due items, a few at a time; those not begun for the deadline (no new
    /// item inside the margin; one begun is finished).
    async fn due_page(&self, items: Vec<DueItem>) -> Vec<DueItem> {
        let unstarted = Mutex::new(Vec::new());
        futures_util::stream::iter(items)
            .for_each_concurrent(self.settings.concurrency.max(1), |item| {
                let unstarted = &unstarted;
                async move {
                    if !self.time_left() {
                        unstarted
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(item);
                        return;
                    }
                    match (item, self.pass) {
                        (DueItem::Meeting(m), Pass::Weekly) => self.meeting(*m).await,
                        (DueItem::Meeting(m), Pass::CloseRooms) => self.close_room(*m).await,
                        (DueItem::Claim { key, claim }, _) => self.claim(key, claim).await,
                        (DueItem::Unreadable { key }, _) => self.unreadable(&key),
                    }
                }
            })
            .await;
        unstarted.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// Due meetings named by id (a work message), re-read (strongly consistent) a page at
    /// a time and each handled as the index walk handles it; the ids not begun for the
    /// deadline. A failed read fails it all (the message comes back).
    async fn meetings(
        &self,
        ids: &[MeetingId],
    ) -> Result<Vec<MeetingId>, crate::store::StoreError> {
        let mut left = Vec::new();
        for chunk in ids.chunks(DUE_PAGE) {
            if !left.is_empty() || !self.time_left() {
                left.extend_from_slice(chunk);
                continue;
            }
            let found = self.app.service.stores.meetings.get_meetings(chunk).await?;
            let items = found
                .into_iter()
                .map(|m| DueItem::Meeting(Box::new(m)))
                .collect();
            left.extend(
                self.due_page(items)
                    .await
                    .into_iter()
                    .filter_map(|i| match i {
                        DueItem::Meeting(m) => Some(m.id),
                        DueItem::Claim { .. } | DueItem::Unreadable { .. } => None,
                    }),
            );
        }
        Ok(left)
    }
}

/// The Lambda's deadline on `clock` (30 s from now without one).
pub fn deadline_of(context: &lambda_runtime::Context, clock: &dyn Clock) -> Instant {
    let now_ms = clock.now().timestamp_millis().max(0).unsigned_abs();
    let left = if context.deadline > 0 {
        context.deadline.saturating_sub(now_ms)
    } else {
        30_000
    };
    clock.instant() + std::time::Duration::from_millis(left)
}

/// Runs a cleanup pass for the scheduled event `event` (`time`, optional `detail.dryRun`
/// and `detail.pass`), finishing before `deadline`.
pub async fn run(
    app: &App,
    settings: &CleanupSettings,
    event: &Value,
    deadline: Instant,
) -> Result<Value, Invalid> {
    let header = Header::of(event)?;
    let run = Run::new(app, settings, header, deadline);
    // Real time, for the log: how long the run took, not a deadline.
    let started = Instant::now();
    let walked = run.due_pass().await;
    let complete = match (header.pass, walked) {
        (_, Walk::Stopped(_)) => false,
        // Orphans too when part of the due set was left: other accounts' must not wait.
        (Pass::Weekly, w) => run.orphan_pass().await && matches!(w, Walk::Done),
        (Pass::CloseRooms, w) => matches!(w, Walk::Done),
    };
    run.summary.log(header.pass, header.now, complete, started);
    Ok(run.summary.to_json(header.pass, complete))
}
