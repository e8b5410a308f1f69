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
            .description("telemeet: an org's provider connection or event signing secret")
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

/// A webhook secret token shorter than this is refused at use (a guessable one signs
/// anyone's webhooks). Zoom generates 22-character tokens, so 32 would lock out every real
/// Zoom app; 16 refuses placeholders and made-up short values.
pub const MIN_WEBHOOK_TOKEN_BYTES: usize = 16;
/// An HS256 key shorter than 256 bits is refused (RFC 7518 section 3.2).
pub const MIN_HS256_KEY_BYTES: usize = 32;
/// The placeholder the stack's secrets ship with until an operator sets them.
pub const PLACEHOLDER: &str = "CHANGE-ME";
/// After a read failed (Secrets Manager down, or an unusable value), callers get the same
/// failure for this long instead of each calling Secrets Manager again.
pub const FAILURE_TTL: Duration = Duration::seconds(5);
/// A re-read after a refusal (a caller token, a provider's token grant) is made only when
/// the cached copy is older than this: a flood of refusals is not a flood of reads.
pub const REREAD_MIN_AGE: Duration = Duration::seconds(30);

/// A required key of at least `min` bytes: shorter ones are guessable.
pub fn secret_key(json: &Map<String, Value>, field: &str, min: usize) -> Result<String, String> {
    let v = secret_str(json, field)?;
    if v.len() < min {
        return Err(format!("field {field} is shorter than {min} bytes"));
    }
    Ok(v)
}

/// Whether any string in the secret still holds the stack's placeholder.
fn has_placeholder(v: &Value) -> bool {
    match v {
        Value::String(s) => s.to_ascii_uppercase().contains(PLACEHOLDER),
        Value::Array(a) => a.iter().any(has_placeholder),
        Value::Object(o) => o.values().any(has_placeholder),
        _ => false,
    }
}

struct Cached<T> {
    value: Arc<T>,
    read_at: DateTime<Utc>,
}

/// A failed read, replayed to callers for [`FAILURE_TTL`] (its text never holds a value).
struct Failure {
    at: DateTime<Utc>,
    invalid: bool,
    problem: String,
}

struct State<T> {
    cached: Option<Cached<T>>,
    failed: Option<Failure>,
}

/// The replayed failure's error (the cause text only: a source error cannot be cloned).
#[derive(Debug, thiserror::Error)]
#[error("{0} (cached for a few seconds)")]
struct Replayed(String);

/// One secret, read on first use and re-read when older than [`SECRET_TTL`]. Concurrent
/// callers wait for one read instead of each calling Secrets Manager; a failed read is
/// answered from memory for [`FAILURE_TTL`].
pub struct SecretCache<T> {
    id: String,
    source: Arc<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    state: tokio::sync::Mutex<State<T>>,
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
            state: tokio::sync::Mutex::new(State {
                cached: None,
                failed: None,
            }),
        }
    }

    /// The secret's id (its name or ARN): which connection this is.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub async fn get(&self) -> Result<Arc<T>, SecretError> {
        let mut state = self.state.lock().await;
        let now = self.clock.now();
        if let Some(c) = state
            .cached
            .as_ref()
            .filter(|c| now - c.read_at < SECRET_TTL)
        {
            return Ok(c.value.clone());
        }
        self.read_into(&mut state, now).await
    }

    /// The value in memory, if it is fresh and no read is under way: what
    /// [`Self::get`] would answer without a call.
    pub fn peek(&self) -> Option<Arc<T>> {
        let state = self.state.try_lock().ok()?;
        let now = self.clock.now();
        state
            .cached
            .as_ref()
            .filter(|c| now - c.read_at < SECRET_TTL)
            .map(|c| c.value.clone())
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
        if state
            .cached
            .as_ref()
            .is_some_and(|c| now - c.read_at < min_age)
        {
            return Ok(None);
        }
        self.read_into(&mut state, now).await.map(Some)
    }

    /// A read (or the recent failure again), remembered in `state`.
    async fn read_into(
        &self,
        state: &mut State<T>,
        now: DateTime<Utc>,
    ) -> Result<Arc<T>, SecretError> {
        if let Some(f) = state.failed.as_ref().filter(|f| now - f.at < FAILURE_TTL) {
            return Err(self.replay(f));
        }
        match self.read().await {
            Ok(value) => {
                state.cached = Some(Cached {
                    value: value.clone(),
                    read_at: now,
                });
                state.failed = None;
                Ok(value)
            }
            Err(e) => {
                let (invalid, problem) = match &e {
                    SecretError::Invalid { problem, .. } => (true, problem.clone()),
                    SecretError::Fetch { .. } => (false, crate::telemetry::cause(&e)),
                };
                state.failed = Some(Failure {
                    at: now,
                    invalid,
                    problem,
                });
                Err(e)
            }
        }
    }

    fn replay(&self, f: &Failure) -> SecretError {
        let id = self.id.clone();
        if f.invalid {
            SecretError::Invalid {
                id,
                problem: f.problem.clone(),
            }
        } else {
            SecretError::Fetch {
                id,
                source: Box::new(Replayed(f.problem.clone())),
            }
        }
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
        // Never silently accepted: a default deploy's placeholder would be usable by anyone.
        if json.values().any(has_placeholder) {
            tracing::error!(secret = %self.id, "a secret still holds the stack's placeholder value: set its real values");
            return Err(invalid(
                "it still holds the stack's placeholder value".into(),
            ));
        }
        T::from_secret(&json).map(Arc::new).map_err(|problem| {
            tracing::error!(secret = %self.id, problem = %problem, "a secret is unusable");
            invalid(problem)
        })
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

    /// A source answering one fixed secret, or failing, counting its reads.
    struct Fixed {
        value: Option<&'static str>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl SecretSource for Fixed {
        async fn fetch(&self, id: &str) -> Result<String, SecretError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.value
                .map(str::to_owned)
                .ok_or_else(|| SecretError::Fetch {
                    id: id.to_owned(),
                    source: "Secrets Manager is down".into(),
                })
        }
    }

    fn cache_of(value: Option<&'static str>) -> (Arc<Fixed>, Arc<ManualClock>, SecretCache<V>) {
        let source = Arc::new(Fixed {
            value,
            reads: AtomicUsize::new(0),
        });
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let cache = SecretCache::<V>::new("s", source.clone(), clock.clone());
        (source, clock, cache)
    }

    #[tokio::test]
    async fn a_placeholder_anywhere_in_a_secret_is_refused_never_used() {
        for raw in [
            r#"{"v":"CHANGE-ME"}"#,
            r#"{"v":"ok","other":"prefix-change-me"}"#,
            r#"{"v":"ok","nested":{"list":["CHANGE-ME"]}}"#,
        ] {
            let (_, _, cache) = cache_of(Some(raw));
            let err = cache.get().await.map(drop).unwrap_err();
            assert!(
                matches!(&err, SecretError::Invalid { problem, .. } if problem.contains("placeholder")),
                "{raw}: {err}"
            );
        }
        let short = secret_key(
            &serde_json::from_str(r#"{"k":"0123456789"}"#).unwrap(),
            "k",
            MIN_HS256_KEY_BYTES,
        );
        assert_eq!(short.unwrap_err(), "field k is shorter than 32 bytes");
    }

    #[tokio::test]
    async fn guarantee_5_a_failed_read_is_answered_from_memory_for_5_s_then_tried_again() {
        for value in [None, Some(r#"{"v":"CHANGE-ME"}"#)] {
            let (source, clock, cache) = cache_of(value);
            for _ in 0..10 {
                assert!(cache.get().await.is_err());
                assert!(
                    cache
                        .reread_after_auth_failure(REREAD_MIN_AGE)
                        .await
                        .is_err()
                );
            }
            assert_eq!(source.reads.load(Ordering::SeqCst), 1, "{value:?}");
            clock.advance(Duration::seconds(4));
            let again = cache.get().await.map(drop).unwrap_err();
            assert_eq!(source.reads.load(Ordering::SeqCst), 1);
            // The same kind of failure, replayed: an unusable value stays "invalid".
            assert_eq!(
                matches!(again, SecretError::Invalid { .. }),
                value.is_some()
            );
            clock.advance(Duration::seconds(2));
            assert!(cache.get().await.is_err());
            assert_eq!(source.reads.load(Ordering::SeqCst), 2);
        }
    }
}
