//! Secrets: a port, the Secrets Manager adapter, and a per-container cache (guarantee 5:
//! read lazily, cached at most 300 s, read once more after an authentication failure,
//! never logged).

use crate::clock::Clock;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use std::sync::Arc;

pub const SECRET_TTL: Duration = Duration::seconds(300);

/// A secret could not be had. Never carries a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading secret {id} failed")]
    Fetch {
        id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {id}: {problem}")]
    Invalid { id: String, problem: String },
}

#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The current `SecretString` of `id`. Errors carry no secret material.
    async fn fetch(&self, id: &str) -> Result<String, SecretError>;
}

/// AWS Secrets Manager, always reading the `AWSCURRENT` stage explicitly (an unqualified
/// read can return a stale version after a stage move on some emulators).
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn fetch(&self, id: &str) -> Result<String, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .map_err(|e| SecretError::Fetch {
                id: id.to_owned(),
                source: Box::new(e),
            })?;
        out.secret_string.ok_or_else(|| SecretError::Invalid {
            id: id.to_owned(),
            problem: "it has no SecretString".into(),
        })
    }
}

/// Writing secrets: orgs' provider connections only (`/org/providers`).
#[async_trait]
pub trait SecretWriter: Send + Sync {
    /// Creates the secret `name`, or gives it a new current value; encrypted with
    /// `kms_key_id` when given (else the account's default key).
    async fn put_secret(
        &self,
        name: &str,
        value: &str,
        kms_key_id: Option<&str>,
    ) -> Result<(), SecretError>;

    /// Deletes the secret at once (no recovery window: a removed connection must stop
    /// working now). `Ok(false)`: there was none.
    async fn delete_secret(&self, name: &str) -> Result<bool, SecretError>;
}

fn fetch_error(id: &str, e: impl std::error::Error + Send + Sync + 'static) -> SecretError {
    SecretError::Fetch {
        id: id.to_owned(),
        source: Box::new(e),
    }
}

#[async_trait]
impl SecretWriter for SecretsManagerSource {
    async fn put_secret(
        &self,
        name: &str,
        value: &str,
        kms_key_id: Option<&str>,
    ) -> Result<(), SecretError> {
        use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
        let created = self
            .client
            .create_secret()
            .name(name)
            .secret_string(value)
            .set_kms_key_id(kms_key_id.map(str::to_owned))
            .description("telemeet: an org's provider connection")
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(CreateSecretError::ResourceExistsException(_))
                ) =>
            {
                // UpdateSecret, not PutSecretValue: the secret follows the stack's key
                // when the key was set or changed after the secret was first made.
                self.client
                    .update_secret()
                    .secret_id(name)
                    .secret_string(value)
                    .set_kms_key_id(kms_key_id.map(str::to_owned))
                    .send()
                    .await
                    .map_err(|e| fetch_error(name, e))?;
                Ok(())
            }
            Err(e) => Err(fetch_error(name, e)),
        }
    }

    async fn delete_secret(&self, name: &str) -> Result<bool, SecretError> {
        use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
        let deleted = self
            .client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteSecretError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(fetch_error(name, e)),
        }
    }
}

/// One value held in memory: a candidate secret checked before it is stored.
pub struct StaticSecret(pub String);

#[async_trait]
impl SecretSource for StaticSecret {
    async fn fetch(&self, _id: &str) -> Result<String, SecretError> {
        Ok(self.0.clone())
    }
}

/// Secrets in memory, readable and writable: service tests without Secrets Manager.
#[derive(Default)]
pub struct MemorySecrets(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl MemorySecrets {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SecretSource for MemorySecrets {
    async fn fetch(&self, id: &str) -> Result<String, SecretError> {
        self.map()
            .get(id)
            .cloned()
            .ok_or_else(|| SecretError::Invalid {
                id: id.to_owned(),
                problem: "no such secret".into(),
            })
    }
}

#[async_trait]
impl SecretWriter for MemorySecrets {
    async fn put_secret(
        &self,
        name: &str,
        value: &str,
        _kms: Option<&str>,
    ) -> Result<(), SecretError> {
        self.map().insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    async fn delete_secret(&self, name: &str) -> Result<bool, SecretError> {
        Ok(self.map().remove(name).is_some())
    }
}

/// A secret's typed form, parsed once per read. Implementations must not put secret values
/// into their error messages.
pub trait FromSecret: Sized + Send + Sync + 'static {
    fn from_secret(json: &Map<String, Value>) -> Result<Self, String>;
}

/// Reads a required string field of a secret without echoing any value in errors.
pub fn secret_str(json: &Map<String, Value>, field: &str) -> Result<String, String> {
    json.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("field {field} is missing or not a non-empty string"))
}

pub fn secret_opt_str(json: &Map<String, Value>, field: &str) -> Option<String> {
    json.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

struct Cached<T> {
    value: Arc<T>,
    read_at: DateTime<Utc>,
}

/// One secret, read on first use and re-read when older than [`SECRET_TTL`]. Concurrent
/// callers wait for one read instead of each calling Secrets Manager.
pub struct SecretCache<T> {
    id: String,
    source: Arc<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    state: tokio::sync::Mutex<Option<Cached<T>>>,
}

impl<T: FromSecret> SecretCache<T> {
    pub fn new(
        id: impl Into<String>,
        source: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            id: id.into(),
            source,
            clock,
            state: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn get(&self) -> Result<Arc<T>, SecretError> {
        let mut state = self.state.lock().await;
        let now = self.clock.now();
        if let Some(c) = state.as_ref().filter(|c| now - c.read_at < SECRET_TTL) {
            return Ok(c.value.clone());
        }
        let value = self.read().await?;
        *state = Some(Cached {
            value: value.clone(),
            read_at: now,
        });
        Ok(value)
    }

    /// After an authentication failure: read the secret once more (it may have been
    /// rotated), unless the cached copy is younger than `min_age` (so a flood of bad
    /// requests cannot turn into a flood of Secrets Manager calls). Returns the value to
    /// retry with, or `None` when no fresh read was made.
    pub async fn reread_after_auth_failure(
        &self,
        min_age: Duration,
    ) -> Result<Option<Arc<T>>, SecretError> {
        let mut state = self.state.lock().await;
        let now = self.clock.now();
        if state.as_ref().is_some_and(|c| now - c.read_at < min_age) {
            return Ok(None);
        }
        let value = self.read().await?;
        *state = Some(Cached {
            value: value.clone(),
            read_at: now,
        });
        Ok(Some(value))
    }

    async fn read(&self) -> Result<Arc<T>, SecretError> {
        let raw = self.source.fetch(&self.id).await?;
        let invalid = |problem: String| SecretError::Invalid {
            id: self.id.clone(),
            problem,
        };
        // Parse errors are not echoed: they could quote the secret.
        let json: Map<String, Value> =
            serde_json::from_str(&raw).map_err(|_| invalid("it is not a JSON object".into()))?;
        T::from_secret(&json).map(Arc::new).map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);

    #[async_trait]
    impl SecretSource for Counting {
        async fn fetch(&self, _id: &str) -> Result<String, SecretError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            // A real read takes a while: concurrent callers pile up behind it.
            tokio::task::yield_now().await;
            Ok(format!(r#"{{"v":"{n}"}}"#))
        }
    }

    struct V(String);
    impl FromSecret for V {
        fn from_secret(json: &Map<String, Value>) -> Result<Self, String> {
            secret_str(json, "v").map(V)
        }
    }

    #[tokio::test]
    async fn guarantee_5_secrets_are_read_once_under_concurrency_and_reread_after_300_s() {
        let source = Arc::new(Counting(AtomicUsize::new(0)));
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let cache = Arc::new(SecretCache::<V>::new("s", source.clone(), clock.clone()));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let c = cache.clone();
                tokio::spawn(async move { c.get().await.map(|v| v.0.clone()) })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "0");
        }
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
        clock.advance(Duration::seconds(299));
        assert_eq!(cache.get().await.unwrap().0, "0");
        clock.advance(Duration::seconds(2));
        assert_eq!(cache.get().await.unwrap().0, "1");
        assert_eq!(source.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn guarantee_5_an_auth_failure_rereads_once_but_not_in_a_flood() {
        let source = Arc::new(Counting(AtomicUsize::new(0)));
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let cache = SecretCache::<V>::new("s", source.clone(), clock.clone());
        cache.get().await.unwrap();
        let min_age = Duration::seconds(30);
        assert!(
            cache
                .reread_after_auth_failure(min_age)
                .await
                .unwrap()
                .is_none()
        );
        clock.advance(Duration::seconds(31));
        let fresh = cache.reread_after_auth_failure(min_age).await.unwrap();
        assert_eq!(fresh.unwrap().0, "1");
        assert!(
            cache
                .reread_after_auth_failure(min_age)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(source.0.load(Ordering::SeqCst), 2);
    }
}
