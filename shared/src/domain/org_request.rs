//! The bodies of the org routes (`/org/providers`, `/org/settings`, `/org/hosts`),
//! validated field by field. A connection body splits into what goes to Secrets Manager and
//! the non-secret ids the table and the answers may hold.

use super::org::provider_user;
use super::request::{optional, provider, required, string};
use super::{Invalid, ProviderKind};
use serde_json::{Map, Value, json};

/// A provider connection as asked for: the secret to store and the public ids.
#[derive(Clone, PartialEq)]
pub struct ConnectionRequest {
    pub kind: ProviderKind,
    pub secret: Map<String, Value>,
    pub ids: Map<String, Value>,
}

/// Never shows the secret half.
impl std::fmt::Debug for ConnectionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRequest")
            .field("kind", &self.kind)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

/// A required non-empty string of at most `max` characters.
fn text(obj: &Map<String, Value>, field: &'static str, max: usize) -> Result<String, Invalid> {
    let s = string(required(obj, field)?, field)?.trim();
    if s.is_empty() || s.len() > max {
        return Err(Invalid::new(
            field,
            "must be a non-empty string of bounded length",
        ));
    }
    if s.to_ascii_uppercase().contains(crate::secrets::PLACEHOLDER) {
        return Err(Invalid::new(field, "is a placeholder, not a real value"));
    }
    Ok(s.to_owned())
}

/// A signing key: at least `min` bytes (a short one is guessable), at most 512.
fn key(obj: &Map<String, Value>, field: &'static str, min: usize) -> Result<String, Invalid> {
    let s = text(obj, field, 512)?;
    if s.len() < min {
        return Err(Invalid::new(field, "is too short to be a signing key"));
    }
    Ok(s)
}

fn digits(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, Invalid> {
    let Some(v) = optional(obj, field) else {
        return Ok(None);
    };
    let s = match v {
        Value::Number(n) if n.is_u64() => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return Err(Invalid::new(field, "must be a string of digits")),
    };
    if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new(field, "must be a string of digits"));
    }
    Ok(Some(s))
}

/// The public service at meet.jit.si requires its own logins and takes no third-party
/// tokens (Jitsi maintainers, jitsi-meet-flutter-sdk#63).
pub const PUBLIC_JITSI: &str = "meet.jit.si";

/// JaaS's `kid`: the console shows it whole (`{appId}/{id}`); a bare id gets the prefix.
pub fn jaas_kid(app_id: &str, key_id: &str) -> Result<String, String> {
    match key_id.split_once('/') {
        None => Ok(format!("{app_id}/{key_id}")),
        Some((prefix, id)) if prefix == app_id && !id.is_empty() => Ok(key_id.to_owned()),
        Some(_) => Err(
            "field keyId names another app: it must be the key id alone or {appId}/{key id}"
                .to_owned(),
        ),
    }
}

/// Whether `s` (lower-cased) is a dotted host name: no scheme, path, port or user part.
pub fn is_host_name(s: &str) -> bool {
    let labels_ok = s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    labels_ok && s.len() <= 253 && s.contains('.')
}

/// A host name as a Jitsi deployment has one (no scheme, path, port or user part).
fn host_name(obj: &Map<String, Value>, field: &'static str) -> Result<String, Invalid> {
    let s = text(obj, field, 253)?.to_ascii_lowercase();
    if is_host_name(&s) {
        Ok(s)
    } else {
        Err(Invalid::new(
            field,
            "must be a host name such as meet.example.org",
        ))
    }
}

/// `PUT /org/providers/{provider}`'s body (DESIGN.md, "Organisations").
pub fn connection(
    kind: ProviderKind,
    obj: &Map<String, Value>,
) -> Result<ConnectionRequest, Invalid> {
    let (secret, ids) = match kind {
        ProviderKind::Zoom => zoom(obj)?,
        ProviderKind::Zoho => zoho(obj)?,
        ProviderKind::Jitsi => jitsi(obj)?,
    };
    let as_map = |v: Value| match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Ok(ConnectionRequest {
        kind,
        secret: as_map(secret),
        ids: as_map(ids),
    })
}

fn zoom(obj: &Map<String, Value>) -> Result<(Value, Value), Invalid> {
    let account_id = text(obj, "accountId", 128)?;
    let client_id = text(obj, "clientId", 128)?;
    let client_secret = text(obj, "clientSecret", 512)?;
    let min = crate::secrets::MIN_WEBHOOK_TOKEN_BYTES;
    let webhook_token = key(obj, "webhookSecretToken", min)?;
    let previous_token = optional(obj, "previousWebhookSecretToken")
        .map(|_| key(obj, "previousWebhookSecretToken", min))
        .transpose()?;
    let default_user = optional(obj, "defaultUser")
        .map(|v| string(v, "defaultUser").and_then(|s| provider_user("defaultUser", s)))
        .transpose()?;
    let budget =
        match optional(obj, "hostDailyBudget") {
            None => None,
            Some(v) => Some(v.as_u64().filter(|n| (1..=100_000).contains(n)).ok_or(
                Invalid::new("hostDailyBudget", "must be a whole number from 1 to 100000"),
            )?),
        };
    let mut secret = json!({
        "accountId": account_id, "clientId": client_id, "clientSecret": client_secret,
        // Present even when null: an org's connection has no implicit default user.
        "defaultUser": default_user, "secretToken": webhook_token,
    });
    if let Some(p) = previous_token {
        secret["previousSecretToken"] = json!(p);
    }
    let ids = json!({
        "accountId": secret["accountId"], "clientId": secret["clientId"],
        "defaultUser": default_user, "hostDailyBudget": budget,
    });
    Ok((secret, ids))
}

fn zoho(obj: &Map<String, Value>) -> Result<(Value, Value), Invalid> {
    let data_center = text(obj, "dataCenter", 16)?;
    if crate::providers::zoho::DataCenter::parse(&data_center).is_none() {
        return Err(Invalid::new(
            "dataCenter",
            "must be one of com, eu, in, com.au, jp, ca, sa, uk, com.cn",
        ));
    }
    let zsoid = digits(obj, "zsoid")?.ok_or(Invalid::new("zsoid", "is required"))?;
    let presenter = digits(obj, "defaultPresenter")?;
    let secret = json!({
        "clientId": text(obj, "clientId", 128)?,
        "clientSecret": text(obj, "clientSecret", 512)?,
        "refreshToken": text(obj, "refreshToken", 1024)?,
        "dataCenter": data_center, "zsoid": zsoid,
        "defaultPresenter": presenter,
    });
    let ids = json!({
        "clientId": secret["clientId"], "dataCenter": secret["dataCenter"],
        "zsoid": secret["zsoid"], "defaultPresenter": secret["defaultPresenter"],
    });
    Ok((secret, ids))
}

/// An optional host name field.
fn optional_host(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, Invalid> {
    optional(obj, field)
        .map(|_| host_name(obj, field))
        .transpose()
}

fn jitsi(obj: &Map<String, Value>) -> Result<(Value, Value), Invalid> {
    let domain = host_name(obj, "domain")?;
    if domain == PUBLIC_JITSI {
        return Err(Invalid::new(
            "domain",
            "meet.jit.si takes no third-party tokens: use your own Jitsi server or 8x8 JaaS",
        ));
    }
    let app_id = text(obj, "appId", 128)?;
    let (mut secret, key_id) = if optional(obj, "privateKeyPem").is_some() {
        let key_id = text(obj, "keyId", 256)?;
        jaas_kid(&app_id, &key_id).map_err(|_| {
            Invalid::new("keyId", "must be the key id, alone or as {appId}/{key id}")
        })?;
        let pem = text(obj, "privateKeyPem", 16 * 1024)?;
        (
            json!({"domain": domain, "appId": app_id, "privateKeyPem": pem, "keyId": key_id}),
            Some(key_id),
        )
    } else {
        let app_secret = key(obj, "appSecret", crate::secrets::MIN_HS256_KEY_BYTES)?;
        (
            json!({"domain": domain, "appId": app_id, "appSecret": app_secret}),
            None,
        )
    };
    let self_hosted = key_id.is_none();
    for field in ["subject", "guestDomain"] {
        if let Some(host) = optional_host(obj, field)? {
            if !self_hosted {
                return Err(Invalid::new(field, "is for self-hosted servers, not JaaS"));
            }
            secret[field] = json!(host);
        }
    }
    let ids = json!({"domain": secret["domain"], "appId": secret["appId"], "keyId": key_id,
        "subject": secret.get("subject"), "guestDomain": secret.get("guestDomain")});
    Ok((secret, ids))
}

/// `PUT /org/settings`: `provider`, optional `fallbackProvider`, `conversationReuseSeconds`,
/// `noShowGraceMinutes`.
pub fn settings(obj: &Map<String, Value>) -> Result<super::OrgSettings, Invalid> {
    let primary = provider(required(obj, "provider")?, "provider")?;
    let fallback = optional(obj, "fallbackProvider")
        .map(|v| provider(v, "fallbackProvider"))
        .transpose()?
        .filter(|f| *f != primary);
    let reuse = optional(obj, "conversationReuseSeconds")
        .map(|v| {
            v.as_u64()
                .filter(|s| (60..=86_400).contains(s))
                .and_then(|s| u32::try_from(s).ok())
                .ok_or(Invalid::new(
                    "conversationReuseSeconds",
                    "must be a whole number of seconds from 60 to 86400",
                ))
        })
        .transpose()?;
    let grace = optional(obj, "noShowGraceMinutes")
        .map(|v| {
            v.as_u64()
                .filter(|m| *m <= 1440)
                .and_then(|m| u32::try_from(m).ok())
                .ok_or(Invalid::new(
                    "noShowGraceMinutes",
                    "must be a whole number of minutes from 0 (off) to 1440",
                ))
        })
        .transpose()?;
    Ok(super::OrgSettings {
        provider: Some(primary),
        fallback,
        conversation_reuse_seconds: reuse,
        no_show_grace_minutes: grace,
        updated_at: None,
    })
}

/// `PUT /org/hosts/{userId}`: `zoomUser` and/or `zohoPresenter`.
pub fn host(obj: &Map<String, Value>) -> Result<(Option<String>, Option<String>), Invalid> {
    let zoom = optional(obj, "zoomUser")
        .map(|v| string(v, "zoomUser").and_then(|s| provider_user("zoomUser", s.trim())))
        .transpose()?;
    let zoho = digits(obj, "zohoPresenter")?;
    if zoom.is_none() && zoho.is_none() {
        return Err(Invalid::new(
            "zoomUser",
            "zoomUser or zohoPresenter is required",
        ));
    }
    Ok((zoom, zoho))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_zoom_connection_keeps_its_secrets_out_of_the_public_ids() {
        let body = obj(
            json!({"accountId":"A","clientId":"C","clientSecret":"S3CRET",
            "webhookSecretToken":"WH00K-0123456789abcdef","defaultUser":"dr@x.org","hostDailyBudget":3,"extra":1}),
        );
        let c = connection(ProviderKind::Zoom, &body).expect("valid");
        let ids = serde_json::to_string(&c.ids).expect("json");
        assert!(!ids.contains("S3CRET") && !ids.contains("WH00K-"));
        assert_eq!(c.ids["hostDailyBudget"], 3);
        assert_eq!(c.secret["secretToken"], "WH00K-0123456789abcdef");
        assert_eq!(c.secret["defaultUser"], "dr@x.org");
        let no_default = obj(
            json!({"accountId":"A","clientId":"C","clientSecret":"S","webhookSecretToken":"W-0123456789abcdef"}),
        );
        let c = connection(ProviderKind::Zoom, &no_default).expect("valid");
        assert!(c.secret.contains_key("defaultUser") && c.secret["defaultUser"].is_null());
    }

    #[test]
    fn each_invalid_org_field_is_named() {
        let zoom = |extra: Value| {
            let mut b = obj(
                json!({"accountId":"A","clientId":"C","clientSecret":"S","webhookSecretToken":"W-0123456789abcdef"}),
            );
            b.extend(obj(extra));
            connection(ProviderKind::Zoom, &b)
                .map(drop)
                .map_err(|e| e.field)
        };
        assert_eq!(zoom(json!({"hostDailyBudget": 0})), Err("hostDailyBudget"));
        assert_eq!(zoom(json!({"defaultUser": "a/b"})), Err("defaultUser"));
        assert_eq!(zoom(json!({"defaultUser": ".."})), Err("defaultUser"));
        let c = connection(
            ProviderKind::Zoom,
            &obj(json!({"accountId":"A","clientId":"C",
            "clientSecret":"S3CRET","webhookSecretToken":"W-0123456789abcdef"})),
        );
        assert!(
            !format!("{c:?}").contains("S3CRET"),
            "Debug shows no secret"
        );
        assert_eq!(zoom(json!({"clientSecret": ""})), Err("clientSecret"));
        // Placeholders and guessable signing keys are refused before anything is checked.
        assert_eq!(
            zoom(json!({"clientSecret": "CHANGE-ME"})),
            Err("clientSecret")
        );
        assert_eq!(
            zoom(json!({"webhookSecretToken": "short-token"})),
            Err("webhookSecretToken")
        );
        assert_eq!(
            zoom(json!({"previousWebhookSecretToken": "change-me-please-0123"})),
            Err("previousWebhookSecretToken")
        );
        let short_key = connection(
            ProviderKind::Jitsi,
            &obj(json!({"domain":"meet.example.org","appId":"a","appSecret":"s".repeat(31)})),
        );
        assert_eq!(short_key.map(drop).map_err(|e| e.field), Err("appSecret"));
        let jitsi = |domain: &str| {
            connection(
                ProviderKind::Jitsi,
                &obj(json!({"domain":domain,"appId":"a","appSecret":"s".repeat(32)})),
            )
            .map(drop)
            .map_err(|e| e.field)
        };
        assert_eq!(jitsi("meet.example.org"), Ok(()));
        for bad in [
            "https://meet.example.org",
            "meet.example.org/x",
            "localhost",
            "a..b",
        ] {
            assert_eq!(jitsi(bad), Err("domain"), "{bad}");
        }
        let zoho = connection(
            ProviderKind::Zoho,
            &obj(json!({"clientId":"c","clientSecret":"s",
            "refreshToken":"r","dataCenter":"mars","zsoid":"1"})),
        );
        assert_eq!(zoho.map_err(|e| e.field), Err("dataCenter"));
        assert_eq!(
            settings(&obj(json!({"provider":"skype"}))).map_err(|e| e.field),
            Err("provider")
        );
        assert_eq!(
            settings(&obj(
                json!({"provider":"zoom","conversationReuseSeconds":5})
            ))
            .map_err(|e| e.field),
            Err("conversationReuseSeconds")
        );
        assert_eq!(host(&obj(json!({}))).map_err(|e| e.field), Err("zoomUser"));
        assert_eq!(
            host(&obj(json!({"zohoPresenter":"12a"}))).map_err(|e| e.field),
            Err("zohoPresenter")
        );
        assert_eq!(
            host(&obj(json!({"zoomUser":"Dr@X.org"}))),
            Ok((Some("Dr@X.org".into()), None))
        );
    }
}
