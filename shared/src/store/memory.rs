//! The in-memory adapter of every store port: the same keys ([`super::keys`]) and the same
//! rules (takeover table, versions, marks that expire, due times from the domain) as the
//! DynamoDB adapter, for service tests that run without moto. One lock makes each call
//! atomic, as a conditional write or a transaction is.

use super::keys::{self, Key};
use super::{
    BudgetStore, ClaimAttempt, ClaimStore, Claimed, DueIndex, DueItem, EventMark, EventSave,
    MarkStore, MeetingStore, MemberIndex, OrgStore, OrgView, Rev, SharedTokenRecord, StatsStore,
    StoreResult, SubscriptionStore, TokenStore, UserMeetingsQuery,
};
use crate::domain::claim::released_due_at;
use crate::domain::org::Spend;
use crate::domain::stats::deltas;
use crate::domain::subscription::Subscription;
use crate::domain::{
    Claim, ClaimState, Connection, DueFor, HostEntry, Meeting, OrgProfile, OrgSettings,
    ProviderKind, Stats, Subject,
};
use crate::ids::{MeetingId, OrgId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct Tables {
    /// By claim key; the due time a released claim got.
    claims: HashMap<Key, (Claim, Option<DateTime<Utc>>)>,
    meetings: HashMap<MeetingId, Meeting>,
    provider_ids: HashMap<Key, MeetingId>,
    /// Membership keys, sorted (partition, then start time).
    members: BTreeMap<Key, MeetingId>,
    /// Mark key → expiry.
    marks: HashMap<Key, DateTime<Utc>>,
    stats: HashMap<OrgId, Stats>,
    tokens: HashMap<String, SharedTokenRecord>,
    profiles: HashMap<OrgId, OrgProfile>,
    /// Host entries by their key (sorted: one org's entries are adjacent, by user id).
    hosts: BTreeMap<Key, HostEntry>,
    budgets: HashMap<String, u32>,
    /// The revision of each profile and host entry written (by its key).
    revs: HashMap<Key, u64>,
    last_rev: u64,
    /// By `(org, id)`.
    subscriptions: BTreeMap<(OrgId, String), Subscription>,
}

/// Every port in memory.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Tables {
    /// `key`'s item was written: a new revision.
    fn touch(&mut self, key: Key) {
        self.last_rev += 1;
        self.revs.insert(key, self.last_rev);
    }

    fn rev(&self, key: &Key, exists: bool) -> Rev {
        match (exists, self.revs.get(key)) {
            (false, _) => Rev::Absent,
            (true, Some(r)) => Rev::At(r.to_string()),
            (true, None) => Rev::Unmarked,
        }
    }

    fn view(&self, org: &OrgId, host: &UserId) -> OrgView {
        let host_key = keys::org_host(org, host);
        let entry = self.hosts.get(&host_key).cloned();
        OrgView {
            profile: self.profiles.get(org).cloned().unwrap_or_default(),
            profile_rev: self.rev(&keys::org_profile(org), self.profiles.contains_key(org)),
            host_user: host.clone(),
            host_rev: self.rev(&host_key, entry.is_some()),
            host: entry,
        }
    }

    fn count(&mut self, after: &Meeting, before: Option<&Meeting>) {
        let stats = self.stats.entry(after.org.clone()).or_default();
        for (counter, delta) in deltas(before, after) {
            stats.add(counter, delta);
        }
    }

    fn add_members(&mut self, m: &Meeting) {
        for (user, _) in m.members() {
            self.members.insert(
                keys::membership(&m.org, user, m.start_time, &m.id),
                m.id.clone(),
            );
        }
    }

    fn remove_members(&mut self, m: &Meeting) {
        for (user, _) in m.members() {
            self.members
                .remove(&keys::membership(&m.org, user, m.start_time, &m.id));
        }
    }
}

#[async_trait]
impl ClaimStore for MemoryStore {
    async fn get_claim(&self, org: &OrgId, subject: &Subject) -> StoreResult<Option<Claim>> {
        Ok(self
            .tables()
            .claims
            .get(&keys::claim(org, subject))
            .map(|(c, _)| c.clone()))
    }

    async fn attempt_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        a: &ClaimAttempt<'_>,
    ) -> StoreResult<Claimed> {
        let mut t = self.tables();
        let now_view = t.view(org, &a.view.host_user);
        if now_view.profile_rev != a.view.profile_rev || now_view.host_rev != a.view.host_rev {
            return Ok(Claimed::ViewChanged(Box::new(now_view)));
        }
        let key = keys::claim(org, subject);
        let stored = t.claims.get(&key).map(|(c, _)| c.clone());
        let allowed = match (&stored, a.previous) {
            (None, None) => true,
            (Some(stored), Some(prev)) => stored.token == prev.token && stored.is_takeable(a.now),
            _ => false,
        };
        if !allowed {
            return Ok(Claimed::Lost(stored));
        }
        let at_limit =
            |(_, s): &(usize, &Spend)| t.budgets.get(&s.key).copied().unwrap_or(0) >= s.limit;
        let refused: Vec<usize> = a
            .spends
            .iter()
            .enumerate()
            .filter(at_limit)
            .map(|(i, _)| i)
            .collect();
        if let Some(i) = crate::domain::org::last_ending(a.spends, refused.into_iter()) {
            return Ok(Claimed::OverBudget(i));
        }
        for s in a.spends {
            *t.budgets.entry(s.key.clone()).or_default() += 1;
        }
        t.claims.insert(key, (a.claim.clone(), None));
        Ok(Claimed::Taken)
    }

    async fn release_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        token: &str,
        reconcile: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut t = self.tables();
        if let Some((c, due)) = t.claims.get_mut(&keys::claim(org, subject))
            && c.token == token
            && c.state == ClaimState::Pending
        {
            c.state = ClaimState::Released;
            c.reconcile = reconcile;
            c.lease_until = None;
            *due = released_due_at(reconcile, now);
        }
        Ok(())
    }

    async fn finalize(&self, token: &str, m: &Meeting) -> StoreResult<bool> {
        let mut t = self.tables();
        let key = keys::claim(&m.org, &m.subject);
        let holds = t
            .claims
            .get(&key)
            .is_some_and(|(c, _)| c.token == token && c.state == ClaimState::Pending);
        if !holds || t.meetings.contains_key(&m.id) {
            return Ok(false);
        }
        if let Some((c, due)) = t.claims.get_mut(&key) {
            c.state = ClaimState::Ready;
            c.lease_until = None;
            c.reconcile = false;
            c.window_ends_at = m.expires_at.or(c.window_ends_at);
            *due = None;
        }
        t.meetings.insert(m.id.clone(), m.clone());
        t.provider_ids.insert(
            keys::provider_id(m.provider, &m.provider_meeting_id),
            m.id.clone(),
        );
        t.add_members(m);
        t.count(m, None);
        Ok(true)
    }
}

#[async_trait]
impl MeetingStore for MemoryStore {
    async fn get_meeting(&self, id: &MeetingId) -> StoreResult<Option<Meeting>> {
        Ok(self.tables().meetings.get(id).cloned())
    }

    async fn get_meetings(&self, ids: &[MeetingId]) -> StoreResult<Vec<Meeting>> {
        let t = self.tables();
        Ok(ids
            .iter()
            .filter_map(|id| t.meetings.get(id).cloned())
            .collect())
    }

    async fn save(
        &self,
        before: &Meeting,
        after: &Meeting,
        event: Option<&EventMark>,
    ) -> StoreResult<bool> {
        let mut t = self.tables();
        let current = t.meetings.get(&before.id).map(|m| m.version);
        let marked = event.is_some_and(|e| {
            t.marks
                .get(&keys::event_mark(&e.key))
                .is_some_and(|exp| *exp > e.now)
        });
        if current != Some(before.version) || marked {
            return Ok(false);
        }
        t.remove_members(before);
        t.add_members(after);
        t.count(after, Some(before));
        if let Some(e) = event {
            t.marks.insert(keys::event_mark(&e.key), e.expires_at);
        }
        t.meetings.insert(after.id.clone(), after.clone());
        Ok(true)
    }

    async fn ring(&self, id: &MeetingId, caller: &UserId) -> StoreResult<Option<Meeting>> {
        let mut t = self.tables();
        Ok(t.meetings.get_mut(id).map(|m| {
            m.signals.calls += 1;
            m.signals.last_caller = Some(caller.clone());
            m.version += 1;
            m.clone()
        }))
    }

    async fn update_host_link(
        &self,
        id: &MeetingId,
        host_url: &str,
        fetched_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        if let Some(m) = self.tables().meetings.get_mut(id) {
            m.links.host_url = host_url.to_owned();
            m.links.host_url_fetched_at = Some(fetched_at);
        }
        Ok(())
    }

    async fn meeting_by_provider_id(
        &self,
        provider: ProviderKind,
        id: &str,
    ) -> StoreResult<Option<Meeting>> {
        let t = self.tables();
        Ok(t.provider_ids
            .get(&keys::provider_id(provider, id))
            .and_then(|id| t.meetings.get(id))
            .cloned())
    }

    async fn save_event(
        &self,
        before: &Meeting,
        after: &Meeting,
        mark: &EventMark,
    ) -> StoreResult<EventSave> {
        let current = self.tables().meetings.get(&before.id).cloned();
        if self.event_seen(&mark.key, mark.now).await? {
            return Ok(EventSave::Duplicate);
        }
        match current {
            Some(m) if m.version == before.version => {}
            current => return Ok(EventSave::Stale(current.map(Box::new))),
        }
        Ok(if self.save(before, after, Some(mark)).await? {
            EventSave::Applied
        } else {
            EventSave::Stale(
                self.tables()
                    .meetings
                    .get(&before.id)
                    .cloned()
                    .map(Box::new),
            )
        })
    }
}

#[async_trait]
impl MarkStore for MemoryStore {
    async fn event_seen(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        Ok(self
            .tables()
            .marks
            .get(&keys::event_mark(key))
            .is_some_and(|exp| *exp > now))
    }
}

#[async_trait]
impl MemberIndex for MemoryStore {
    async fn user_meetings(
        &self,
        q: &UserMeetingsQuery,
    ) -> StoreResult<(Vec<MeetingId>, Option<String>)> {
        let t = self.tables();
        let pk = keys::members_of(&q.org, &q.user);
        let (lo, hi) = keys::membership_range(q.from, q.to);
        let page: Vec<(&Key, &MeetingId)> = t
            .members
            .iter()
            .filter(|(k, _)| k.pk == pk && k.sk >= lo && k.sk <= hi)
            .filter(|(k, _)| q.cursor.as_ref().is_none_or(|c| k.sk > *c))
            .take(q.limit)
            .collect();
        // As a DynamoDB Query with a Limit: a full page has a next position, even at the end.
        let next = (page.len() == q.limit)
            .then(|| page.last().map(|(k, _)| k.sk.clone()))
            .flatten();
        Ok((page.iter().map(|(_, id)| (*id).clone()).collect(), next))
    }
}

#[async_trait]
impl StatsStore for MemoryStore {
    async fn stats(&self, org: &OrgId) -> StoreResult<Stats> {
        Ok(self.tables().stats.get(org).cloned().unwrap_or_default())
    }
}

#[async_trait]
impl DueIndex for MemoryStore {
    async fn due(
        &self,
        what: DueFor,
        shard: u32,
        cutoff: DateTime<Utc>,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<(Vec<DueItem>, Option<String>)> {
        let t = self.tables();
        let partition = keys::due_partition(what, shard);
        let meetings = t.meetings.values().filter_map(|m| {
            let (for_what, at) = m.due_slot()?;
            (keys::due_shard(for_what, &m.id) == partition && at <= cutoff)
                .then(|| (keys::meeting(&m.id), DueItem::Meeting(Box::new(m.clone()))))
        });
        let claims = t.claims.iter().filter_map(|(key, (c, released))| {
            let at = c.due_at().or(*released)?;
            let shard = keys::due_shard(DueFor::Archive, &c.meeting_id);
            (shard == partition && at <= cutoff).then(|| {
                let item = DueItem::Claim {
                    key: key.pk.clone(),
                    claim: c.clone(),
                };
                (key.clone(), item)
            })
        });
        let mut all: Vec<(Key, DueItem)> = meetings.chain(claims).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let after: Vec<(Key, DueItem)> = all
            .into_iter()
            .filter(|(k, _)| cursor.as_ref().is_none_or(|c| k.pk > *c))
            .take(limit.saturating_add(1))
            .collect();
        let more = after.len() > limit;
        let page: Vec<(Key, DueItem)> = after.into_iter().take(limit).collect();
        let next = more
            .then(|| page.last().map(|(k, _)| k.pk.clone()))
            .flatten();
        Ok((page.into_iter().map(|(_, item)| item).collect(), next))
    }

    async fn archive(
        &self,
        before: &Meeting,
        archived: &Meeting,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut t = self.tables();
        if t.meetings.get(&before.id).map(|m| m.version) != Some(before.version) {
            return Ok(false);
        }
        let claim = keys::claim(&before.org, &before.subject);
        if t.claims
            .get(&claim)
            .is_some_and(|(c, _)| c.meeting_id == before.id)
        {
            t.claims.remove(&claim);
        }
        t.provider_ids.remove(&keys::provider_id(
            before.provider,
            &before.provider_meeting_id,
        ));
        t.remove_members(before);
        t.count(archived, Some(before));
        let mut archived = archived.clone();
        archived.kept_until = Some(keep_until);
        t.meetings.insert(archived.id.clone(), archived);
        Ok(true)
    }

    async fn no_shows(
        &self,
        shard: u32,
        cutoff: DateTime<Utc>,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<(Vec<Meeting>, Option<String>)> {
        let pk = keys::notice_partition(shard);
        let t = self.tables();
        let mut due: Vec<(String, Meeting)> = t
            .meetings
            .values()
            .filter(|m| {
                keys::notice_shard(&m.id) == pk
                    && m.status != crate::domain::MeetingStatus::Archived
            })
            .filter_map(|m| {
                let at = crate::domain::notice::no_show_due(m)?;
                (at <= cutoff).then(|| (format!("{}#{}", at.timestamp(), m.id), m.clone()))
            })
            .filter(|(k, _)| cursor.as_ref().is_none_or(|c| k > c))
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        due.truncate(limit);
        let next = (due.len() == limit)
            .then(|| due.last().map(|(k, _)| k.clone()))
            .flatten();
        Ok((due.into_iter().map(|(_, m)| m).collect(), next))
    }

    async fn drop_claim(&self, claim_pk: &str, token: &str) -> StoreResult<()> {
        let mut t = self.tables();
        let key = keys::claim_of(claim_pk);
        if t.claims
            .get(&key)
            .is_some_and(|(c, _)| c.token == token && c.state != ClaimState::Ready)
        {
            t.claims.remove(&key);
        }
        Ok(())
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn read_token(&self, key: &str) -> StoreResult<SharedTokenRecord> {
        Ok(self.tables().tokens.get(key).cloned().unwrap_or_default())
    }

    async fn lock_token(
        &self,
        key: &str,
        seen_version: i64,
        locked_until: DateTime<Utc>,
        refreshes: &[DateTime<Utc>],
    ) -> StoreResult<bool> {
        let mut t = self.tables();
        let record = t.tokens.entry(key.to_owned()).or_default();
        if record.version != seen_version {
            return Ok(false);
        }
        record.locked_until = Some(locked_until);
        record.refreshes = refreshes.to_vec();
        // As the DynamoDB adapter: the token being replaced goes with the lock.
        record.sealed = None;
        record.expires_at = None;
        record.version = seen_version + 1;
        Ok(true)
    }

    async fn store_token(
        &self,
        key: &str,
        locked_version: i64,
        sealed: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut t = self.tables();
        let Some(record) = t
            .tokens
            .get_mut(key)
            .filter(|r| r.version == locked_version)
        else {
            return Ok(false);
        };
        record.sealed = Some(sealed.to_owned());
        record.expires_at = Some(expires_at);
        record.locked_until = None;
        record.version = locked_version + 1;
        Ok(true)
    }

    async fn unlock_token(&self, key: &str, locked_version: i64) -> StoreResult<()> {
        if let Some(record) = self
            .tables()
            .tokens
            .get_mut(key)
            .filter(|r| r.version == locked_version)
        {
            record.locked_until = None;
            record.version = locked_version + 1;
        }
        Ok(())
    }
}

#[async_trait]
impl OrgStore for MemoryStore {
    async fn org_view(
        &self,
        org: &OrgId,
        host: Option<&UserId>,
    ) -> StoreResult<(OrgProfile, Option<HostEntry>)> {
        let t = self.tables();
        let profile = t.profiles.get(org).cloned().unwrap_or_default();
        let entry = host.and_then(|h| t.hosts.get(&keys::org_host(org, h)).cloned());
        Ok((profile, entry))
    }

    async fn read_view(&self, org: &OrgId, host: &UserId) -> StoreResult<OrgView> {
        Ok(self.tables().view(org, host))
    }

    async fn put_settings(&self, org: &OrgId, settings: &OrgSettings) -> StoreResult<()> {
        let mut t = self.tables();
        t.profiles.entry(org.clone()).or_default().settings = settings.clone();
        t.touch(keys::org_profile(org));
        Ok(())
    }

    async fn put_connection(&self, org: &OrgId, connection: &Connection) -> StoreResult<()> {
        let mut t = self.tables();
        t.profiles
            .entry(org.clone())
            .or_default()
            .connections
            .insert(connection.provider.as_str(), connection.clone());
        t.touch(keys::org_profile(org));
        Ok(())
    }

    async fn delete_connection(&self, org: &OrgId, kind: ProviderKind) -> StoreResult<bool> {
        let mut t = self.tables();
        let removed = t
            .profiles
            .get_mut(org)
            .and_then(|p| p.connections.remove(kind.as_str()))
            .is_some();
        if removed {
            t.touch(keys::org_profile(org));
        }
        Ok(removed)
    }

    async fn connected_orgs(
        &self,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<(Vec<(OrgId, ProviderKind)>, Option<String>)> {
        let t = self.tables();
        let mut all: Vec<(String, (OrgId, ProviderKind))> = t
            .profiles
            .iter()
            .flat_map(|(org, p)| {
                p.connections
                    .values()
                    .map(move |c| (org.clone(), c.provider))
            })
            .map(|(org, kind)| (keys::connection_entry(kind, &org).sk, (org, kind)))
            .filter(|(sk, _)| cursor.as_ref().is_none_or(|c| sk > c))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.truncate(limit);
        let next = (all.len() == limit)
            .then(|| all.last().map(|(sk, _)| sk.clone()))
            .flatten();
        Ok((all.into_iter().map(|(_, pair)| pair).collect(), next))
    }

    async fn put_host(&self, org: &OrgId, host: &HostEntry) -> StoreResult<()> {
        let mut t = self.tables();
        let key = keys::org_host(org, &host.user);
        t.hosts.insert(key.clone(), host.clone());
        t.touch(key);
        Ok(())
    }

    async fn delete_host(&self, org: &OrgId, user: &UserId) -> StoreResult<Option<HostEntry>> {
        let mut t = self.tables();
        let key = keys::org_host(org, user);
        t.revs.remove(&key);
        Ok(t.hosts.remove(&key))
    }

    async fn list_hosts(
        &self,
        org: &OrgId,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<(Vec<HostEntry>, Option<String>)> {
        let pk = keys::org_of(org);
        let t = self.tables();
        let page: Vec<(&Key, &HostEntry)> = t
            .hosts
            .iter()
            .filter(|(k, _)| k.pk == pk && cursor.as_ref().is_none_or(|c| &k.sk > c))
            .take(limit)
            .collect();
        // As DynamoDB does: a full page has a next position, even when nothing follows.
        let next = (page.len() == limit)
            .then(|| page.last().map(|(k, _)| k.sk.clone()))
            .flatten();
        Ok((page.into_iter().map(|(_, h)| h.clone()).collect(), next))
    }
}

#[async_trait]
impl BudgetStore for MemoryStore {
    async fn spend(&self, spends: &[Spend]) -> StoreResult<Option<usize>> {
        let mut t = self.tables();
        let refused = spends
            .iter()
            .enumerate()
            .filter(|(_, s)| t.budgets.get(&s.key).copied().unwrap_or(0) >= s.limit)
            .max_by_key(|(_, s)| s.window_ends)
            .map(|(i, _)| i);
        if refused.is_some() {
            return Ok(refused);
        }
        for s in spends {
            *t.budgets.entry(s.key.clone()).or_default() += 1;
        }
        Ok(None)
    }

    async fn give_back(&self, spends: &[Spend]) -> StoreResult<()> {
        let mut t = self.tables();
        for s in spends {
            if let Some(n) = t.budgets.get_mut(&s.key) {
                *n = n.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn exhaust(&self, spend: &Spend) -> StoreResult<()> {
        self.tables().budgets.insert(spend.key.clone(), spend.limit);
        Ok(())
    }
}

#[async_trait]
impl SubscriptionStore for MemoryStore {
    async fn put_subscription(&self, s: &Subscription) -> StoreResult<()> {
        self.tables()
            .subscriptions
            .insert((s.org.clone(), s.id.clone()), s.clone());
        Ok(())
    }

    async fn subscriptions(&self, org: &OrgId) -> StoreResult<Vec<Subscription>> {
        let t = self.tables();
        Ok(t.subscriptions
            .iter()
            .filter(|((o, _), _)| o == org)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn get_subscription(&self, org: &OrgId, id: &str) -> StoreResult<Option<Subscription>> {
        let key = (org.clone(), id.to_owned());
        Ok(self.tables().subscriptions.get(&key).cloned())
    }

    async fn delete_subscription(&self, org: &OrgId, id: &str) -> StoreResult<bool> {
        let key = (org.clone(), id.to_owned());
        Ok(self.tables().subscriptions.remove(&key).is_some())
    }

    async fn disable_subscription(
        &self,
        org: &OrgId,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let key = (org.clone(), id.to_owned());
        if let Some(s) = self.tables().subscriptions.get_mut(&key) {
            s.disabled_at.get_or_insert(at);
        }
        Ok(())
    }
}
