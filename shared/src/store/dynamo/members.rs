//! Memberships by user and start time: `USER#{org}#{user}` / `AT#{start}#{meetingId}`.

use super::items::{self, MembershipItem};
use super::{DynamoStore, call_error};
use crate::ids::MeetingId;
use crate::store::{MemberIndex, StoreResult, UserMeetingsQuery, keys};
use async_trait::async_trait;

#[async_trait]
impl MemberIndex for DynamoStore {
    async fn user_meetings(
        &self,
        q: &UserMeetingsQuery,
    ) -> StoreResult<(Vec<MeetingId>, Option<String>)> {
        let pk = keys::members_of(&q.org, &q.user);
        let (lo, hi) = keys::membership_range(q.from, q.to);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", items::s(&pk))
            .expression_attribute_values(":lo", items::s(lo))
            .expression_attribute_values(":hi", items::s(hi))
            .consistent_read(true)
            .limit(i32::try_from(q.limit).unwrap_or(100));
        if let Some(cursor) = &q.cursor {
            let at = keys::Key {
                pk,
                sk: cursor.clone(),
            };
            request = request.set_exclusive_start_key(Some(items::key(&at)));
        }
        let out = request.send().await.map_err(|e| call_error("Query", e))?;
        let next = super::next_sort_key(&out);
        let ids = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| items::read::<MembershipItem>("membership", i).map(|m| m.meeting_id))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((ids, next))
    }
}
