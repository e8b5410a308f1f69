//! Provider events (Zoom webhooks) applied to meetings: exactly once, never backwards.

use super::Service;
use crate::domain::{Meeting, MeetingStatus, ProviderKind};
use crate::error::ApiError;
use crate::store::EventMark;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

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

const EVENTS: [&str; 6] = [
    "meeting.started",
    "meeting.ended",
    "meeting.deleted",
    "meeting.updated",
    "meeting.participant_joined",
    "meeting.participant_left",
];

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn time(v: &Value, k: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.get(k)?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One key per delivered fact: the event, the meeting instance, its timestamp and who.
fn dedupe_key(kind: &str, event: &Value) -> String {
    let object = &event["payload"]["object"];
    let who = &object["participant"];
    let raw = format!(
        "{kind}|{}|{}|{}|{}|{}",
        text(object, "uuid"),
        event["event_ts"],
        text(who, "user_id"),
        text(who, "participant_uuid"),
        text(who, "id"),
    );
    Sha256::digest(raw.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The meeting after `event`, or `None` when the event changes nothing (older than what
/// we know, a repeat, or a move the status rules forbid).
fn apply(kind: &str, event: &Value, before: &Meeting, now: DateTime<Utc>) -> Option<Meeting> {
    let object = &event["payload"]["object"];
    let at = event["event_ts"]
        .as_i64()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(now);
    let mut after = before.clone();
    match kind {
        "meeting.started" if before.status.can_become(MeetingStatus::Started) => {
            after.status = MeetingStatus::Started;
            after.started_at = Some(time(object, "start_time").unwrap_or(at));
        }
        "meeting.ended" if before.status.can_become(MeetingStatus::Ended) => {
            after.status = MeetingStatus::Ended;
            after.ended_at = Some(time(object, "end_time").unwrap_or(at));
        }
        "meeting.deleted" if before.status.can_become(MeetingStatus::Cancelled) => {
            after.status = MeetingStatus::Cancelled;
        }
        "meeting.updated" => {
            let ts = event["event_ts"].as_i64()?;
            // Only a newer update of a meeting that can still change.
            if !before.status.joinable() || before.provider_event_ts.is_some_and(|seen| seen >= ts)
            {
                return None;
            }
            if let Some(t) = time(object, "start_time") {
                after.start_time = t;
            }
            if let Some(d) = object["duration"]
                .as_u64()
                .and_then(|d| u32::try_from(d).ok())
            {
                after.duration_minutes = d;
            }
            if let Some(t) = object["topic"].as_str().filter(|t| !t.is_empty()) {
                after.topic = t.to_owned();
            }
            if let Some(z) = object["timezone"]
                .as_str()
                .filter(|z| z.parse::<chrono_tz::Tz>().is_ok())
            {
                after.timezone = z.to_owned();
            }
            after.provider_event_ts = Some(ts);
        }
        "meeting.participant_joined" => {
            let who = &object["participant"];
            let joined = time(who, "join_time").unwrap_or(at);
            let host_id = text(object, "host_id");
            let is_host = !host_id.is_empty() && text(who, "id") == host_id;
            let first = if is_host {
                &mut after.attendance.host_joined_at
            } else {
                &mut after.attendance.participant_joined_at
            };
            // The first join time is kept; every (deduplicated) join is counted.
            first.get_or_insert(joined);
            after.attendance.joins += 1;
        }
        "meeting.participant_left" => after.attendance.leaves += 1,
        _ => return None,
    }
    after.version = before.version + 1;
    after.updated_at = now;
    Some(after)
}

impl Service {
    /// Applies one verified Zoom event.
    pub async fn zoom_event(&self, event: &Value) -> Result<EventOutcome, ApiError> {
        let kind = text(event, "event");
        if !EVENTS.contains(&kind) {
            return Ok(EventOutcome::Ignored);
        }
        let object = &event["payload"]["object"];
        let zoom_id = match &object["id"] {
            Value::Number(n) => n.as_i64().map(|i| i.to_string()),
            Value::String(s) => s.parse::<i64>().ok().map(|i| i.to_string()),
            _ => None,
        };
        let Some(zoom_id) = zoom_id else {
            return Ok(EventOutcome::NotOurs);
        };
        let Some(id) = self
            .store
            .meeting_for_provider_id(ProviderKind::Zoom, &zoom_id)
            .await?
        else {
            return Ok(EventOutcome::NotOurs);
        };
        let mark = EventMark {
            key: dedupe_key(kind, event),
            expires_at: self.clock.now() + DEDUPE_KEEP,
        };
        if self.store.event_seen(&mark.key).await? {
            return Ok(EventOutcome::Duplicate);
        }
        for _ in 0..APPLY_ATTEMPTS {
            let Some(before) = self.store.get_meeting(&id).await? else {
                return Ok(EventOutcome::NotOurs);
            };
            let Some(after) = apply(kind, event, &before, self.clock.now()) else {
                return Ok(EventOutcome::Unchanged);
            };
            if self.store.save(&before, &after, Some(&mark)).await? {
                tracing::info!(meetingId = %after.id, event = kind, status = after.status.as_str(), "provider event applied");
                return Ok(EventOutcome::Applied);
            }
            // Another delivery won: this very event, or another change to re-apply onto.
            if self.store.event_seen(&mark.key).await? {
                return Ok(EventOutcome::Duplicate);
            }
        }
        Err(ApiError::internal("provider event kept conflicting"))
    }
}
