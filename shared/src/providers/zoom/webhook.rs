//! Zoom's webhook signatures (guarantee 3): every delivery is verified on the exact bytes
//! received. `x-zm-signature` must be `v0=` + lowercase hex HMAC-SHA256(secret token,
//! `v0:{x-zm-request-timestamp}:{raw body}`), compared in constant time after a length
//! check, with the timestamp within 300 s of now and both the current and the previous
//! secret token accepted (rotation). The entry point is `crate::http::webhook`.

use crate::secrets::{FromSecret, MIN_WEBHOOK_TOKEN_BYTES, secret_key};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;

/// Deliveries older or newer than this are refused (replay window).
pub const TOLERANCE_SECONDS: i64 = 300;

/// `ZOOM_WEBHOOK_SECRET_ID`: `{"secretToken","previousSecretToken"?}`.
pub struct WebhookSecrets {
    current: String,
    previous: Option<String>,
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecrets(..)")
    }
}

impl FromSecret for WebhookSecrets {
    fn from_secret(json: &Map<String, Value>) -> Result<Self, String> {
        // A short (guessable) token is refused, not used: it would sign anyone's webhooks.
        let previous = match json.get("previousSecretToken") {
            None | Some(Value::Null) => None,
            Some(_) => Some(secret_key(
                json,
                "previousSecretToken",
                MIN_WEBHOOK_TOKEN_BYTES,
            )?),
        };
        Ok(Self {
            current: secret_key(json, "secretToken", MIN_WEBHOOK_TOKEN_BYTES)?,
            previous,
        })
    }
}

/// Why a delivery was refused; logged (never the body), never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The path names an org whose Zoom app has no secret here.
    NoSecret,
    /// Missing, repeated or not text.
    Header(&'static str),
    BadTimestamp,
    StaleTimestamp,
    BadSignature,
    BadEncoding,
    /// Zoom never sends an empty delivery.
    EmptyBody,
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    // HMAC takes keys of any length, so this never fails; if it did, the empty string
    // matches no signature (a refusal, never a panic on the public door).
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `x-zm-signature` Zoom sends for `body` at `timestamp`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hmac_hex(secret, &[b"v0:", timestamp.as_bytes(), b":", body])
    )
}

/// `encryptedToken` of an `endpoint.url_validation` answer.
pub fn encrypted_token(secret: &str, plain_token: &str) -> String {
    hmac_hex(secret, &[plain_token.as_bytes()])
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length first: a truncated signature must never compare equal to a prefix.
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Exactly one value, as text. API Gateway joins repeated headers with commas, so a comma
/// means the header came more than once.
fn single<'a>(headers: &'a http::HeaderMap, name: &'static str) -> Result<&'a str, Refusal> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(Refusal::Header(name))?;
    if values.next().is_some() {
        return Err(Refusal::Header(name));
    }
    let value = value.to_str().map_err(|_| Refusal::Header(name))?;
    if value.contains(',') {
        return Err(Refusal::Header(name));
    }
    Ok(value)
}

/// Verifies one delivery on its exact bytes; the secret token that signed it (the current
/// one, or during a rotation the previous one).
pub fn verify<'s>(
    secrets: &'s WebhookSecrets,
    headers: &http::HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<&'s str, Refusal> {
    let timestamp = single(headers, "x-zm-request-timestamp")?;
    if timestamp.is_empty()
        || timestamp.len() > 12
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Refusal::BadTimestamp);
    }
    let seconds: i64 = timestamp.parse().map_err(|_| Refusal::BadTimestamp)?;
    if (now.timestamp() - seconds).abs() > TOLERANCE_SECONDS {
        return Err(Refusal::StaleTimestamp);
    }
    let given = single(headers, "x-zm-signature")?;
    let hex = given.strip_prefix("v0=").ok_or(Refusal::BadSignature)?;
    // Zoom sends 64 lower-case hex digits; anything else is not its signature.
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Refusal::BadSignature);
    }
    std::iter::once(&secrets.current)
        .chain(secrets.previous.as_ref())
        .find(|secret| {
            constant_time_eq(
                signature(secret, timestamp, body).as_bytes(),
                given.as_bytes(),
            )
        })
        .map(String::as_str)
        .ok_or(Refusal::BadSignature)
}
