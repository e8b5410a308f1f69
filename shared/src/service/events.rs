//! Provider events applied to meetings: exactly once (a dedupe mark written in the same
//! transaction as the change), never backwards (`crate::domain::event::apply`), and only
//! to meetings that are ours. Two calls to the table: one read (the provider-id entry holds
//! the meeting), one transaction whose conditions are the dedupe and the version.

use super::{Service, ServiceError, ServiceResult};
use crate::domain::ProviderEvent;
use crate::domain::event::apply;
use crate::domain::org::EventScope;
use crate::store::{EventMark, EventSave, StoreError};
use chrono::Duration;

/// Zoom redelivers for up to about 90 minutes; marks outlive that comfortably.
const DEDUPE_KEEP: Duration = Duration::days(3);
/// Concurrent deliveries for one meeting conflict on its version; re-read this often.
const APPLY_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    /// Ours, but it changes nothing (an older or repeated fact).
    Unchanged,
    Duplicate,
    /// Not a meeting of ours: acknowledged and ignored.
    NotOurs,
    /// An event type we do not use: acknowledged and ignored.
    Ignored,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Duplicate => "duplicate",
            Self::NotOurs => "not-ours",
            Self::Ignored => "ignored",
        }
    }
}

impl Service {
    /// Applies one verified provider event to a meeting `scope` speaks for (guarantee 9:
    /// an event verified with one org's secret never touches another org's meeting).
    pub async fn provider_event(
        &self,
        event: &ProviderEvent,
        scope: &EventScope,
    ) -> ServiceResult<EventOutcome> {
        let stores = &self.stores;
        let mut found = stores
            .meetings
            .meeting_by_provider_id(event.provider, &event.provider_meeting_id)
            .await?;
        let now = self.clock.now();
        let mark = EventMark {
            key: event.dedupe_key.clone(),
            expires_at: now + DEDUPE_KEEP,
            now,
        };
        for _ in 0..APPLY_ATTEMPTS {
            let Some(before) = found.filter(|m| scope.admits(m) && !m.is_gone(now)) else {
                return Ok(EventOutcome::NotOurs);
            };
            let event = as_meant(event, &before);
            let Some(after) = apply(&before, &event, now) else {
                // Nothing to change: this event again, or an older fact.
                let seen = stores.marks.event_seen(&mark.key, now).await?;
                return Ok(if seen {
                    EventOutcome::Duplicate
                } else {
                    EventOutcome::Unchanged
                });
            };
            match stores.meetings.save_event(&before, &after, &mark).await? {
                EventSave::Applied => {
                    tracing::info!(meetingId = %after.id, event = event.kind.name(), status = after.status.as_str(), "provider event applied");
                    return Ok(EventOutcome::Applied);
                }
                EventSave::Duplicate => return Ok(EventOutcome::Duplicate),
                // Another change came first (another event, a call): applied onto it.
                EventSave::Stale(current) => found = current.map(|m| *m),
            }
        }
        Err(ServiceError::Store(StoreError::Contended))
    }
}

/// The event as it bears on our record: a Zoom `meeting.updated` naming the zone Zoom was
/// told for ours (Zoom knows fewer zones than IANA: `Europe/Kyiv` went as `Europe/Kiev`) is
/// no change of zone, so the caller's stays.
fn as_meant<'e>(
    event: &'e ProviderEvent,
    record: &crate::domain::Meeting,
) -> std::borrow::Cow<'e, ProviderEvent> {
    use crate::domain::EventKind;
    match &event.kind {
        EventKind::Updated {
            start_time,
            duration_minutes,
            topic,
            timezone: Some(zone),
        } if event.provider == crate::domain::ProviderKind::Zoom
            && zone.as_str()
                == crate::providers::zoom::zone_for(&record.timezone, record.start_time) =>
        {
            let mut same = event.clone();
            same.kind = EventKind::Updated {
                start_time: *start_time,
                duration_minutes: *duration_minutes,
                topic: topic.clone(),
                timezone: None,
            };
            std::borrow::Cow::Owned(same)
        }
        _ => std::borrow::Cow::Borrowed(event),
    }
}
