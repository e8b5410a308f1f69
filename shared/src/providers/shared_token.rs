//! An OAuth access token shared by every container through the table.
//!
//! Zoho grants only 10 access tokens per refresh token per 10 minutes, while Lambda may run
//! many containers: each caching its own token would exhaust that in one busy minute. So
//! the token lives in the table (sealed with a key derived from the client secret, so the
//! table alone does not yield it), one container at a time refreshes it under a
//! conditional lock, and a budget below Zoho's limit is counted in the same record.

use super::ProviderError;
pub use super::api::IssuedToken;
use crate::clock::{Clock, Wait};
use crate::store::{SharedTokenRecord, TokenStore};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// A token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::seconds(60);
/// How long a refreshing container holds the lock; its token call must end well before.
const LOCK_LEASE: Duration = Duration::seconds(15);
/// How often a container waiting for another's refresh looks again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// At most `max` refreshes are started per `window`.
#[derive(Debug, Clone, Copy)]
pub struct RefreshBudget {
    pub max: u32,
    pub window: Duration,
}

impl RefreshBudget {
    /// Zoho: 10 tokens per refresh token per 10 minutes. Two are left for people and tools
    /// that use the same refresh token outside telemeet.
    pub const ZOHO: Self = Self {
        max: 8,
        window: Duration::minutes(10),
    };
}

/// The key that seals a token in the table, derived from a secret the table does not hold.
pub struct SealKey([u8; 32]);

impl SealKey {
    pub fn derive(secret: &str, purpose: &str) -> Self {
        let mut key = [0u8; 32];
        if let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
            mac.update(purpose.as_bytes());
            key.copy_from_slice(&mac.finalize().into_bytes());
        }
        Self(key)
    }

    fn aead(&self) -> Option<LessSafeKey> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .ok()
            .map(LessSafeKey::new)
    }

    /// `nonce ‖ ciphertext ‖ tag`, base64; the record key is bound in as associated data.
    pub fn seal(&self, record_key: &str, token: &str) -> Option<String> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut data = token.as_bytes().to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(record_key.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&data);
        Some(B64.encode(out))
    }

    /// `None` when the seal does not open (another key: the client secret was rotated).
    pub fn open(&self, record_key: &str, sealed: &str) -> Option<String> {
        let bytes = B64.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let mut data = rest.to_vec();
        let plain = self
            .aead()?
            .open_in_place(
                Nonce::try_assume_unique_for_key(nonce).ok()?,
                Aad::from(record_key.as_bytes()),
                &mut data,
            )
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

struct Cached {
    value: String,
    renew_at: DateTime<Utc>,
}

/// One container's view of a shared token.
pub struct SharedToken {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    budget: RefreshBudget,
    local: tokio::sync::Mutex<Option<Cached>>,
}

/// What the table said about a token.
enum Found {
    /// A token to use.
    Token(String),
    /// Another container is refreshing: look again shortly.
    Locked,
    /// We hold the refresh lock (at this version): fetch a new token.
    Ours(i64),
    /// Someone else moved first: read again.
    Raced,
}

impl SharedToken {
    pub fn new(store: Arc<dyn TokenStore>, clock: Arc<dyn Clock>, budget: RefreshBudget) -> Self {
        Self {
            store,
            clock,
            budget,
            local: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid token: this container's copy, else the table's, else a new one from `fetch`
    /// (one container at a time, within the budget), and whether it is a new one. `stale` is
    /// a token the provider just refused: it is never handed out again.
    pub async fn get<F, Fut>(
        &self,
        record_key: &str,
        seal: &SealKey,
        stale: Option<&str>,
        deadline: Instant,
        fetch: F,
    ) -> Result<(String, bool), ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<IssuedToken, ProviderError>>,
    {
        // Holding the container's lock throughout: its other requests wait for this answer.
        let mut local = self.local.lock().await;
        if let Some(c) = local.as_ref()
            && self.clock.now() < c.renew_at
            && stale != Some(c.value.as_str())
        {
            return Ok((c.value.clone(), false));
        }
        loop {
            let (found, renew_at) = self.look_up(record_key, seal, stale).await?;
            match found {
                Found::Token(value) => {
                    *local = Some(Cached {
                        value: value.clone(),
                        renew_at,
                    });
                    return Ok((value, false));
                }
                Found::Locked => self.wait_for_refresh(deadline).await?,
                Found::Raced => {}
                Found::Ours(locked) => {
                    let issued = self.refresh(record_key, seal, locked, &fetch).await?;
                    *local = Some(Cached {
                        value: issued.value.clone(),
                        renew_at: issued.expires_at - TOKEN_MARGIN,
                    });
                    return Ok((issued.value, true));
                }
            }
        }
    }

    /// One look at the table: its token, or its lock, or the lock taken by us (within the
    /// budget), and when a token read now should be renewed.
    async fn look_up(
        &self,
        record_key: &str,
        seal: &SealKey,
        stale: Option<&str>,
    ) -> Result<(Found, DateTime<Utc>), ProviderError> {
        let now = self.clock.now();
        let record = self
            .store
            .read_token(record_key)
            .await
            .map_err(ProviderError::TokenStore)?;
        let renew_at = record.expires_at.unwrap_or(now) - TOKEN_MARGIN;
        if let Some(value) = self.usable(&record, record_key, seal, stale, now) {
            return Ok((Found::Token(value), renew_at));
        }
        if record.locked_until.is_some_and(|t| t > now) {
            return Ok((Found::Locked, renew_at));
        }
        let (window_start, refreshes) = self.spend_budget(&record, now)?;
        let locked = self
            .store
            .lock_token(
                record_key,
                record.version,
                now + LOCK_LEASE,
                window_start,
                refreshes,
            )
            .await
            .map_err(ProviderError::TokenStore)?;
        let found = if locked {
            Found::Ours(record.version + 1)
        } else {
            Found::Raced
        };
        Ok((found, renew_at))
    }

    /// The budget window and count after one more refresh, or 429 when it is spent.
    fn spend_budget(
        &self,
        record: &SharedTokenRecord,
        now: DateTime<Utc>,
    ) -> Result<(DateTime<Utc>, u32), ProviderError> {
        match record.window_start {
            Some(start) if now < start + self.budget.window => {
                if record.refreshes >= self.budget.max {
                    let wait = (start + self.budget.window - now).num_seconds().max(1);
                    tracing::warn!(
                        refreshes = record.refreshes,
                        "provider token refresh budget spent: waiting for the window to pass"
                    );
                    return Err(ProviderError::RateLimited {
                        retry_after: Some(wait.unsigned_abs()),
                        daily: false,
                    });
                }
                Ok((start, record.refreshes + 1))
            }
            _ => Ok((now, 1)),
        }
    }

    /// Another container holds the lock: wait for its token, within the deadline.
    async fn wait_for_refresh(&self, deadline: Instant) -> Result<(), ProviderError> {
        if self.clock.instant() + LOCK_POLL >= deadline {
            return Err(ProviderError::Unavailable {
                retry_after: Some(1),
                ambiguous: false,
                in_flight: false,
                cause: "token refresh by another container still running".into(),
            });
        }
        self.clock.sleep(LOCK_POLL, Wait::TokenPoll).await;
        Ok(())
    }

    /// Fetches a new token under our lock (`locked`: the version it wrote) and stores it.
    async fn refresh<F, Fut>(
        &self,
        record_key: &str,
        seal: &SealKey,
        locked: i64,
        fetch: &F,
    ) -> Result<IssuedToken, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<IssuedToken, ProviderError>>,
    {
        let issued = match fetch().await {
            Ok(t) => t,
            Err(e) => {
                let _ = self.store.unlock_token(record_key, locked).await;
                return Err(e);
            }
        };
        let sealed = seal
            .seal(record_key, &issued.value)
            .ok_or_else(|| ProviderError::unavailable("sealing the token failed"))?;
        let stored = self
            .store
            .store_token(record_key, locked, &sealed, issued.expires_at)
            .await
            .map_err(ProviderError::TokenStore)?;
        if !stored {
            // Our lock lapsed meanwhile; the token is still good for this container.
            tracing::warn!("provider token refresh outlived its lock");
        }
        Ok(issued)
    }

    /// The record's token, if it opens, is not about to expire and is not `stale`.
    fn usable(
        &self,
        record: &SharedTokenRecord,
        record_key: &str,
        seal: &SealKey,
        stale: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let expires_at = record.expires_at?;
        if now >= expires_at - TOKEN_MARGIN {
            return None;
        }
        let value = seal.open(record_key, record.sealed.as_deref()?)?;
        (stale != Some(value.as_str())).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_record() {
        let key = SealKey::derive("client-secret", "telemeet/zoho-token/v1");
        let sealed = key.seal("zoho#abc", "1000.token.value").unwrap();
        assert!(!sealed.contains("1000.token.value"));
        assert_eq!(
            key.open("zoho#abc", &sealed).as_deref(),
            Some("1000.token.value")
        );
        assert_eq!(key.open("zoho#other", &sealed), None, "bound to its record");
        let rotated = SealKey::derive("new-secret", "telemeet/zoho-token/v1");
        assert_eq!(rotated.open("zoho#abc", &sealed), None);
        assert_eq!(key.open("zoho#abc", "not base64!"), None);
        // A fresh nonce every time.
        assert_ne!(
            key.seal("zoho#abc", "t").unwrap(),
            key.seal("zoho#abc", "t").unwrap()
        );
    }
}
