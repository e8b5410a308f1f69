//! Every key of the table, built here and nowhere else (the design is at the crate root).
//! Pure strings: the DynamoDB adapter and the in-memory one use the same keys.

use crate::domain::{DueFor, ProviderKind, Subject, rfc3339};
use crate::ids::{MeetingId, OrgId, UserId};
use chrono::{DateTime, Utc};

/// A table key: partition `pk`, sort `sk`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: &str) -> Self {
        Self {
            pk,
            sk: sk.to_owned(),
        }
    }
}

/// The table's TTL attribute (a Number, epoch seconds): template.yaml enables TTL on it.
pub const TTL_ATTRIBUTE: &str = "ttl";
/// The sparse index of what may become due for cleanup (`duePk`, `dueAt`).
/// The sparse GSI of meetings with a pending no-show check (`noticePk`, `noticeAt`).
pub const NOTICE_INDEX: &str = "notice-index";
pub const DUE_INDEX: &str = "due-index";
/// Shards of the due index's partition key: spread the write load of busy hours.
pub const DUE_SHARDS: u32 = 4;
/// Stats counters are spread over this many items per org (by meetingId hash), so
/// concurrent transitions seldom touch the same one; reading stats queries all of them.
pub const STATS_SHARDS: u32 = 8;

pub const MEETING_SK: &str = "MEETING";
pub const CLAIM_SK: &str = "CLAIM";

fn id_hash(id: &MeetingId) -> u32 {
    id.as_str()
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
}

pub fn meeting(id: &MeetingId) -> Key {
    Key::new(format!("MTG#{id}"), MEETING_SK)
}

pub fn claim(org: &OrgId, subject: &Subject) -> Key {
    Key::new(claim_pk(org, subject), CLAIM_SK)
}

/// A claim's partition key alone (how the cleanup names a claim to drop).
pub fn claim_pk(org: &OrgId, subject: &Subject) -> String {
    format!("SUBJ#{org}#{}#{}", subject.kind, subject.id)
}

pub fn claim_of(pk: &str) -> Key {
    Key::new(pk.to_owned(), CLAIM_SK)
}

pub fn provider_id(provider: ProviderKind, provider_meeting_id: &str) -> Key {
    Key::new(format!("PMID#{provider}#{provider_meeting_id}"), "PMID")
}

/// The partition of a user's memberships.
pub fn members_of(org: &OrgId, user: &UserId) -> String {
    format!("USER#{org}#{user}")
}

/// One membership: sorted by start time (to the second), then meeting.
pub fn membership(org: &OrgId, user: &UserId, start: DateTime<Utc>, id: &MeetingId) -> Key {
    Key {
        pk: members_of(org, user),
        sk: format!("AT#{}#{id}", rfc3339(start)),
    }
}

/// The sort-key range of a user's memberships between two start times (inclusive).
pub fn membership_range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> (String, String) {
    let lo = from.map_or_else(|| "AT#".to_owned(), |f| format!("AT#{}", rfc3339(f)));
    // '~' sorts after every id character, so the whole second of `to` is included.
    let hi = to.map_or_else(|| "AT#~".to_owned(), |t| format!("AT#{}#~", rfc3339(t)));
    (lo, hi)
}

pub fn event_mark(event_key: &str) -> Key {
    Key::new(format!("WHK#{event_key}"), "WHK")
}

/// The partition of an org's counters.
pub fn stats_of(org: &OrgId) -> String {
    format!("STATS#{org}")
}

/// The counter shard a meeting's changes go to.
pub fn stats_shard(org: &OrgId, id: &MeetingId) -> Key {
    Key::new(
        stats_of(org),
        &format!("SHARD#{}", id_hash(id) % STATS_SHARDS),
    )
}

pub fn token(record_key: &str) -> Key {
    Key::new(format!("TOKEN#{record_key}"), "TOKEN")
}

/// The partition of an org's own items: its profile and host directory.
pub fn org_of(org: &OrgId) -> String {
    format!("ORG#{org}")
}

pub fn org_profile(org: &OrgId) -> Key {
    Key::new(org_of(org), "PROFILE")
}

/// Host entries sort by user id after this prefix.
pub const HOST_SK_PREFIX: &str = "HOST#";
pub const WEBHOOK_SK_PREFIX: &str = "WEBHOOK#";

pub fn subscription(org: &OrgId, id: &str) -> Key {
    Key::new(org_of(org), &format!("{WEBHOOK_SK_PREFIX}{id}"))
}

pub fn org_host(org: &OrgId, user: &UserId) -> Key {
    Key::new(org_of(org), &format!("{HOST_SK_PREFIX}{user}"))
}

/// The one partition listing every org connection (`{provider}#{org}`), so the cleanup
/// can find each org's own provider account without a Scan. Written only on connect and
/// disconnect, read only by the cleanup.
pub const CONNECTIONS_PK: &str = "CONNECTIONS";

pub fn connection_entry(kind: ProviderKind, org: &OrgId) -> Key {
    Key::new(CONNECTIONS_PK.to_owned(), &format!("{kind}#{org}"))
}

/// A budget counter (its key names its window: see `crate::domain::org`).
pub fn budget(counter: &str) -> Key {
    Key::new(format!("BUDGET#{counter}"), "BUDGET")
}

/// The due-index partition a meeting or claim is in: what for (claims are always
/// `Archive`) and which shard.
pub fn due_shard(what: DueFor, id: &MeetingId) -> String {
    due_partition(what, id_hash(id) % DUE_SHARDS)
}

pub fn due_partition(what: DueFor, shard: u32) -> String {
    match what {
        DueFor::Archive => format!("DUE#{shard}"),
        DueFor::RoomClose => format!("CLOSE#{shard}"),
    }
}

/// The notice-index partition a meeting with a pending no-show check is in (shards as the
/// due index's).
pub fn notice_shard(id: &MeetingId) -> String {
    notice_partition(id_hash(id) % DUE_SHARDS)
}

pub fn notice_partition(shard: u32) -> String {
    format!("NOSHOW#{shard}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SubjectKind;
    use crate::ids::SubjectId;

    #[test]
    fn keys_follow_the_documented_table_design() {
        let org = OrgId::parse("clinic-1", "t").expect("id");
        let id = MeetingId::parse("mtg_abc", "t").expect("id");
        let user = UserId::parse("dr-7", "t").expect("id");
        let subject = Subject {
            kind: SubjectKind::Appointment,
            id: SubjectId::parse("appt-1", "t").expect("id"),
        };
        let start = DateTime::parse_from_rfc3339("2026-11-21T10:00:00.250Z")
            .expect("time")
            .with_timezone(&Utc);
        let cases = [
            (meeting(&id), "MTG#mtg_abc", "MEETING"),
            (
                claim(&org, &subject),
                "SUBJ#clinic-1#appointment#appt-1",
                "CLAIM",
            ),
            (
                provider_id(ProviderKind::Zoom, "857"),
                "PMID#zoom#857",
                "PMID",
            ),
            (
                membership(&org, &user, start, &id),
                "USER#clinic-1#dr-7",
                "AT#2026-11-21T10:00:00Z#mtg_abc",
            ),
            (event_mark("ab12"), "WHK#ab12", "WHK"),
            (token("zoho#f00"), "TOKEN#zoho#f00", "TOKEN"),
            (org_profile(&org), "ORG#clinic-1", "PROFILE"),
            (org_host(&org, &user), "ORG#clinic-1", "HOST#dr-7"),
            (
                connection_entry(ProviderKind::Zoom, &org),
                "CONNECTIONS",
                "zoom#clinic-1",
            ),
            (
                budget("ORG#clinic-1#3600#0"),
                "BUDGET#ORG#clinic-1#3600#0",
                "BUDGET",
            ),
        ];
        for (key, pk, sk) in cases {
            assert_eq!((key.pk.as_str(), key.sk.as_str()), (pk, sk));
        }
        assert!(stats_shard(&org, &id).sk.starts_with("SHARD#"));
        for what in [DueFor::Archive, DueFor::RoomClose] {
            assert!((0..DUE_SHARDS).any(|s| due_shard(what, &id) == due_partition(what, s)));
        }
        assert_eq!(due_partition(DueFor::Archive, 3), "DUE#3");
        assert_eq!(due_partition(DueFor::RoomClose, 3), "CLOSE#3");
    }

    #[test]
    fn a_membership_range_holds_whole_seconds_at_both_ends() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .with_timezone(&Utc)
        };
        let (lo, hi) = membership_range(
            Some(t("2026-11-21T10:00:00Z")),
            Some(t("2026-11-21T11:00:00Z")),
        );
        let org = OrgId::parse("o", "t").expect("id");
        let user = UserId::parse("u", "t").expect("id");
        let id = MeetingId::parse("mtg_zzzz", "t").expect("id");
        for inside in ["2026-11-21T10:00:00Z", "2026-11-21T11:00:00Z"] {
            let sk = membership(&org, &user, t(inside), &id).sk;
            assert!(lo <= sk && sk <= hi, "{inside}");
        }
        let after = membership(&org, &user, t("2026-11-21T11:00:01Z"), &id).sk;
        assert!(after > hi);
        assert_eq!(
            membership_range(None, None),
            ("AT#".to_owned(), "AT#~".to_owned())
        );
    }
}
