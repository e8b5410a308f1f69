//! Caller authentication: `Authorization: Bearer <JWT>`, HS256 or RS256 with keys from the
//! secret named by `AUTH_SECRET_ID`. `alg: none` and every other algorithm are rejected;
//! issuer, audience and expiry are checked against the injected clock.

use crate::clock::Clock;
use crate::domain::{Caller, Role};
use crate::error::ApiError;
use crate::ids::{OrgId, UserId};
use crate::secrets::{FromSecret, SecretCache, secret_opt_str, secret_str};
use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: i64 = 30;
/// A bad signature may mean the keys were rotated: re-read the secret, but not more often
/// than this.
const REREAD_MIN_AGE: Duration = Duration::seconds(30);

/// The parsed auth secret `{"issuer","audience","hs256Secret"?,"rs256PublicKeyPem"?}`.
pub struct AuthKeys {
    issuer: String,
    audience: String,
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
}

impl FromSecret for AuthKeys {
    fn from_secret(json: &Map<String, Value>) -> Result<Self, String> {
        let hs256 =
            secret_opt_str(json, "hs256Secret").map(|s| DecodingKey::from_secret(s.as_bytes()));
        let rs256 = secret_opt_str(json, "rs256PublicKeyPem")
            .map(|pem| DecodingKey::from_rsa_pem(pem.as_bytes()))
            .transpose()
            .map_err(|_| "field rs256PublicKeyPem is not an RSA public key in PEM".to_owned())?;
        if hs256.is_none() && rs256.is_none() {
            return Err("one of hs256Secret or rs256PublicKeyPem is required".into());
        }
        Ok(Self {
            issuer: secret_str(json, "issuer")?,
            audience: secret_str(json, "audience")?,
            hs256,
            rs256,
        })
    }
}

/// Why a token was refused; logged (never the token), never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Missing,
    Malformed,
    Algorithm,
    Signature,
    Claims,
    Expired,
    NotYetValid,
}

pub struct Authenticator {
    keys: SecretCache<AuthKeys>,
    clock: Arc<dyn Clock>,
}

impl Authenticator {
    pub fn new(keys: SecretCache<AuthKeys>, clock: Arc<dyn Clock>) -> Self {
        Self { keys, clock }
    }

    /// The caller named by the `Authorization` header value, or 401.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let refuse = |reason: Refusal| {
            tracing::warn!(reason = ?reason, "caller token refused");
            ApiError::unauthenticated()
        };
        // No token, no secret read: a bare request costs nothing.
        let token = bearer(authorization).ok_or_else(|| refuse(Refusal::Missing))?;
        let keys = self.keys.get().await?;
        match self.verify(&keys, token) {
            Err(Refusal::Signature) => {
                match self.keys.reread_after_auth_failure(REREAD_MIN_AGE).await? {
                    Some(fresh) => self.verify(&fresh, token),
                    None => Err(Refusal::Signature),
                }
            }
            other => other,
        }
        .map_err(refuse)
    }

    fn verify(&self, keys: &AuthKeys, token: &str) -> Result<Caller, Refusal> {
        let header = decode_header(token).map_err(|_| Refusal::Malformed)?;
        let key = match header.alg {
            Algorithm::HS256 => keys.hs256.as_ref(),
            Algorithm::RS256 => keys.rs256.as_ref(),
            _ => None,
        }
        .ok_or(Refusal::Algorithm)?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&keys.issuer]);
        validation.set_audience(&[&keys.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Time claims are checked below against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = decode::<Map<String, Value>>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature | K::InvalidKeyFormat | K::InvalidAlgorithm => {
                    Refusal::Signature
                }
                K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => Refusal::Malformed,
                _ => Refusal::Claims,
            }
        })?;
        let claims = data.claims;
        let now = self.clock.now().timestamp();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(Refusal::Claims)?;
        if exp + LEEWAY_SECONDS <= now {
            return Err(Refusal::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or(Refusal::Claims)?;
            if nbf - LEEWAY_SECONDS > now {
                return Err(Refusal::NotYetValid);
            }
        }
        let text = |k: &str| claims.get(k).and_then(Value::as_str).ok_or(Refusal::Claims);
        Ok(Caller {
            user_id: UserId::parse(text("sub")?, "sub").map_err(|_| Refusal::Claims)?,
            role: text("role")?.parse::<Role>().map_err(|_| Refusal::Claims)?,
            org: OrgId::parse(text("org")?, "org").map_err(|_| Refusal::Claims)?,
        })
    }
}

fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn only_bearer_credentials_are_read() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(Some("abc")), None);
        assert_eq!(bearer(None), None);
    }
}
