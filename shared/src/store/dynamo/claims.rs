//! Subject claims (guarantee 1): `SUBJ#{org}#{kind}#{subjectId}` / `CLAIM`.

use super::items::{self, ClaimItem, MeetingItem, MembershipItem, ProviderIdItem, TTL, n, s};
use super::{DynamoStore, build_error, written};
use crate::domain::claim::{ClaimTime, Takeover, released_due_at};
use crate::domain::{Claim, ClaimState, Meeting, Subject};
use crate::ids::OrgId;
use crate::store::{ClaimStore, StoreResult, keys};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};

/// Released claims are only debris once a new claim may take them; DynamoDB may drop them.
const RELEASED_CLAIM_TTL: Duration = Duration::days(7);

/// The attribute holding a claim's time (as [`ClaimItem`] writes it, epoch ms).
fn attribute(time: ClaimTime) -> &'static str {
    match time {
        ClaimTime::LeaseEnd => "leaseUntil",
        ClaimTime::WindowEnd => "windowEndsAt",
    }
}

/// The domain's takeover table as a condition on the stored claim: it must still be the
/// claim read (`:prev` token) and takeable at `:now`, so the rule the caller applied to
/// what it read holds, server-side, at the moment of the write.
pub(super) fn takeover_condition() -> String {
    let rules: Vec<String> = ClaimState::ALL
        .iter()
        .map(|state| {
            let is = format!("#state = :{}", state.as_str());
            match state.takeover() {
                Takeover::Always => is,
                Takeover::After { time, if_unset } => {
                    let a = attribute(time);
                    if if_unset {
                        format!("({is} AND (attribute_not_exists({a}) OR {a} <= :now))")
                    } else {
                        format!("({is} AND {a} <= :now)")
                    }
                }
            }
        })
        .collect();
    format!("claimToken = :prev AND ({})", rules.join(" OR "))
}

impl DynamoStore {
    /// The claim → ready update of a finalize, conditioned on still holding it.
    fn ready(&self, token: &str, m: &Meeting) -> StoreResult<TransactWriteItem> {
        // A conversation's claim remembers when its meeting's reuse window ends.
        let window = m.expires_at.map(|t| n(t.timestamp_millis()));
        let set_window = if window.is_some() {
            ", windowEndsAt = :window"
        } else {
            ""
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::claim(&m.org, &m.subject))))
            .update_expression(format!(
                "SET #state = :ready{set_window} REMOVE leaseUntil, duePk, dueAt, reconcile"
            ))
            .condition_expression("claimToken = :token AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":ready", s(ClaimState::Ready.as_str()))
            .expression_attribute_values(":pending", s(ClaimState::Pending.as_str()))
            .expression_attribute_values(":token", s(token));
        let update = match window {
            Some(w) => update.expression_attribute_values(":window", w),
            None => update,
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(build_error)?)
            .build())
    }
}

#[async_trait]
impl ClaimStore for DynamoStore {
    async fn get_claim(&self, org: &OrgId, subject: &Subject) -> StoreResult<Option<Claim>> {
        match self.get(&keys::claim(org, subject)).await? {
            Some(item) => items::read::<ClaimItem>("claim", item)?
                .into_claim()
                .map(Some),
            None => Ok(None),
        }
    }

    async fn try_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        previous: Option<&Claim>,
        claim: &Claim,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let item = items::item(&ClaimItem::of(keys::claim(org, subject), claim))?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match previous {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(prev) => ClaimState::ALL
                .iter()
                .fold(request, |r, state| {
                    r.expression_attribute_values(format!(":{}", state.as_str()), s(state.as_str()))
                })
                .condition_expression(takeover_condition())
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":prev", s(&prev.token))
                .expression_attribute_values(":now", n(now.timestamp_millis())),
        };
        written("PutItem", request.send().await)
    }

    async fn release_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        token: &str,
        reconcile: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        // A claim that may have left a provider meeting behind must not vanish (a later
        // claimant has to look for that meeting): no TTL, and it stays in the due index for
        // the cleanup's orphan pass. A clean release is debris DynamoDB may drop.
        let (update, extra) = match released_due_at(reconcile, now) {
            Some(due) => (
                "SET #state = :released, reconcile = :reconcile, dueAt = :due REMOVE leaseUntil, #ttl",
                (":due", n(due.timestamp())),
            ),
            None => (
                "SET #state = :released, reconcile = :reconcile, #ttl = :ttl REMOVE leaseUntil, duePk, dueAt",
                (":ttl", n((now + RELEASED_CLAIM_TTL).timestamp())),
            ),
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(&keys::claim(org, subject))))
            .update_expression(update)
            .condition_expression("claimToken = :token AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":released", s(ClaimState::Released.as_str()))
            .expression_attribute_values(":pending", s(ClaimState::Pending.as_str()))
            .expression_attribute_values(
                ":reconcile",
                aws_sdk_dynamodb::types::AttributeValue::Bool(reconcile),
            )
            .expression_attribute_values(extra.0, extra.1)
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        // Lost: already taken over by someone else, nothing of ours to release.
        written("UpdateItem", result).map(drop)
    }

    async fn finalize(&self, token: &str, m: &Meeting) -> StoreResult<bool> {
        let mut writes = vec![
            self.ready(token, m)?,
            self.put(
                items::item(&MeetingItem::of(m, None))?,
                Some("attribute_not_exists(pk)"),
            )?,
            self.put(items::item(&ProviderIdItem::of(m))?, None)?,
        ];
        for (user, role) in m.members() {
            writes.push(self.put(items::item(&MembershipItem::of(m, user, role))?, None)?);
        }
        writes.extend(self.count(m, None)?);
        self.transact(writes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_takeover_condition_is_the_domain_s_table() {
        assert_eq!(
            takeover_condition(),
            "claimToken = :prev AND ((#state = :pending AND (attribute_not_exists(leaseUntil) OR leaseUntil <= :now)) OR (#state = :ready AND windowEndsAt <= :now) OR #state = :released)"
        );
    }

    #[test]
    fn the_claim_times_are_the_attributes_the_item_writes() {
        let claim = Claim {
            state: ClaimState::Pending,
            meeting_id: crate::ids::MeetingId::parse("mtg_a", "t").expect("id"),
            token: "t".into(),
            lease_until: Some(Utc::now()),
            reconcile: false,
            window_ends_at: Some(Utc::now()),
            provider_user: None,
        };
        let key = keys::claim_of("SUBJ#o#appointment#a");
        let item = items::item(&ClaimItem::of(key, &claim)).expect("item");
        for time in [ClaimTime::LeaseEnd, ClaimTime::WindowEnd] {
            assert!(
                matches!(
                    item.get(attribute(time)),
                    Some(aws_sdk_dynamodb::types::AttributeValue::N(_))
                ),
                "{time:?}"
            );
        }
    }
}
