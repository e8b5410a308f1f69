//! Domain types: callers, subjects, meetings and their statuses.

pub mod policy;
pub mod request;

use crate::ids::{MeetingId, OrgId, SubjectId, UserId};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::fmt;
use std::str::FromStr;

/// The caller's role claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Patient,
    Practitioner,
    Staff,
    Admin,
    /// The clinic platform's backend, acting for its org.
    Service,
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "patient" => Self::Patient,
            "practitioner" => Self::Practitioner,
            "staff" => Self::Staff,
            "admin" => Self::Admin,
            "service" => Self::Service,
            _ => return Err(()),
        })
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Practitioner => "practitioner",
            Self::Staff => "staff",
            Self::Admin => "admin",
            Self::Service => "service",
        }
    }
}

/// An authenticated caller. Names from the token are deliberately not kept (no PHI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub role: Role,
    pub org: OrgId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    Appointment,
    Conversation,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Appointment => "appointment",
            Self::Conversation => "conversation",
        }
    }
}

impl FromStr for SubjectKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "appointment" => Ok(Self::Appointment),
            "conversation" => Ok(Self::Conversation),
            _ => Err(()),
        }
    }
}

/// What a meeting is for: one appointment or one chat conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: SubjectId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingStatus {
    Scheduled,
    Started,
    Ended,
    Cancelled,
    Expired,
    Archived,
}

impl MeetingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Started => "started",
            Self::Ended => "ended",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Archived => "archived",
        }
    }

    /// Links are only handed out for meetings people can still join.
    pub fn joinable(self) -> bool {
        matches!(self, Self::Scheduled | Self::Started)
    }

    /// `scheduled → started → ended`, `scheduled|started → cancelled`; the cleanup archives
    /// what is finished. `ended`, `cancelled`, `expired` and `archived` never go back.
    pub fn can_become(self, next: Self) -> bool {
        use MeetingStatus::*;
        matches!(
            (self, next),
            (Scheduled, Started | Ended | Cancelled | Expired)
                | (Started, Ended | Cancelled)
                | (Ended | Cancelled | Expired, Archived)
        )
    }

    pub const ALL: [Self; 6] = [
        Self::Scheduled,
        Self::Started,
        Self::Ended,
        Self::Cancelled,
        Self::Expired,
        Self::Archived,
    ];
}

impl FromStr for MeetingStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "scheduled" => Self::Scheduled,
            "started" => Self::Started,
            "ended" => Self::Ended,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            "archived" => Self::Archived,
            _ => return Err(()),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Zoom,
    Jitsi,
    Zoho,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zoom => "zoom",
            Self::Jitsi => "jitsi",
            Self::Zoho => "zoho",
        }
    }
}

impl FromStr for ProviderKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "zoom" => Self::Zoom,
            "jitsi" => Self::Jitsi,
            "zoho" => Self::Zoho,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which link a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRole {
    Host,
    Participant,
}

impl LinkRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Participant => "participant",
        }
    }
}

/// Provider-side access data. Stored with the meeting, never part of the meeting resource,
/// never logged.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ProviderLinks {
    pub join_url: String,
    pub host_url: String,
    /// When the provider generated `host_url` (a Zoom start_url lives two hours).
    pub host_url_fetched_at: Option<DateTime<Utc>>,
    pub password: Option<String>,
}

impl fmt::Debug for ProviderLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderLinks")
            .field("host_url_fetched_at", &self.host_url_fetched_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attendance {
    pub host_joined_at: Option<DateTime<Utc>>,
    pub participant_joined_at: Option<DateTime<Utc>>,
    /// Join and leave events seen (rejoins count); ids only, never who.
    pub joins: u32,
    pub leaves: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub id: MeetingId,
    pub org: OrgId,
    pub subject: Subject,
    pub provider: ProviderKind,
    pub provider_meeting_id: String,
    pub provider_uuid: Option<String>,
    pub topic: String,
    pub start_time: DateTime<Utc>,
    pub duration_minutes: u32,
    pub timezone: String,
    pub status: MeetingStatus,
    pub host: UserId,
    pub participants: Vec<UserId>,
    pub initiated_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub attendance: Attendance,
    pub links: ProviderLinks,
    /// Optimistic-concurrency counter for later updates.
    pub version: u64,
    /// `event_ts` (ms) of the newest provider update applied, so a late older one is ignored.
    pub provider_event_ts: Option<i64>,
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn rfc3339_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339_millis(t)))
}

impl Meeting {
    pub fn is_participant(&self, user: &UserId) -> bool {
        self.participants.iter().any(|p| p == user)
    }

    /// The meeting resource of the contract. Links, passwords and tokens are not part of it.
    pub fn to_resource(&self) -> Value {
        json!({
            "meetingId": self.id.as_str(),
            "orgId": self.org.as_str(),
            "subject": { "type": self.subject.kind.as_str(), "id": self.subject.id.as_str() },
            "provider": self.provider.as_str(),
            "providerMeetingId": self.provider_meeting_id,
            "topic": self.topic,
            "startTime": rfc3339(self.start_time),
            "durationMinutes": self.duration_minutes,
            "timezone": self.timezone,
            "status": self.status.as_str(),
            "hostUserId": self.host.as_str(),
            "participantUserIds": self.participants.iter().map(UserId::as_str).collect::<Vec<_>>(),
            "initiatedBy": self.initiated_by.as_str(),
            "createdAt": rfc3339_millis(self.created_at),
            "updatedAt": rfc3339_millis(self.updated_at),
            "startedAt": opt_time(self.started_at),
            "endedAt": opt_time(self.ended_at),
            "expiresAt": opt_time(self.expires_at),
            "attendance": {
                "hostJoinedAt": opt_time(self.attendance.host_joined_at),
                "participantJoinedAt": opt_time(self.attendance.participant_joined_at),
                "joins": self.attendance.joins,
                "leaves": self.attendance.leaves,
            },
        })
    }
}
