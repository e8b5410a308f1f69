//! The local demo page (`GET /`): practitioner and patient side by side, driving the real API
//! with tokens the local stack minted. Local only: the gateway binds loopback and nothing of
//! this is in the Lambda functions or the template.

use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value, json};

const PAGE: &str = include_str!("../demo/index.html");
pub const CONFIG_PATH: &str = "/local/demo/config";
pub const ZOOM_EVENT_PATH: &str = "/local/demo/zoom-event";
/// Where the demo org's event subscription delivers (signed, like any receiver's).
pub const DELIVERIES_PATH: &str = "/local/demo/deliveries";
/// The page's feed of verified events: `?after=N` waits up to 15 s for the N+1st.
pub const EVENTS_PATH: &str = "/local/demo/events";
const DEMO_ORG: &str = "clinic-1";
const FEED_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// What the demo needs: the dev tokens (`LOCAL_DEMO_TOKENS`, JSON) and the Zoom sandbox
/// (`LOCAL_ZOOM_SANDBOX_URL`) that signs webhooks to this gateway.
#[derive(Debug, Clone, Default)]
pub struct Demo {
    tokens: Option<Value>,
    sandbox_url: Option<String>,
    webhook_url: String,
    http: reqwest::Client,
    gateway_url: String,
    feed: std::sync::Arc<Feed>,
}

/// The events the demo org's subscription received and verified, for the page.
#[derive(Debug, Default)]
pub struct Feed {
    secret: std::sync::Mutex<Option<telemeet::notify::sign::SigningSecrets>>,
    events: std::sync::Mutex<Vec<Value>>,
    arrived: tokio::sync::Notify,
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
            gateway_url: gateway_url.trim_end_matches('/').to_owned(),
            feed: std::sync::Arc::default(),
        }
    }

    /// Subscribes the demo org to every event, delivered to this gateway's demo door, so
    /// the page shows what a platform would receive (and rings on `conversation.call`).
    pub async fn subscribe(
        &self,
        events: &crate::events::LocalEvents,
        writer: &dyn telemeet::secrets::SecretWriter,
    ) -> Result<(), String> {
        use telemeet::notify::sign::{SigningSecrets, generate_secret};
        let org = telemeet::ids::OrgId::parse(DEMO_ORG, "org").map_err(|e| e.to_string())?;
        let sub = telemeet::domain::subscription::Subscription {
            id: telemeet::domain::subscription::new_id(),
            org,
            url: format!("{}{DELIVERIES_PATH}", self.gateway_url),
            events: vec!["*".to_owned()],
            created_at: chrono::Utc::now(),
            disabled_at: None,
        };
        let secret = generate_secret();
        let json = SigningSecrets::json(&secret, None);
        writer
            .put_secret(
                &sub.secret_name(&events.app.settings.secrets_prefix),
                &json.to_string(),
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
        let Value::Object(map) = json else {
            return Err("signing secret JSON".into());
        };
        let parsed = <SigningSecrets as telemeet::secrets::FromSecret>::from_secret(&map)?;
        *self.feed.secret.lock().unwrap_or_else(|e| e.into_inner()) = Some(parsed);
        events
            .app
            .stores
            .subscriptions
            .put_subscription(&sub)
            .await
            .map_err(|e| e.to_string())
    }

    /// The demo's answer to `method path`, or `None` when it is not a demo route.
    pub async fn handle(
        &self,
        method: &http::Method,
        (path, query): (&str, &str),
        headers: &http::HeaderMap,
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
            ("POST", DELIVERIES_PATH) => Some(self.delivered(headers, body)),
            ("GET", EVENTS_PATH) => Some(self.events(query).await),
            _ => None,
        }
    }

    /// A signed delivery to the demo org's subscription: verified, then on the feed.
    fn delivered(&self, headers: &http::HeaderMap, body: &[u8]) -> hyper::Response<Full<Bytes>> {
        let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        let (id, ts) = (header("webhook-id"), header("webhook-timestamp"));
        let text = String::from_utf8_lossy(body);
        let now = chrono::Utc::now();
        let expected = {
            let secret = self.feed.secret.lock().unwrap_or_else(|e| e.into_inner());
            secret
                .as_ref()
                .map(|s| s.header(id, ts.parse().unwrap_or(0), &text, now))
        };
        let signature = header("webhook-signature");
        let verified =
            expected.is_some_and(|e| e.split(' ').any(|s| signature.split(' ').any(|t| t == s)));
        let Ok(event) = serde_json::from_slice::<Value>(body) else {
            return json_answer(400, &json!({ "message": "not JSON" }));
        };
        if !verified {
            return json_answer(400, &json!({ "message": "signature not verified" }));
        }
        let mut feed = self.feed.events.lock().unwrap_or_else(|e| e.into_inner());
        // At least once: a repeated id is dropped, as a platform would.
        if !feed.iter().any(|e| e["id"] == json!(id)) {
            feed.push(json!({ "id": id, "type": event["type"], "data": event["data"] }));
            self.feed.arrived.notify_waiters();
        }
        answer(204, "application/json", Bytes::new())
    }

    /// The feed after the `after`-th event, waiting a while for one when there is none.
    async fn events(&self, query: &str) -> hyper::Response<Full<Bytes>> {
        let after: usize = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("after="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let deadline = tokio::time::Instant::now() + FEED_WAIT;
        loop {
            let arrived = self.feed.arrived.notified();
            let slice: Vec<Value> = {
                let feed = self.feed.events.lock().unwrap_or_else(|e| e.into_inner());
                feed.iter().skip(after).cloned().collect()
            };
            if !slice.is_empty() || tokio::time::Instant::now() >= deadline {
                let next = after + slice.len();
                return json_answer(200, &json!({ "events": slice, "next": next }));
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
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
