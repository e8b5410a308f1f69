//! Wiring: configuration and clients become an [`App`], built once per container. Nothing
//! here does I/O: secrets are read on first use, connections made on first call.

use crate::auth::Authenticator;
use crate::clock::{Clock, SystemClock};
use crate::config::{AuthConfig, Config};
use crate::domain::ProviderKind;
use crate::ids::{IdGenerator, RandomIds};
use crate::providers::accounts::{OrgAccountParts, OrgAccounts};
use crate::providers::zoom::webhook::WebhookSecrets;
use crate::providers::{MeetingProvider, Providers};
use crate::secrets::{FromSecret, SecretCache, SecretSource, SecretWriter, SecretsManagerSource};
use crate::service::{Service, Settings};
use crate::store::{DynamoStore, Stores};
use std::sync::Arc;
use std::time::Duration;

/// A ceiling per HTTP exchange; the retry policy sets each attempt's own, shorter timeout.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
const PROVIDER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub struct App {
    pub auth: Authenticator,
    pub service: Service,
    /// The Zoom webhook's secret tokens (`ZOOM_WEBHOOK_SECRET_ID`), when configured.
    pub webhook: Option<SecretCache<WebhookSecrets>>,
}

/// The outside world's clients, built once.
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: Arc<dyn SecretSource>,
    /// Writes orgs' connection secrets (used by `/org/providers` only).
    pub secret_writer: Arc<dyn SecretWriter>,
    pub http: reqwest::Client,
}

impl Clients {
    /// AWS clients from the default chain (`AWS_ENDPOINT_URL` points them at a local
    /// stack) and the provider HTTP client. No network I/O happens here.
    pub async fn from_env() -> Result<Self, String> {
        let aws = crate::tls::aws::loader()?.load().await;
        let secrets = Arc::new(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&aws),
        ));
        Ok(Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            secrets: secrets.clone(),
            secret_writer: secrets,
            http: http_client()?,
        })
    }
}

pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(crate::tls::client_config()?)
        .connect_timeout(PROVIDER_CONNECT_TIMEOUT)
        .timeout(PROVIDER_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// What every part is built from.
struct Parts<'a> {
    config: &'a Config,
    clients: &'a Clients,
    clock: Arc<dyn Clock>,
    settings: &'a Settings,
}

impl Parts<'_> {
    fn secret<T: FromSecret>(&self, id: &str) -> SecretCache<T> {
        SecretCache::new(id, self.clients.secrets.clone(), self.clock.clone())
    }

    /// Every provider whose secret is configured (the configuration check made sure the
    /// primary and fallback ones are among them): each can be named in a request. Built
    /// like an org's, over the deployment's own secrets.
    fn providers(&self, orgs: &OrgAccounts) -> Vec<Arc<dyn MeetingProvider>> {
        let c = self.config;
        [
            (ProviderKind::Zoom, &c.zoom_secret_id),
            (ProviderKind::Jitsi, &c.jitsi_secret_id),
            (ProviderKind::Zoho, &c.zoho_secret_id),
        ]
        .into_iter()
        .filter_map(|(kind, id)| {
            let source = self.clients.secrets.clone();
            id.as_deref()
                .map(|id| orgs.parts().adapter(kind, id, source))
        })
        .collect()
    }
}

impl Parts<'_> {
    /// Orgs' own accounts, built from the same clients and settings.
    fn org_accounts(&self, stores: &Stores) -> OrgAccounts {
        let (c, clients) = (self.config, self.clients);
        OrgAccounts::new(OrgAccountParts {
            prefix: c.org_secrets_prefix.clone(),
            http: clients.http.clone(),
            zoom: c.zoom.clone(),
            zoho: c.zoho.clone(),
            jitsi: c.jitsi,
            secrets: clients.secrets.clone(),
            writer: clients.secret_writer.clone(),
            kms_key_id: c.org_secrets_kms_key_id.clone(),
            tokens: stores.tokens.clone(),
            clock: self.clock.clone(),
            retry: self.settings.provider_retry.clone(),
        })
    }
}

impl App {
    /// What every function's `main` calls once.
    pub async fn from_env() -> Result<Self, String> {
        let config = Config::from_env()?;
        let clients = Clients::from_env().await?;
        Ok(Self::build(
            &config,
            clients,
            Arc::new(SystemClock),
            Arc::new(RandomIds),
            Settings::default(),
        ))
    }

    pub fn build(
        config: &Config,
        clients: Clients,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        mut settings: Settings,
    ) -> Self {
        let store = DynamoStore::new(
            clients.dynamodb.clone(),
            config.table_name.clone(),
            clock.clone(),
        );
        let stores = Stores::of(Arc::new(store));
        settings.conversation_reuse = chrono::Duration::seconds(
            i64::try_from(config.conversation_reuse_seconds).unwrap_or(3600),
        );
        settings.host_daily_budget = config.zoom_host_daily_budget;
        settings.create_budgets = config.create_budgets;
        settings.deployment = config.deployment_id.clone();
        let parts = Parts {
            config,
            clients: &clients,
            clock: clock.clone(),
            settings: &settings,
        };
        let orgs = parts.org_accounts(&stores);
        let providers = Providers::new(
            config.meeting_provider,
            config.fallback_provider,
            parts.providers(&orgs),
        );
        let auth = match &config.auth {
            AuthConfig::Verify { secret_id } => {
                Authenticator::new(parts.secret(secret_id), clock.clone())
            }
            AuthConfig::Authorizer { claims } => Authenticator::trusting_authorizer(claims.clone()),
        };
        let webhook = config
            .zoom_webhook_secret_id
            .as_deref()
            .map(|id| parts.secret(id));
        Self {
            auth,
            webhook,
            service: Service {
                stores,
                providers,
                orgs,
                clock,
                ids,
                settings,
                resolver: Arc::new(crate::notify::ssrf::SystemResolver),
                views: Default::default(),
            },
        }
    }
}
