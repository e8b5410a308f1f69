//! The orphan pass: provider meetings carrying our marker with no live record of ours
//! behind them (a create that landed after its claimant died or lost its claim). They are
//! looked for wherever telemeet creates: the deployment's accounts under their default
//! user, and every org's own account under its default user and each host its directory
//! maps there (a Zoom list is per host user).

use super::{AccountKey, DUE_PAGE, Run, Summary};
use crate::domain::{MeetingStatus, ProviderKind};
use crate::ids::{MeetingId, OrgId};
use crate::providers::{Deletion, Marked, MeetingProvider, ProviderError};
use crate::telemetry::cause;
use std::collections::{BTreeSet, HashSet};

/// Host entries read per page while collecting an org's host users.
const HOST_PAGE: usize = 100;

impl Run<'_> {
    /// Every account telemeet creates in. `false`: stopped for the deadline.
    pub(super) async fn orphan_pass(&self) -> bool {
        for provider in self.app.service.providers.all() {
            let mut seen = HashSet::new();
            let account = AccountKey {
                provider: provider.kind(),
                org: None,
            };
            if !self
                .orphans_of(provider.as_ref(), &account, None, &mut seen)
                .await
            {
                return false;
            }
        }
        self.org_accounts().await
    }

    /// Every org's own connection, a page of the connection list at a time.
    async fn org_accounts(&self) -> bool {
        let orgs = &self.app.service.stores.orgs;
        let mut cursor = None;
        loop {
            if !self.time_left() {
                return false;
            }
            let (pairs, next) = match orgs.connected_orgs(DUE_PAGE, cursor).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(cause = %cause(&e), "cleanup: reading the org connections failed");
                    Summary::add(&self.summary.failed);
                    return false;
                }
            };
            for (org, kind) in pairs {
                if !self.org_account(&org, kind).await {
                    return false;
                }
            }
            match next {
                Some(c) => cursor = Some(c),
                None => return true,
            }
        }
    }

    /// One org's own account: once where lists are per account, else per host user.
    async fn org_account(&self, org: &OrgId, kind: ProviderKind) -> bool {
        let provider = self.app.service.orgs.adapter(org, kind);
        let account = AccountKey {
            provider: kind,
            org: Some(org.clone()),
        };
        // One meeting listed under two users (a default that is also mapped) counts once.
        let mut seen = HashSet::new();
        if !provider.lists_per_host() {
            return self
                .orphans_of(provider.as_ref(), &account, None, &mut seen)
                .await;
        }
        let Some(users) = self.host_users(org, kind, provider.as_ref()).await else {
            Summary::add(&self.summary.failed);
            return true;
        };
        for user in &users {
            if !self
                .orphans_of(provider.as_ref(), &account, Some(user), &mut seen)
                .await
            {
                return false;
            }
        }
        true
    }

    /// The account's default user and every user the org's directory maps at `kind`.
    /// `None`: the directory or the connection could not be read (counted failed).
    async fn host_users(
        &self,
        org: &OrgId,
        kind: ProviderKind,
        provider: &dyn MeetingProvider,
    ) -> Option<BTreeSet<String>> {
        let mut users = BTreeSet::new();
        match provider.default_host(self.deadline).await {
            Ok(default) => users.extend(default),
            Err(e) => {
                tracing::warn!(provider = %kind, cause = %cause(&e), "cleanup: an org's connection could not be read");
                return None;
            }
        }
        let mut cursor = None;
        loop {
            let page = self
                .app
                .service
                .stores
                .orgs
                .list_hosts(org, HOST_PAGE, cursor);
            let (hosts, next) = match page.await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(cause = %cause(&e), "cleanup: reading a host directory failed");
                    return None;
                }
            };
            users.extend(
                hosts
                    .iter()
                    .filter_map(|h| h.user_at(kind))
                    .map(str::to_owned),
            );
            match next {
                Some(c) => cursor = Some(c),
                None => return Some(users),
            }
        }
    }

    /// The marked meetings of one host user (`None`: the default) in `provider`'s account,
    /// each not in `seen` yet.
    async fn orphans_of(
        &self,
        provider: &dyn MeetingProvider,
        account: &AccountKey,
        user: Option<&str>,
        seen: &mut HashSet<String>,
    ) -> bool {
        if !self.time_left() {
            return false;
        }
        let marked = match provider.marked_meetings(user, self.deadline).await {
            Ok(m) => m,
            // A user no longer in the account (or no default user) holds nothing to list.
            Err(ProviderError::UnknownHost) => return true,
            Err(e) => {
                tracing::warn!(provider = %provider.kind(), cause = %cause(&e), "cleanup: listing provider meetings failed");
                Summary::add(&self.summary.failed);
                return true;
            }
        };
        for m in marked {
            if !self.time_left() {
                return false;
            }
            if seen.insert(m.provider_meeting_id.clone()) {
                self.orphan(provider, account, m).await;
            }
        }
        true
    }

    /// One marked provider meeting: deleted if it is old enough and nothing live of ours
    /// stands behind it.
    async fn orphan(&self, provider: &dyn MeetingProvider, account: &AccountKey, m: Marked) {
        // Another deployment's (a staging stack sharing the account), or an old marker that
        // names none: never ours to delete.
        if m.deployment.as_deref() != Some(self.app.service.settings.deployment.as_str()) {
            return;
        }
        if m.created_at
            .is_some_and(|t| self.now - t < self.settings.orphan_min_age)
        {
            return;
        }
        let record = match MeetingId::parse(&m.meeting_id, "marker") {
            Ok(id) => self.app.service.stores.meetings.get_meeting(&id).await,
            Err(_) => Ok(None),
        };
        let Ok(record) = record else {
            Summary::add(&self.summary.failed);
            return;
        };
        let live = record.is_some_and(|r| {
            r.provider == provider.kind()
                && r.provider_meeting_id == m.provider_meeting_id
                && r.status != MeetingStatus::Archived
        });
        if live {
            return;
        }
        if self.summary.dry_run {
            Summary::add(&self.summary.orphans_deleted);
            return;
        }
        self.pacers.wait(account, self.clock).await;
        match provider.delete(&m.provider_meeting_id, self.deadline).await {
            Ok(Deletion::Deleted | Deletion::AlreadyGone) => {
                tracing::info!(provider = %provider.kind(), "cleanup: orphan deleted");
                Summary::add(&self.summary.orphans_deleted);
            }
            Ok(Deletion::InProgress) => Summary::add(&self.summary.skipped),
            Err(e) => {
                tracing::warn!(cause = %cause(&e), "cleanup: orphan delete failed; retried next run");
                Summary::add(&self.summary.failed);
            }
        }
    }
}
