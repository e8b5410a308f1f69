//! Validated identifiers and the id generator port.

use crate::domain::Invalid;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Path and body ids: 1–128 chars of `[A-Za-z0-9._:-]` (DESIGN.md). Nothing else reaches a
/// key, a log line or a provider.
fn valid_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

const ID_PROBLEM: &str = "must be 1-128 characters of A-Z a-z 0-9 . _ : -";

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `s`; `field` names it in the 400 answer when it is not an id.
            pub fn parse(s: &str, field: &'static str) -> Result<Self, Invalid> {
                if valid_id(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(Invalid::new(field, ID_PROBLEM))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = &'static str;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                if valid_id(&s) { Ok(Self(s)) } else { Err("invalid id") }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Our meeting id, `mtg_` + 20 random base-32 characters.
    MeetingId
);
id_type!(
    /// A caller's user id (JWT `sub`), a host or a participant.
    UserId
);
id_type!(
    /// The tenant (JWT `org`).
    OrgId
);
id_type!(
    /// An appointment or conversation id chosen by the clinic platform.
    SubjectId
);

/// Source of fresh ids and secrets-grade random strings (a port, so tests can pin them).
pub trait IdGenerator: Send + Sync {
    fn meeting_id(&self) -> MeetingId;
    /// Opaque token naming one claim attempt.
    fn claim_token(&self) -> String;
    /// A meeting passcode for providers that take one.
    fn passcode(&self, len: usize) -> String;
}

/// Random ids from the OS-seeded thread RNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
const PASSCODE: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

impl IdGenerator for RandomIds {
    fn meeting_id(&self) -> MeetingId {
        MeetingId(format!("mtg_{}", random_from(BASE32, 20)))
    }

    fn claim_token(&self) -> String {
        random_from(BASE32, 26)
    }

    fn passcode(&self, len: usize) -> String {
        random_from(PASSCODE, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_contract_alphabet_and_length() {
        assert!(SubjectId::parse("appt-123_x.y:z", "appointmentId").is_ok());
        assert!(SubjectId::parse(&"a".repeat(128), "appointmentId").is_ok());
        for bad in ["", " ", "a/b", "a b", "ä", "a#b", "a%2F"] {
            assert!(SubjectId::parse(bad, "appointmentId").is_err(), "{bad:?}");
        }
        assert!(SubjectId::parse(&"a".repeat(129), "appointmentId").is_err());
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let ids = RandomIds;
        let a = ids.meeting_id();
        assert!(a.as_str().starts_with("mtg_") && valid_id(a.as_str()));
        assert_ne!(a, ids.meeting_id());
        let p = ids.passcode(10);
        assert_eq!(p.len(), 10);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
