//! An org's profile (`ORG#{org}` / `PROFILE`) and host directory (`ORG#{org}` /
//! `HOST#{userId}`). Settings and each connection are separate attributes of the profile,
//! so each write touches only its own.

use super::items::{
    self, ConnectionEntryItem, ConnectionItem, HostItem, ProfileItem, connection_attribute, n,
    new_rev, s, time,
};
use super::{DynamoStore, call_error};
use crate::domain::{Connection, HostEntry, OrgProfile, OrgSettings, ProviderKind};
use crate::ids::{OrgId, UserId};
use crate::store::{OrgStore, OrgView, Rev, StoreError, StoreResult, keys};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};

#[async_trait]
impl OrgStore for DynamoStore {
    async fn org_view(
        &self,
        org: &OrgId,
        host: Option<&UserId>,
    ) -> StoreResult<(OrgProfile, Option<HostEntry>)> {
        let profile_key = keys::org_profile(org);
        let Some(host) = host else {
            let profile = match self.get(&profile_key).await? {
                Some(item) => items::read::<ProfileItem>("org profile", item)?.into_profile(),
                None => OrgProfile::default(),
            };
            return Ok((profile, None));
        };
        let mut wanted = vec![items::key(&profile_key)];
        wanted.push(items::key(&keys::org_host(org, host)));
        let mut profile = OrgProfile::default();
        let mut entry = None;
        for item in self.batch_get(wanted).await? {
            let is_profile = item.get("sk").and_then(|v| v.as_s().ok()) == Some(&profile_key.sk);
            if is_profile {
                profile = items::read::<ProfileItem>("org profile", item)?.into_profile();
            } else {
                entry = Some(items::read::<HostItem>("host entry", item)?.into_entry());
            }
        }
        Ok((profile, entry))
    }

    async fn read_view(&self, org: &OrgId, host: &UserId) -> StoreResult<OrgView> {
        let profile_key = keys::org_profile(org);
        let wanted = vec![
            items::key(&profile_key),
            items::key(&keys::org_host(org, host)),
        ];
        let mut view = OrgView {
            profile: OrgProfile::default(),
            profile_rev: Rev::Absent,
            host_user: host.clone(),
            host: None,
            host_rev: Rev::Absent,
        };
        for item in self.batch_get(wanted).await? {
            let is_profile = item.get("sk").and_then(|v| v.as_s().ok()) == Some(&profile_key.sk);
            if is_profile {
                (view.profile, view.profile_rev) =
                    items::read::<ProfileItem>("org profile", item)?.into_profile_at();
            } else {
                let (entry, rev) = items::read::<HostItem>("host entry", item)?.into_entry_at();
                view.host = Some(entry);
                view.host_rev = rev;
            }
        }
        Ok(view)
    }

    async fn put_settings(&self, org: &OrgId, settings: &OrgSettings) -> StoreResult<()> {
        let mut set = vec!["settingsUpdatedAt = :at", "rev = :rev"];
        let mut remove = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::org_profile(org))))
            .expression_attribute_values(
                ":at",
                time(settings.updated_at.unwrap_or_else(|| self.clock.now())),
            )
            .expression_attribute_values(":rev", s(new_rev()));
        // A setting left out goes back to the deployment's default.
        for (attribute, assignment, value) in [
            (
                "provider",
                "provider = :provider",
                settings.provider.map(|p| s(p.as_str())),
            ),
            (
                "fallbackProvider",
                "fallbackProvider = :fallbackProvider",
                settings.fallback.map(|p| s(p.as_str())),
            ),
            (
                "conversationReuseSeconds",
                "conversationReuseSeconds = :conversationReuseSeconds",
                settings.conversation_reuse_seconds.map(n),
            ),
            (
                "noShowGraceMinutes",
                "noShowGraceMinutes = :noShowGraceMinutes",
                settings.no_show_grace_minutes.map(n),
            ),
        ] {
            match value {
                Some(v) => {
                    set.push(assignment);
                    request = request.expression_attribute_values(format!(":{attribute}"), v);
                }
                None => remove.push(attribute),
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        request
            .update_expression(expression)
            .send()
            .await
            .map_err(|e| call_error("UpdateItem", e))?;
        Ok(())
    }

    /// The profile's connection attribute and the org's entry in the list of connections,
    /// together (the cleanup finds the org's account through the entry).
    async fn put_connection(&self, org: &OrgId, connection: &Connection) -> StoreResult<()> {
        let value = serde_dynamo::to_attribute_value(ConnectionItem::of(connection))
            .map_err(|e| StoreError::Build(e.into()))?;
        let profile = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::org_profile(org))))
            .update_expression("SET #c = :c, rev = :rev")
            .expression_attribute_names("#c", connection_attribute(connection.provider))
            .expression_attribute_values(":c", value)
            .expression_attribute_values(":rev", s(new_rev()))
            .build()
            .map_err(super::build_error)?;
        let entry = items::item(&ConnectionEntryItem::of(org, connection.provider))?;
        let written = self
            .transact(vec![
                TransactWriteItem::builder().update(profile).build(),
                self.put(entry, None)?,
            ])
            .await?;
        // Unconditional: only a contended retry budget could refuse it.
        written.then_some(()).ok_or(StoreError::Contended)
    }

    async fn delete_connection(&self, org: &OrgId, kind: ProviderKind) -> StoreResult<bool> {
        let profile = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::org_profile(org))))
            .update_expression("REMOVE #c SET rev = :rev")
            .condition_expression("attribute_exists(#c)")
            .expression_attribute_names("#c", connection_attribute(kind))
            .expression_attribute_values(":rev", s(new_rev()))
            .build()
            .map_err(super::build_error)?;
        self.transact(vec![
            TransactWriteItem::builder().update(profile).build(),
            self.delete(&keys::connection_entry(kind, org))?,
        ])
        .await
    }

    async fn connected_orgs(
        &self,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<(Vec<(OrgId, ProviderKind)>, Option<String>)> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(keys::CONNECTIONS_PK))
            .limit(i32::try_from(limit).unwrap_or(100));
        if let Some(sk) = cursor {
            let at = keys::Key {
                pk: keys::CONNECTIONS_PK.to_owned(),
                sk,
            };
            request = request.set_exclusive_start_key(Some(items::key(&at)));
        }
        let out = request.send().await.map_err(|e| call_error("Query", e))?;
        let next = super::next_sort_key(&out);
        let pairs = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| {
                items::read::<ConnectionEntryItem>("connection entry", i)
                    .map(ConnectionEntryItem::into_pair)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((pairs, next))
    }

    async fn put_host(&self, org: &OrgId, host: &HostEntry) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::item(&HostItem::of(org, host))?))
            .send()
            .await
            .map_err(|e| call_error("PutItem", e))?;
        Ok(())
    }

    async fn delete_host(&self, org: &OrgId, user: &UserId) -> StoreResult<Option<HostEntry>> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::org_host(org, user))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| call_error("DeleteItem", e))?;
        out.attributes
            .filter(|a| !a.is_empty())
            .map(|a| items::read::<HostItem>("host entry", a).map(HostItem::into_entry))
            .transpose()
    }

    async fn list_hosts(
        &self,
        org: &OrgId,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<(Vec<HostEntry>, Option<String>)> {
        let pk = keys::org_of(org);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :host)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":host", s(keys::HOST_SK_PREFIX))
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(100));
        if let Some(sk) = cursor {
            let at = keys::Key { pk, sk };
            request = request.set_exclusive_start_key(Some(items::key(&at)));
        }
        let out = request.send().await.map_err(|e| call_error("Query", e))?;
        let next = super::next_sort_key(&out);
        let hosts = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| items::read::<HostItem>("host entry", i).map(HostItem::into_entry))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((hosts, next))
    }
}
