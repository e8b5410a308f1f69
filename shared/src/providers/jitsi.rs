//! Jitsi: no API call to create a meeting, only a room name and per-caller JWT links.
//! Self-hosted (prosody token auth, HS256 with `appSecret`) or 8x8 JaaS (RS256 with the
//! app's private key, `kid` = `{appId}/{keyId}`).
//!
//! Room names are random, lower-case, single level and carry no PHI. Every link is minted
//! for one caller, for exactly that room, moderator only for the host, and expires with the
//! meeting's end plus a grace period.

use super::{
    CreateSpec, Deletion, MeetingProvider, PersonalLink, ProviderError, ProviderMeeting, Schedule,
};
use crate::clock::Clock;
use crate::domain::org_request::{PUBLIC_JITSI, is_host_name, jaas_kid};
use crate::domain::{LinkRole, Meeting, ProviderKind, ProviderLinks};
use crate::ids::{MeetingId, UserId};
use crate::secrets::{FromSecret, SecretCache, secret_opt_str, secret_str};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngExt;
use serde_json::{Map, Value, json};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// Links stay valid this long after the meeting's scheduled end.
pub const LINK_GRACE: Duration = Duration::hours(1);
/// Clock skew allowed on `nbf` for a link issued for a meeting about to start or running.
const NBF_SKEW: Duration = Duration::seconds(10);

/// How Jitsi links are timed.
#[derive(Debug, Clone, Copy)]
pub struct JitsiConfig {
    /// `JITSI_JOIN_LEAD_SECONDS`: a link opens the room no earlier than this before the
    /// meeting's start (a link asked for earlier still works, from then on).
    pub join_lead: Duration,
}

impl Default for JitsiConfig {
    fn default() -> Self {
        Self {
            join_lead: Duration::minutes(15),
        }
    }
}
/// Characters of a room name: Jitsi's safe set, lower-case only.
const ROOM_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ROOM_LEN: usize = 24;

enum Signer {
    /// Self-hosted prosody token auth.
    Hs256(EncodingKey),
    /// 8x8 JaaS.
    JaaS { key: EncodingKey, kid: String },
}

/// `JITSI_SECRET_ID`: `{"domain","appId","appSecret","subject"?,"guestDomain"?}` or
/// `{"domain","appId","privateKeyPem","keyId"}`.
pub struct JitsiCredentials {
    domain: String,
    app_id: String,
    signer: Signer,
    /// A self-hosted token's `sub`: the lower-cased XMPP domain (or tenant), which on a
    /// Docker install (`meet.jitsi`) is not the public host. Default: `domain`, lower-cased.
    subject: String,
    /// The server's anonymous guest domain (docker-jitsi-meet's `ENABLE_GUESTS`,
    /// `guest.meet.jitsi`): when set, participants get the room without a token and join
    /// there as guests, whom Jicofo never makes owners; only the host authenticates.
    guest_domain: Option<String>,
}

/// A host name as the secret gives it: lower-cased, no scheme, path or port.
fn host_name(json: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    let Some(raw) = secret_opt_str(json, field) else {
        return Ok(None);
    };
    let host = raw.trim().to_ascii_lowercase();
    if is_host_name(&host) {
        Ok(Some(host))
    } else {
        Err(format!(
            "field {field} must be a host name (no scheme, path or port)"
        ))
    }
}

impl fmt::Debug for JitsiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JitsiCredentials(..)")
    }
}

impl FromSecret for JitsiCredentials {
    fn from_secret(json: &Map<String, Value>) -> Result<Self, String> {
        let app_id = secret_str(json, "appId")?;
        let signer = match secret_opt_str(json, "privateKeyPem") {
            Some(pem) => Signer::JaaS {
                key: EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
                    "field privateKeyPem is not an RSA private key in PEM".to_owned()
                })?,
                kid: jaas_kid(&app_id, &secret_str(json, "keyId")?)?,
            },
            None => Signer::Hs256(EncodingKey::from_secret(
                crate::secrets::secret_key(json, "appSecret", crate::secrets::MIN_HS256_KEY_BYTES)?
                    .as_bytes(),
            )),
        };
        let domain = host_name(json, "domain")?.ok_or("secret lacks domain")?;
        if domain == PUBLIC_JITSI {
            return Err("field domain: meet.jit.si takes no third-party tokens (it requires its own logins); use your own Jitsi server or 8x8 JaaS".to_owned());
        }
        let guest_domain = host_name(json, "guestDomain")?;
        if guest_domain.is_some() && matches!(signer, Signer::JaaS { .. }) {
            return Err("field guestDomain is for self-hosted servers: JaaS honours the token's moderator flag".to_owned());
        }
        Ok(Self {
            subject: host_name(json, "subject")?.unwrap_or_else(|| domain.clone()),
            guest_domain,
            domain,
            app_id,
            signer,
        })
    }
}

pub struct JitsiProvider {
    credentials: SecretCache<JitsiCredentials>,
    clock: Arc<dyn Clock>,
    config: JitsiConfig,
}

impl JitsiProvider {
    pub fn new(
        credentials: SecretCache<JitsiCredentials>,
        clock: Arc<dyn Clock>,
        config: JitsiConfig,
    ) -> Self {
        Self {
            credentials,
            clock,
            config,
        }
    }

    async fn credentials(&self) -> Result<Arc<JitsiCredentials>, ProviderError> {
        Ok(self.credentials.get().await?)
    }
}

fn room_name() -> String {
    let mut rng = rand::rng();
    (0..ROOM_LEN)
        .map(|_| ROOM_ALPHABET[rng.random_range(0..ROOM_ALPHABET.len())] as char)
        .collect()
}

fn room_url(c: &JitsiCredentials, room: &str) -> String {
    match c.signer {
        Signer::Hs256(_) => format!("https://{}/{room}", c.domain),
        Signer::JaaS { .. } => format!("https://8x8.vc/{}/{room}", c.app_id),
    }
}

/// When a token is valid: from `nbf` (not before the start minus the lead) to `exp`.
#[derive(Debug, Clone, Copy)]
struct Validity {
    now: DateTime<Utc>,
    nbf: DateTime<Utc>,
    exp: DateTime<Utc>,
}

/// The claims of one caller's token. Only ids go in (no names or emails).
fn claims(
    c: &JitsiCredentials,
    room: &str,
    user: &UserId,
    moderator: bool,
    Validity { now, nbf, exp }: Validity,
) -> Value {
    match c.signer {
        Signer::Hs256(_) => json!({
            "iss": c.app_id, "aud": "jitsi", "sub": c.subject, "room": room,
            "nbf": nbf.timestamp(), "iat": now.timestamp(), "exp": exp.timestamp(),
            "context": { "user": {
                "id": user.as_str(),
                "name": if moderator { "Host" } else { "Participant" },
                "affiliation": if moderator { "owner" } else { "member" },
                "moderator": if moderator { "true" } else { "false" },
            } },
        }),
        Signer::JaaS { .. } => json!({
            "iss": "chat", "aud": "jitsi", "sub": c.app_id, "room": room,
            "nbf": nbf.timestamp(), "iat": now.timestamp(), "exp": exp.timestamp(),
            "context": {
                "user": {
                    "id": user.as_str(),
                    "name": if moderator { "Host" } else { "Participant" },
                    "moderator": if moderator { "true" } else { "false" },
                },
                "features": { "recording": "false", "livestreaming": "false" },
            },
        }),
    }
}

#[async_trait]
impl MeetingProvider for JitsiProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Jitsi
    }

    async fn create(
        &self,
        _spec: &CreateSpec,
        _deadline: Instant,
    ) -> Result<ProviderMeeting, ProviderError> {
        let c = self.credentials().await?;
        let room = room_name();
        let url = room_url(&c, &room);
        Ok(ProviderMeeting {
            provider_meeting_id: room,
            uuid: None,
            links: ProviderLinks {
                join_url: url.clone(),
                host_url: url,
                host_url_fetched_at: None,
                password: None,
            },
            schedule: None,
        })
    }

    /// Nothing exists at Jitsi before someone joins: there is nothing to find.
    /// No API to ask: the secret parses (an HS256 secret, or an RSA key in PEM).
    async fn verify(&self, _deadline: Instant) -> Result<(), ProviderError> {
        self.credentials.get().await.map(drop).map_err(|e| match e {
            crate::secrets::SecretError::Invalid { problem, .. } => {
                ProviderError::rejected(problem)
            }
            other => other.into(),
        })
    }

    async fn find_by_marker(
        &self,
        _id: &MeetingId,
        _host_user: Option<&str>,
        _deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError> {
        Ok(None)
    }

    async fn fresh_host_link(
        &self,
        meeting: &Meeting,
        _deadline: Instant,
    ) -> Result<(String, DateTime<Utc>), ProviderError> {
        Ok((meeting.links.host_url.clone(), self.clock.now()))
    }

    /// The room has no schedule at Jitsi; links follow the record.
    async fn update(
        &self,
        _m: &Meeting,
        _s: &Schedule,
        _deadline: Instant,
    ) -> Result<(), ProviderError> {
        Ok(())
    }

    /// A Jitsi room is nothing to delete.
    async fn delete(&self, _room: &str, _deadline: Instant) -> Result<Deletion, ProviderError> {
        Ok(Deletion::AlreadyGone)
    }

    async fn end(&self, _m: &Meeting, _deadline: Instant) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn personal_link(
        &self,
        meeting: &Meeting,
        role: LinkRole,
        user: &UserId,
    ) -> Result<Option<PersonalLink>, ProviderError> {
        let c = self.credentials().await?;
        let now = self.clock.now();
        let exp = meeting.scheduled_end() + LINK_GRACE;
        if exp <= now {
            return Ok(Some(PersonalLink::Expired));
        }
        let moderator = role == LinkRole::Host;
        if !moderator && c.guest_domain.is_some() {
            // A guest: the room alone, no token the server could make an owner of.
            return Ok(Some(PersonalLink::Issued {
                url: room_url(&c, &meeting.provider_meeting_id),
                expires_at: exp,
            }));
        }
        // A link for a meeting next month does not open the room all month.
        let nbf = (now - NBF_SKEW).max(meeting.start_time - self.config.join_lead);
        let validity = Validity { now, nbf, exp };
        let room = &meeting.provider_meeting_id;
        let header = match &c.signer {
            Signer::Hs256(_) => Header::new(Algorithm::HS256),
            Signer::JaaS { kid, .. } => {
                let mut h = Header::new(Algorithm::RS256);
                h.kid = Some(kid.clone());
                h
            }
        };
        let key = match &c.signer {
            Signer::Hs256(k) | Signer::JaaS { key: k, .. } => k,
        };
        let token =
            jsonwebtoken::encode(&header, &claims(&c, room, user, moderator, validity), key)
                .map_err(|_| ProviderError::rejected("could not sign a Jitsi token"))?;
        Ok(Some(PersonalLink::Issued {
            url: format!("{}?jwt={token}", room_url(&c, room)),
            expires_at: exp,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(fields: Value) -> Result<JitsiCredentials, String> {
        let Value::Object(json) = fields else {
            unreachable!("an object")
        };
        JitsiCredentials::from_secret(&json)
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_subject_is_the_lowercased_xmpp_domain_given_else_the_domain() {
        let c = parsed(json!({ "domain": "Meet.Example.ORG", "appId": "a", "appSecret": SECRET }))
            .expect("parses");
        assert_eq!(
            (c.domain.as_str(), c.subject.as_str()),
            ("meet.example.org", "meet.example.org")
        );
        let c = parsed(json!({ "domain": "meet.example.org", "appId": "a", "appSecret": SECRET, "subject": "Meet.Jitsi" }))
            .expect("parses");
        assert_eq!(c.subject, "meet.jitsi");
        for bad in [
            "https://meet.example.org",
            "meet.example.org/room",
            "meet.example.org:443",
            "-x.org",
        ] {
            assert!(
                parsed(json!({ "domain": bad, "appId": "a", "appSecret": SECRET })).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn meet_jit_si_is_refused_as_a_domain() {
        let refused = parsed(json!({ "domain": "MEET.JIT.SI", "appId": "a", "appSecret": SECRET }));
        assert!(refused.is_err_and(|e| e.contains("meet.jit.si")));
    }

    #[test]
    fn a_jaas_key_id_is_taken_short_or_whole_as_the_console_shows_it() {
        let app = "vpaas-magic-cookie-1fc542a3e4414a44b2611668195e2bfe";
        assert_eq!(
            jaas_kid(app, "4f4910").as_deref(),
            Ok(format!("{app}/4f4910").as_str())
        );
        let whole = format!("{app}/4f4910");
        assert_eq!(jaas_kid(app, &whole).as_deref(), Ok(whole.as_str()));
        assert!(jaas_kid(app, "vpaas-magic-cookie-other/4f4910").is_err());
        assert!(jaas_kid(app, &format!("{app}/")).is_err());
    }

    #[test]
    fn room_names_are_random_lowercase_single_level() {
        let a = room_name();
        assert_eq!(a.len(), ROOM_LEN);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_ne!(a, room_name());
    }
}
