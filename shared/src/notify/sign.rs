//! Standard Webhooks signatures (standardwebhooks.com, "Signature scheme"): `v1,` + base64
//! of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret's
//! bytes (base64 after the `whsec_` prefix). Several signatures, space-separated, let a
//! receiver verify with either secret during a rotation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";
/// Key bytes of a generated secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// A generated signing secret: `whsec_` + base64 of random bytes.
pub fn generate_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_…` secret; `None` when it is not one.
pub fn key_of(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix(SECRET_PREFIX)?;
    STANDARD.decode(b64).ok().filter(|k| k.len() >= 24)
}

/// `v1,<base64>` for one key.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        // HMAC takes keys of any length; unreachable.
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A subscription's signing secrets as kept in Secrets Manager:
/// `{"current":"whsec_…","previous":"whsec_…","previousUntil":"RFC3339"}`. After a rotation
/// the previous secret keeps signing beside the new one until `previousUntil`.
#[derive(Clone)]
pub struct SigningSecrets {
    current: Vec<u8>,
    previous: Option<(Vec<u8>, DateTime<Utc>)>,
}

impl std::fmt::Debug for SigningSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key bytes.
        f.debug_struct("SigningSecrets")
            .field("previous_until", &self.previous.as_ref().map(|(_, t)| t))
            .finish_non_exhaustive()
    }
}

impl SigningSecrets {
    /// The secret's JSON for a new `current` (and, on rotation, the one it replaces).
    pub fn json(current: &str, previous: Option<(&str, DateTime<Utc>)>) -> Value {
        let mut v = json!({ "current": current });
        if let Some((p, until)) = previous {
            v["previous"] = json!(p);
            v["previousUntil"] = json!(crate::domain::rfc3339(until));
        }
        v
    }

    /// The `webhook-signature` header value at `now`: the current secret's signature, and
    /// the previous one's while it is still valid.
    pub fn header(&self, id: &str, timestamp: i64, body: &str, now: DateTime<Utc>) -> String {
        let mut out = signature(&self.current, id, timestamp, body);
        if let Some((key, until)) = &self.previous
            && now < *until
        {
            out.push(' ');
            out.push_str(&signature(key, id, timestamp, body));
        }
        out
    }

    pub fn current_str(json: &Map<String, Value>) -> Option<&str> {
        json.get("current").and_then(Value::as_str)
    }
}

impl crate::secrets::FromSecret for SigningSecrets {
    fn from_secret(json: &Map<String, Value>) -> Result<Self, String> {
        let field = |f: &str| json.get(f).and_then(Value::as_str);
        let current = field("current")
            .and_then(key_of)
            .ok_or("field current is missing or not a whsec_ secret")?;
        let previous = match (field("previous"), field("previousUntil")) {
            (Some(p), Some(until)) => {
                let key = key_of(p).ok_or("field previous is not a whsec_ secret")?;
                let until = DateTime::parse_from_rfc3339(until)
                    .map_err(|_| "field previousUntil is not RFC 3339")?
                    .to_utc();
                Some((key, until))
            }
            _ => None,
        };
        Ok(Self { current, previous })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::FromSecret;

    #[test]
    fn the_specifications_own_example_signs_to_its_published_signature() {
        // standardwebhooks.com / the reference libraries' test vector.
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let sig = signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one_until_its_end_only() {
        let (old, new) = (generate_secret(), generate_secret());
        let until = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .expect("t")
            .to_utc();
        let Value::Object(json) = SigningSecrets::json(&new, Some((&old, until))) else {
            panic!("object");
        };
        let s = SigningSecrets::from_secret(&json).expect("secrets");
        let before = until - chrono::Duration::seconds(1);
        assert_eq!(s.header("m", 1, "{}", before).split(' ').count(), 2);
        assert_eq!(s.header("m", 1, "{}", until).split(' ').count(), 1);
        assert!(generate_secret().starts_with("whsec_"));
        assert!(key_of("whsec_short").is_none());
    }
}
