//! The meeting: what it is for, where it runs, its links, its status and the transitions
//! between statuses, and when the weekly cleanup takes it.

use super::error::DomainError;
use crate::ids::{MeetingId, OrgId, SubjectId, UserId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Implements `as_str`, `Display`, `FromStr` and serde for a fieldless enum by its names.
macro_rules! named {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($name => Ok(Self::$variant),)+ _ => Err(()) }
            }
        }
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(|()| serde::de::Error::custom(format!("unknown {}: {s}", stringify!($ty))))
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    Appointment,
    Conversation,
}

named!(SubjectKind { Appointment => "appointment", Conversation => "conversation" });

/// What a meeting is for: one appointment or one chat conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: SubjectId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeetingStatus {
    Scheduled,
    Started,
    Ended,
    Cancelled,
    Expired,
    Archived,
}

named!(MeetingStatus {
    Scheduled => "scheduled",
    Started => "started",
    Ended => "ended",
    Cancelled => "cancelled",
    Expired => "expired",
    Archived => "archived",
});

/// Every move a meeting's status may make: `scheduled → started → ended`,
/// `scheduled|started → cancelled`, a conversation's `scheduled → expired`, and the cleanup
/// archiving what is finished. Nothing leaves `ended`, `cancelled`, `expired` or `archived`
/// except into `archived`.
const TRANSITIONS: &[(MeetingStatus, MeetingStatus)] = {
    use MeetingStatus::*;
    &[
        (Scheduled, Started),
        (Scheduled, Ended),
        (Scheduled, Cancelled),
        (Scheduled, Expired),
        (Started, Ended),
        (Started, Cancelled),
        (Ended, Archived),
        (Cancelled, Archived),
        (Expired, Archived),
    ]
};

impl MeetingStatus {
    pub const ALL: [Self; 6] = [
        Self::Scheduled,
        Self::Started,
        Self::Ended,
        Self::Cancelled,
        Self::Expired,
        Self::Archived,
    ];

    /// Links are only handed out for meetings people can still join.
    pub fn joinable(self) -> bool {
        matches!(self, Self::Scheduled | Self::Started)
    }

    pub fn can_become(self, next: Self) -> bool {
        TRANSITIONS.contains(&(self, next))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Zoom,
    Jitsi,
    Zoho,
}

named!(ProviderKind { Zoom => "zoom", Jitsi => "jitsi", Zoho => "zoho" });

impl ProviderKind {
    pub const ALL: [Self; 3] = [Self::Zoom, Self::Jitsi, Self::Zoho];
}

/// Which link a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRole {
    Host,
    Participant,
}

named!(LinkRole { Host => "host", Participant => "participant" });

/// Provider-side access data. Stored with the meeting, never part of the meeting resource,
/// never logged (its `Debug` shows none of it).
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
    /// Optimistic-concurrency counter: every write is conditioned on the one read.
    pub version: u64,
    /// `event_ts` (ms) of the newest provider update applied, so a late older one is ignored.
    pub provider_event_ts: Option<i64>,
    /// Whose provider account the meeting lives in (the org's own connection or the
    /// deployment's), and the provider user hosting it there (`None`: the account's default).
    pub account: super::Account,
    pub provider_user: Option<String>,
    /// An archived record is kept until then (its TTL); past it, it reads as absent
    /// whether or not TTL has deleted it yet (guarantee 7).
    pub kept_until: Option<DateTime<Utc>>,
    /// When telemeet deleted the provider's room ahead of the weekly cleanup (a conversation
    /// whose window closed, or that was ended here): nothing is left there to delete.
    pub room_closed_at: Option<DateTime<Utc>>,
    /// Facts kept only for the platform's events (calls, waiting room, no-show).
    pub signals: super::notice::Signals,
}

/// Which cleanup pass takes a meeting next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueFor {
    /// The weekly cleanup: provider delete (unless done already) and archive.
    Archive,
    /// The frequent pass: a conversation room still open at the provider, to be deleted
    /// there now that its window closed or it ended.
    RoomClose,
}

/// When and what a meeting is scheduled as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub topic: String,
    pub start_time: DateTime<Utc>,
    pub duration_minutes: u32,
    pub timezone: String,
}

/// A meeting becomes due for the weekly cleanup this long after its scheduled end.
pub const DUE_GRACE: Duration = Duration::hours(1);

/// What a status change asked for comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The meeting already has that status: nothing to do (the request is a repeat).
    Already,
    /// The meeting as it is after the change (not yet stored).
    To(Box<Meeting>),
}

impl Meeting {
    pub fn is_participant(&self, user: &UserId) -> bool {
        self.participants.iter().any(|p| p == user)
    }

    /// The host and every participant, with their role.
    pub fn members(&self) -> impl Iterator<Item = (&UserId, LinkRole)> {
        std::iter::once((&self.host, LinkRole::Host))
            .chain(self.participants.iter().map(|p| (p, LinkRole::Participant)))
    }

    pub fn schedule(&self) -> Schedule {
        Schedule {
            topic: self.topic.clone(),
            start_time: self.start_time,
            duration_minutes: self.duration_minutes,
            timezone: self.timezone.clone(),
        }
    }

    /// The meeting rescheduled to `s` (the writer sets the version).
    pub fn rescheduled(&self, s: Schedule) -> Meeting {
        Meeting {
            topic: s.topic,
            start_time: s.start_time,
            duration_minutes: s.duration_minutes,
            timezone: s.timezone,
            ..self.clone()
        }
    }

    pub fn scheduled_end(&self) -> DateTime<Utc> {
        self.start_time + Duration::minutes(self.duration_minutes.into())
    }

    /// Whether the record is past its retention at `now`: then it is treated as absent.
    pub fn is_gone(&self, now: DateTime<Utc>) -> bool {
        self.kept_until.is_some_and(|t| t <= now)
    }

    /// The status people see at `now`: a conversation meeting past its reuse window reads
    /// `expired` whatever TTL has or has not removed yet (guarantee 7).
    pub fn status_at(&self, now: DateTime<Utc>) -> MeetingStatus {
        let over = self.expires_at.is_some_and(|t| t <= now);
        if over && self.status.can_become(MeetingStatus::Expired) {
            MeetingStatus::Expired
        } else {
            self.status
        }
    }

    /// When the weekly cleanup takes the meeting: a grace period after its scheduled end, or
    /// after it was ended or cancelled if that came first. Never once archived.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        let finished = match self.status {
            MeetingStatus::Archived => return None,
            MeetingStatus::Ended => self.ended_at,
            MeetingStatus::Cancelled => Some(self.updated_at),
            _ => None,
        };
        let end = finished.map_or(self.scheduled_end(), |f| f.min(self.scheduled_end()));
        Some(end + DUE_GRACE)
    }

    /// When a conversation's room must be closed at the provider: at the end of its window,
    /// or when it ended (here or at the provider), whichever came first. A conversation room
    /// lets either side in without the other (join before host, no waiting room), so it
    /// must not stay open for the week until the cleanup. A cancelled one was deleted when
    /// it was cancelled; one in progress at the window's end is retried until it is over.
    pub fn room_close_at(&self) -> Option<DateTime<Utc>> {
        if self.subject.kind != super::SubjectKind::Conversation || self.room_closed_at.is_some() {
            return None;
        }
        match self.status {
            MeetingStatus::Scheduled | MeetingStatus::Started => self.expires_at,
            MeetingStatus::Ended => match (self.ended_at, self.expires_at) {
                (Some(e), Some(x)) => Some(e.min(x)),
                (e, x) => e.or(x),
            },
            _ => None,
        }
    }

    /// Where the due index keeps the meeting, and from when: a room to close first, then
    /// the weekly cleanup. `None` once archived.
    pub fn due_slot(&self) -> Option<(DueFor, DateTime<Utc>)> {
        match self.room_close_at() {
            Some(at) => Some((DueFor::RoomClose, at)),
            None => self.due_at().map(|at| (DueFor::Archive, at)),
        }
    }

    /// The meeting moved to `target` at `now`, by the transition table; the version and
    /// `updated_at` are the writer's (see [`Meeting::next_version`]).
    pub fn transition(
        &self,
        target: MeetingStatus,
        now: DateTime<Utc>,
    ) -> Result<Transition, DomainError> {
        if self.status == target {
            return Ok(Transition::Already);
        }
        if !self.status.can_become(target) {
            return Err(DomainError::Transition {
                from: self.status,
                to: target,
            });
        }
        let mut after = self.clone();
        after.status = target;
        match target {
            MeetingStatus::Started => after.started_at = Some(now),
            MeetingStatus::Ended => after.ended_at = Some(now),
            _ => {}
        }
        Ok(Transition::To(Box::new(after)))
    }

    /// Marks `self` as the next version of `before`, changed at `now`.
    pub fn next_version(mut self, before: &Meeting, now: DateTime<Utc>) -> Meeting {
        self.version = before.version + 1;
        self.updated_at = now;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sample_meeting;
    use MeetingStatus::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn the_transition_table_allows_exactly_the_contract_s_moves() {
        // Row: from; columns in MeetingStatus::ALL order (scheduled started ended cancelled expired archived).
        let table: [(MeetingStatus, [bool; 6]); 6] = [
            (Scheduled, [false, true, true, true, true, false]),
            (Started, [false, false, true, true, false, false]),
            (Ended, [false, false, false, false, false, true]),
            (Cancelled, [false, false, false, false, false, true]),
            (Expired, [false, false, false, false, false, true]),
            (Archived, [false, false, false, false, false, false]),
        ];
        for (from, row) in table {
            for (to, allowed) in MeetingStatus::ALL.into_iter().zip(row) {
                assert_eq!(from.can_become(to), allowed, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_transition_stamps_its_time_refuses_a_forbidden_move_and_knows_a_repeat() {
        let now = t("2026-11-21T10:05:00Z");
        let m = sample_meeting(t("2026-11-21T10:00:00Z"));
        let Ok(Transition::To(started)) = m.transition(Started, now) else {
            panic!("scheduled -> started");
        };
        assert_eq!((started.status, started.started_at), (Started, Some(now)));
        let Ok(Transition::To(ended)) = started.transition(Ended, now) else {
            panic!("started -> ended");
        };
        assert_eq!(ended.ended_at, Some(now));
        assert_eq!(ended.transition(Ended, now), Ok(Transition::Already));
        assert_eq!(
            ended.transition(Started, now),
            Err(DomainError::Transition {
                from: Ended,
                to: Started
            })
        );
        let next = (*ended).clone().next_version(&m, now);
        assert_eq!((next.version, next.updated_at), (2, now));
    }

    #[test]
    fn a_meeting_is_due_a_grace_hour_after_it_ended_or_was_due_to_end() {
        let start = t("2026-11-21T10:00:00Z");
        let m = sample_meeting(start); // 30 minutes
        let cases: [(MeetingStatus, Option<&str>, &str, Option<&str>); 6] = [
            (
                Scheduled,
                None,
                "2026-11-21T09:00:00Z",
                Some("2026-11-21T11:30:00Z"),
            ),
            (
                Started,
                None,
                "2026-11-21T10:00:00Z",
                Some("2026-11-21T11:30:00Z"),
            ),
            // Ended early: due an hour after it ended.
            (
                Ended,
                Some("2026-11-21T10:10:00Z"),
                "2026-11-21T10:10:00Z",
                Some("2026-11-21T11:10:00Z"),
            ),
            // Ended late: the scheduled end counts.
            (
                Ended,
                Some("2026-11-21T12:00:00Z"),
                "2026-11-21T12:00:00Z",
                Some("2026-11-21T11:30:00Z"),
            ),
            // Cancelled the day before: due an hour after the cancellation.
            (
                Cancelled,
                None,
                "2026-11-20T10:00:00Z",
                Some("2026-11-20T11:00:00Z"),
            ),
            (Archived, None, "2026-11-28T10:00:00Z", None),
        ];
        for (status, ended, updated, due) in cases {
            let mut m = m.clone();
            m.status = status;
            m.ended_at = ended.map(t);
            m.updated_at = t(updated);
            assert_eq!(m.due_at(), due.map(t), "{status}");
        }
    }

    #[test]
    fn a_conversation_past_its_window_reads_expired_unless_it_is_finished() {
        let start = t("2026-11-21T10:00:00Z");
        let mut m = sample_meeting(start);
        m.expires_at = Some(t("2026-11-21T11:00:00Z"));
        let cases = [
            (Scheduled, "2026-11-21T10:59:59Z", Scheduled),
            (Scheduled, "2026-11-21T11:00:00Z", Expired),
            (Started, "2026-11-21T12:00:00Z", Started),
            (Ended, "2026-11-21T12:00:00Z", Ended),
        ];
        for (status, at, seen) in cases {
            m.status = status;
            assert_eq!(m.status_at(t(at)), seen, "{status} at {at}");
        }
        m.expires_at = None;
        m.status = Scheduled;
        assert_eq!(m.status_at(t("2030-01-01T00:00:00Z")), Scheduled);
    }

    #[test]
    fn a_conversation_room_is_due_for_closing_at_its_windows_end_or_its_end_then_for_archive() {
        let start = t("2026-11-21T10:00:00Z");
        let mut m = sample_meeting(start);
        assert_eq!(
            m.due_slot(),
            Some((DueFor::Archive, t("2026-11-21T11:30:00Z"))),
            "an appointment waits for the weekly cleanup"
        );
        m.subject.kind = crate::domain::SubjectKind::Conversation;
        m.expires_at = Some(t("2026-11-21T11:00:00Z"));
        let window_end = Some((DueFor::RoomClose, t("2026-11-21T11:00:00Z")));
        for status in [Scheduled, Started] {
            m.status = status;
            assert_eq!(m.due_slot(), window_end, "{status}");
        }
        m.status = Ended;
        m.ended_at = Some(t("2026-11-21T10:20:00Z"));
        m.updated_at = t("2026-11-21T10:20:00Z");
        assert_eq!(
            m.due_slot(),
            Some((DueFor::RoomClose, t("2026-11-21T10:20:00Z"))),
            "ended inside its window: closed then"
        );
        m.room_closed_at = Some(t("2026-11-21T10:21:00Z"));
        assert_eq!(
            m.due_slot(),
            Some((DueFor::Archive, t("2026-11-21T11:20:00Z"))),
            "closed: the weekly cleanup only archives it"
        );
        m.room_closed_at = None;
        m.status = Cancelled;
        assert_eq!(m.due_slot().map(|(f, _)| f), Some(DueFor::Archive));
    }
}
