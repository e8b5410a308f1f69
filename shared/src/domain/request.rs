//! Request bodies, validated field by field so a 400 names the field. Unknown fields are
//! ignored (DESIGN.md).

use super::Invalid;
use super::{ProviderKind, Schedule};
use crate::ids::UserId;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub const DEFAULT_TOPIC: &str = "Video consultation";
pub const DEFAULT_DURATION_MINUTES: u32 = 30;
pub const MAX_PARTICIPANTS: usize = 10;
pub const MAX_TOPIC_CHARS: usize = 200;

/// `PUT /appointments/{appointmentId}/meeting`.
#[derive(Debug, Clone, PartialEq)]
pub struct AppointmentMeetingRequest {
    pub host: UserId,
    pub participants: Vec<UserId>,
    pub start_time: DateTime<Utc>,
    pub duration_minutes: u32,
    pub timezone: String,
    pub topic: String,
    pub provider: Option<ProviderKind>,
    /// Conversations: how long the meeting is reused from its creation.
    pub reuse_window: Option<chrono::Duration>,
    /// Appointments: minutes after the start by which a participant must have joined
    /// (`meeting.no_show`); `None`: no check (conversations, or turned off).
    pub no_show_after_minutes: Option<u32>,
}

/// Parses a JSON object body; an empty body is an empty object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Invalid::new("body", "must be a JSON object")),
        Err(_) => Err(Invalid::new("body", "is not valid JSON")),
    }
}

pub(crate) fn required<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a Value, Invalid> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(Invalid::new(field, "is required")),
        Some(v) => Ok(v),
    }
}

pub(crate) fn optional<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

pub(crate) fn string<'a>(v: &'a Value, field: &'static str) -> Result<&'a str, Invalid> {
    v.as_str()
        .ok_or_else(|| Invalid::new(field, "must be a string"))
}

fn user_id(v: &Value, field: &'static str) -> Result<UserId, Invalid> {
    UserId::parse(string(v, field)?, field)
}

pub fn parse_time(v: &Value, field: &'static str) -> Result<DateTime<Utc>, Invalid> {
    let s = string(v, field)?;
    let t = DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Invalid::new(field, "must be an RFC 3339 date-time"))?;
    // chrono takes a leap second (`23:59:60`) that no provider does: 400 here, not 502 there.
    if chrono::Timelike::nanosecond(&t) >= 1_000_000_000 {
        return Err(Invalid::new(field, "must not be a leap second"));
    }
    Ok(t)
}

/// A meeting's start: RFC 3339 and between 2000 and 2100. Years the providers cannot take
/// (Zoho's local-time format has four digits) are refused here, as 400, not by them as 502.
pub fn meeting_time(v: &Value, field: &'static str) -> Result<DateTime<Utc>, Invalid> {
    let t = parse_time(v, field)?;
    let range = (
        DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z"),
        DateTime::parse_from_rfc3339("2100-01-01T00:00:00Z"),
    );
    match range {
        (Ok(lo), Ok(hi)) if t >= lo && t < hi => Ok(t),
        _ => Err(Invalid::new(field, "must be a time from 2000 to 2099")),
    }
}

fn duration(v: &Value, field: &'static str) -> Result<u32, Invalid> {
    match v.as_u64() {
        Some(n @ 1..=480) => Ok(n as u32),
        _ => Err(Invalid::new(field, "must be a whole number from 1 to 480")),
    }
}

pub fn timezone(v: &Value, field: &'static str) -> Result<String, Invalid> {
    let s = string(v, field)?;
    // chrono-tz carries the IANA database; "UTC" and links such as "US/Eastern" parse too.
    s.parse::<chrono_tz::Tz>()
        .map(|_| s.to_owned())
        .map_err(|_| Invalid::new(field, "must be an IANA time zone such as Europe/Berlin"))
}

pub fn topic(v: &Value, field: &'static str) -> Result<String, Invalid> {
    let s = string(v, field)?.trim();
    if s.is_empty() || s.chars().count() > MAX_TOPIC_CHARS {
        return Err(Invalid::new(field, "must be 1-200 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    // Bidirectional overrides and isolates reorder what people read ("Trojan Source"): a
    // topic shown in a provider's UI or an invitation must read as written.
    if s.chars().any(|c| {
        matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }) {
        return Err(Invalid::new(field, "must not contain bidirectional control characters"));
    }
    Ok(s.to_owned())
}

pub(crate) fn provider(v: &Value, field: &'static str) -> Result<ProviderKind, Invalid> {
    string(v, field)?
        .parse()
        .map_err(|_| Invalid::new(field, "must be one of zoom, jitsi, zoho"))
}

/// Host plus 1–10 distinct participants; the host is not also a participant.
fn people(obj: &Map<String, Value>) -> Result<(UserId, Vec<UserId>), Invalid> {
    let host = user_id(required(obj, "hostUserId")?, "hostUserId")?;
    const FIELD: &str = "participantUserIds";
    let list = required(obj, FIELD)?
        .as_array()
        .ok_or_else(|| Invalid::new(FIELD, "must be an array of user ids"))?;
    if list.is_empty() || list.len() > MAX_PARTICIPANTS {
        return Err(Invalid::new(FIELD, "must hold 1 to 10 user ids"));
    }
    let mut participants: Vec<UserId> = Vec::with_capacity(list.len());
    for v in list {
        let id = user_id(v, FIELD)?;
        if id == host {
            return Err(Invalid::new(FIELD, "must not contain the host"));
        }
        if participants.contains(&id) {
            return Err(Invalid::new(FIELD, "must not contain duplicates"));
        }
        participants.push(id);
    }
    Ok((host, participants))
}

impl AppointmentMeetingRequest {
    /// The schedule the request asks for.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            topic: self.topic.clone(),
            start_time: self.start_time,
            duration_minutes: self.duration_minutes,
            timezone: self.timezone.clone(),
        }
    }

    pub fn parse(body: &[u8]) -> Result<Self, Invalid> {
        let obj = parse_object(body)?;
        let (host, participants) = people(&obj)?;
        Ok(Self {
            host,
            participants,
            start_time: meeting_time(required(&obj, "startTime")?, "startTime")?,
            duration_minutes: optional(&obj, "durationMinutes")
                .map(|v| duration(v, "durationMinutes"))
                .transpose()?
                .unwrap_or(DEFAULT_DURATION_MINUTES),
            timezone: optional(&obj, "timezone")
                .map(|v| timezone(v, "timezone"))
                .transpose()?
                .unwrap_or_else(|| "UTC".to_owned()),
            topic: optional(&obj, "topic")
                .map(|v| topic(v, "topic"))
                .transpose()?
                .unwrap_or_else(|| DEFAULT_TOPIC.to_owned()),
            provider: optional(&obj, "provider")
                .map(|v| provider(v, "provider"))
                .transpose()?,
            reuse_window: None,
            no_show_after_minutes: Some(crate::domain::notice::NO_SHOW_GRACE_MINUTES),
        })
    }

    /// A conversation's reuse window (and so its duration), e.g. the org's own.
    pub fn set_reuse_window(&mut self, window: chrono::Duration) {
        self.duration_minutes = u32::try_from(window.num_minutes().clamp(1, 480)).unwrap_or(60);
        self.reuse_window = Some(window);
    }

    /// `PUT /conversations/{conversationId}/meeting`: `hostUserId`, `participantUserIds`,
    /// optional `provider` and `topic`. The meeting starts now and is reused for `window`.
    pub fn parse_conversation(
        body: &[u8],
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<Self, Invalid> {
        let obj = parse_object(body)?;
        let (host, participants) = people(&obj)?;
        let minutes = u32::try_from(window.num_minutes().clamp(1, 480)).unwrap_or(60);
        Ok(Self {
            host,
            participants,
            start_time: now,
            duration_minutes: minutes,
            timezone: "UTC".to_owned(),
            topic: optional(&obj, "topic")
                .map(|v| topic(v, "topic"))
                .transpose()?
                .unwrap_or_else(|| DEFAULT_TOPIC.to_owned()),
            provider: optional(&obj, "provider")
                .map(|v| provider(v, "provider"))
                .transpose()?,
            reuse_window: Some(window),
            no_show_after_minutes: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        AppointmentMeetingRequest::parse(body.as_bytes())
            .unwrap_err()
            .field
            .to_owned()
    }

    const OK: &str = r#"{"hostUserId":"dr-7","participantUserIds":["pat-9"],"startTime":"2026-11-21T10:00:00+01:00"}"#;

    #[test]
    fn a_minimal_body_gets_neutral_defaults() {
        let r = AppointmentMeetingRequest::parse(OK.as_bytes()).unwrap();
        assert_eq!(r.topic, "Video consultation");
        assert_eq!(r.duration_minutes, 30);
        assert_eq!(r.timezone, "UTC");
        assert_eq!(r.start_time.to_rfc3339(), "2026-11-21T09:00:00+00:00");
        assert_eq!(r.provider, None);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let body = OK.replace('}', r#","patientName":"x","extra":{"a":1}}"#);
        assert!(AppointmentMeetingRequest::parse(body.as_bytes()).is_ok());
    }

    #[test]
    fn each_invalid_field_is_named() {
        let with = |k: &str, v: &str| {
            let mut m: Map<String, Value> = serde_json::from_str(OK).unwrap();
            m.insert(k.into(), serde_json::from_str(v).unwrap());
            Value::Object(m).to_string()
        };
        assert_eq!(field_of("{"), "body");
        assert_eq!(field_of("[]"), "body");
        assert_eq!(field_of("{}"), "hostUserId");
        assert_eq!(field_of(&with("hostUserId", r#""a/b""#)), "hostUserId");
        assert_eq!(
            field_of(&with("participantUserIds", "[]")),
            "participantUserIds"
        );
        assert_eq!(
            field_of(&with(
                "participantUserIds",
                r#"["a","b","c","d","e","f","g","h","i","j","k"]"#
            )),
            "participantUserIds"
        );
        assert_eq!(
            field_of(&with("participantUserIds", r#"["dr-7"]"#)),
            "participantUserIds"
        );
        assert_eq!(
            field_of(&with("participantUserIds", r#"["p","p"]"#)),
            "participantUserIds"
        );
        assert_eq!(field_of(&with("startTime", r#""tomorrow""#)), "startTime");
        assert_eq!(
            field_of(&with("startTime", r#""0001-01-01T00:00:00Z""#)),
            "startTime"
        );
        assert_eq!(
            field_of(&with("startTime", r#""2100-01-01T00:00:00Z""#)),
            "startTime"
        );
        assert_eq!(
            field_of(&with("startTime", r#""2026-11-21 10:00""#)),
            "startTime"
        );
        assert_eq!(field_of(&with("durationMinutes", "0")), "durationMinutes");
        assert_eq!(field_of(&with("durationMinutes", "481")), "durationMinutes");
        assert_eq!(
            field_of(&with("durationMinutes", "30.5")),
            "durationMinutes"
        );
        assert_eq!(field_of(&with("timezone", r#""Mars/Olympus""#)), "timezone");
        assert_eq!(
            field_of(&with("topic", &format!("\"{}\"", "x".repeat(201)))),
            "topic"
        );
        assert_eq!(field_of(&with("topic", r#""""#)), "topic");
        assert_eq!(field_of(&with("topic", r#""a\u202Egnp.exe""#)), "topic");
        assert_eq!(field_of(&with("topic", r#""a\u2066b""#)), "topic");
        assert_eq!(
            field_of(&with("startTime", r#""2026-12-03T23:59:60Z""#)),
            "startTime"
        );
        assert_eq!(field_of(&with("provider", r#""skype""#)), "provider");
    }
}

/// `PATCH /meetings/{meetingId}`: any of the schedule fields, at least one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RescheduleRequest {
    pub start_time: Option<DateTime<Utc>>,
    pub duration_minutes: Option<u32>,
    pub timezone: Option<String>,
    pub topic: Option<String>,
}

impl RescheduleRequest {
    /// `current` with the changes asked for.
    pub fn applied_to(&self, current: Schedule) -> Schedule {
        Schedule {
            topic: self.topic.clone().unwrap_or(current.topic),
            start_time: self.start_time.unwrap_or(current.start_time),
            duration_minutes: self.duration_minutes.unwrap_or(current.duration_minutes),
            timezone: self.timezone.clone().unwrap_or(current.timezone),
        }
    }

    pub fn parse(body: &[u8]) -> Result<Self, Invalid> {
        let obj = parse_object(body)?;
        let r = Self {
            start_time: optional(&obj, "startTime")
                .map(|v| meeting_time(v, "startTime"))
                .transpose()?,
            duration_minutes: optional(&obj, "durationMinutes")
                .map(|v| duration(v, "durationMinutes"))
                .transpose()?,
            timezone: optional(&obj, "timezone")
                .map(|v| timezone(v, "timezone"))
                .transpose()?,
            topic: optional(&obj, "topic")
                .map(|v| topic(v, "topic"))
                .transpose()?,
        };
        if r == Self::default() {
            return Err(Invalid::new(
                "body",
                "must change at least one of startTime, durationMinutes, timezone, topic",
            ));
        }
        Ok(r)
    }
}
