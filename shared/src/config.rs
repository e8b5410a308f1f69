//! Configuration from the environment (DESIGN.md, Configuration).

use crate::auth::AuthMode;
use crate::domain::ProviderKind;
use crate::domain::org::CreateBudgets;
use crate::providers::jitsi::JitsiConfig;
use crate::providers::zoho::ZohoConfig;
use crate::providers::zoom::ZoomConfig;

/// How callers are authenticated, with what that needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    Verify { secret_id: String },
    Authorizer { claims: ClaimNames },
}

/// Which of a JWT authorizer's claims name the caller's role and org
/// (`AUTHORIZER_ROLE_CLAIM`, `AUTHORIZER_ORG_CLAIM`; `role` and `org` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub role: String,
    pub org: String,
}

/// A claim name of `[A-Za-z0-9_:.-]{1,64}`. Cognito users can write their own `custom:*`
/// attributes unless the app client forbids it, so such a claim would let a patient name
/// themselves `service` of any org: refused unless `AUTHORIZER_ALLOW_CUSTOM_CLAIMS=true`
/// says the app client's write attributes exclude it.
fn claim_name(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    default: &str,
) -> Result<String, String> {
    let name = get(var).unwrap_or_else(|| default.to_owned());
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_:.-".contains(c));
    if !valid {
        return Err(format!(
            "{var} must be a claim name (1-64 of A-Z a-z 0-9 _ : . -)"
        ));
    }
    let custom_allowed = get("AUTHORIZER_ALLOW_CUSTOM_CLAIMS").is_some_and(|v| v == "true");
    if name.starts_with("custom:") && !custom_allowed {
        return Err(format!(
            "{var} names a Cognito custom attribute, which users can write themselves: use a claim a pre-token-generation trigger sets, or set AUTHORIZER_ALLOW_CUSTOM_CLAIMS=true once the app client cannot write it"
        ));
    }
    Ok(name)
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    /// `AUTH_MODE`: verify bearer tokens with `AUTH_SECRET_ID`'s keys, or trust API
    /// Gateway's JWT authorizer.
    pub auth: AuthConfig,
    pub zoom_secret_id: Option<String>,
    pub jitsi_secret_id: Option<String>,
    pub zoho_secret_id: Option<String>,
    pub zoom_webhook_secret_id: Option<String>,
    pub meeting_provider: ProviderKind,
    pub fallback_provider: Option<ProviderKind>,
    pub zoom: ZoomConfig,
    /// Local-stack host overrides; production hosts come from the secret's data centre.
    pub zoho: ZohoConfig,
    pub jitsi: JitsiConfig,
    pub conversation_reuse_seconds: u64,
    /// `ORG_SECRETS_PREFIX`: where orgs' provider connections live in Secrets Manager.
    pub org_secrets_prefix: String,
    /// `ORG_SECRETS_KMS_KEY_ID`: the key they are encrypted with (else the account's default).
    pub org_secrets_kms_key_id: Option<String>,
    pub zoom_host_daily_budget: u32,
    pub create_budgets: CreateBudgets,
    /// `DEPLOYMENT_ID`: names this deployment in provider markers (the template passes the
    /// stack name).
    pub deployment_id: String,
}

/// `JITSI_JOIN_LEAD_SECONDS`: 0 to a day.
fn jitsi(get: &impl Fn(&str) -> Option<String>) -> Result<JitsiConfig, String> {
    let Some(v) = get("JITSI_JOIN_LEAD_SECONDS") else {
        return Ok(JitsiConfig::default());
    };
    let join_lead = v
        .parse::<i64>()
        .ok()
        .filter(|s| (0..=86_400).contains(s))
        .map(chrono::Duration::seconds)
        .ok_or("JITSI_JOIN_LEAD_SECONDS must be 0 to 86400")?;
    Ok(JitsiConfig { join_lead })
}

/// The deployment id when none is configured: the local stack's.
pub const LOCAL_DEPLOYMENT: &str = "local";

/// 1–128 of `[A-Za-z0-9._-]` (a stack name fits): it is written into every provider meeting's marker, whose
/// parts a `:` separates.
fn deployment_id(value: Option<String>) -> Result<String, String> {
    let Some(v) = value else {
        return Ok(LOCAL_DEPLOYMENT.to_owned());
    };
    let ok = (1..=128).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(v)
    } else {
        Err("DEPLOYMENT_ID must be 1-128 of A-Z a-z 0-9 . _ -".into())
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn provider(name: &str, value: &str) -> Result<ProviderKind, String> {
    value
        .parse()
        .map_err(|_| format!("{name} must be zoom, jitsi or zoho"))
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(var)
    }

    /// Reads configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let meeting_provider = match get("MEETING_PROVIDER") {
            Some(v) => provider("MEETING_PROVIDER", &v)?,
            None => ProviderKind::Zoom,
        };
        // "none" is how the template says "no fallback".
        let fallback_provider = get("FALLBACK_PROVIDER")
            .filter(|v| v != "none")
            .map(|v| provider("FALLBACK_PROVIDER", &v))
            .transpose()?;
        let deployment = deployment_id(get("DEPLOYMENT_ID"))?;
        let config = Self {
            table_name: get("TABLE_NAME").ok_or("TABLE_NAME is required")?,
            auth: auth(&get)?,
            zoom_secret_id: get("ZOOM_SECRET_ID"),
            jitsi_secret_id: get("JITSI_SECRET_ID"),
            zoho_secret_id: get("ZOHO_SECRET_ID"),
            zoom_webhook_secret_id: get("ZOOM_WEBHOOK_SECRET_ID"),
            meeting_provider,
            fallback_provider,
            zoom: ZoomConfig {
                api_base_url: get("ZOOM_API_BASE_URL")
                    .unwrap_or_else(|| "https://api.zoom.us/v2".into()),
                oauth_token_url: get("ZOOM_OAUTH_TOKEN_URL")
                    .unwrap_or_else(|| "https://zoom.us/oauth/token".into()),
                deployment: deployment.clone(),
            },
            zoho: ZohoConfig {
                accounts_url: get("ZOHO_ACCOUNTS_URL"),
                api_base_url: get("ZOHO_API_BASE_URL"),
                deployment: deployment.clone(),
            },
            jitsi: jitsi(&get)?,
            conversation_reuse_seconds: match get("CONVERSATION_REUSE_SECONDS") {
                Some(v) => v
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or("CONVERSATION_REUSE_SECONDS must be a positive whole number")?,
                None => 3600,
            },
            org_secrets_prefix: org_secrets_prefix(get("ORG_SECRETS_PREFIX"))?,
            org_secrets_kms_key_id: get("ORG_SECRETS_KMS_KEY_ID"),
            zoom_host_daily_budget: match get("ZOOM_HOST_DAILY_BUDGET") {
                Some(v) => v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("ZOOM_HOST_DAILY_BUDGET must be a positive whole number")?,
                None => 100,
            },
            create_budgets: get("CREATE_BUDGETS")
                .map(|v| v.parse())
                .transpose()?
                .unwrap_or_default(),
            deployment_id: deployment,
        };
        config.check_providers()?;
        Ok(config)
    }

    /// The primary and the fallback provider each need their secret.
    fn check_providers(&self) -> Result<(), String> {
        for kind in std::iter::once(self.meeting_provider).chain(self.fallback_provider) {
            let (secret, name) = match kind {
                ProviderKind::Zoom => (
                    &self.zoom_secret_id,
                    "ZOOM_SECRET_ID is required when Zoom is used",
                ),
                ProviderKind::Jitsi => (
                    &self.jitsi_secret_id,
                    "JITSI_SECRET_ID is required when Jitsi is used",
                ),
                ProviderKind::Zoho => (
                    &self.zoho_secret_id,
                    "ZOHO_SECRET_ID is required when Zoho is used",
                ),
            };
            if secret.is_none() {
                return Err(name.into());
            }
        }
        Ok(())
    }
}

pub const DEFAULT_ORG_SECRETS_PREFIX: &str = "telemeet/orgs/";

/// The prefix of orgs' secrets: Secrets Manager's name alphabet, ending in `/` so one
/// deployment's names never run into another's.
pub fn org_secrets_prefix(value: Option<String>) -> Result<String, String> {
    let prefix = value.unwrap_or_else(|| DEFAULT_ORG_SECRETS_PREFIX.to_owned());
    let ok = prefix.ends_with('/')
        && prefix.len() <= 256
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if ok {
        Ok(prefix)
    } else {
        Err("ORG_SECRETS_PREFIX must be letters, digits and /_+=.@- ending in /".into())
    }
}

/// `AUTH_MODE` and what it needs.
fn auth(get: &impl Fn(&str) -> Option<String>) -> Result<AuthConfig, String> {
    let mode = match get("AUTH_MODE") {
        Some(v) => v
            .parse()
            .map_err(|()| "AUTH_MODE must be verify or authorizer".to_owned())?,
        None => AuthMode::Verify,
    };
    Ok(match mode {
        AuthMode::Verify => AuthConfig::Verify {
            secret_id: get("AUTH_SECRET_ID").ok_or("AUTH_SECRET_ID is required")?,
        },
        AuthMode::Authorizer => AuthConfig::Authorizer {
            claims: ClaimNames {
                role: claim_name(get, "AUTHORIZER_ROLE_CLAIM", "role")?,
                org: claim_name(get, "AUTHORIZER_ORG_CLAIM", "org")?,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = config(&[
            ("TABLE_NAME", "t"),
            ("AUTH_SECRET_ID", "a"),
            ("ZOOM_SECRET_ID", "z"),
        ])
        .unwrap();
        assert_eq!(c.meeting_provider, ProviderKind::Zoom);
        assert_eq!(c.zoom.api_base_url, "https://api.zoom.us/v2");
        assert_eq!(c.zoom.oauth_token_url, "https://zoom.us/oauth/token");
        assert_eq!(c.conversation_reuse_seconds, 3600);
        assert!(c.fallback_provider.is_none());
        assert_eq!(c.deployment_id, "local");
    }

    #[test]
    fn each_provider_in_use_needs_its_secret_and_none_means_no_fallback() {
        let base = [
            ("TABLE_NAME", "t"),
            ("AUTH_SECRET_ID", "a"),
            ("ZOOM_SECRET_ID", "z"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            config(&base.iter().chain(extra).copied().collect::<Vec<_>>())
        };
        assert!(
            with(&[("FALLBACK_PROVIDER", "jitsi")])
                .unwrap_err()
                .contains("JITSI_SECRET_ID")
        );
        let c = with(&[("FALLBACK_PROVIDER", "jitsi"), ("JITSI_SECRET_ID", "j")]).unwrap();
        assert_eq!(c.fallback_provider, Some(ProviderKind::Jitsi));
        assert_eq!(
            with(&[("FALLBACK_PROVIDER", "none")])
                .unwrap()
                .fallback_provider,
            None
        );
        assert!(
            with(&[("MEETING_PROVIDER", "zoho")])
                .unwrap_err()
                .contains("ZOHO_SECRET_ID")
        );
        let c = with(&[
            ("MEETING_PROVIDER", "zoho"),
            ("ZOHO_SECRET_ID", "zh"),
            ("FALLBACK_PROVIDER", "zoom"),
        ])
        .unwrap();
        assert_eq!(c.meeting_provider, ProviderKind::Zoho);
        assert_eq!(c.fallback_provider, Some(ProviderKind::Zoom));
        assert!(c.zoho.accounts_url.is_none() && c.zoho.api_base_url.is_none());
    }

    #[test]
    fn authorizer_mode_needs_no_auth_secret() {
        let c = config(&[
            ("TABLE_NAME", "t"),
            ("AUTH_MODE", "authorizer"),
            ("ZOOM_SECRET_ID", "z"),
        ])
        .unwrap();
        let defaults = ClaimNames {
            role: "role".into(),
            org: "org".into(),
        };
        assert_eq!(c.auth, AuthConfig::Authorizer { claims: defaults });
        let base = [
            ("TABLE_NAME", "t"),
            ("AUTH_MODE", "authorizer"),
            ("ZOOM_SECRET_ID", "z"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            config(&pairs)
        };
        // A user-writable Cognito attribute is refused unless explicitly allowed.
        assert!(
            with(&[("AUTHORIZER_ROLE_CLAIM", "custom:role")])
                .unwrap_err()
                .contains("AUTHORIZER_ROLE_CLAIM")
        );
        assert!(
            with(&[("AUTHORIZER_ORG_CLAIM", "custom:org")])
                .unwrap_err()
                .contains("AUTHORIZER_ORG_CLAIM")
        );
        let allowed = with(&[
            ("AUTHORIZER_ROLE_CLAIM", "custom:role"),
            ("AUTHORIZER_ALLOW_CUSTOM_CLAIMS", "true"),
        ])
        .unwrap();
        assert!(
            matches!(allowed.auth, AuthConfig::Authorizer { claims } if claims.role == "custom:role")
        );
        assert!(with(&[("AUTHORIZER_ORG_CLAIM", "org claim")]).is_err());
        assert!(
            config(&[("TABLE_NAME", "t"), ("AUTH_MODE", "cognito")])
                .unwrap_err()
                .contains("AUTH_MODE")
        );
    }

    #[test]
    fn missing_or_bad_settings_are_named() {
        assert_eq!(config(&[]).unwrap_err(), "TABLE_NAME is required");
        assert_eq!(
            config(&[("TABLE_NAME", "t")]).unwrap_err(),
            "AUTH_SECRET_ID is required"
        );
        assert!(
            config(&[("TABLE_NAME", "t"), ("AUTH_SECRET_ID", "a")])
                .unwrap_err()
                .contains("ZOOM_SECRET_ID")
        );
        assert!(
            config(&[
                ("TABLE_NAME", "t"),
                ("AUTH_SECRET_ID", "a"),
                ("ZOOM_SECRET_ID", "z"),
                ("MEETING_PROVIDER", "skype")
            ])
            .unwrap_err()
            .contains("MEETING_PROVIDER")
        );
        let base = [
            ("TABLE_NAME", "t"),
            ("AUTH_SECRET_ID", "a"),
            ("ZOOM_SECRET_ID", "z"),
        ];
        // A `:` would make markers ambiguous.
        for bad in ["prod:eu", "a b", &"x".repeat(129)] {
            let mut pairs = base.to_vec();
            pairs.push(("DEPLOYMENT_ID", bad));
            assert!(
                config(&pairs).unwrap_err().contains("DEPLOYMENT_ID"),
                "{bad}"
            );
        }
        let mut pairs = base.to_vec();
        pairs.push(("DEPLOYMENT_ID", "telemeet-prod"));
        let c = config(&pairs).unwrap();
        assert_eq!(
            (c.zoom.deployment.as_str(), c.zoho.deployment.as_str()),
            ("telemeet-prod", "telemeet-prod")
        );
    }
}
