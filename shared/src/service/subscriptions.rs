//! An org's event subscriptions (`/org/webhooks`, service and admin of that org only).
//! The signing secret is generated here, shown once (in the create's and the rotation's
//! answer) and kept in Secrets Manager only, beside the org's provider connections.

use super::org::may_configure;
use super::{Service, ServiceError, ServiceResult};
use crate::domain::subscription::{self, Subscription};
use crate::domain::{Caller, DomainError};
use crate::notify::sign::{SigningSecrets, generate_secret};
use crate::notify::ssrf;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// A subscription just made, with the secret its receiver verifies with (shown once).
#[derive(Clone)]
pub struct Created {
    pub subscription: Subscription,
    pub secret: String,
}

/// A rotation's answer: the new secret, and until when the old one still signs.
#[derive(Clone)]
pub struct Rotated {
    pub id: String,
    pub secret: String,
    pub previous_valid_until: DateTime<Utc>,
}

// Never print a secret, whatever a log line or a panic formats.
impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("subscription", &self.subscription.id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Rotated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotated")
            .field("id", &self.id)
            .field("previous_valid_until", &self.previous_valid_until)
            .finish_non_exhaustive()
    }
}

fn not_found() -> ServiceError {
    DomainError::NotFound("Webhook subscription").into()
}

impl Service {
    fn subscription_secret_name(&self, caller: &Caller, id: &str) -> String {
        subscription::secret_name(&self.orgs.parts().prefix, &caller.org, id)
    }

    /// Checks the URL (syntax, then every address its name resolves to), then stores the
    /// secret first and the subscription after it: a subscription never exists without
    /// its secret, so no delivery is ever made unsigned.
    pub async fn create_subscription(
        &self,
        caller: &Caller,
        (url, events): (String, Vec<String>),
    ) -> ServiceResult<Created> {
        may_configure(caller)?;
        let local = self.settings.events_local_mode;
        let url = ssrf::check_subscription_url(&url, local, self.resolver.as_ref())
            .await
            .map_err(DomainError::from)?;
        let sub = Subscription {
            id: subscription::new_id(),
            org: caller.org.clone(),
            url: url.to_string(),
            events,
            created_at: self.clock.now(),
            disabled_at: None,
        };
        let secret = generate_secret();
        let name = self.subscription_secret_name(caller, &sub.id);
        let parts = self.orgs.parts();
        let value = SigningSecrets::json(&secret, None).to_string();
        parts
            .writer
            .put_secret(&name, &value, parts.kms_key_id.as_deref())
            .await?;
        if let Err(e) = self.stores.subscriptions.put_subscription(&sub).await {
            // Best effort: a secret without its subscription serves nobody.
            if parts.writer.delete_secret(&name).await.is_err() {
                tracing::warn!(subscription = %sub.id, "an unused subscription secret was left");
            }
            return Err(e.into());
        }
        tracing::info!(
            subscription = %sub.id,
            host = url.host_str().unwrap_or_default(),
            "an event subscription was made"
        );
        Ok(Created {
            subscription: sub,
            secret,
        })
    }

    pub async fn subscriptions(&self, caller: &Caller) -> ServiceResult<Vec<Subscription>> {
        may_configure(caller)?;
        Ok(self.stores.subscriptions.subscriptions(&caller.org).await?)
    }

    /// The caller's org's subscription `id`; 404 for any other (another org's too).
    async fn own_subscription(&self, caller: &Caller, id: &str) -> ServiceResult<Subscription> {
        may_configure(caller)?;
        if !subscription::is_id(id) {
            return Err(not_found());
        }
        let found = self
            .stores
            .subscriptions
            .get_subscription(&caller.org, id)
            .await?;
        found.ok_or_else(not_found)
    }

    /// Removes the secret, then the subscription: a failure between the two leaves a
    /// subscription that a repeated DELETE still finds and finishes (the other order would
    /// leave a secret nothing can reach). Deliveries without the secret fail, not go out.
    pub async fn delete_subscription(&self, caller: &Caller, id: &str) -> ServiceResult<()> {
        let sub = self.own_subscription(caller, id).await?;
        let name = self.subscription_secret_name(caller, &sub.id);
        self.orgs.parts().writer.delete_secret(&name).await?;
        if !self
            .stores
            .subscriptions
            .delete_subscription(&caller.org, &sub.id)
            .await?
        {
            return Err(not_found());
        }
        tracing::info!(subscription = %sub.id, "an event subscription was removed");
        Ok(())
    }

    /// A new current secret; the one it replaces keeps signing beside it for
    /// [`ROTATION_OVERLAP`], so receivers can switch without missing a delivery.
    pub async fn rotate_subscription(&self, caller: &Caller, id: &str) -> ServiceResult<Rotated> {
        let sub = self.own_subscription(caller, id).await?;
        let name = self.subscription_secret_name(caller, &sub.id);
        let parts = self.orgs.parts();
        let stored = parts.secrets.fetch(&name).await?;
        let invalid = |problem: &str| crate::secrets::SecretError::Invalid {
            id: name.clone(),
            problem: problem.to_owned(),
        };
        let json: Map<String, Value> =
            serde_json::from_str(&stored).map_err(|_| invalid("it is not a JSON object"))?;
        let old = SigningSecrets::current_str(&json).ok_or_else(|| invalid("it has no current"))?;
        let secret = generate_secret();
        let until = self.clock.now() + ROTATION_OVERLAP;
        let value = SigningSecrets::json(&secret, Some((old, until))).to_string();
        parts
            .writer
            .put_secret(&name, &value, parts.kms_key_id.as_deref())
            .await?;
        tracing::info!(subscription = %sub.id, "an event subscription's secret was rotated");
        Ok(Rotated {
            id: sub.id,
            secret,
            previous_valid_until: until,
        })
    }
}
