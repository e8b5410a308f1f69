//! Zoom's webhook events, parsed into the provider-neutral [`ProviderEvent`] the domain
//! applies (`crate::domain::event::apply`). Only ids are kept: names and emails in Zoom's
//! payloads never leave this function.

use super::meeting_id_of;
use crate::domain::{EventKind, ProviderEvent, ProviderKind};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a verified delivery is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An event about a Zoom meeting, to be applied if the meeting is ours.
    Event(ProviderEvent),
    /// An event type telemeet does not use.
    Ignored,
    /// A meeting event without a usable meeting id: not one of ours.
    NoMeeting,
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn time(v: &Value, k: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.get(k)?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The event kind of a Zoom event type, read from its `payload.object`.
fn kind(event: &str, object: &Value) -> Option<EventKind> {
    Some(match event {
        "meeting.started" => EventKind::Started {
            at: time(object, "start_time"),
        },
        "meeting.ended" => EventKind::Ended {
            at: time(object, "end_time"),
        },
        "meeting.deleted" => EventKind::Deleted,
        "meeting.updated" => EventKind::Updated {
            start_time: time(object, "start_time"),
            duration_minutes: object["duration"]
                .as_u64()
                .and_then(|d| u32::try_from(d).ok()),
            topic: object["topic"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            // Only zones we know (the record's zone must stay a valid IANA zone).
            timezone: object["timezone"]
                .as_str()
                .filter(|z| z.parse::<chrono_tz::Tz>().is_ok())
                .map(str::to_owned),
        },
        "meeting.participant_joined" => {
            let who = &object["participant"];
            let host = text(object, "host_id");
            EventKind::ParticipantJoined {
                host: !host.is_empty() && text(who, "id") == host,
                at: time(who, "join_time"),
            }
        }
        "meeting.participant_left" => EventKind::ParticipantLeft,
        // Zoom's waiting room (a participant arrives in it) and join-before-host off (a
        // participant waits for the host). Being put back in the waiting room by the host,
        // admitted, or joining once the host is there are not waiting arrivals: ignored
        // (`meeting.participant_put_in_waiting_room`, `meeting.participant_admitted`,
        // `meeting.participant_jbh_joined`).
        "meeting.participant_joined_waiting_room" | "meeting.participant_jbh_waiting" => {
            EventKind::ParticipantWaiting
        }
        _ => return None,
    })
}

/// One key per delivered fact: the event, the meeting instance, its timestamp and who
/// (and, for waiting-room arrivals, when: `date_time`).
fn dedupe_key(event: &str, body: &Value) -> String {
    let object = &body["payload"]["object"];
    let who = &object["participant"];
    let mut raw = format!(
        "{event}|{}|{}|{}|{}|{}",
        text(object, "uuid"),
        body["event_ts"],
        text(who, "user_id"),
        text(who, "participant_uuid"),
        text(who, "id"),
    );
    // Appended only when there: the keys of events without it stay what they were (a
    // redelivery across a deploy is still recognised).
    if let Some(at) = who.get("date_time").and_then(Value::as_str) {
        raw.push('|');
        raw.push_str(at);
    }
    Sha256::digest(raw.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A verified delivery's body, read.
pub fn parse(body: &Value) -> Delivery {
    let event = text(body, "event");
    let object = &body["payload"]["object"];
    let Some(kind) = kind(event, object) else {
        return Delivery::Ignored;
    };
    let Some(provider_meeting_id) = meeting_id_of(&object["id"]) else {
        return Delivery::NoMeeting;
    };
    Delivery::Event(ProviderEvent {
        provider: ProviderKind::Zoom,
        provider_meeting_id,
        dedupe_key: dedupe_key(event, body),
        at_ms: body["event_ts"].as_i64(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(body: Value) -> ProviderEvent {
        match parse(&body) {
            Delivery::Event(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_zoom_event_type_becomes_its_kind_with_ids_only() {
        let base = |name: &str, object: Value| json!({ "event": name, "event_ts": 1_700_000_000_000_i64, "payload": { "object": object } });
        let joined = event(base(
            "meeting.participant_joined",
            json!({ "id": "857", "host_id": "h1", "participant": { "id": "h1", "user_name": "Dr Who", "email": "dr@x", "join_time": "2026-11-21T10:00:00Z" } }),
        ));
        assert_eq!(joined.provider_meeting_id, "857");
        assert_eq!(joined.at_ms, Some(1_700_000_000_000));
        assert!(matches!(
            joined.kind,
            EventKind::ParticipantJoined {
                host: true,
                at: Some(_)
            }
        ));
        assert!(
            !format!("{joined:?}").contains("Dr Who") && !format!("{joined:?}").contains("dr@x")
        );
        let patient = event(base(
            "meeting.participant_joined",
            json!({ "id": 857, "host_id": "h1", "participant": { "id": "p1" } }),
        ));
        assert!(matches!(
            patient.kind,
            EventKind::ParticipantJoined {
                host: false,
                at: None
            }
        ));
        let updated = event(base(
            "meeting.updated",
            json!({ "id": 857, "duration": 45, "topic": "", "timezone": "Mars/Base" }),
        ));
        assert_eq!(
            updated.kind,
            EventKind::Updated {
                start_time: None,
                duration_minutes: Some(45),
                topic: None,
                timezone: None
            }
        );
        for (name, kind) in [
            ("meeting.started", "started"),
            ("meeting.ended", "ended"),
            ("meeting.deleted", "deleted"),
            ("meeting.participant_left", "participant_left"),
        ] {
            assert_eq!(event(base(name, json!({ "id": 857 }))).kind.name(), kind);
        }
    }

    #[test]
    fn unknown_types_are_ignored_and_meetings_without_an_id_are_not_ours() {
        assert_eq!(
            parse(&json!({ "event": "recording.completed", "payload": { "object": { "id": 1 } } })),
            Delivery::Ignored
        );
        assert_eq!(
            parse(&json!({ "event": "meeting.started", "payload": { "object": { "id": "abc" } } })),
            Delivery::NoMeeting
        );
    }

    #[test]
    fn a_redelivery_has_the_same_key_and_another_fact_another() {
        let body = |ts: i64, who: &str| json!({ "event": "meeting.participant_joined", "event_ts": ts, "payload": { "object": { "id": 1, "uuid": "u", "participant": { "id": who } } } });
        let key = |b| event(b).dedupe_key;
        assert_eq!(key(body(1, "a")), key(body(1, "a")));
        assert_ne!(key(body(1, "a")), key(body(2, "a")));
        assert_ne!(key(body(1, "a")), key(body(1, "b")));
        assert_eq!(key(body(1, "a")).len(), 64);
    }

    /// The two waiting events in the shape Zoom's Meetings webhook reference documents
    /// (developers.zoom.us/docs/api/meetings/events/): `payload.object` the meeting (id,
    /// uuid, host_id, ...), `participant` the waiting person.
    #[test]
    fn waiting_room_and_waiting_for_host_arrivals_become_participant_waiting() {
        let waiting_room = json!({
            "event": "meeting.participant_joined_waiting_room",
            "event_ts": 1_732_184_400_000_i64,
            "payload": { "account_id": "acc1", "object": {
                "id": "85746065432", "uuid": "4444AAAiAAAAAiAiAiiAii==", "host_id": "h1",
                "topic": "Video consultation", "type": 2, "start_time": "2026-11-21T10:00:00Z",
                "timezone": "Europe/Berlin", "duration": 30,
                "participant": { "user_id": "16778240", "user_name": "Pat Patient",
                    "id": "", "participant_uuid": "pu-1", "email": "pat@example.com",
                    "date_time": "2026-11-21T09:58:00Z", "participant_user_id": "" } } }
        });
        let arrival = event(waiting_room.clone());
        assert_eq!(arrival.kind, EventKind::ParticipantWaiting);
        assert_eq!(arrival.provider_meeting_id, "85746065432");
        assert_eq!(arrival.at_ms, Some(1_732_184_400_000));
        let seen = format!("{arrival:?}");
        assert!(!seen.contains("Pat") && !seen.contains("pat@example.com"));
        let jbh = json!({
            "event": "meeting.participant_jbh_waiting",
            "event_ts": 1_732_184_400_000_i64,
            "payload": { "account_id": "acc1", "object": {
                "id": "85746065432", "uuid": "4444AAAiAAAAAiAiAiiAii==", "host_id": "h1",
                "topic": "Video consultation", "type": 2, "duration": 30,
                "participant": { "id": "", "user_name": "Pat Patient", "customer_key": "ck1" } } }
        });
        let waiting_for_host = event(jbh);
        assert_eq!(waiting_for_host.kind.name(), "participant_waiting");
        assert_ne!(waiting_for_host.dedupe_key, arrival.dedupe_key);
        // A redelivery is the same fact; the same person arriving again later is another.
        assert_eq!(event(waiting_room.clone()).dedupe_key, arrival.dedupe_key);
        let mut later = waiting_room;
        later["payload"]["object"]["participant"]["date_time"] = json!("2026-11-21T10:05:00Z");
        assert_ne!(event(later).dedupe_key, arrival.dedupe_key);
        for other in [
            "meeting.participant_put_in_waiting_room",
            "meeting.participant_admitted",
            "meeting.participant_jbh_joined",
            "meeting.participant_left_waiting_room",
        ] {
            let body = json!({ "event": other, "payload": { "object": { "id": 857 } } });
            assert_eq!(parse(&body), Delivery::Ignored, "{other}");
        }
    }
}
