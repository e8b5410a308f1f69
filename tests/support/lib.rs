//! Helpers for the black-box tests: an HTTP client for the API, contract checks on error
//! bodies, and real `lambda_http` requests for in-process handler tests.

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;
use telemeet::domain::{Claim, Meeting, Subject};
use telemeet::ids::OrgId;
use telemeet::store::{ClaimAttempt, ClaimStore, Claimed, StoreResult};

pub use local_stack::{Options, Signer, Stack};

pub const CREATE_OP: &str = "POST /v2/users/{userId}/meetings";
pub const GET_OP: &str = "GET /v2/meetings/{meetingId}";
pub const LIST_OP: &str = "GET /v2/users/{userId}/meetings";
pub const TOKEN_OP: &str = "POST /oauth/token";

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A client of the HTTP API at `base`.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.expect("the API answers");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn put_appointment(&self, token: &str, appointment: &str, body: &Value) -> Reply {
        self.send(
            "PUT",
            &format!("/appointments/{appointment}/meeting"),
            Some(token),
            Some(body.to_string()),
        )
        .await
    }

    pub async fn get(&self, token: &str, path: &str) -> Reply {
        self.send("GET", path, Some(token), None).await
    }
}

/// A valid appointment body: host dr-7, participant pat-9, tomorrow 10:00 UTC.
pub fn appointment_body() -> Value {
    let start = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT10:00:00Z");
    json!({
        "hostUserId": "dr-7",
        "participantUserIds": ["pat-9"],
        "startTime": start.to_string(),
        "durationMinutes": 30,
        "timezone": "Europe/Berlin",
    })
}

/// Asserts the contract's error body: only `error`, with code, message, RFC 3339
/// timestamp, request id and optional details, nothing else.
pub fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "status of {:?}", reply.body);
    let top = reply
        .body
        .as_object()
        .expect("an error body is a JSON object");
    assert_eq!(
        top.keys().collect::<Vec<_>>(),
        ["error"],
        "{:?}",
        reply.body
    );
    let e = reply.body["error"].as_object().expect("error is an object");
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["code", "details", "message", "requestId", "timestamp"]
    );
    assert_eq!(e["code"], code, "{:?}", reply.body);
    assert!(e["details"].is_object(), "details is always an object");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    let ts = e["timestamp"].as_str().expect("timestamp");
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
        "timestamp {ts}"
    );
    assert!(e["requestId"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

/// The field a 400 names.
pub fn error_field(reply: &Reply) -> &str {
    reply.body["error"]["details"]["field"]
        .as_str()
        .unwrap_or("")
}

/// A real `lambda_http` request, built from the payload v2 event API Gateway would send.
pub fn lambda_request(
    method: &str,
    path_and_query: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> lambda_http::Request {
    let mut builder = http::Request::builder().method(method).uri(path_and_query);
    if let Some(t) = token {
        builder = builder.header("authorization", format!("Bearer {t}"));
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    let (parts, ()) = builder.body(()).expect("request").into_parts();
    let event = local_gateway::api_gateway_event(
        &parts,
        body.as_bytes(),
        "127.0.0.1:1".parse().expect("addr"),
        &format!("test-{}", rand::random::<u32>()),
    );
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event")
}

/// Like [`lambda_request`], as API Gateway sends it after its JWT authorizer accepted a
/// token with these claims (`requestContext.authorizer.jwt.claims`).
pub fn lambda_request_with_claims(
    method: &str,
    path_and_query: &str,
    claims: &Value,
    body: Option<&Value>,
) -> lambda_http::Request {
    let mut builder = http::Request::builder().method(method).uri(path_and_query);
    let body = body.map(Value::to_string).unwrap_or_default();
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    let (parts, ()) = builder.body(()).expect("request").into_parts();
    let mut event = local_gateway::api_gateway_event(
        &parts,
        body.as_bytes(),
        "127.0.0.1:1".parse().expect("addr"),
        &format!("test-{}", rand::random::<u32>()),
    );
    event["requestContext"]["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": null } });
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event")
}

/// Runs a request through the handler in-process and returns status, headers and JSON.
pub async fn call(
    app: &telemeet::App,
    function: telemeet::http::router::Function,
    req: lambda_http::Request,
) -> Reply {
    // Boxed: a test awaiting many handlers would otherwise carry the largest handler's
    // whole state (big in debug builds) inline, on a test thread's 2 MiB stack.
    let Ok(res) = Box::pin(telemeet::http::handle(app, function, req)).await;
    let (parts, body) = res.into_parts();
    let body = match body {
        lambda_http::Body::Text(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// A token valid for a day, for tests that move an injected clock by hours.
pub fn day_token(stack: &Stack, sub: &str, role: &str, org: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    stack.sign(
        Signer::Hs256,
        json!({
            "iss": local_stack::ISSUER, "aud": local_stack::AUDIENCE,
            "sub": sub, "role": role, "org": org, "iat": now, "exp": now + 86_400,
        }),
    )
}

/// Asserts two links are the same without printing them (links never reach output).
#[track_caller]
pub fn assert_same_link(a: &Value, b: &Value, what: &str) {
    assert!(
        a.is_string() && a == b,
        "{what}: the links differ or are missing"
    );
}

/// Asserts two links differ without printing them.
#[track_caller]
pub fn assert_other_link(a: &Value, b: &Value, what: &str) {
    assert!(
        a.is_string() && b.is_string() && a != b,
        "{what}: the links are equal or missing"
    );
}

/// A stack without gateways (the stack creates the table) for in-process handler tests,
/// whose log lines it captures for [`Stack::finish`]'s checks.
pub async fn in_process_stack() -> Stack {
    let mut stack = Stack::start(Options {
        gateways: 0,
        ..Default::default()
    })
    .await
    .expect("stack");
    stack.capture_in_process_logs();
    stack
}

/// Waits (up to 5 s) until the Zoom sandbox holds `n` meetings: a create we stopped waiting
/// for lands later, in the sandbox's own time.
pub async fn zoom_meetings_reach(stack: &Stack, n: usize) -> bool {
    for _ in 0..50 {
        let made = stack
            .sandbox(reqwest::Method::GET, "/__sandbox/meetings", None)
            .await;
        if made["meetings"].as_array().is_some_and(|m| m.len() == n) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// A clock for in-process tests, starting now.
pub fn manual_clock() -> Arc<telemeet::clock::ManualClock> {
    Arc::new(telemeet::clock::ManualClock::new(chrono::Utc::now()))
}

/// An in-process stack, a manual clock at the real now, and an app with default settings.
pub async fn in_process_app() -> (Stack, Arc<telemeet::clock::ManualClock>, telemeet::App) {
    let stack = in_process_stack().await;
    let clock = manual_clock();
    let app = stack
        .app(clock.clone(), telemeet::service::Settings::default())
        .await
        .expect("app");
    (stack, clock, app)
}

/// The real claim store with one fault: `finalize` signals `reached` and then never
/// completes, so the holder "dies" between its provider call and its final write (the test
/// aborts it).
pub struct DiesBeforeFinalWrite {
    pub inner: Arc<dyn ClaimStore>,
    pub reached: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl ClaimStore for DiesBeforeFinalWrite {
    async fn get_claim(&self, org: &OrgId, subject: &Subject) -> StoreResult<Option<Claim>> {
        self.inner.get_claim(org, subject).await
    }
    async fn attempt_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        attempt: &ClaimAttempt<'_>,
    ) -> StoreResult<Claimed> {
        self.inner.attempt_claim(org, subject, attempt).await
    }
    async fn release_claim(
        &self,
        org: &OrgId,
        subject: &Subject,
        token: &str,
        reconcile: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner
            .release_claim(org, subject, token, reconcile, now)
            .await
    }
    async fn finalize(&self, _token: &str, _meeting: &Meeting) -> StoreResult<bool> {
        self.reached.notify_one();
        std::future::pending().await
    }
}

// ---------------------------------------------------------------- Zoom webhooks

/// Independent of the code under test: HMAC-SHA256 hex, straight from the crates.
pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(secret.as_bytes())
        .expect("key");
    hmac::Mac::update(&mut mac, message);
    hmac::Mac::finalize(mac)
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn sign(secret: &str, ts: i64, body: &[u8]) -> String {
    let mut message = format!("v0:{ts}:").into_bytes();
    message.extend_from_slice(body);
    format!("v0={}", hmac_hex(secret, &message))
}

/// A raw API Gateway v2 event for `POST /webhooks/zoom`.
pub fn delivery(
    headers: &[(&str, String)],
    body: &str,
    base64: bool,
) -> lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest {
    delivery_to("/webhooks/zoom", headers, body, base64)
}

/// A raw API Gateway v2 event for `POST {path}` (an org's own webhook path, say).
pub fn delivery_to(
    path: &str,
    headers: &[(&str, String)],
    body: &str,
    base64: bool,
) -> lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest {
    let mut h = serde_json::Map::new();
    for (k, v) in headers {
        h.insert((*k).to_owned(), Value::String(v.clone()));
    }
    h.insert("content-type".into(), json!("application/json"));
    serde_json::from_value(json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": h,
        "requestContext": { "requestId": format!("wh-{}", rand::random::<u32>()), "http": { "method": "POST", "path": path } },
        "body": body, "isBase64Encoded": base64,
    }))
    .expect("an API Gateway event")
}

pub async fn deliver(
    app: &telemeet::App,
    event: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest,
) -> (u16, Value) {
    let r = telemeet::http::webhook::handle(app, event, lambda_http::Context::default()).await;
    let body = match r.body {
        Some(lambda_http::Body::Text(t)) => serde_json::from_str(&t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (u16::try_from(r.status_code).unwrap_or(0), body)
}

/// A signed Zoom event about `zoom_id`, delivered at the clock's now.
pub async fn zoom_reports(
    stack: &Stack,
    app: &telemeet::App,
    clock: &telemeet::clock::ManualClock,
    kind: &str,
    zoom_id: &str,
    n: u32,
) -> String {
    let id: i64 = zoom_id.parse().expect("a Zoom meeting number");
    let ts = telemeet::clock::Clock::now(clock).timestamp();
    let object = json!({ "id": id, "uuid": format!("u-{n}"), "host_id": "h", "participant": { "id": format!("p-{n}"), "user_id": format!("{n}") } });
    let body = json!({ "event": kind, "event_ts": ts * 1000 + i64::from(n), "payload": { "account_id": "a", "object": object } }).to_string();
    let signature = sign(&stack.webhook_secret, ts, body.as_bytes());
    let headers = [
        ("x-zm-request-timestamp", ts.to_string()),
        ("x-zm-signature", signature),
    ];
    let (status, answer) = deliver(app, delivery(&headers, &body, false)).await;
    assert_eq!(status, 200, "{answer}");
    answer["status"].as_str().unwrap_or("").to_owned()
}
