//! The local demo page (`GET /`): practitioner and patient side by side, driving the real API
//! with tokens the local stack minted. Local only: the gateway binds loopback and nothing of
//! this is in the Lambda functions or the template.

use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value, json};

const PAGE: &str = include_str!("../demo/index.html");
pub const CONFIG_PATH: &str = "/local/demo/config";
pub const ZOOM_EVENT_PATH: &str = "/local/demo/zoom-event";

/// What the demo needs: the dev tokens (`LOCAL_DEMO_TOKENS`, JSON) and the Zoom sandbox
/// (`LOCAL_ZOOM_SANDBOX_URL`) that signs webhooks to this gateway.
#[derive(Debug, Clone, Default)]
pub struct Demo {
    tokens: Option<Value>,
    sandbox_url: Option<String>,
    webhook_url: String,
    http: reqwest::Client,
}

fn answer(status: u16, content_type: &'static str, body: Bytes) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(body));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    // The page carries dev tokens: never cached.
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

fn json_answer(status: u16, v: &Value) -> hyper::Response<Full<Bytes>> {
    answer(status, "application/json", Bytes::from(v.to_string()))
}

impl Demo {
    pub fn from_env(gateway_url: &str) -> Self {
        Self {
            tokens: std::env::var("LOCAL_DEMO_TOKENS")
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok()),
            sandbox_url: std::env::var("LOCAL_ZOOM_SANDBOX_URL").ok(),
            webhook_url: format!(
                "{}{}",
                gateway_url.trim_end_matches('/'),
                telemeet::http::webhook::PATH
            ),
            http: reqwest::Client::new(),
        }
    }

    /// The demo's answer to `method path`, or `None` when it is not a demo route.
    pub async fn handle(
        &self,
        method: &http::Method,
        path: &str,
        body: &[u8],
    ) -> Option<hyper::Response<Full<Bytes>>> {
        match (method.as_str(), path) {
            ("GET", "/") => Some(answer(
                200,
                "text/html; charset=utf-8",
                Bytes::from_static(PAGE.as_bytes()),
            )),
            ("GET", CONFIG_PATH) => Some(match &self.tokens {
                Some(t) => json_answer(200, &json!({ "tokens": t })),
                None => json_answer(
                    404,
                    &json!({ "message": "no demo tokens: start the gateway with infra/dev.sh" }),
                ),
            }),
            ("POST", ZOOM_EVENT_PATH) => Some(self.zoom_event(body).await),
            _ => None,
        }
    }

    /// Has the Zoom sandbox send a correctly signed event for a Zoom meeting to this gateway.
    async fn zoom_event(&self, body: &[u8]) -> hyper::Response<Full<Bytes>> {
        let Some(sandbox) = &self.sandbox_url else {
            return json_answer(404, &json!({ "message": "no Zoom sandbox configured" }));
        };
        let Ok(req) = serde_json::from_slice::<Value>(body) else {
            return json_answer(400, &json!({ "message": "body must be JSON" }));
        };
        let (Some(event), Some(meeting)) = (req["event"].as_str(), req["zoomMeetingId"].as_str())
        else {
            return json_answer(
                400,
                &json!({ "message": "event and zoomMeetingId are required" }),
            );
        };
        let allowed = [
            "meeting.started",
            "meeting.ended",
            "meeting.participant_joined",
        ];
        if !allowed.contains(&event) {
            return json_answer(400, &json!({ "message": "unsupported event" }));
        }
        let mut send = json!({ "event": event, "meetingId": meeting, "target": self.webhook_url });
        if event == "meeting.participant_joined" {
            send["participant"] = json!({ "host": req["host"].as_bool().unwrap_or(false) });
        }
        match self
            .http
            .post(format!("{sandbox}/__sandbox/webhooks/send"))
            .json(&send)
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                json_answer(status, &json!({ "delivered": v["status"] }))
            }
            Err(_) => json_answer(502, &json!({ "message": "Zoom sandbox unreachable" })),
        }
    }
}
