//! An org's own configuration (`/org/...`, service and admin of that org only): provider
//! connections (checked with the provider before anything is stored; secrets to Secrets
//! Manager only), settings over the deployment's defaults, and the host directory.

use super::{Service, ServiceResult};
use crate::domain::org_request::ConnectionRequest;
use crate::domain::{Caller, Connection, DomainError, HostEntry, OrgSettings, ProviderKind, Role};
use crate::ids::UserId;
use crate::providers::MeetingProvider;
use crate::secrets::{SecretSource, StaticSecret};
use std::sync::Arc;
use std::time::Instant;

/// The org's effective settings: its own over the deployment's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveSettings {
    pub provider: ProviderKind,
    pub fallback: Option<ProviderKind>,
    pub conversation_reuse_seconds: i64,
    pub no_show_grace_minutes: u32,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `/org/...`: service and admin of the caller's own org.
pub(super) fn may_configure(caller: &Caller) -> Result<(), DomainError> {
    match caller.role {
        Role::Service | Role::Admin => Ok(()),
        _ => Err(DomainError::Forbidden),
    }
}

impl Service {
    /// Checks the credentials with the provider, then stores them: the secret in Secrets
    /// Manager, the public ids in the table. Refused credentials store nothing.
    pub async fn put_connection(
        &self,
        caller: &Caller,
        request: ConnectionRequest,
        deadline: Instant,
    ) -> ServiceResult<Connection> {
        may_configure(caller)?;
        let secret = serde_json::Value::Object(request.secret).to_string();
        self.candidate(request.kind, &secret)
            .verify(deadline)
            .await?;
        let parts = self.orgs.parts();
        let name = self.orgs.secret_name(&caller.org, request.kind);
        parts
            .writer
            .put_secret(&name, &secret, parts.kms_key_id.as_deref())
            .await?;
        let connection = Connection {
            provider: request.kind,
            verified_at: self.clock.now(),
            ids: request.ids,
        };
        self.stores
            .orgs
            .put_connection(&caller.org, &connection)
            .await?;
        self.orgs.forget(&caller.org, request.kind);
        tracing::info!(provider = %request.kind, "an org's provider connection was stored");
        Ok(connection)
    }

    /// An adapter over a candidate secret, for [`MeetingProvider::verify`].
    fn candidate(&self, kind: ProviderKind, secret: &str) -> Arc<dyn MeetingProvider> {
        let source: Arc<dyn SecretSource> = Arc::new(StaticSecret(secret.to_owned()));
        self.orgs.parts().adapter(kind, "candidate", source)
    }

    pub async fn connections(&self, caller: &Caller) -> ServiceResult<Vec<Connection>> {
        may_configure(caller)?;
        let (profile, _) = self.stores.orgs.org_view(&caller.org, None).await?;
        Ok(profile.connections.into_values().collect())
    }

    /// Removes the connection: new meetings go to the deployment's account again; the
    /// org's existing meetings at that provider can no longer be managed.
    pub async fn delete_connection(
        &self,
        caller: &Caller,
        kind: ProviderKind,
    ) -> ServiceResult<()> {
        may_configure(caller)?;
        if !self
            .stores
            .orgs
            .delete_connection(&caller.org, kind)
            .await?
        {
            return Err(DomainError::NotFound("Provider connection").into());
        }
        let name = self.orgs.secret_name(&caller.org, kind);
        self.orgs.parts().writer.delete_secret(&name).await?;
        self.orgs.forget(&caller.org, kind);
        tracing::info!(provider = %kind, "an org's provider connection was removed");
        Ok(())
    }

    pub async fn org_settings(&self, caller: &Caller) -> ServiceResult<EffectiveSettings> {
        may_configure(caller)?;
        let (profile, _) = self.stores.orgs.org_view(&caller.org, None).await?;
        Ok(self.effective(&profile.settings))
    }

    /// Stores the org's settings; each provider must be one the deployment or the org's own
    /// connections have.
    pub async fn put_org_settings(
        &self,
        caller: &Caller,
        mut settings: OrgSettings,
    ) -> ServiceResult<EffectiveSettings> {
        may_configure(caller)?;
        let (profile, _) = self.stores.orgs.org_view(&caller.org, None).await?;
        let usable =
            |k: ProviderKind| self.providers.get(k).is_some() || profile.connection(k).is_some();
        for (field, kind) in [
            ("provider", settings.provider),
            ("fallbackProvider", settings.fallback),
        ] {
            if kind.is_some_and(|k| !usable(k)) {
                return Err(DomainError::Invalid(crate::domain::Invalid::new(
                    field,
                    "is not configured for this deployment or org",
                ))
                .into());
            }
        }
        settings.updated_at = Some(self.clock.now());
        self.stores
            .orgs
            .put_settings(&caller.org, &settings)
            .await?;
        Ok(self.effective(&settings))
    }

    fn effective(&self, s: &OrgSettings) -> EffectiveSettings {
        EffectiveSettings {
            provider: s.provider.unwrap_or(self.providers.primary()),
            fallback: s.fallback.or(self.providers.fallback_kind()),
            conversation_reuse_seconds: s
                .conversation_reuse_seconds
                .map_or(self.settings.conversation_reuse.num_seconds(), i64::from),
            no_show_grace_minutes: s
                .no_show_grace_minutes
                .unwrap_or(crate::domain::notice::NO_SHOW_GRACE_MINUTES),
            updated_at: s.updated_at,
        }
    }

    pub async fn put_host(
        &self,
        caller: &Caller,
        user: UserId,
        (zoom_user, zoho_presenter): (Option<String>, Option<String>),
    ) -> ServiceResult<HostEntry> {
        may_configure(caller)?;
        let entry = HostEntry {
            user,
            zoom_user,
            zoho_presenter,
            updated_at: self.clock.now(),
        };
        self.stores.orgs.put_host(&caller.org, &entry).await?;
        Ok(entry)
    }

    pub async fn host(&self, caller: &Caller, user: &UserId) -> ServiceResult<HostEntry> {
        may_configure(caller)?;
        let (_, entry) = self.stores.orgs.org_view(&caller.org, Some(user)).await?;
        Ok(entry.ok_or(DomainError::NotFound("Host"))?)
    }

    pub async fn delete_host(&self, caller: &Caller, user: &UserId) -> ServiceResult<HostEntry> {
        may_configure(caller)?;
        let removed = self.stores.orgs.delete_host(&caller.org, user).await?;
        Ok(removed.ok_or(DomainError::NotFound("Host"))?)
    }

    pub async fn hosts(
        &self,
        caller: &Caller,
        limit: usize,
        cursor: Option<String>,
    ) -> ServiceResult<(Vec<HostEntry>, Option<String>)> {
        may_configure(caller)?;
        Ok(self
            .stores
            .orgs
            .list_hosts(&caller.org, limit, cursor)
            .await?)
    }
}
