//! An org's event subscription (`/org/webhooks`): where its events go and which ones. The
//! signing secrets live in Secrets Manager, never here (see [`Subscription::secret_name`]).

use super::Invalid;
use super::notice::EventType;
use super::request::{required, string};
use crate::ids::OrgId;
use chrono::{DateTime, Utc};
use rand::RngExt;
use serde_json::{Map, Value};

pub const ID_PREFIX: &str = "whsub_";
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ID_RANDOM_LEN: usize = 24;
/// Filters per subscription (a few prefixes cover every type).
pub const MAX_FILTERS: usize = 20;
const MAX_FILTER_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `whsub_…`, generated.
    pub id: String,
    pub org: OrgId,
    /// `https://…` (loopback `http` only in the local stack).
    pub url: String,
    /// Event types (`meeting.created`) or prefixes (`meeting.*`, `*`).
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Set when the receiver answered 410 Gone: nothing more is delivered.
    pub disabled_at: Option<DateTime<Utc>>,
}

impl Subscription {
    /// Whether an event of type `t` goes to this subscription.
    pub fn wants(&self, t: EventType) -> bool {
        self.disabled_at.is_none() && self.events.iter().any(|f| filter_matches(f, t))
    }

    /// The Secrets Manager name of its signing secrets, under the deployment's org prefix.
    pub fn secret_name(&self, prefix: &str) -> String {
        secret_name(prefix, &self.org, &self.id)
    }
}

pub fn secret_name(prefix: &str, org: &OrgId, id: &str) -> String {
    // Secrets Manager names take no `:`; org ids may.
    format!("{prefix}{}/webhooks/{id}", org.as_str().replace(':', "@"))
}

/// `meeting.created` matches itself; `meeting.*` every `meeting.` type; `*` everything.
pub fn filter_matches(filter: &str, t: EventType) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => t.as_str().starts_with(prefix),
        None => filter == t.as_str(),
    }
}

/// Whether a filter names at least one event type (so a typo is refused, not silent).
pub fn filter_is_known(filter: &str) -> bool {
    EventType::ALL.iter().any(|t| filter_matches(filter, *t))
}

/// A new subscription id: `whsub_` + 24 random lowercase alphanumerics.
pub fn new_id() -> String {
    let mut rng = rand::rng();
    let random: String = (0..ID_RANDOM_LEN)
        .map(|_| {
            let i = rng.random_range(0..ID_ALPHABET.len());
            ID_ALPHABET.get(i).map_or('a', |b| char::from(*b))
        })
        .collect();
    format!("{ID_PREFIX}{random}")
}

/// Whether `raw` has the shape of an id [`new_id`] makes: anything else cannot exist, so
/// it is not looked up (nor put into a key or a secret's name).
pub fn is_id(raw: &str) -> bool {
    raw.strip_prefix(ID_PREFIX)
        .is_some_and(|r| r.len() == ID_RANDOM_LEN && r.bytes().all(|b| ID_ALPHABET.contains(&b)))
}

/// `POST /org/webhooks`: the raw `url` (checked by `notify::ssrf`, which needs DNS) and
/// the `events` filters, 1 to [`MAX_FILTERS`] known types or prefixes, duplicates dropped.
pub fn request(obj: &Map<String, Value>) -> Result<(String, Vec<String>), Invalid> {
    let url = string(required(obj, "url")?, "url")?.trim().to_owned();
    let Some(list) = required(obj, "events")?.as_array() else {
        return Err(Invalid::new("events", "must be a list of event types"));
    };
    if list.is_empty() || list.len() > MAX_FILTERS {
        return Err(Invalid::new("events", "must list 1 to 20 event types"));
    }
    let mut events: Vec<String> = Vec::with_capacity(list.len());
    for v in list {
        let f = v.as_str().map(str::trim).unwrap_or_default();
        if f.is_empty() || f.len() > MAX_FILTER_LEN || !filter_is_known(f) {
            return Err(Invalid::new(
                "events",
                "each must be an event type or a prefix ending in * (meeting.*)",
            ));
        }
        if !events.iter().any(|e| e == f) {
            events.push(f.to_owned());
        }
    }
    Ok((url, events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_prefixed_random_lowercase_alphanumerics() {
        let (a, b) = (new_id(), new_id());
        assert!(is_id(&a) && is_id(&b) && a != b, "{a} {b}");
        assert_eq!(a.len(), ID_PREFIX.len() + 24);
        for not in [
            "whsub_",
            "whsub_ABCDEFGHIJKLMNOPQRSTUVWX",
            "x",
            "whsub_../../a",
        ] {
            assert!(!is_id(not), "{not}");
        }
    }

    #[test]
    fn a_request_names_events_or_url_when_they_are_wrong() {
        let field = |v: Value| {
            let Value::Object(m) = v else { panic!() };
            request(&m).map_err(|e| e.field)
        };
        let ok = field(
            json!({"url":"https://x.example/h","events":["meeting.*","meeting.*","participant.joined"]}),
        );
        assert_eq!(
            ok,
            Ok((
                "https://x.example/h".to_owned(),
                vec!["meeting.*".to_owned(), "participant.joined".to_owned()]
            ))
        );
        let many: Vec<&str> = vec!["*"; 21];
        for bad in [
            json!({"url":"https://x.example/h"}),
            json!({"url":"https://x.example/h","events":[]}),
            json!({"url":"https://x.example/h","events":"meeting.*"}),
            json!({"url":"https://x.example/h","events":[""]}),
            json!({"url":"https://x.example/h","events":[3]}),
            json!({"url":"https://x.example/h","events":["meting.*"]}),
            json!({"url":"https://x.example/h","events":["meeting.create"]}),
            json!({"url":"https://x.example/h","events":many}),
        ] {
            assert_eq!(field(bad.clone()), Err("events"), "{bad}");
        }
        assert_eq!(field(json!({"events":["*"]})), Err("url"));
        assert_eq!(field(json!({"url":7,"events":["*"]})), Err("url"));
    }

    #[test]
    fn a_filter_is_a_type_or_a_prefix_and_never_a_near_miss() {
        assert!(filter_matches("meeting.created", EventType::MeetingCreated));
        assert!(filter_matches("meeting.*", EventType::MeetingNoShow));
        assert!(!filter_matches("meeting.*", EventType::ParticipantJoined));
        assert!(filter_matches("*", EventType::ConversationCall));
        assert!(!filter_matches("meeting.create", EventType::MeetingCreated));
        assert!(filter_is_known("participant.*"));
        assert!(!filter_is_known("meting.*"));
    }
}
