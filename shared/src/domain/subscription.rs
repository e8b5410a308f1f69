//! An org's event subscription (`/org/webhooks`): where its events go and which ones. The
//! signing secrets live in Secrets Manager, never here (see [`Subscription::secret_name`]).

use super::notice::EventType;
use crate::ids::OrgId;
use chrono::{DateTime, Utc};

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

#[cfg(test)]
mod tests {
    use super::*;

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
