//! An OAuth access token shared by every container through the table.
//!
//! Zoho grants only 10 access tokens per refresh token per 10 minutes, while Lambda may run
//! many containers: each caching its own token would exhaust that in one busy minute. So
//! the token lives in the table (sealed with a key derived from the client secret, so the
//! table alone does not yield it), one container at a time refreshes it under a
//! conditional lock, and a budget below Zoho's limit is counted in the same record.
//!
//! Zoom shares its token the same way, for latency rather than a limit: a cold container
//! reads it with one GetItem instead of a grant from zoom.us (hundreds of ms). Zoom's
//! Server-to-Server tokens do not invalidate one another, so a Zoom container never waits
//! long for another's refresh ([`Contention::OwnGrantAfter`]).

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
    /// Zoom documents no grant limit; this only bounds the record (a token lives an hour,
    /// so more than this means tokens keep being refused: containers then grant their own).
    pub const ZOOM: Self = Self {
        max: 10,
        window: Duration::minutes(1),
    };
}

/// What a container does while another holds the refresh lock, or once the budget is spent.
#[derive(Debug, Clone, Copy)]
pub enum Contention {
    /// Waits for the holder's token (polling every `LOCK_POLL`), until the deadline; a
    /// spent budget is a 429. Zoho: a grant of our own would spend its scarce budget.
    Wait,
    /// Polls every `poll`, and past `after` (the holder is slow or gone) or with the budget
    /// spent takes a grant of its own, kept by this container only. Zoom: tokens coexist.
    OwnGrantAfter {
        after: std::time::Duration,
        poll: std::time::Duration,
    },
}

impl Contention {
    /// A grant from zoom.us takes a few hundred ms: the holder's token is normally in the
    /// table before ours would be; past a second, the holder is not coming back soon.
    pub const ZOOM: Self = Self::OwnGrantAfter {
        after: std::time::Duration::from_secs(1),
        poll: std::time::Duration::from_millis(25),
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
    contention: Contention,
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
    /// The budget is spent and grants of our own are allowed: take one.
    Spent,
}

impl SharedToken {
    pub fn new(store: Arc<dyn TokenStore>, clock: Arc<dyn Clock>, budget: RefreshBudget) -> Self {
        Self {
            store,
            clock,
            budget,
            contention: Contention::Wait,
            local: tokio::sync::Mutex::new(None),
        }
    }

    /// The same, with another way of handling a held lock.
    pub fn with_contention(mut self, contention: Contention) -> Self {
        self.contention = contention;
        self
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
        let started = self.clock.instant();
        loop {
            let (found, renew_at) = self.look_up(record_key, seal, stale).await?;
            let issued = match found {
                Found::Token(value) => {
                    *local = Some(Cached {
                        value: value.clone(),
                        renew_at,
                    });
                    return Ok((value, false));
                }
                Found::Locked if !self.waited_enough(started) => {
                    self.wait_for_refresh(deadline).await?;
                    continue;
                }
                Found::Raced => continue,
                // Kept by this container only: the table's record is the lock holder's.
                Found::Locked | Found::Spent => fetch().await?,
                Found::Ours(locked) => self.refresh(record_key, seal, locked, &fetch).await?,
            };
            *local = Some(Cached {
                value: issued.value.clone(),
                renew_at: issued.expires_at - TOKEN_MARGIN,
            });
            return Ok((issued.value, true));
        }
    }

    /// Whether a container allowed grants of its own has waited long enough for the holder.
    fn waited_enough(&self, started: Instant) -> bool {
        match self.contention {
            Contention::Wait => false,
            Contention::OwnGrantAfter { after, .. } => self.clock.instant() >= started + after,
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
        let refreshes = match self.spend_budget(&record, now) {
            Ok(r) => r,
            Err(_) if matches!(self.contention, Contention::OwnGrantAfter { .. }) => {
                return Ok((Found::Spent, renew_at));
            }
            Err(e) => return Err(e),
        };
        let locked = self
            .store
            .lock_token(record_key, record.version, now + LOCK_LEASE, &refreshes)
            .await
            .map_err(ProviderError::TokenStore)?;
        let found = if locked {
            Found::Ours(record.version + 1)
        } else {
            Found::Raced
        };
        Ok((found, renew_at))
    }

    /// The refreshes of the last window with one more started now, or 429 when `max` of
    /// them started within it. A sliding window: a fixed one would let `max` land at its end
    /// and `max` more at the next one's start, twice the budget within Zoho's 10 minutes.
    fn spend_budget(
        &self,
        record: &SharedTokenRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, ProviderError> {
        let mut recent: Vec<DateTime<Utc>> = record
            .refreshes
            .iter()
            .copied()
            .filter(|t| *t > now - self.budget.window)
            .collect();
        recent.sort();
        let max = self.budget.max as usize;
        if recent.len() >= max {
            // Free again once the oldest of the last `max` leaves the window.
            let frees = recent[recent.len() - max] + self.budget.window;
            let wait = (frees - now).num_seconds().max(1);
            tracing::warn!(
                refreshes = recent.len(),
                "provider token refresh budget spent: waiting for the window to slide"
            );
            return Err(ProviderError::RateLimited {
                retry_after: Some(wait.unsigned_abs()),
                daily: false,
            });
        }
        recent.push(now);
        Ok(recent)
    }

    /// Another container holds the lock: wait for its token, within the deadline.
    async fn wait_for_refresh(&self, deadline: Instant) -> Result<(), ProviderError> {
        let poll = match self.contention {
            Contention::Wait => LOCK_POLL,
            Contention::OwnGrantAfter { poll, .. } => poll,
        };
        if self.clock.instant() + poll >= deadline {
            return Err(ProviderError::Unavailable {
                retry_after: Some(1),
                ambiguous: false,
                in_flight: false,
                cause: "token refresh by another container still running".into(),
            });
        }
        self.clock.sleep(poll, Wait::TokenPoll).await;
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
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Forces one refresh (the current token refused) and answers whether it was allowed.
    async fn forced_refresh(
        token: &SharedToken,
        clock: &ManualClock,
        grants: &AtomicU32,
    ) -> Result<(), ProviderError> {
        let seal = SealKey::derive("secret", "test");
        let deadline = clock.instant() + std::time::Duration::from_secs(5);
        let fetch = || async {
            let n = grants.fetch_add(1, Ordering::SeqCst);
            Ok(IssuedToken {
                value: format!("token-{n}"),
                expires_at: clock.now() + Duration::hours(1),
            })
        };
        let current = format!("token-{}", grants.load(Ordering::SeqCst).wrapping_sub(1));
        token
            .get("zoho#k", &seal, Some(&current), deadline, fetch)
            .await
            .map(drop)
    }

    #[tokio::test]
    async fn no_more_than_the_budget_of_refreshes_start_in_any_ten_minutes() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let token = SharedToken::new(store, clock.clone(), RefreshBudget::ZOHO);
        let grants = AtomicU32::new(0);
        for _ in 0..4 {
            forced_refresh(&token, &clock, &grants)
                .await
                .expect("first four");
        }
        clock.advance(Duration::minutes(6));
        for _ in 0..4 {
            forced_refresh(&token, &clock, &grants)
                .await
                .expect("four more");
        }
        assert!(forced_refresh(&token, &clock, &grants).await.is_err());
        // 10.5 minutes after the first four: only they have left the window (a fixed window
        // starting anew here would allow 8 more, 12 within the last 10 minutes).
        clock.advance(Duration::seconds(270));
        for _ in 0..4 {
            forced_refresh(&token, &clock, &grants)
                .await
                .expect("the first four's places");
        }
        match forced_refresh(&token, &clock, &grants).await {
            Err(ProviderError::RateLimited {
                retry_after: Some(s),
                daily: false,
            }) => assert_eq!(s, 330, "until the 6-minute refreshes leave the window"),
            other => panic!("expected the budget's 429, got {other:?}"),
        }
        assert_eq!(grants.load(Ordering::SeqCst), 12);
    }

    fn issued(value: &str, clock: &ManualClock) -> IssuedToken {
        IssuedToken {
            value: value.to_owned(),
            expires_at: clock.now() + Duration::hours(1),
        }
    }

    #[tokio::test]
    async fn a_zoom_container_takes_its_own_grant_when_the_lock_holder_is_slow() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        // Another container locked the record and never came back.
        let locked = store
            .lock_token("zoom#k", 0, clock.now() + LOCK_LEASE, &[])
            .await
            .expect("lock");
        assert!(locked);
        let token = SharedToken::new(store.clone(), clock.clone(), RefreshBudget::ZOOM)
            .with_contention(Contention::ZOOM);
        let seal = SealKey::derive("secret", "test");
        let started = clock.instant();
        let deadline = started + std::time::Duration::from_secs(10);
        let fetch = || async { Ok(issued("own", &clock)) };
        let (value, new) = token
            .get("zoom#k", &seal, None, deadline, fetch)
            .await
            .expect("own grant");
        assert_eq!((value.as_str(), new), ("own", true));
        let waited = clock.instant() - started;
        assert!(waited >= std::time::Duration::from_secs(1), "{waited:?}");
        assert!(
            waited < std::time::Duration::from_millis(1100),
            "{waited:?}"
        );
        // Kept by this container only: the holder's record is left alone.
        let record = store.read_token("zoom#k").await.expect("read");
        assert_eq!(record.sealed, None);
        assert!(record.locked_until.is_some());
    }

    #[tokio::test]
    async fn a_refused_token_leaves_the_table_even_when_its_refresh_fails() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let token = SharedToken::new(store.clone(), clock.clone(), RefreshBudget::ZOOM)
            .with_contention(Contention::ZOOM);
        let seal = SealKey::derive("secret", "test");
        let deadline = clock.instant() + std::time::Duration::from_secs(10);
        let first = || async { Ok(issued("revoked", &clock)) };
        token
            .get("zoom#k", &seal, None, deadline, first)
            .await
            .expect("first");
        let failing = || async { Err(ProviderError::unavailable("zoom.us down")) };
        let refreshed = token
            .get("zoom#k", &seal, Some("revoked"), deadline, failing)
            .await;
        assert!(refreshed.is_err());
        let record = store.read_token("zoom#k").await.expect("read");
        assert_eq!(
            record.sealed, None,
            "no container reads the refused token again"
        );
        assert_eq!(
            record.locked_until, None,
            "the failed refresh let go of the lock"
        );
    }

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
