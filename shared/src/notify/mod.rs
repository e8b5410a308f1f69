//! Events to the platform (DESIGN.md, "Events to the platform"; guarantee 10).
//!
//! ```text
//! meeting item change ──(DynamoDB stream, NEW_AND_OLD_IMAGES)──► route: domain::notice::changes
//!        ▲                                                         │ one job per matching subscription
//!        │ no-show sweep (every minute, notice-index)              ▼
//!   route (scheduled) ── saves `noShowAt` ──┘              SQS delivery queue ──► deliver
//!                                                     (backoff ≥ 24 h, then the dead-letter queue)
//! ```
//!
//! Every event is a change between two versions of a meeting's record, so the table's own
//! change stream is the only source: nothing is written twice, nothing can be committed
//! without its event. The event id (`webhook-id`) is made from the meeting, the version and
//! the event, so a re-read stream record or a retried delivery carries the same id.

pub mod deliver;
pub mod queue;
pub mod route;
pub mod sign;
pub mod ssrf;
pub mod stream;

use crate::domain::notice::Notice;
use crate::domain::{Meeting, rfc3339_millis};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One delivery of one event to one subscription: the SQS message body. The body is made
/// once, at fan-out, so every retry sends the same bytes under the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub org: crate::ids::OrgId,
    pub subscription_id: String,
    /// `webhook-id`: stable across retries.
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The exact JSON body sent.
    pub body: String,
}

/// The delivery body: `{"type","timestamp","data"}`, `data` the meeting resource (never
/// links, passwords or tokens; ids, never names) with `version` and the event's own fields.
pub fn body(after: &Meeting, notice: &Notice, at: chrono::DateTime<chrono::Utc>) -> String {
    let mut data = crate::http::resource::meeting(after);
    data["version"] = json!(after.version);
    if let Value::Object(map) = &mut data {
        for (k, v) in &notice.fields {
            map.insert(k.clone(), v.clone());
        }
    }
    json!({
        "type": notice.kind.as_str(),
        "timestamp": rfc3339_millis(at),
        "data": data,
    })
    .to_string()
}

/// What the event functions share (the table, the subscriptions, the delivery queue, the
/// secrets). A placeholder until the router and the deliverer land: the function crates and
/// the template are wired against this entry point.
#[derive(Debug, Default)]
pub struct EventsApp {}

impl EventsApp {
    /// Built once per container from the environment (`TABLE_NAME`, `DELIVERY_QUEUE_URL`, ...).
    pub async fn from_env() -> Result<Self, String> {
        Ok(Self::default())
    }
}
