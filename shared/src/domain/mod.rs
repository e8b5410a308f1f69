//! The domain: callers, subjects, meetings, their claims and lifecycle, and the pure rules
//! over them. Nothing here does I/O; every rule takes the time it needs as an argument and
//! has table-driven unit tests beside it.
//!
//! - [`policy`]: who may do what (DESIGN.md, Identity).
//! - [`claim`]: one meeting per subject (guarantee 1): reuse, wait or take over.
//! - [`meeting`]: the meeting, its status transitions, and when it is due for cleanup.
//! - [`event`]: a provider's event applied to a meeting, never backwards.
//! - [`notice`]: the platform's events a change of a meeting means.
//! - [`stats`]: what a change does to an org's counters.
//! - [`org`]: an org's settings, connections, host directory and budgets.
//! - [`subscription`]: an org's event subscription and its filters.
//! - [`request`]: request bodies, validated field by field.

pub mod caller;
pub mod claim;
pub mod error;
pub mod event;
pub mod meeting;
pub mod notice;
pub mod org;
pub mod org_request;
pub mod policy;
pub mod request;
pub mod stats;
pub mod subscription;

pub use caller::{Caller, Role};
pub use claim::{Claim, ClaimState, ClaimStep};
pub use error::{DomainError, Invalid};
pub use event::{EventKind, ProviderEvent};
pub use meeting::{
    Attendance, DueFor, LinkRole, Meeting, MeetingStatus, ProviderKind, ProviderLinks, Schedule,
    Subject, SubjectKind,
};
pub use org::{Account, Connection, HostEntry, OrgProfile, OrgSettings};
pub use stats::Stats;

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 to the second, UTC (`2026-11-21T10:00:00Z`): start times and sort keys.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// RFC 3339 to the millisecond, UTC: record times.
pub fn rfc3339_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A test fixture: a scheduled Zoom appointment meeting of dr-7 with pat-9 in clinic-1.
#[cfg(test)]
pub(crate) fn sample_meeting(start: DateTime<Utc>) -> Meeting {
    use crate::ids::{MeetingId, OrgId, SubjectId, UserId};
    let id = |s: &str| UserId::parse(s, "t").expect("id");
    Meeting {
        id: MeetingId::parse("mtg_sample", "t").expect("id"),
        org: OrgId::parse("clinic-1", "t").expect("id"),
        subject: Subject {
            kind: SubjectKind::Appointment,
            id: SubjectId::parse("appt-1", "t").expect("id"),
        },
        provider: ProviderKind::Zoom,
        provider_meeting_id: "85746065432".into(),
        provider_uuid: None,
        topic: "Video consultation".into(),
        start_time: start,
        duration_minutes: 30,
        timezone: "UTC".into(),
        status: MeetingStatus::Scheduled,
        host: id("dr-7"),
        participants: vec![id("pat-9")],
        initiated_by: id("svc-1"),
        created_at: start,
        updated_at: start,
        started_at: None,
        ended_at: None,
        expires_at: None,
        attendance: Attendance::default(),
        links: ProviderLinks::default(),
        version: 1,
        provider_event_ts: None,
        account: Account::Deployment,
        provider_user: None,
        kept_until: None,
        room_closed_at: None,
        signals: Default::default(),
    }
}
