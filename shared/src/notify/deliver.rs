//! The `event-delivery` function: one signed POST per job (Standard Webhooks headers), all
//! of a batch at once, each bounded by its own timeout, so one slow or dead receiver never
//! holds up another's deliveries. A 2xx ends a delivery; 410 Gone disables the
//! subscription; anything else (a timeout included) comes back after the next wait of the
//! schedule, and after the last attempt the queue moves it to the dead-letter queue.

use super::sign::SigningSecrets;
use super::{DeliveryJob, EventSettings, EventsApp};
use crate::secrets::SecretCache;
use crate::telemetry::cause;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The delivery HTTP client: no redirects (a receiver cannot bounce a delivery inward),
/// public addresses only unless local (checked when connecting, so DNS changes after the
/// subscription was checked change nothing).
pub fn client(settings: &EventSettings) -> Result<reqwest::Client, String> {
    let resolver =
        super::ssrf::PublicResolver::new(settings.local, Arc::new(super::ssrf::SystemResolver));
    reqwest::Client::builder()
        .tls_backend_preconfigured(crate::tls::client_config()?)
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the receiver's name itself, past the guard.
        .no_proxy()
        .timeout(settings.delivery_timeout)
        .connect_timeout(settings.delivery_timeout)
        .dns_resolver(Arc::new(resolver))
        .user_agent("telemeet-webhooks/1")
        .build()
        .map_err(|e| format!("delivery HTTP client: {e}"))
}

/// One cache per subscription secret, made on first use.
#[derive(Default)]
pub struct SigningCaches(Mutex<HashMap<String, Arc<SecretCache<SigningSecrets>>>>);

impl SigningCaches {
    fn of(&self, app: &EventsApp, name: String) -> Arc<SecretCache<SigningSecrets>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.clone())
            .or_insert_with(|| {
                Arc::new(SecretCache::new(
                    name,
                    app.secrets.clone(),
                    app.clock.clone(),
                ))
            })
            .clone()
    }
}

#[derive(Debug, Deserialize)]
struct SqsBatch {
    #[serde(rename = "Records", default)]
    records: Vec<SqsRecord>,
}

#[derive(Debug, Deserialize)]
struct SqsRecord {
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(rename = "receiptHandle")]
    receipt_handle: String,
    body: String,
    #[serde(default)]
    attributes: HashMap<String, String>,
}

impl SqsRecord {
    /// 1 on the first attempt.
    fn attempt(&self) -> usize {
        self.attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// 410 Gone: the subscription is disabled.
    Gone,
    /// No such subscription (deleted, disabled) any more: nothing to do.
    Dropped,
    Failed,
}

/// An SQS batch; answers `{"batchItemFailures":[…]}` with the messages to come back.
pub async fn handle(app: &EventsApp, payload: &Value) -> Result<Value, String> {
    let batch: SqsBatch =
        serde_json::from_value(payload.clone()).map_err(|e| format!("SQS batch: {e}"))?;
    let results =
        futures_util::future::join_all(batch.records.iter().map(|r| settle(app, r))).await;
    let failed: Vec<Value> = batch
        .records
        .iter()
        .zip(results)
        .filter(|(_, ok)| !ok)
        .map(|(r, _)| json!({ "itemIdentifier": r.message_id }))
        .collect();
    Ok(json!({ "batchItemFailures": failed }))
}

/// Delivers one message; `false` when it must come back (after its wait, set here).
async fn settle(app: &EventsApp, record: &SqsRecord) -> bool {
    let Ok(job) = serde_json::from_str::<DeliveryJob>(&record.body) else {
        tracing::error!(messageId = %record.message_id, "a delivery message is malformed; it goes to the dead-letter queue");
        return false;
    };
    let outcome = deliver(app, &job).await;
    let attempt = record.attempt();
    tracing::info!(webhookId = %job.webhook_id, subscriptionId = %job.subscription_id, attempt, outcome = ?outcome, "delivery");
    if outcome != Outcome::Failed {
        crate::metrics::count("EventsDelivered", &[("outcome", outcome_name(outcome))]);
        return true;
    }
    let wait = app.settings.retry_schedule.get(attempt.saturating_sub(1));
    if wait.is_none() {
        // The last attempt failed: back at once, and the queue's redrive policy moves it
        // to the dead-letter queue on that receive.
        tracing::error!(webhookId = %job.webhook_id, subscriptionId = %job.subscription_id, attempt, "delivery failed for good; to the dead-letter queue");
        crate::metrics::count("EventsDeadLettered", &[]);
    }
    let wait = wait.copied().unwrap_or(Duration::ZERO);
    if let Err(e) = app.queue.retry_after(&record.receipt_handle, wait).await {
        // It comes back after the queue's own visibility timeout instead.
        tracing::warn!(cause = %cause(&e), "could not set a delivery's next attempt");
    }
    false
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Delivered => "delivered",
        Outcome::Gone => "gone",
        Outcome::Dropped => "dropped",
        Outcome::Failed => "failed",
    }
}

/// One attempt of one job.
pub async fn deliver(app: &EventsApp, job: &DeliveryJob) -> Outcome {
    let sub = match app
        .stores
        .subscriptions
        .get_subscription(&job.org, &job.subscription_id)
        .await
    {
        Ok(Some(s)) if s.disabled_at.is_none() => s,
        Ok(_) => return Outcome::Dropped,
        Err(e) => {
            tracing::error!(cause = %cause(&e), "could not read a subscription");
            return Outcome::Failed;
        }
    };
    if super::ssrf::check_url(&sub.url, app.settings.local).is_err() {
        // An address literal never reaches the resolver: judged here, at every delivery.
        tracing::error!(subscriptionId = %sub.id, "a subscription's URL names a non-public address; not delivered");
        return Outcome::Failed;
    }
    let name = sub.secret_name(&app.settings.secrets_prefix);
    let secrets = match app.signing.of(app, name).get().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(cause = %cause(&e), subscriptionId = %sub.id, "no signing secret for a subscription");
            return Outcome::Failed;
        }
    };
    let now = app.clock.now();
    let ts = now.timestamp();
    let signature = secrets.header(&job.webhook_id, ts, &job.body, now);
    let sent = app
        .http
        .post(&sub.url)
        .header("content-type", "application/json")
        .header("webhook-id", &job.webhook_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(job.body.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Outcome::Delivered,
        Ok(r) if r.status() == reqwest::StatusCode::GONE => {
            disable(app, &sub).await;
            Outcome::Gone
        }
        Ok(r) => {
            tracing::warn!(subscriptionId = %sub.id, status = r.status().as_u16(), "a receiver refused a delivery");
            Outcome::Failed
        }
        Err(e) => {
            tracing::warn!(subscriptionId = %sub.id, timeout = e.is_timeout(), connect = e.is_connect(), "a delivery did not reach its receiver");
            Outcome::Failed
        }
    }
}

async fn disable(app: &EventsApp, sub: &crate::domain::subscription::Subscription) {
    let at = app.clock.now();
    match app
        .stores
        .subscriptions
        .disable_subscription(&sub.org, &sub.id, at)
        .await
    {
        Ok(()) => {
            tracing::warn!(subscriptionId = %sub.id, "receiver answered 410 Gone; subscription disabled")
        }
        Err(e) => tracing::error!(cause = %cause(&e), "could not disable a gone subscription"),
    }
}
