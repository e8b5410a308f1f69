//! Caller authentication. `AUTH_MODE=verify` (the default): `Authorization: Bearer <JWT>`,
//! HS256 or RS256 with keys from the secret named by `AUTH_SECRET_ID`; `alg: none` and every
//! other algorithm are rejected; issuer, audience and expiry are checked against the injected
//! clock. `AUTH_MODE=authorizer`: API Gateway's JWT authorizer (Cognito or another OIDC
//! provider) has verified the token, and its claims are taken as they are.

use crate::clock::Clock;
use crate::config::ClaimNames;
use crate::domain::{Caller, Role};
use crate::ids::{OrgId, UserId};
use crate::secrets::{
    FromSecret, MIN_HS256_KEY_BYTES, REREAD_MIN_AGE, SecretCache, SecretError, secret_key,
    secret_opt_str, secret_str,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: i64 = 30;
// A bad signature may mean the keys were rotated: the secret is re-read, but not more
// often than `REREAD_MIN_AGE`.

/// The parsed auth secret `{"issuer","audience","hs256Secret"?,"rs256PublicKeyPem"?}`.
pub struct AuthKeys {
    issuer: String,
    audience: String,
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
}

impl FromSecret for AuthKeys {
    fn from_secret(json: &Map<String, Value>) -> Result<Self, String> {
        let hs256 = match secret_opt_str(json, "hs256Secret") {
            Some(_) => Some(DecodingKey::from_secret(
                secret_key(json, "hs256Secret", MIN_HS256_KEY_BYTES)?.as_bytes(),
            )),
            None => None,
        };
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
pub enum Refusal {
    Missing,
    Malformed,
    Algorithm,
    Signature,
    Claims,
    Expired,
    NotYetValid,
}

/// How callers are authenticated (`AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// telemeet verifies the bearer token itself.
    Verify,
    /// API Gateway's JWT authorizer verified it; its claims are trusted.
    Authorizer,
}

impl std::str::FromStr for AuthMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "verify" => Ok(Self::Verify),
            "authorizer" => Ok(Self::Authorizer),
            _ => Err(()),
        }
    }
}

/// What a request brings to prove who calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The claims API Gateway's JWT authorizer put in the request context, if any.
    pub authorizer_claims: Option<&'a HashMap<String, String>>,
}

pub struct Authenticator {
    mode: Mode,
}

enum Mode {
    /// Verify bearer tokens with the auth secret's keys.
    Verify(SecretCache<AuthKeys>, Arc<dyn Clock>),
    /// Trust API Gateway's JWT authorizer, reading role and org from these claims.
    Authorizer(ClaimNames),
}

/// Authentication failed: the caller is refused (401), or the keys could not be read (500).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("caller token refused ({0:?})")]
    Refused(Refusal),
    #[error("the caller keys are unavailable")]
    Keys(#[from] SecretError),
}

fn refuse(reason: Refusal) -> AuthError {
    tracing::warn!(reason = ?reason, "caller token refused");
    AuthError::Refused(reason)
}

impl Authenticator {
    pub fn new(keys: SecretCache<AuthKeys>, clock: Arc<dyn Clock>) -> Self {
        Self {
            mode: Mode::Verify(keys, clock),
        }
    }

    /// Trusts API Gateway's JWT authorizer (the template attaches it to every API route in
    /// this mode, and only API Gateway may invoke the functions), reading role and org
    /// from the configured claims only.
    pub fn trusting_authorizer(claims: ClaimNames) -> Self {
        Self {
            mode: Mode::Authorizer(claims),
        }
    }

    /// The caller the credentials name, or 401.
    pub async fn authenticate(&self, credentials: Credentials<'_>) -> Result<Caller, AuthError> {
        let (keys, clock) = match &self.mode {
            Mode::Verify(keys, clock) => (keys, clock),
            Mode::Authorizer(names) => {
                let claims = credentials
                    .authorizer_claims
                    .ok_or_else(|| refuse(Refusal::Missing))?;
                return caller_from_authorizer(claims, names).map_err(refuse);
            }
        };
        // No token, no secret read: a bare request costs nothing.
        let token = bearer(credentials.authorization).ok_or_else(|| refuse(Refusal::Missing))?;
        let verifier = Verifier { clock };
        let keys_now = keys.get().await?;
        match verifier.verify(&keys_now, token) {
            Err(Refusal::Signature) => {
                match keys.reread_after_auth_failure(REREAD_MIN_AGE).await? {
                    Some(fresh) => verifier.verify(&fresh, token),
                    None => Err(Refusal::Signature),
                }
            }
            other => other,
        }
        .map_err(refuse)
    }
}

/// The caller in a JWT authorizer's claims: `sub`, and the role and org from the
/// configured claims only (never a fallback to another, perhaps user-writable, claim).
fn caller_from_authorizer(
    claims: &HashMap<String, String>,
    names: &ClaimNames,
) -> Result<Caller, Refusal> {
    let claim = |name: &str| claims.get(name).map(String::as_str).ok_or(Refusal::Claims);
    Ok(Caller {
        user_id: UserId::parse(claim("sub")?, "sub").map_err(|_| Refusal::Claims)?,
        role: claim(&names.role)?
            .parse::<Role>()
            .map_err(|_| Refusal::Claims)?,
        org: OrgId::parse(claim(&names.org)?, "org").map_err(|_| Refusal::Claims)?,
    })
}

struct Verifier<'a> {
    clock: &'a Arc<dyn Clock>,
}

impl Verifier<'_> {
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
    use super::*;

    #[test]
    fn authorizer_claims_name_the_caller_from_the_configured_claims_only() {
        let claims = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let names = |role: &str, org: &str| ClaimNames {
            role: role.into(),
            org: org.into(),
        };
        let defaults = names("role", "org");
        let c = caller_from_authorizer(
            &claims(&[
                ("sub", "dr-7"),
                ("role", "practitioner"),
                ("org", "clinic-1"),
            ]),
            &defaults,
        )
        .unwrap();
        assert_eq!(
            (c.user_id.as_str(), c.role, c.org.as_str()),
            ("dr-7", Role::Practitioner, "clinic-1")
        );
        // A user-written Cognito attribute is not read unless it is the configured claim.
        let written = claims(&[
            ("sub", "pat-9"),
            ("custom:role", "service"),
            ("custom:org", "clinic-2"),
        ]);
        assert!(caller_from_authorizer(&written, &defaults).is_err());
        let mixed = claims(&[
            ("sub", "pat-9"),
            ("role", "patient"),
            ("org", "clinic-1"),
            ("custom:role", "service"),
        ]);
        assert_eq!(
            caller_from_authorizer(&mixed, &defaults).unwrap().role,
            Role::Patient
        );
        let c = caller_from_authorizer(&written, &names("custom:role", "custom:org")).unwrap();
        assert_eq!((c.role, c.org.as_str()), (Role::Service, "clinic-2"));
        assert!(
            caller_from_authorizer(&claims(&[("sub", "x"), ("role", "patient")]), &defaults)
                .is_err()
        );
        assert!(
            caller_from_authorizer(
                &claims(&[("sub", "x"), ("role", "superuser"), ("org", "o")]),
                &defaults
            )
            .is_err()
        );
    }

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
