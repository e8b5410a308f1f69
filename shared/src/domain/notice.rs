//! What the platform is told (DESIGN.md, "Events to the platform"): every event is a change
//! between two versions of a meeting's record, so the table's own change stream is the one
//! source of events and nothing is written twice. [`changes`] is the pure rule from two
//! versions to the events they mean; [`Signals`] are the facts kept on the record for the
//! events no status or attendance change carries (a call, a waiting room, a no-show).

use super::{Meeting, MeetingStatus, SubjectKind};
use crate::ids::UserId;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

/// The default minutes after a meeting's start without any participant that make it a
/// no-show (an org may set its own).
pub const NO_SHOW_GRACE_MINUTES: u32 = 10;

/// Facts kept on the meeting for the platform's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    /// Minutes after the start by which a participant must have joined; `None`: no
    /// no-show check for this meeting.
    pub no_show_after_minutes: Option<u32>,
    /// When the meeting was declared a no-show (once).
    pub no_show_at: Option<DateTime<Utc>>,
    /// Waiting-room arrivals seen (Zoom's waiting room and join-before-host wait).
    pub waiting: u32,
    /// PUTs on a conversation meeting (each rings the other side), and who made the last.
    pub calls: u32,
    pub last_caller: Option<UserId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    MeetingCreated,
    MeetingUpdated,
    MeetingCancelled,
    MeetingStarted,
    MeetingEnded,
    MeetingExpired,
    ParticipantJoined,
    ParticipantWaiting,
    MeetingNoShow,
    ConversationCall,
}

impl EventType {
    pub const ALL: [Self; 10] = [
        Self::MeetingCreated,
        Self::MeetingUpdated,
        Self::MeetingCancelled,
        Self::MeetingStarted,
        Self::MeetingEnded,
        Self::MeetingExpired,
        Self::ParticipantJoined,
        Self::ParticipantWaiting,
        Self::MeetingNoShow,
        Self::ConversationCall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MeetingCreated => "meeting.created",
            Self::MeetingUpdated => "meeting.updated",
            Self::MeetingCancelled => "meeting.cancelled",
            Self::MeetingStarted => "meeting.started",
            Self::MeetingEnded => "meeting.ended",
            Self::MeetingExpired => "meeting.expired",
            Self::ParticipantJoined => "participant.joined",
            Self::ParticipantWaiting => "participant.waiting",
            Self::MeetingNoShow => "meeting.no_show",
            Self::ConversationCall => "conversation.call",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One event a change means: its type, and the fields it adds to the meeting resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: EventType,
    /// Distinguishes two events of one type in one change (`host` and `participant`
    /// joined at once); part of the event's id.
    pub tag: Option<&'static str>,
    pub fields: Map<String, Value>,
}

impl Notice {
    fn plain(kind: EventType) -> Self {
        Self {
            kind,
            tag: None,
            fields: Map::new(),
        }
    }

    fn with(kind: EventType, tag: Option<&'static str>, fields: Value) -> Self {
        let Value::Object(fields) = fields else {
            return Self::plain(kind);
        };
        Self { kind, tag, fields }
    }

    /// The event's id, stable across every retry and every re-read of the change:
    /// the meeting, the version that made it, and the event.
    pub fn event_id(&self, after: &Meeting) -> String {
        let kind = self.kind.as_str().replace('.', "_");
        match self.tag {
            Some(tag) => format!("evt_{}_{}_{kind}_{tag}", after.id, after.version),
            None => format!("evt_{}_{}_{kind}", after.id, after.version),
        }
    }
}

/// When the no-show check takes the meeting: `no_show_after_minutes` after its start while
/// nobody but the host has joined and it has not been declared yet. `None` otherwise.
pub fn no_show_due(m: &Meeting) -> Option<DateTime<Utc>> {
    let minutes = m.signals.no_show_after_minutes?;
    let open = matches!(m.status, MeetingStatus::Scheduled | MeetingStatus::Started);
    if !open || m.signals.no_show_at.is_some() || m.attendance.participant_joined_at.is_some() {
        return None;
    }
    Some(m.start_time + Duration::minutes(minutes.into()))
}

/// The events between two versions of a meeting (`before` absent: it was just created), in
/// the order the platform should see them.
pub fn changes(before: Option<&Meeting>, after: &Meeting) -> Vec<Notice> {
    let Some(before) = before else {
        return created(after);
    };
    if after.version <= before.version {
        return Vec::new();
    }
    let mut out = Vec::new();
    if schedule_changed(before, after) {
        out.push(Notice::plain(EventType::MeetingUpdated));
    }
    if after.signals.calls > before.signals.calls {
        out.push(call(after));
    }
    if after.signals.waiting > before.signals.waiting {
        out.push(Notice::plain(EventType::ParticipantWaiting));
    }
    if after.status != before.status {
        out.extend(status_event(after.status).map(Notice::plain));
    }
    joined(before, after, &mut out);
    if before.signals.no_show_at.is_none() && after.signals.no_show_at.is_some() {
        let host_joined = after.attendance.host_joined_at.is_some();
        out.push(Notice::with(
            EventType::MeetingNoShow,
            None,
            json!({ "hostJoined": host_joined }),
        ));
    }
    let closed = before.room_closed_at.is_none() && after.room_closed_at.is_some();
    if closed
        && matches!(
            after.status,
            MeetingStatus::Scheduled | MeetingStatus::Started
        )
    {
        out.push(Notice::plain(EventType::MeetingExpired));
    }
    out
}

fn created(after: &Meeting) -> Vec<Notice> {
    let mut out = vec![Notice::plain(EventType::MeetingCreated)];
    if after.subject.kind == SubjectKind::Conversation && after.signals.calls > 0 {
        out.push(call(after));
    }
    out
}

fn schedule_changed(before: &Meeting, after: &Meeting) -> bool {
    before.start_time != after.start_time
        || before.duration_minutes != after.duration_minutes
        || before.timezone != after.timezone
        || before.topic != after.topic
}

fn status_event(status: MeetingStatus) -> Option<EventType> {
    match status {
        MeetingStatus::Started => Some(EventType::MeetingStarted),
        MeetingStatus::Ended => Some(EventType::MeetingEnded),
        MeetingStatus::Cancelled => Some(EventType::MeetingCancelled),
        _ => None,
    }
}

fn joined(before: &Meeting, after: &Meeting, out: &mut Vec<Notice>) {
    let (b, a) = (&before.attendance, &after.attendance);
    for (was, is, role) in [
        (b.host_joined_at, a.host_joined_at, "host"),
        (
            b.participant_joined_at,
            a.participant_joined_at,
            "participant",
        ),
    ] {
        if let (None, Some(at)) = (was, is) {
            out.push(Notice::with(
                EventType::ParticipantJoined,
                Some(role),
                json!({ "role": role, "joinedAt": super::rfc3339_millis(at) }),
            ));
        }
    }
}

/// Ids only: who called and whom the other side's app should ring.
fn call(after: &Meeting) -> Notice {
    let caller = after
        .signals
        .last_caller
        .clone()
        .unwrap_or_else(|| after.initiated_by.clone());
    let callees: Vec<&str> = after
        .members()
        .map(|(u, _)| u)
        .filter(|u| **u != caller)
        .map(UserId::as_str)
        .collect();
    Notice::with(
        EventType::ConversationCall,
        None,
        json!({ "initiatedBy": caller.as_str(), "calleeUserIds": callees }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sample_meeting;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    fn next(m: &Meeting, f: impl FnOnce(&mut Meeting)) -> Meeting {
        let mut after = m.clone();
        f(&mut after);
        after.version += 1;
        after
    }

    fn kinds(n: &[Notice]) -> Vec<&'static str> {
        n.iter().map(|n| n.kind.as_str()).collect()
    }

    #[test]
    fn each_change_of_a_meeting_means_its_events_and_nothing_else() {
        let m = sample_meeting(t("2026-11-21T10:00:00Z"));
        let at = Some(t("2026-11-21T10:01:00Z"));
        let cases: Vec<(Meeting, Vec<&str>)> = vec![
            (next(&m, |_| {}), vec![]),
            (
                next(&m, |a| a.start_time = t("2026-11-22T10:00:00Z")),
                vec!["meeting.updated"],
            ),
            (next(&m, |a| a.topic = "x".into()), vec!["meeting.updated"]),
            (
                next(&m, |a| a.status = MeetingStatus::Started),
                vec!["meeting.started"],
            ),
            (
                next(&m, |a| a.status = MeetingStatus::Cancelled),
                vec!["meeting.cancelled"],
            ),
            (
                next(&m, |a| a.status = MeetingStatus::Ended),
                vec!["meeting.ended"],
            ),
            (
                next(&m, |a| {
                    a.status = MeetingStatus::Started;
                    a.attendance.host_joined_at = at;
                    a.attendance.participant_joined_at = at;
                }),
                vec![
                    "meeting.started",
                    "participant.joined",
                    "participant.joined",
                ],
            ),
            (
                next(&m, |a| a.signals.waiting = 1),
                vec!["participant.waiting"],
            ),
            (
                next(&m, |a| a.signals.no_show_at = at),
                vec!["meeting.no_show"],
            ),
            (next(&m, |a| a.room_closed_at = at), vec!["meeting.expired"]),
            (next(&m, |a| a.status = MeetingStatus::Archived), vec![]),
        ];
        for (after, want) in cases {
            assert_eq!(kinds(&changes(Some(&m), &after)), want, "{after:?}");
        }
        assert_eq!(kinds(&changes(None, &m)), ["meeting.created"]);
    }

    #[test]
    fn a_stale_or_repeated_version_means_no_event() {
        let m = sample_meeting(t("2026-11-21T10:00:00Z"));
        let mut same = m.clone();
        same.status = MeetingStatus::Started;
        assert!(changes(Some(&m), &same).is_empty());
    }

    #[test]
    fn a_room_closed_after_the_end_is_no_expiry() {
        let mut m = sample_meeting(t("2026-11-21T10:00:00Z"));
        m.status = MeetingStatus::Ended;
        let after = next(&m, |a| a.room_closed_at = Some(t("2026-11-21T11:00:00Z")));
        assert!(changes(Some(&m), &after).is_empty());
    }

    #[test]
    fn a_call_names_the_caller_and_rings_everyone_else_by_id_only() {
        let mut m = sample_meeting(t("2026-11-21T10:00:00Z"));
        m.subject.kind = SubjectKind::Conversation;
        let caller = m.participants[0].clone();
        let after = next(&m, |a| {
            a.signals.calls = 1;
            a.signals.last_caller = Some(caller.clone());
        });
        let n = changes(Some(&m), &after);
        assert_eq!(kinds(&n), ["conversation.call"]);
        assert_eq!(n[0].fields["initiatedBy"], "pat-9");
        assert_eq!(n[0].fields["calleeUserIds"], json!(["dr-7"]));
        m.signals.calls = 1;
        assert_eq!(
            kinds(&changes(None, &m)),
            ["meeting.created", "conversation.call"]
        );
    }

    #[test]
    fn two_joins_in_one_change_have_distinct_stable_ids() {
        let m = sample_meeting(t("2026-11-21T10:00:00Z"));
        let at = Some(t("2026-11-21T10:01:00Z"));
        let after = next(&m, |a| {
            a.attendance.host_joined_at = at;
            a.attendance.participant_joined_at = at;
        });
        let ids: Vec<String> = changes(Some(&m), &after)
            .iter()
            .map(|n| n.event_id(&after))
            .collect();
        assert_eq!(
            ids,
            [
                "evt_mtg_sample_2_participant_joined_host",
                "evt_mtg_sample_2_participant_joined_participant"
            ]
        );
    }

    #[test]
    fn the_no_show_check_is_due_after_the_grace_until_a_participant_joins() {
        let mut m = sample_meeting(t("2026-11-21T10:00:00Z"));
        assert_eq!(no_show_due(&m), None);
        m.signals.no_show_after_minutes = Some(10);
        assert_eq!(no_show_due(&m), Some(t("2026-11-21T10:10:00Z")));
        m.attendance.host_joined_at = Some(t("2026-11-21T10:01:00Z"));
        assert_eq!(no_show_due(&m), Some(t("2026-11-21T10:10:00Z")));
        m.attendance.participant_joined_at = Some(t("2026-11-21T10:02:00Z"));
        assert_eq!(no_show_due(&m), None);
        m.attendance.participant_joined_at = None;
        m.status = MeetingStatus::Cancelled;
        assert_eq!(no_show_due(&m), None);
    }
}
