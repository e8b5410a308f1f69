//! Wiring: configuration and clients become an [`App`], built once per container.

use crate::auth::Authenticator;
use crate::clock::{Clock, SystemClock};
use crate::config::{AuthConfig, Config};
use crate::ids::{IdGenerator, RandomIds};
use crate::providers::jitsi::JitsiProvider;
use crate::providers::retry::{Sleeper, TokioSleeper};
use crate::providers::zoho::ZohoProvider;
use crate::providers::zoom::ZoomProvider;
use crate::providers::{MeetingProvider, Providers};
use crate::secrets::{SecretCache, SecretSource, SecretsManagerSource};
use crate::service::{Service, Settings};
use crate::store::DynamoStore;
use crate::webhook::WebhookSecrets;
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
    pub http: reqwest::Client,
    /// How provider retries wait (a port: tests record instead of sleeping).
    pub sleeper: Arc<dyn Sleeper>,
}

impl Clients {
    /// AWS clients from the default chain (`AWS_ENDPOINT_URL` points them at a local
    /// stack) and the provider HTTP client. No network I/O happens here.
    pub async fn from_env() -> Result<Self, String> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            secrets: Arc::new(SecretsManagerSource::new(
                aws_sdk_secretsmanager::Client::new(&aws),
            )),
            http: http_client()?,
            sleeper: Arc::new(TokioSleeper),
        })
    }
}

pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(PROVIDER_CONNECT_TIMEOUT)
        .timeout(PROVIDER_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
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
        settings: Settings,
    ) -> Self {
        let mut providers: Vec<Arc<dyn MeetingProvider>> = Vec::new();
        if let Some(zoom_secret) = &config.zoom_secret_id {
            providers.push(Arc::new(ZoomProvider::new(
                clients.http.clone(),
                config.zoom.clone(),
                SecretCache::new(zoom_secret.clone(), clients.secrets.clone(), clock.clone()),
                clock.clone(),
                settings.provider_retry.clone(),
                clients.sleeper.clone(),
            )));
        }
        // Every provider whose secret is configured can be named in a request; the
        // configuration check made sure the primary and fallback ones are among them.
        if let Some(jitsi_secret) = &config.jitsi_secret_id {
            providers.push(Arc::new(JitsiProvider::new(
                SecretCache::new(jitsi_secret.clone(), clients.secrets.clone(), clock.clone()),
                clock.clone(),
            )));
        }
        let store = Arc::new(DynamoStore::new(
            clients.dynamodb,
            config.table_name.clone(),
        ));
        if let Some(zoho_secret) = &config.zoho_secret_id {
            providers.push(Arc::new(ZohoProvider::new(
                clients.http.clone(),
                config.zoho.clone(),
                SecretCache::new(zoho_secret.clone(), clients.secrets.clone(), clock.clone()),
                store.clone(),
                clock.clone(),
                settings.provider_retry.clone(),
                clients.sleeper.clone(),
            )));
        }
        let primary = config.meeting_provider;
        let mut settings = settings;
        settings.conversation_reuse = chrono::Duration::seconds(
            i64::try_from(config.conversation_reuse_seconds).unwrap_or(3600),
        );
        let webhook = config
            .zoom_webhook_secret_id
            .as_ref()
            .map(|id| SecretCache::new(id.clone(), clients.secrets.clone(), clock.clone()));
        Self {
            webhook,
            auth: match &config.auth {
                AuthConfig::Verify { secret_id } => Authenticator::new(
                    SecretCache::new(secret_id.clone(), clients.secrets.clone(), clock.clone()),
                    clock.clone(),
                ),
                AuthConfig::Authorizer => Authenticator::trusting_authorizer(),
            },
            service: Service {
                store,
                providers: Providers::new(primary, config.fallback_provider, providers),
                clock,
                ids,
                settings,
            },
        }
    }
}
