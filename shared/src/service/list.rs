//! Reading many: a user's meetings by start time, in pages, and an org's stats.

use super::{Service, ServiceResult};
use crate::domain::{Caller, Invalid, Meeting, MeetingStatus, Stats, policy};
use crate::ids::UserId;
use crate::store::{UserMeetingsQuery, keys};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

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

/// The opaque list cursor: the position in the user's partition, bound to the user and org
/// it was issued for.
fn encode_cursor(caller: &Caller, user: &UserId, sort_key: &str) -> String {
    let raw = json!({ "o": caller.org.as_str(), "u": user.as_str(), "k": sort_key }).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The position a cursor names, if this caller was given it for this list and range.
fn decode_cursor(caller: &Caller, req: &PageRequest, cursor: &str) -> Result<String, Invalid> {
    let invalid = || Invalid::new("cursor", "is not a cursor of this list");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    let key = v["k"].as_str().ok_or_else(invalid)?;
    // Only the shape this list writes (`AT#{start}#{meetingId}`): a made-up position never
    // reaches the store as a start key.
    let well_formed = key
        .strip_prefix("AT#")
        .and_then(|rest| rest.rsplit_once('#'))
        .is_some_and(|(start, id)| {
            chrono::DateTime::parse_from_rfc3339(start).is_ok()
                && crate::ids::MeetingId::parse(id, "cursor").is_ok()
        });
    if !well_formed {
        return Err(invalid());
    }
    let (lo, hi) = keys::membership_range(req.from, req.to);
    let ours = v["o"] == caller.org.as_str() && v["u"] == req.user.as_str();
    if !ours || key < lo.as_str() || key > hi.as_str() {
        return Err(invalid());
    }
    Ok(key.to_owned())
}

impl Service {
    /// `GET /users/{userId}/meetings`: by start time, filtered, in pages (a Query of the
    /// user's memberships, never a Scan).
    pub async fn user_meetings(
        &self,
        caller: &Caller,
        req: &PageRequest,
    ) -> ServiceResult<MeetingPage> {
        policy::may_list(caller, &req.user)?;
        let cursor = req
            .cursor
            .as_deref()
            .map(|c| decode_cursor(caller, req, c))
            .transpose();
        let mut query = UserMeetingsQuery {
            org: caller.org.clone(),
            user: req.user.clone(),
            from: req.from,
            to: req.to,
            limit: req.limit,
            cursor: cursor.map_err(crate::domain::DomainError::from)?,
        };
        let mut meetings = Vec::new();
        let mut next = None;
        for _ in 0..MAX_LIST_ROUNDS {
            query.limit = req.limit - meetings.len();
            let (ids, after) = self.stores.members.user_meetings(&query).await?;
            let found = self.stores.meetings.get_meetings(&ids).await?;
            // What people see at `now`: expired conversations, no records past retention.
            let now = self.clock.now();
            let seen = found.into_iter().filter(|m| !m.is_gone(now)).map(|mut m| {
                m.status = m.status_at(now);
                m
            });
            let wanted = |m: &Meeting| req.statuses.is_empty() || req.statuses.contains(&m.status);
            meetings.extend(seen.filter(wanted));
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
    pub async fn stats(&self, caller: &Caller) -> ServiceResult<Stats> {
        policy::may_read_stats(caller)?;
        Ok(self.stores.stats.stats(&caller.org).await?)
    }
}
