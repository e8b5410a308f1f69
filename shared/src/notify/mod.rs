//! Events to the platform (DESIGN.md, "Events to the platform"; guarantee 10).
//!
//! ```text
//! meeting item change ──(DynamoDB stream, NEW_AND_OLD_IMAGES)──► route: domain::notice::changes
//!        ▲                                                         │ one job per matching subscription
//!        │ no-show sweep (every minute, notice-index)              ▼
//!   route (scheduled) ── saves `noShowAt` ──┘              SQS delivery queue ──► deliver
//!                                                     (backoff ≥ 24 h, then the dead-letter queue)
//! ```
//!
//! Every event is a change between two versions of a meeting's record, so the table's own
//! change stream is the only source: nothing is written twice, nothing can be committed
//! without its event. The event id (`webhook-id`) is made from the meeting, the version and
//! the event, so a re-read stream record or a retried delivery carries the same id.

pub mod deliver;
pub mod queue;
pub mod route;
pub mod sign;
pub mod ssrf;
pub mod stream;

use crate::domain::notice::Notice;
use crate::domain::{Meeting, rfc3339_millis};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One delivery of one event to one subscription: the SQS message body. The body is made
/// once, at fan-out, so every retry sends the same bytes under the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub org: crate::ids::OrgId,
    pub subscription_id: String,
    /// `webhook-id`: stable across retries.
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The exact JSON body sent.
    pub body: String,
}

/// The delivery body: `{"type","timestamp","data"}`, `data` the meeting resource (never
/// links, passwords or tokens; ids, never names) with `version` and the event's own fields.
pub fn body(after: &Meeting, notice: &Notice, at: chrono::DateTime<chrono::Utc>) -> String {
    let mut data = crate::http::resource::meeting(after);
    data["version"] = json!(after.version);
    if let Value::Object(map) = &mut data {
        for (k, v) in &notice.fields {
            map.insert(k.clone(), v.clone());
        }
    }
    json!({
        "type": notice.kind.as_str(),
        "timestamp": rfc3339_millis(at),
        "data": data,
    })
    .to_string()
}

/// How deliveries are made and retried.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// `ORG_SECRETS_PREFIX`: where subscriptions' signing secrets are.
    pub secrets_prefix: String,
    /// The wait after each failed attempt; one more attempt than waits, then the
    /// dead-letter queue. Standard Webhooks' suggested schedule: about 27.6 h in all.
    pub retry_schedule: Vec<std::time::Duration>,
    /// One POST, connection included.
    pub delivery_timeout: std::time::Duration,
    /// Loopback `http` receivers (the local stack only; never from the environment).
    pub local: ssrf::LocalMode,
}

impl Default for EventSettings {
    fn default() -> Self {
        let s = std::time::Duration::from_secs;
        Self {
            secrets_prefix: crate::config::DEFAULT_ORG_SECRETS_PREFIX.to_owned(),
            retry_schedule: vec![
                s(5),
                s(5 * 60),
                s(30 * 60),
                s(2 * 3600),
                s(5 * 3600),
                s(10 * 3600),
                s(10 * 3600),
            ],
            delivery_timeout: s(5),
            local: ssrf::LocalMode(false),
        }
    }
}

/// What the `event-router` and `event-delivery` functions run on, built once per container
/// (no I/O here: secrets are read on first use).
pub struct EventsApp {
    pub stores: crate::store::Stores,
    pub queue: std::sync::Arc<dyn queue::DeliveryQueue>,
    pub secrets: std::sync::Arc<dyn crate::secrets::SecretSource>,
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Deliveries: no redirects, public addresses only (checked at connect time).
    pub http: reqwest::Client,
    pub settings: EventSettings,
    /// Each subscription's signing secrets, cached as every secret is (at most 300 s).
    signing: deliver::SigningCaches,
}

impl EventsApp {
    pub fn new(
        stores: crate::store::Stores,
        queue: std::sync::Arc<dyn queue::DeliveryQueue>,
        secrets: std::sync::Arc<dyn crate::secrets::SecretSource>,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
        settings: EventSettings,
    ) -> Result<Self, String> {
        let http = deliver::client(&settings)?;
        Ok(Self {
            stores,
            queue,
            secrets,
            clock,
            http,
            settings,
            signing: deliver::SigningCaches::default(),
        })
    }

    /// `TABLE_NAME`, `DELIVERY_QUEUE_URL`, `ORG_SECRETS_PREFIX`; AWS clients from the
    /// default chain.
    pub async fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let table = var("TABLE_NAME").ok_or("TABLE_NAME is required")?;
        let queue_url = var("DELIVERY_QUEUE_URL").ok_or("DELIVERY_QUEUE_URL is required")?;
        let aws = crate::tls::aws::loader()?.load().await;
        let clock: std::sync::Arc<dyn crate::clock::Clock> =
            std::sync::Arc::new(crate::clock::SystemClock);
        let store = crate::store::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            table,
            clock.clone(),
        );
        let settings = EventSettings {
            secrets_prefix: crate::config::org_secrets_prefix(var("ORG_SECRETS_PREFIX"))?,
            ..EventSettings::default()
        };
        Self::new(
            crate::store::Stores::of(std::sync::Arc::new(store)),
            std::sync::Arc::new(queue::SqsQueue::new(
                aws_sdk_sqs::Client::new(&aws),
                queue_url,
            )),
            std::sync::Arc::new(crate::secrets::SecretsManagerSource::new(
                aws_sdk_secretsmanager::Client::new(&aws),
            )),
            clock,
            settings,
        )
    }
}
