//! The weekly cleanup (guarantee 8): finds what is due through the sparse `due-index` (never
//! a Scan, so its cost follows the due set, not the table), deletes finished meetings at
//! their provider within a rate limit, archives the records, removes orphans and stale
//! claims, and stops cleanly before the Lambda deadline. "Now" is the scheduled event's time.

use crate::App;
use crate::domain::{Meeting, MeetingStatus};
use crate::error::ApiError;
use crate::ids::MeetingId;
use crate::providers::{Deletion, MeetingProvider};
use crate::store::DueItem;
use crate::store::dynamo::DUE_SHARDS;
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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

/// The run's report (also its return value).
#[derive(Debug, Default)]
pub struct Summary {
    pub examined: AtomicU64,
    pub provider_deleted: AtomicU64,
    pub archived: AtomicU64,
    pub orphans_deleted: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    pub dry_run: bool,
    pub complete: bool,
}

impl Summary {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn to_json(&self) -> Value {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "examined": g(&self.examined),
            "providerDeleted": g(&self.provider_deleted),
            "archived": g(&self.archived),
            "orphansDeleted": g(&self.orphans_deleted),
            "skipped": g(&self.skipped),
            "failed": g(&self.failed),
            "dryRun": self.dry_run,
            "complete": self.complete,
        })
    }
}

/// Spaces provider calls so that there are never more than `rate` a second: they are sent
/// at 90% of it, leaving headroom for network jitter bunching them on the provider's side.
struct Pacer {
    interval: std::time::Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn new(rate: u32) -> Self {
        Self {
            interval: std::time::Duration::from_secs(10) / (rate.max(1) * 9),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

struct Run<'a> {
    app: &'a App,
    settings: &'a CleanupSettings,
    now: DateTime<Utc>,
    deadline: Instant,
    summary: Summary,
    pacer: Pacer,
}

impl Run<'_> {
    fn time_left(&self) -> bool {
        Instant::now() + self.settings.margin < self.deadline
    }

    fn provider(&self, m: &Meeting) -> Option<&std::sync::Arc<dyn MeetingProvider>> {
        self.app.service.providers.get(m.provider)
    }

    /// One meeting, start to end (never half of it): delete at the provider, then archive.
    async fn meeting(&self, m: Meeting) {
        Summary::add(&self.summary.examined);
        if m.status == MeetingStatus::Archived {
            return;
        }
        // A cancelled meeting was deleted at the provider when it was cancelled.
        if m.status != MeetingStatus::Cancelled {
            let Some(provider) = self.provider(&m) else {
                tracing::error!(meetingId = %m.id, provider = %m.provider, "cleanup: provider not configured");
                Summary::add(&self.summary.failed);
                return;
            };
            if !self.summary.dry_run {
                self.pacer.wait().await;
                match provider.delete(&m.provider_meeting_id, self.deadline).await {
                    Ok(Deletion::Deleted) => Summary::add(&self.summary.provider_deleted),
                    Ok(Deletion::AlreadyGone) => {
                        tracing::info!(meetingId = %m.id, "cleanup: provider meeting already gone");
                    }
                    Ok(Deletion::InProgress) => {
                        // Running now: left for the next run.
                        Summary::add(&self.summary.skipped);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(meetingId = %m.id, cause = ?e, "cleanup: provider delete failed; retried next run");
                        Summary::add(&self.summary.failed);
                        return;
                    }
                }
            } else {
                Summary::add(&self.summary.provider_deleted);
            }
        }
        if self.summary.dry_run {
            Summary::add(&self.summary.archived);
            return;
        }
        let mut archived = m.clone();
        archived.status = MeetingStatus::Archived;
        archived.version = m.version + 1;
        archived.updated_at = self.now;
        match self
            .app
            .service
            .store
            .archive(&m, &archived, self.now + self.settings.archive_keep)
            .await
        {
            Ok(true) => Summary::add(&self.summary.archived),
            Ok(false) => Summary::add(&self.summary.skipped),
            Err(e) => {
                tracing::error!(meetingId = %m.id, cause = e.cause.as_deref().unwrap_or(""), "cleanup: archive failed");
                Summary::add(&self.summary.failed);
            }
        }
    }

    /// A claim whose lease ran out (or released after an ambiguous failure) never became a
    /// meeting; whatever it left at the provider is removed by the orphan pass.
    async fn claim(&self, key: String, claim: crate::store::Claim) {
        Summary::add(&self.summary.examined);
        if !claim.is_takeable(self.now) {
            Summary::add(&self.summary.skipped);
            return;
        }
        if self.summary.dry_run {
            return;
        }
        if let Err(e) = self.app.service.store.drop_claim(&key, &claim.token).await {
            tracing::error!(
                cause = e.cause.as_deref().unwrap_or(""),
                "cleanup: dropping a stale claim failed"
            );
            Summary::add(&self.summary.failed);
        }
    }

    async fn due_pass(&mut self) -> bool {
        let cutoff = self.now - self.settings.retention;
        for shard in 0..DUE_SHARDS {
            let mut cursor = None;
            loop {
                if !self.time_left() {
                    return false;
                }
                let page = self.app.service.store.due(shard, cutoff, cursor, 100).await;
                let (items, next) = match page {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(
                            cause = e.cause.as_deref().unwrap_or(""),
                            "cleanup: reading the due index failed"
                        );
                        Summary::add(&self.summary.failed);
                        return false;
                    }
                };
                let this: &Run = self;
                let stopped = AtomicU64::new(0);
                futures_util::stream::iter(items)
                    .for_each_concurrent(self.settings.concurrency.max(1), |item| {
                        let stopped = &stopped;
                        async move {
                            // No new meeting inside the margin; one begun is finished.
                            if !this.time_left() {
                                stopped.store(1, Ordering::Relaxed);
                                return;
                            }
                            match item {
                                DueItem::Meeting(m) => this.meeting(*m).await,
                                DueItem::Claim { key, claim } => this.claim(key, claim).await,
                            }
                        }
                    })
                    .await;
                if stopped.load(Ordering::Relaxed) == 1 {
                    return false;
                }
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        true
    }

    /// Provider meetings carrying our marker with no live record of ours behind them.
    async fn orphan_pass(&self) -> bool {
        for provider in self.app.service.providers.all() {
            if !self.time_left() {
                return false;
            }
            let marked = match provider.marked_meetings(self.deadline).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(provider = %provider.kind(), cause = ?e, "cleanup: listing provider meetings failed");
                    Summary::add(&self.summary.failed);
                    continue;
                }
            };
            for (provider_id, ours, created_at) in marked {
                if !self.time_left() {
                    return false;
                }
                if created_at.is_some_and(|t| self.now - t < self.settings.orphan_min_age) {
                    continue;
                }
                let record = match MeetingId::parse(&ours, "marker") {
                    Ok(id) => self.app.service.store.get_meeting(&id).await,
                    Err(_) => Ok(None),
                };
                let Ok(record) = record else {
                    Summary::add(&self.summary.failed);
                    continue;
                };
                let live = record.is_some_and(|m| {
                    m.provider == provider.kind()
                        && m.provider_meeting_id == provider_id
                        && m.status != MeetingStatus::Archived
                });
                if live {
                    continue;
                }
                if self.summary.dry_run {
                    Summary::add(&self.summary.orphans_deleted);
                    continue;
                }
                self.pacer.wait().await;
                match provider.delete(&provider_id, self.deadline).await {
                    Ok(Deletion::Deleted | Deletion::AlreadyGone) => {
                        tracing::info!(provider = %provider.kind(), "cleanup: orphan deleted");
                        Summary::add(&self.summary.orphans_deleted);
                    }
                    Ok(Deletion::InProgress) => Summary::add(&self.summary.skipped),
                    Err(e) => {
                        tracing::warn!(cause = ?e, "cleanup: orphan delete failed; retried next run");
                        Summary::add(&self.summary.failed);
                    }
                }
            }
        }
        true
    }
}

/// The Lambda's deadline as an `Instant` (30 s from now without one).
pub fn deadline_of(context: &lambda_runtime::Context) -> Instant {
    let now_ms = Utc::now().timestamp_millis().max(0) as u64;
    let left = if context.deadline > 0 {
        context.deadline.saturating_sub(now_ms)
    } else {
        30_000
    };
    Instant::now() + std::time::Duration::from_millis(left)
}

/// Runs a cleanup for the scheduled event `event` (`time`, optional
/// `detail.dryRun`), finishing before `deadline`.
pub async fn run(
    app: &App,
    settings: &CleanupSettings,
    event: &Value,
    deadline: Instant,
) -> Result<Value, ApiError> {
    let now = event["time"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            ApiError::validation("time", "must be the scheduled event's RFC 3339 time")
        })?;
    let mut run = Run {
        app,
        settings,
        now,
        deadline,
        summary: Summary {
            dry_run: event["detail"]["dryRun"].as_bool().unwrap_or(false),
            ..Summary::default()
        },
        pacer: Pacer::new(settings.provider_rate),
    };
    let started = Instant::now();
    let due_done = run.due_pass().await;
    let orphans_done = due_done && run.orphan_pass().await;
    run.summary.complete = due_done && orphans_done;
    let report = run.summary.to_json();
    // One field per count: the template's metric filters and alarms read them.
    let count = |k: &str| report[k].as_u64().unwrap_or(0);
    tracing::info!(
        examined = count("examined"),
        provider_deleted = count("providerDeleted"),
        archived = count("archived"),
        orphans_deleted = count("orphansDeleted"),
        skipped = count("skipped"),
        failed = count("failed"),
        complete = run.summary.complete,
        dry_run = run.summary.dry_run,
        now = %crate::domain::rfc3339(now),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "cleanup summary"
    );
    for (metric, key) in [
        ("CleanupExamined", "examined"),
        ("CleanupProviderDeleted", "providerDeleted"),
        ("CleanupArchived", "archived"),
        ("CleanupOrphansDeleted", "orphansDeleted"),
        ("CleanupSkipped", "skipped"),
        ("CleanupFailed", "failed"),
    ] {
        crate::metrics::emit(metric, count(key) as f64, crate::metrics::Unit::Count, &[]);
    }
    Ok(report)
}
