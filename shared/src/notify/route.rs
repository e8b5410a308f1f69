//! The `event-router` function: the table's change records become delivery jobs (one per
//! event and matching subscription), and every minute the no-show sweep declares the
//! meetings nobody joined (a save, whose change record is then routed like any other).

use super::stream::{StreamBatch, StreamRecord};
use super::{DeliveryJob, EventsApp, body};
use crate::domain::notice::{changes, no_show_due};
use crate::domain::subscription::Subscription;
use crate::ids::OrgId;
use crate::store::keys::DUE_SHARDS;
use crate::telemetry::cause;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Meetings read from the notice index per page.
const NO_SHOW_PAGE: usize = 100;

/// A stream batch (`Records`) or the scheduled no-show pass (`{"time":…}`).
pub async fn handle(app: &EventsApp, payload: &Value) -> Result<Value, String> {
    if payload.get("Records").is_some() {
        let batch: StreamBatch =
            serde_json::from_value(payload.clone()).map_err(|e| format!("stream batch: {e}"))?;
        return Ok(route(app, &batch).await);
    }
    let now = payload
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(|| app.clock.now(), |t| t.to_utc());
    let declared = no_show_sweep(app, now).await?;
    Ok(json!({ "pass": "no-show", "declared": declared }))
}

/// Routes every record in order; at the first that cannot be routed, that record and
/// every later one are reported failed (the stream retries from there, and the ids of
/// what was already queued are stable, so receivers drop the repeats).
pub async fn route(app: &EventsApp, batch: &StreamBatch) -> Value {
    let mut subscriptions: HashMap<OrgId, Vec<Subscription>> = HashMap::new();
    let mut routed = 0usize;
    for record in &batch.records {
        match route_one(app, record, &mut subscriptions).await {
            Ok(n) => routed += n,
            Err(e) => {
                tracing::error!(cause = %e, sequence = %record.dynamodb.sequence_number, "could not route a change; the stream retries it");
                let failed = json!([{ "itemIdentifier": record.dynamodb.sequence_number }]);
                return json!({ "batchItemFailures": failed });
            }
        }
    }
    if routed > 0 {
        crate::metrics::emit(
            "EventsRouted",
            routed as f64,
            crate::metrics::Unit::Count,
            &[],
        );
    }
    json!({ "batchItemFailures": [] })
}

/// The jobs of one change, queued; how many.
async fn route_one(
    app: &EventsApp,
    record: &StreamRecord,
    subscriptions: &mut HashMap<OrgId, Vec<Subscription>>,
) -> Result<usize, String> {
    let Some((before, after)) = record.meeting_change().map_err(|e| cause(&e))? else {
        return Ok(0);
    };
    let notices = changes(before.as_ref(), &after);
    if notices.is_empty() {
        return Ok(0);
    }
    if !subscriptions.contains_key(&after.org) {
        let subs = app
            .stores
            .subscriptions
            .subscriptions(&after.org)
            .await
            .map_err(|e| cause(&e))?;
        subscriptions.insert(after.org.clone(), subs);
    }
    let subs = subscriptions.get(&after.org).map_or(&[][..], Vec::as_slice);
    let at = record.at().unwrap_or_else(|| app.clock.now());
    let mut jobs = Vec::new();
    for notice in &notices {
        let text = body(&after, notice, at);
        for sub in subs.iter().filter(|s| s.wants(notice.kind)) {
            jobs.push(DeliveryJob {
                org: after.org.clone(),
                subscription_id: sub.id.clone(),
                webhook_id: notice.event_id(&after),
                event_type: notice.kind.as_str().to_owned(),
                body: text.clone(),
            });
        }
    }
    app.queue.enqueue(&jobs).await.map_err(|e| cause(&e))?;
    tracing::info!(meetingId = %after.id, version = after.version, events = notices.len(), deliveries = jobs.len(), "change routed");
    Ok(jobs.len())
}

/// Declares every meeting whose no-show check is due at `now`: its record gets
/// `noShowAt`, and the change becomes `meeting.no_show`. A meeting changed meanwhile (a
/// participant joined) is left to the next minute's pass, which re-reads it.
pub async fn no_show_sweep(app: &EventsApp, now: DateTime<Utc>) -> Result<usize, String> {
    let mut declared = 0;
    for shard in 0..DUE_SHARDS {
        let mut cursor = None;
        loop {
            let (page, next) = app
                .stores
                .due
                .no_shows(shard, now, cursor, NO_SHOW_PAGE)
                .await
                .map_err(|e| cause(&e))?;
            for before in page {
                declared += usize::from(declare(app, &before, now).await?);
            }
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(declared)
}

async fn declare(
    app: &EventsApp,
    before: &crate::domain::Meeting,
    now: DateTime<Utc>,
) -> Result<bool, String> {
    // The index is eventually consistent: the record decides.
    if no_show_due(before).is_none_or(|at| at > now) {
        return Ok(false);
    }
    let mut after = before.clone();
    after.signals.no_show_at = Some(now);
    let after = after.next_version(before, now);
    let saved = app
        .stores
        .meetings
        .save(before, &after, None)
        .await
        .map_err(|e| cause(&e))?;
    if saved {
        tracing::info!(meetingId = %after.id, hostJoined = after.attendance.host_joined_at.is_some(), "no-show declared");
    }
    Ok(saved)
}
