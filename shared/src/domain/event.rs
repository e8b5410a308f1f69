//! A provider's event about a meeting (a Zoom webhook, parsed by its adapter into this
//! provider-neutral form) and the pure rule of what it changes: exactly once is the
//! service's job (dedupe marks); never backwards is this rule's.

use super::{Attendance, Meeting, MeetingStatus, ProviderKind};
use chrono::{DateTime, Utc};

/// One delivered fact about a provider meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    pub provider: ProviderKind,
    pub provider_meeting_id: String,
    /// Names this fact (event, meeting instance, time, who): a redelivery has the same key.
    pub dedupe_key: String,
    /// When the provider says it happened (epoch ms), if it says.
    pub at_ms: Option<i64>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Started {
        at: Option<DateTime<Utc>>,
    },
    Ended {
        at: Option<DateTime<Utc>>,
    },
    /// Deleted at the provider: the meeting is cancelled.
    Deleted,
    /// Rescheduled at the provider; only the fields it names change.
    Updated {
        start_time: Option<DateTime<Utc>>,
        duration_minutes: Option<u32>,
        topic: Option<String>,
        timezone: Option<String>,
    },
    ParticipantJoined {
        host: bool,
        at: Option<DateTime<Utc>>,
    },
    ParticipantLeft,
    /// Someone is waiting to be let in: Zoom's waiting room, or waiting for the host
    /// (join before host off). Only counted: the platform is told (`participant.waiting`).
    ParticipantWaiting,
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Started { .. } => "started",
            Self::Ended { .. } => "ended",
            Self::Deleted => "deleted",
            Self::Updated { .. } => "updated",
            Self::ParticipantJoined { .. } => "participant_joined",
            Self::ParticipantLeft => "participant_left",
            Self::ParticipantWaiting => "participant_waiting",
        }
    }
}

/// The meeting after `event`, or `None` when it changes nothing: a move the status table
/// forbids (a late `started` after `ended`), or an update older than the newest applied.
/// The caller sets the version (see [`Meeting::next_version`]).
pub fn apply(before: &Meeting, event: &ProviderEvent, now: DateTime<Utc>) -> Option<Meeting> {
    let at = event
        .at_ms
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(now);
    // The lifecycle as people see it now: an expired conversation meeting (stored as
    // scheduled) is as final as an ended one.
    let status = before.status_at(now);
    let mut after = before.clone();
    match &event.kind {
        // Attendance is counted only while people can be in the meeting.
        EventKind::ParticipantJoined { .. }
        | EventKind::ParticipantLeft
        | EventKind::ParticipantWaiting
            if !status.joinable() =>
        {
            return None;
        }
        EventKind::Started { at: started } if status.can_become(MeetingStatus::Started) => {
            after.status = MeetingStatus::Started;
            after.started_at = Some(started.unwrap_or(at));
        }
        EventKind::Ended { at: ended } if status.can_become(MeetingStatus::Ended) => {
            after.status = MeetingStatus::Ended;
            after.ended_at = Some(ended.unwrap_or(at));
        }
        EventKind::Deleted if status.can_become(MeetingStatus::Cancelled) => {
            after.status = MeetingStatus::Cancelled;
        }
        EventKind::Updated {
            start_time,
            duration_minutes,
            topic,
            timezone,
        } => {
            let ts = event.at_ms?;
            // Only a newer update of a meeting that can still change.
            if !status.joinable() || before.provider_event_ts.is_some_and(|seen| seen >= ts) {
                return None;
            }
            after.start_time = start_time.unwrap_or(after.start_time);
            after.duration_minutes = duration_minutes.unwrap_or(after.duration_minutes);
            after.topic = topic.clone().unwrap_or(after.topic);
            after.timezone = timezone.clone().unwrap_or(after.timezone);
            after.provider_event_ts = Some(ts);
        }
        EventKind::ParticipantJoined { host, at: joined } => {
            record_join(&mut after.attendance, *host, joined.unwrap_or(at));
        }
        EventKind::ParticipantLeft => after.attendance.leaves += 1,
        // Every (deduplicated) arrival counts: a new version, so a new participant.waiting.
        EventKind::ParticipantWaiting => after.signals.waiting += 1,
        _ => return None,
    }
    Some(after.next_version(before, now))
}

/// The first join time of each side is kept; every (deduplicated) join is counted.
fn record_join(attendance: &mut Attendance, host: bool, at: DateTime<Utc>) {
    let first = if host {
        &mut attendance.host_joined_at
    } else {
        &mut attendance.participant_joined_at
    };
    first.get_or_insert(at);
    attendance.joins += 1;
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

    fn event(kind: EventKind, at_ms: Option<i64>) -> ProviderEvent {
        ProviderEvent {
            provider: ProviderKind::Zoom,
            provider_meeting_id: "85746065432".into(),
            dedupe_key: "k".into(),
            at_ms,
            kind,
        }
    }

    fn with_status(status: MeetingStatus) -> Meeting {
        let mut m = sample_meeting(t("2026-11-21T10:00:00Z"));
        m.status = status;
        m
    }

    #[test]
    fn status_events_move_forward_only() {
        let now = t("2026-11-21T10:30:00Z");
        let started = EventKind::Started {
            at: Some(t("2026-11-21T10:01:00Z")),
        };
        let ended = EventKind::Ended { at: None };
        let cases = [
            (Scheduled, started.clone(), Some(Started)),
            (Started, started.clone(), None),
            (Ended, started, None),
            (Scheduled, ended.clone(), Some(Ended)),
            (Started, ended.clone(), Some(Ended)),
            (Cancelled, ended, None),
            (Scheduled, EventKind::Deleted, Some(Cancelled)),
            (Started, EventKind::Deleted, Some(Cancelled)),
            (Ended, EventKind::Deleted, None),
            (Archived, EventKind::Deleted, None),
        ];
        for (from, kind, to) in cases {
            let before = with_status(from);
            let after = apply(&before, &event(kind.clone(), Some(1_000)), now);
            assert_eq!(
                after.as_ref().map(|m| m.status),
                to,
                "{from} + {}",
                kind.name()
            );
            if let Some(a) = after {
                assert_eq!((a.version, a.updated_at), (before.version + 1, now));
            }
        }
    }

    #[test]
    fn event_times_come_from_the_payload_else_the_event_else_now() {
        let now = t("2026-11-21T10:30:00Z");
        let before = with_status(Scheduled);
        let own = apply(
            &before,
            &event(
                EventKind::Started {
                    at: Some(t("2026-11-21T10:01:00Z")),
                },
                Some(1),
            ),
            now,
        );
        assert_eq!(
            own.and_then(|m| m.started_at),
            Some(t("2026-11-21T10:01:00Z"))
        );
        let ts = t("2026-11-21T10:02:00Z").timestamp_millis();
        let by_ts = apply(
            &before,
            &event(EventKind::Started { at: None }, Some(ts)),
            now,
        );
        assert_eq!(
            by_ts.and_then(|m| m.started_at),
            Some(t("2026-11-21T10:02:00Z"))
        );
        let by_now = apply(&before, &event(EventKind::Ended { at: None }, None), now);
        assert_eq!(by_now.and_then(|m| m.ended_at), Some(now));
    }

    #[test]
    fn only_a_newer_update_of_a_live_meeting_applies_and_only_its_fields_change() {
        let now = t("2026-11-21T10:30:00Z");
        let update = |ts| {
            event(
                EventKind::Updated {
                    start_time: Some(t("2026-11-22T09:00:00Z")),
                    duration_minutes: None,
                    topic: Some("Follow-up".into()),
                    timezone: None,
                },
                ts,
            )
        };
        let before = with_status(Scheduled);
        let after = apply(&before, &update(Some(5)), now).expect("applied");
        assert_eq!(
            (
                after.start_time,
                after.duration_minutes,
                after.topic.as_str(),
                after.provider_event_ts
            ),
            (t("2026-11-22T09:00:00Z"), 30, "Follow-up", Some(5))
        );
        assert_eq!(apply(&after, &update(Some(5)), now), None, "not newer");
        assert_eq!(apply(&after, &update(Some(4)), now), None, "older");
        assert!(apply(&after, &update(Some(6)), now).is_some());
        assert_eq!(apply(&before, &update(None), now), None, "no event time");
        assert_eq!(
            apply(&with_status(Ended), &update(Some(5)), now),
            None,
            "finished"
        );
    }

    #[test]
    fn joins_keep_the_first_time_per_side_and_every_join_and_leave_counts() {
        let now = t("2026-11-21T10:30:00Z");
        let join = |host, at: &str| {
            event(
                EventKind::ParticipantJoined {
                    host,
                    at: Some(t(at)),
                },
                Some(1),
            )
        };
        let m = with_status(Started);
        let m = apply(&m, &join(true, "2026-11-21T10:00:00Z"), now).expect("host");
        let m = apply(&m, &join(false, "2026-11-21T10:02:00Z"), now).expect("patient");
        let m = apply(&m, &join(false, "2026-11-21T10:09:00Z"), now).expect("rejoin");
        let m = apply(&m, &event(EventKind::ParticipantLeft, Some(2)), now).expect("left");
        assert_eq!(m.attendance.host_joined_at, Some(t("2026-11-21T10:00:00Z")));
        assert_eq!(
            m.attendance.participant_joined_at,
            Some(t("2026-11-21T10:02:00Z"))
        );
        assert_eq!((m.attendance.joins, m.attendance.leaves), (3, 1));
    }

    #[test]
    fn each_arrival_in_the_waiting_room_counts_while_the_meeting_is_joinable_only() {
        let now = t("2026-11-21T10:30:00Z");
        let waiting = event(EventKind::ParticipantWaiting, Some(1));
        let m = apply(&with_status(Scheduled), &waiting, now).expect("scheduled");
        assert_eq!(
            (m.signals.waiting, m.version),
            (1, with_status(Scheduled).version + 1)
        );
        let again = apply(&m, &waiting, now).expect("another arrival");
        assert_eq!(again.signals.waiting, 2);
        assert_eq!(again.attendance, m.attendance, "waiting is not joining");
        assert!(apply(&with_status(Started), &waiting, now).is_some());
        for finished in [Ended, Cancelled, Archived] {
            assert_eq!(
                apply(&with_status(finished), &waiting, now),
                None,
                "{finished}"
            );
        }
    }
}
