//! The meeting lifecycle after creation: reschedule, cancel, start, end, a user's list and
//! the org's stats.

use super::Service;
use crate::domain::request::RescheduleRequest;
use crate::domain::{Caller, Meeting, MeetingStatus, policy};
use crate::error::{ApiError, ErrorCode};
use crate::ids::{MeetingId, UserId};
use crate::providers::{Deletion, MeetingProvider, ProviderError, Schedule};
use crate::store::{Stats, UserMeetingsQuery};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// How many membership pages one list request may read to fill a status-filtered page.
const MAX_LIST_ROUNDS: usize = 5;

/// A page request of `GET /users/{userId}/meetings`.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub user: UserId,
    pub statuses: Vec<MeetingStatus>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MeetingPage {
    pub meetings: Vec<Meeting>,
    pub next_cursor: Option<String>,
}

impl MeetingPage {
    pub fn to_json(&self) -> Value {
        json!({
            "meetings": self.meetings.iter().map(Meeting::to_resource).collect::<Vec<_>>(),
            "nextCursor": self.next_cursor,
        })
    }
}

fn conflict(message: &str, status: MeetingStatus) -> ApiError {
    ApiError::new(ErrorCode::Conflict, message).with_details(json!({ "status": status.as_str() }))
}

fn changed_concurrently() -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        "The meeting changed concurrently; read it again and retry",
    )
    .with_details(json!({ "reason": "CONCURRENT_CHANGE" }))
}

/// The opaque list cursor: the position in the user's partition, bound to the user and org
/// it was issued for.
fn encode_cursor(caller: &Caller, user: &UserId, sort_key: &str) -> String {
    let raw = json!({ "o": caller.org.as_str(), "u": user.as_str(), "k": sort_key }).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(caller: &Caller, req: &PageRequest, cursor: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::validation("cursor", "is not a cursor of this list");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    let key = v["k"].as_str().ok_or_else(invalid)?;
    let (lo, hi) = crate::store::dynamo::membership_range(req.from, req.to);
    let ours = v["o"] == caller.org.as_str() && v["u"] == req.user.as_str();
    if !ours || key < lo.as_str() || key > hi.as_str() {
        return Err(invalid());
    }
    Ok(key.to_owned())
}

impl Service {
    /// The meeting, if the caller may see it and manage it.
    async fn managed(
        &self,
        caller: &Caller,
        id: &MeetingId,
    ) -> Result<(Meeting, Arc<dyn MeetingProvider>), ApiError> {
        let meeting = self.meeting(caller, id).await?;
        policy::may_manage(caller, &meeting)?;
        let provider = self
            .providers
            .get(meeting.provider)
            .ok_or_else(|| {
                ApiError::internal(format!("provider {} is not configured", meeting.provider))
            })?
            .clone();
        Ok((meeting, provider))
    }

    /// Stores `after` in place of `before`, or 409 when someone changed it meanwhile.
    async fn commit(&self, before: &Meeting, mut after: Meeting) -> Result<Meeting, ApiError> {
        after.version = before.version + 1;
        after.updated_at = self.clock.now();
        if self.store.save(before, &after, None).await? {
            Ok(after)
        } else {
            Err(changed_concurrently())
        }
    }

    /// `PATCH /meetings/{id}`: the provider first, then our record.
    pub async fn reschedule(
        &self,
        caller: &Caller,
        id: &MeetingId,
        changes: &RescheduleRequest,
        deadline: Instant,
    ) -> Result<Meeting, ApiError> {
        let (meeting, provider) = self.managed(caller, id).await?;
        if meeting.status != MeetingStatus::Scheduled {
            return Err(conflict(
                "Only a scheduled meeting can be rescheduled",
                meeting.status,
            ));
        }
        let schedule = Schedule {
            topic: changes
                .topic
                .clone()
                .unwrap_or_else(|| meeting.topic.clone()),
            start_time: changes.start_time.unwrap_or(meeting.start_time),
            duration_minutes: changes.duration_minutes.unwrap_or(meeting.duration_minutes),
            timezone: changes
                .timezone
                .clone()
                .unwrap_or_else(|| meeting.timezone.clone()),
        };
        provider.update(&meeting, &schedule, deadline).await?;
        let mut after = meeting.clone();
        after.topic = schedule.topic;
        after.start_time = schedule.start_time;
        after.duration_minutes = schedule.duration_minutes;
        after.timezone = schedule.timezone;
        let saved = self.commit(&meeting, after).await?;
        tracing::info!(meetingId = %saved.id, "meeting rescheduled");
        Ok(saved)
    }

    /// `DELETE /meetings/{id}`: deleted at the provider (already gone counts), then
    /// `cancelled`. Repeating it answers the same cancelled meeting.
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: &MeetingId,
        deadline: Instant,
    ) -> Result<Meeting, ApiError> {
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
    ) -> Result<Meeting, ApiError> {
        self.transition(caller, id, MeetingStatus::Started, deadline)
            .await
    }

    /// `POST /meetings/{id}/end`: ended at the provider (one already gone counts), then
    /// `ended`. Repeating it answers the same meeting.
    pub async fn end(
        &self,
        caller: &Caller,
        id: &MeetingId,
        deadline: Instant,
    ) -> Result<Meeting, ApiError> {
        self.transition(caller, id, MeetingStatus::Ended, deadline)
            .await
    }

    async fn delete_at_provider(
        &self,
        provider: &dyn MeetingProvider,
        meeting: &Meeting,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        let id = &meeting.provider_meeting_id;
        if provider.delete(id, deadline).await? != Deletion::InProgress {
            return Ok(());
        }
        provider.end(meeting, deadline).await?;
        match provider.delete(id, deadline).await? {
            Deletion::InProgress => Err(ProviderError::Unavailable {
                retry_after: None,
                ambiguous: false,
                in_flight: false,
                cause: "meeting still in progress after ending it".into(),
            }
            .into()),
            _ => Ok(()),
        }
    }

    /// Moves a meeting to `target`: the provider side first, then the versioned record.
    /// Already there: answered as it is, with no provider call.
    async fn transition(
        &self,
        caller: &Caller,
        id: &MeetingId,
        target: MeetingStatus,
        deadline: Instant,
    ) -> Result<Meeting, ApiError> {
        let (meeting, provider) = self.managed(caller, id).await?;
        if meeting.status == target {
            return Ok(meeting);
        }
        if !meeting.status.can_become(target) {
            return Err(conflict(
                &format!(
                    "A {} meeting cannot become {}",
                    meeting.status.as_str(),
                    target.as_str()
                ),
                meeting.status,
            ));
        }
        match target {
            // A meeting running at the provider is ended first, then deleted.
            MeetingStatus::Cancelled => {
                self.delete_at_provider(provider.as_ref(), &meeting, deadline)
                    .await?
            }
            MeetingStatus::Ended => match provider.end(&meeting, deadline).await {
                Ok(()) | Err(ProviderError::NotFound) => {}
                Err(e) => return Err(e.into()),
            },
            _ => {}
        }
        let now = self.clock.now();
        let mut after = meeting.clone();
        after.status = target;
        match target {
            MeetingStatus::Started => after.started_at = Some(now),
            MeetingStatus::Ended => after.ended_at = Some(now),
            _ => {}
        }
        let saved = self.commit(&meeting, after).await?;
        tracing::info!(meetingId = %saved.id, status = target.as_str(), "meeting status changed");
        Ok(saved)
    }

    /// `GET /users/{userId}/meetings`: by start time, filtered, in pages.
    pub async fn user_meetings(
        &self,
        caller: &Caller,
        req: &PageRequest,
    ) -> Result<MeetingPage, ApiError> {
        policy::may_list(caller, &req.user)?;
        let mut query = UserMeetingsQuery {
            org: caller.org.clone(),
            user: req.user.clone(),
            from: req.from,
            to: req.to,
            limit: req.limit,
            cursor: req
                .cursor
                .as_deref()
                .map(|c| decode_cursor(caller, req, c))
                .transpose()?,
        };
        let mut meetings = Vec::new();
        let mut next = None;
        for _ in 0..MAX_LIST_ROUNDS {
            query.limit = req.limit - meetings.len();
            let (ids, after) = self.store.user_meetings(&query).await?;
            let found = self.store.get_meetings(&ids).await?;
            meetings.extend(
                found
                    .into_iter()
                    .filter(|m| req.statuses.is_empty() || req.statuses.contains(&m.status)),
            );
            next = after;
            if meetings.len() >= req.limit || next.is_none() {
                break;
            }
            query.cursor = next.clone();
        }
        Ok(MeetingPage {
            meetings,
            next_cursor: next.map(|k| encode_cursor(caller, &req.user, &k)),
        })
    }

    /// `GET /stats`: counters kept on every transition, read in one query.
    pub async fn stats(&self, caller: &Caller) -> Result<Stats, ApiError> {
        policy::may_read_stats(caller)?;
        self.store.stats(&caller.org).await
    }
}

/// The stats body: every status and provider named, zeros included.
pub fn stats_json(stats: &Stats) -> Value {
    let by_status: serde_json::Map<String, Value> = MeetingStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_owned(),
                json!(stats.by_status.get(s.as_str()).copied().unwrap_or(0)),
            )
        })
        .collect();
    let by_provider: serde_json::Map<String, Value> = ["zoom", "jitsi", "zoho"]
        .iter()
        .map(|p| {
            (
                (*p).to_owned(),
                json!(stats.by_provider.get(*p).copied().unwrap_or(0)),
            )
        })
        .collect();
    json!({
        "byStatus": by_status,
        "byProvider": by_provider,
        "attendance": { "bothJoined": stats.both_joined, "noShow": stats.no_show },
    })
}
