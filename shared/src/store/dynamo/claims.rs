//! Subject claims (guarantee 1): `SUBJ#{org}#{kind}#{subjectId}` / `CLAIM`.

use super::items::{
    self, ClaimItem, HostItem, MeetingItem, MembershipItem, ProfileItem, ProviderIdItem, TTL, n, s,
};
use super::{DynamoStore, build_error, written};
use crate::domain::claim::{ClaimTime, Takeover, released_due_at};
use crate::domain::{Claim, ClaimState, Meeting, OrgProfile, Subject};
use crate::ids::OrgId;
use crate::store::{ClaimAttempt, ClaimStore, Claimed, Rev, StoreError, StoreResult, keys};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    CancellationReason, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
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

impl DynamoStore {
    /// The claim's put: over nothing, or over `previous` while the takeover table lets it.
    /// A refusal returns the stored claim.
    fn claim_write(
        &self,
        org: &OrgId,
        subject: &Subject,
        attempt: &ClaimAttempt<'_>,
    ) -> StoreResult<TransactWriteItem> {
        let item = items::item(&ClaimItem::of(keys::claim(org, subject), attempt.claim))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let put = match attempt.previous {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(prev) => ClaimState::ALL
                .iter()
                .fold(put, |r, state| {
                    r.expression_attribute_values(format!(":{}", state.as_str()), s(state.as_str()))
                })
                .condition_expression(takeover_condition())
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":prev", s(&prev.token))
                .expression_attribute_values(":now", n(attempt.now.timestamp_millis())),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    /// A transaction's check that the item at `key` is still at `rev`; a refusal returns it.
    fn unchanged(&self, key: &keys::Key, rev: &Rev) -> StoreResult<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(items::key(key)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let check = match rev {
            Rev::Absent => check.condition_expression("attribute_not_exists(pk)"),
            Rev::Unmarked => {
                check.condition_expression("attribute_exists(pk) AND attribute_not_exists(rev)")
            }
            Rev::At(r) => check
                .condition_expression("rev = :rev")
                .expression_attribute_values(":rev", s(r)),
        };
        Ok(TransactWriteItem::builder()
            .condition_check(check.build().map_err(build_error)?)
            .build())
    }
}

/// Why a claim's transaction was refused (its items: the claim, the profile check, the
/// host check, then the spends), from its reasons.
fn refusal(reasons: Vec<CancellationReason>, attempt: &ClaimAttempt<'_>) -> StoreResult<Claimed> {
    let old = |i: usize| {
        reasons
            .get(i)
            .and_then(|r| r.item.clone())
            .filter(|i| !i.is_empty())
    };
    let is_refused = |i: usize| super::refused(reasons.get(i));
    if is_refused(1) || is_refused(2) {
        let mut view = attempt.view.clone();
        if is_refused(1) {
            (view.profile, view.profile_rev) = match old(1) {
                Some(item) => items::read::<ProfileItem>("org profile", item)?.into_profile_at(),
                None => (OrgProfile::default(), Rev::Absent),
            };
        }
        if is_refused(2) {
            (view.host, view.host_rev) = match old(2) {
                Some(item) => {
                    let (entry, rev) = items::read::<HostItem>("host entry", item)?.into_entry_at();
                    (Some(entry), rev)
                }
                None => (None, Rev::Absent),
            };
        }
        return Ok(Claimed::ViewChanged(Box::new(view)));
    }
    if is_refused(0) {
        let stored = old(0)
            .map(|item| items::read::<ClaimItem>("claim", item)?.into_claim())
            .transpose()?;
        return Ok(Claimed::Lost(stored));
    }
    let spent = (0..attempt.spends.len()).filter(|i| is_refused(3 + i));
    match crate::domain::org::last_ending(attempt.spends, spent) {
        Some(i) => Ok(Claimed::OverBudget(i)),
        None => Err(StoreError::malformed(
            "transaction refusal",
            "no item of a refused claim names a reason",
        )),
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

    async fn attempt_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        attempt: &ClaimAttempt<'_>,
    ) -> StoreResult<Claimed> {
        let view = attempt.view;
        let mut writes = vec![
            self.claim_write(org, subject, attempt)?,
            self.unchanged(&keys::org_profile(org), &view.profile_rev)?,
            self.unchanged(&keys::org_host(org, &view.host_user), &view.host_rev)?,
        ];
        for spend in attempt.spends {
            writes.push(self.spend_write(spend)?);
        }
        let Some(reasons) = self.transact_or_refusals(writes).await? else {
            return Ok(Claimed::Taken);
        };
        refusal(reasons, attempt)
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
