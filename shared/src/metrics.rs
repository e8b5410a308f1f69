//! Metrics in CloudWatch's embedded metric format (EMF): one JSON line per data point,
//! written where the logs go (stdout on Lambda), so CloudWatch extracts and graphs them with
//! no API call and no extra latency. Namespace `telemeet`, dimension `function` (plus the
//! few a metric names). Never a secret, link, name or id in a dimension.

use serde_json::{Map, Value, json};
use std::sync::OnceLock;

/// Where metric lines go: the log writer `telemetry` installed.
type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;
static SINK: OnceLock<Sink> = OnceLock::new();

pub const NAMESPACE: &str = "telemeet";

/// Routes metric lines to `sink` (done once, by `telemetry`, with the log writer).
pub fn install(sink: Sink) {
    let _ = SINK.set(sink);
}

#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

fn function_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        // `${stack}-create-meeting` on Lambda: the part after the stack name is the function.
        std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .ok()
            .map(|n| {
                [
                    "create-meeting",
                    "get-meeting-link",
                    "manage-meeting",
                    "zoom-webhook",
                    "cleanup",
                    "event-router",
                    "event-delivery",
                ]
                .into_iter()
                .find(|f| n.ends_with(f))
                .map_or(n.clone(), str::to_owned)
            })
            .unwrap_or_else(|| "local".to_owned())
    })
}

/// One EMF document: `value` of metric `name` with `dimensions` (besides `function`).
pub fn document(name: &str, value: f64, unit: Unit, dimensions: &[(&str, &str)]) -> Value {
    let mut keys = vec![Value::from("function")];
    keys.extend(dimensions.iter().map(|(k, _)| Value::from(*k)));
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [keys],
                "Metrics": [{ "Name": name, "Unit": unit.as_str() }],
            }],
        }),
    );
    doc.insert("function".into(), Value::from(function_name()));
    for (k, v) in dimensions {
        doc.insert((*k).into(), Value::from(*v));
    }
    doc.insert(name.into(), json!(value));
    Value::Object(doc)
}

/// Emits one data point (nothing when no sink is installed, e.g. in unit tests).
pub fn emit(name: &str, value: f64, unit: Unit, dimensions: &[(&str, &str)]) {
    if let Some(sink) = SINK.get() {
        let mut line = document(name, value, unit, dimensions).to_string();
        line.push('\n');
        sink(line.as_bytes());
    }
}

pub fn count(name: &str, dimensions: &[(&str, &str)]) {
    emit(name, 1.0, Unit::Count, dimensions);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_valid_emf() {
        let d = document(
            "ProviderLatency",
            12.5,
            Unit::Milliseconds,
            &[("provider", "zoom"), ("op", "create_meeting")],
        );
        let m = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "telemeet");
        assert_eq!(m["Dimensions"], json!([["function", "provider", "op"]]));
        assert_eq!(
            m["Metrics"],
            json!([{ "Name": "ProviderLatency", "Unit": "Milliseconds" }])
        );
        assert!(d["_aws"]["Timestamp"].is_i64());
        assert_eq!(
            (&d["provider"], &d["op"], &d["ProviderLatency"]),
            (&json!("zoom"), &json!("create_meeting"), &json!(12.5))
        );
        assert!(d["function"].is_string());
    }
}
