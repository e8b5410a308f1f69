//! Orgs' own provider accounts (DESIGN.md, "Which account, which user"): an org's
//! connection lives in one secret per org and provider under this deployment's prefix;
//! its adapters are built on first use and kept per container in a bounded cache, each with
//! its own secret cache (300 s) and token cache (until 60 s before expiry, shared through
//! the table under a key per connection), so a container serving many orgs never mixes
//! their tokens nor grows without limit (guarantee 9).

use super::MeetingProvider;
use super::jitsi::JitsiProvider;
use super::retry::RetryPolicy;
use super::zoho::{ZohoConfig, ZohoProvider};
use super::zoom::webhook::WebhookSecrets;
use super::zoom::{ZoomConfig, ZoomProvider};
use crate::clock::Clock;
use crate::domain::ProviderKind;
use crate::ids::OrgId;
use crate::secrets::{FromSecret, SecretCache, SecretSource, SecretWriter};
use crate::store::TokenStore;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Orgs whose adapters one container keeps; the oldest is dropped past it.
pub const ORG_CACHE_CAPACITY: usize = 256;

/// A map that forgets its oldest entry past `capacity`.
pub struct Bounded<K, V> {
    capacity: usize,
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The entry of `key`, made by `make` when absent.
    pub fn get_or_insert_with(&mut self, key: &K, make: impl FnOnce() -> V) -> V {
        if let Some(v) = self.map.get(key) {
            return v.clone();
        }
        while self.map.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&oldest);
        }
        let v = make();
        self.map.insert(key.clone(), v.clone());
        self.order.push_back(key.clone());
        v
    }

    pub fn remove(&mut self, key: &K) {
        if self.map.remove(key).is_some() {
            self.order.retain(|k| k != key);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// What an org's adapters are built from (the deployment's clients and settings).
#[derive(Clone)]
pub struct OrgAccountParts {
    /// `ORG_SECRETS_PREFIX`: this deployment's part of Secrets Manager.
    pub prefix: String,
    pub http: reqwest::Client,
    pub zoom: ZoomConfig,
    pub zoho: ZohoConfig,
    pub jitsi: super::jitsi::JitsiConfig,
    pub secrets: Arc<dyn SecretSource>,
    pub writer: Arc<dyn SecretWriter>,
    /// `ORG_SECRETS_KMS_KEY_ID`.
    pub kms_key_id: Option<String>,
    pub tokens: Arc<dyn TokenStore>,
    pub clock: Arc<dyn Clock>,
    pub retry: RetryPolicy,
}

type Adapters = Bounded<(OrgId, ProviderKind), Arc<dyn MeetingProvider>>;
type Webhooks = Bounded<OrgId, Arc<SecretCache<WebhookSecrets>>>;

/// Orgs' own accounts.
pub struct OrgAccounts {
    parts: OrgAccountParts,
    adapters: Mutex<Adapters>,
    webhooks: Mutex<Webhooks>,
}

/// The secret name of an org's connection to `kind`. Secrets Manager names allow
/// `[A-Za-z0-9/_+=.@-]`; org ids may also hold `:`, which never occurs in them as `@`.
pub fn secret_name(prefix: &str, org: &OrgId, kind: ProviderKind) -> String {
    format!("{prefix}{}/{kind}", org.as_str().replace(':', "@"))
}

impl OrgAccounts {
    pub fn new(parts: OrgAccountParts) -> Self {
        Self {
            parts,
            adapters: Mutex::new(Bounded::new(ORG_CACHE_CAPACITY)),
            webhooks: Mutex::new(Bounded::new(ORG_CACHE_CAPACITY)),
        }
    }

    pub fn parts(&self) -> &OrgAccountParts {
        &self.parts
    }

    pub fn secret_name(&self, org: &OrgId, kind: ProviderKind) -> String {
        secret_name(&self.parts.prefix, org, kind)
    }

    /// The adapter of the org's own connection to `kind` (whether the org has one is the
    /// profile's to say; a missing secret fails at the first call).
    pub fn adapter(&self, org: &OrgId, kind: ProviderKind) -> Arc<dyn MeetingProvider> {
        let mut adapters = self.adapters.lock().unwrap_or_else(|e| e.into_inner());
        adapters.get_or_insert_with(&(org.clone(), kind), || self.build(org, kind))
    }

    /// The Zoom webhook secret tokens of the org's own Zoom app (its Zoom connection).
    pub fn webhook_secrets(&self, org: &OrgId) -> Arc<SecretCache<WebhookSecrets>> {
        let mut webhooks = self.webhooks.lock().unwrap_or_else(|e| e.into_inner());
        webhooks.get_or_insert_with(org, || Arc::new(self.secret(org, ProviderKind::Zoom)))
    }

    /// After a connection changed or was removed: this container builds it afresh.
    pub fn forget(&self, org: &OrgId, kind: ProviderKind) {
        let mut adapters = self.adapters.lock().unwrap_or_else(|e| e.into_inner());
        adapters.remove(&(org.clone(), kind));
        if kind == ProviderKind::Zoom {
            let mut webhooks = self.webhooks.lock().unwrap_or_else(|e| e.into_inner());
            webhooks.remove(org);
        }
    }

    fn secret<T: crate::secrets::FromSecret>(
        &self,
        org: &OrgId,
        kind: ProviderKind,
    ) -> SecretCache<T> {
        let p = &self.parts;
        SecretCache::new(
            self.secret_name(org, kind),
            p.secrets.clone(),
            p.clock.clone(),
        )
    }

    fn build(&self, org: &OrgId, kind: ProviderKind) -> Arc<dyn MeetingProvider> {
        let p = &self.parts;
        p.adapter(kind, &self.secret_name(org, kind), p.secrets.clone())
    }
}

impl OrgAccountParts {
    /// The adapter of `kind` over secret `id` of `source`: the deployment's, an org's, or a
    /// candidate being checked. The one place adapters are built.
    pub fn adapter(
        &self,
        kind: ProviderKind,
        id: &str,
        source: Arc<dyn SecretSource>,
    ) -> Arc<dyn MeetingProvider> {
        fn cache<T: FromSecret>(
            id: &str,
            s: &Arc<dyn SecretSource>,
            p: &OrgAccountParts,
        ) -> SecretCache<T> {
            SecretCache::new(id, s.clone(), p.clock.clone())
        }
        match kind {
            ProviderKind::Zoom => Arc::new(ZoomProvider::new(
                self.http.clone(),
                self.zoom.clone(),
                cache(id, &source, self),
                self.tokens.clone(),
                self.clock.clone(),
                self.retry.clone(),
            )),
            ProviderKind::Zoho => Arc::new(ZohoProvider::new(
                self.http.clone(),
                self.zoho.clone(),
                cache(id, &source, self),
                self.tokens.clone(),
                self.clock.clone(),
                self.retry.clone(),
            )),
            ProviderKind::Jitsi => Arc::new(JitsiProvider::new(
                cache(id, &source, self),
                self.clock.clone(),
                self.jitsi,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_forgets_its_oldest_entry_past_its_capacity() {
        let mut cache = Bounded::new(2);
        let mut made = 0;
        for key in ["a", "b", "a", "c", "a"] {
            cache.get_or_insert_with(&key, || {
                made += 1;
                made
            });
        }
        // a, b made; a reused; c evicts a; a made again (evicting b).
        assert_eq!(made, 4);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn secret_names_stay_inside_the_prefix_and_secrets_managers_alphabet() {
        let org = OrgId::parse("clinic:1.a", "t").expect("id");
        let name = secret_name("stack/orgs/", &org, ProviderKind::Zoom);
        assert_eq!(name, "stack/orgs/clinic@1.a/zoom");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
        );
    }
}
