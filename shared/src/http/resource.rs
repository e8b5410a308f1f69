//! The contract's JSON representations: the meeting resource (never links, passwords or
//! tokens), a link, a page of meetings, the stats.

use crate::domain::{Meeting, MeetingStatus, ProviderKind, Stats, rfc3339, rfc3339_millis};
use crate::ids::UserId;
use crate::service::{Link, MeetingPage};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339_millis(t)))
}

/// The meeting resource.
pub fn meeting(m: &Meeting) -> Value {
    json!({
        "meetingId": m.id.as_str(),
        "orgId": m.org.as_str(),
        "subject": { "type": m.subject.kind.as_str(), "id": m.subject.id.as_str() },
        "provider": m.provider.as_str(),
        "providerMeetingId": m.provider_meeting_id,
        "topic": m.topic,
        "startTime": rfc3339(m.start_time),
        "durationMinutes": m.duration_minutes,
        "timezone": m.timezone,
        "status": m.status.as_str(),
        "hostUserId": m.host.as_str(),
        "participantUserIds": m.participants.iter().map(UserId::as_str).collect::<Vec<_>>(),
        "initiatedBy": m.initiated_by.as_str(),
        "createdAt": rfc3339_millis(m.created_at),
        "updatedAt": rfc3339_millis(m.updated_at),
        "startedAt": opt_time(m.started_at),
        "endedAt": opt_time(m.ended_at),
        "expiresAt": opt_time(m.expires_at),
        "attendance": {
            "hostJoinedAt": opt_time(m.attendance.host_joined_at),
            "participantJoinedAt": opt_time(m.attendance.participant_joined_at),
            "joins": m.attendance.joins,
            "leaves": m.attendance.leaves,
        },
    })
}

/// `{"url","role","password"?,"expiresAt"?}`.
pub fn link(l: &Link) -> Value {
    let mut v = json!({ "url": l.url, "role": l.role.as_str() });
    if let Some(p) = &l.password {
        v["password"] = json!(p);
    }
    if let Some(t) = l.expires_at {
        v["expiresAt"] = json!(rfc3339(t));
    }
    v
}

/// `{"meetings":[…],"nextCursor":…}`.
pub fn page(p: &MeetingPage) -> Value {
    json!({
        "meetings": p.meetings.iter().map(meeting).collect::<Vec<_>>(),
        "nextCursor": p.next_cursor,
    })
}

/// The stats body: every status and provider named, zeros included.
pub fn stats(s: &Stats) -> Value {
    let count = |map: &std::collections::BTreeMap<String, i64>, k: &str| {
        json!(map.get(k).copied().unwrap_or(0))
    };
    let by_status: Map<String, Value> = MeetingStatus::ALL
        .iter()
        .map(|st| (st.as_str().to_owned(), count(&s.by_status, st.as_str())))
        .collect();
    let by_provider: Map<String, Value> = ProviderKind::ALL
        .iter()
        .map(|p| (p.as_str().to_owned(), count(&s.by_provider, p.as_str())))
        .collect();
    json!({
        "byStatus": by_status,
        "byProvider": by_provider,
        "attendance": { "bothJoined": s.both_joined, "noShow": s.no_show },
    })
}
