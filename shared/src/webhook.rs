//! The Zoom webhook (guarantee 3): the public, unauthenticated door of the service.
//!
//! Every delivery is verified on the exact bytes received: `x-zm-signature` must be `v0=` +
//! lowercase hex HMAC-SHA256(secret token, `v0:{x-zm-request-timestamp}:{raw body}`), compared
//! in constant time after a length check, with the timestamp within 300 s of now and both the
//! current and the previous secret token accepted (rotation). Any failure answers one
//! uniform 401 and writes nothing. This entry point takes the raw API Gateway event (not a
//! `lambda_http::Request`) so it decodes base64 bodies itself and never panics on bad input.

use crate::App;
use crate::error::ApiError;
use crate::http::MAX_BODY_BYTES;
use crate::secrets::{FromSecret, secret_opt_str, secret_str};
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use lambda_http::Context;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::aws_lambda_events::encodings::Body;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::fmt;
use std::time::Instant;
use subtle::ConstantTimeEq;
use tracing::Instrument;

/// Deliveries older or newer than this are refused (replay window).
pub const TOLERANCE_SECONDS: i64 = 300;
pub const PATH: &str = "/webhooks/zoom";

/// `ZOOM_WEBHOOK_SECRET_ID`: `{"secretToken","previousSecretToken"?}`.
pub struct WebhookSecrets {
    current: String,
    previous: Option<String>,
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecrets(..)")
    }
}

impl FromSecret for WebhookSecrets {
    fn from_secret(json: &Map<String, Value>) -> Result<Self, String> {
        Ok(Self {
            current: secret_str(json, "secretToken")?,
            previous: secret_opt_str(json, "previousSecretToken"),
        })
    }
}

/// Why a delivery was refused; logged (never the body), never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing, repeated or not text.
    Header(&'static str),
    BadTimestamp,
    StaleTimestamp,
    BadSignature,
    BadEncoding,
    /// Zoom never sends an empty delivery.
    EmptyBody,
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    // HMAC takes keys of any length, so this never fails; if it did, the empty string
    // matches no signature (a refusal, never a panic on the public door).
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `x-zm-signature` Zoom sends for `body` at `timestamp`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hmac_hex(secret, &[b"v0:", timestamp.as_bytes(), b":", body])
    )
}

/// `encryptedToken` of an `endpoint.url_validation` answer.
pub fn encrypted_token(secret: &str, plain_token: &str) -> String {
    hmac_hex(secret, &[plain_token.as_bytes()])
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length first: a truncated signature must never compare equal to a prefix.
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Exactly one value, as text. API Gateway joins repeated headers with commas, so a comma
/// means the header came more than once.
fn single<'a>(headers: &'a http::HeaderMap, name: &'static str) -> Result<&'a str, Refusal> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(Refusal::Header(name))?;
    if values.next().is_some() {
        return Err(Refusal::Header(name));
    }
    let value = value.to_str().map_err(|_| Refusal::Header(name))?;
    if value.contains(',') {
        return Err(Refusal::Header(name));
    }
    Ok(value)
}

/// Verifies one delivery on its exact bytes.
pub fn verify(
    secrets: &WebhookSecrets,
    headers: &http::HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let timestamp = single(headers, "x-zm-request-timestamp")?;
    if timestamp.is_empty()
        || timestamp.len() > 12
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Refusal::BadTimestamp);
    }
    let seconds: i64 = timestamp.parse().map_err(|_| Refusal::BadTimestamp)?;
    if (now.timestamp() - seconds).abs() > TOLERANCE_SECONDS {
        return Err(Refusal::StaleTimestamp);
    }
    let given = single(headers, "x-zm-signature")?;
    let hex = given.strip_prefix("v0=").ok_or(Refusal::BadSignature)?;
    // Zoom sends 64 lower-case hex digits; anything else is not its signature.
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Refusal::BadSignature);
    }
    let accepted = std::iter::once(&secrets.current)
        .chain(secrets.previous.as_ref())
        .any(|secret| {
            constant_time_eq(
                signature(secret, timestamp, body).as_bytes(),
                given.as_bytes(),
            )
        });
    if accepted {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

fn response(status: u16, body: &Value) -> ApiGatewayV2httpResponse {
    let mut r = ApiGatewayV2httpResponse::default();
    r.status_code = i64::from(status);
    r.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r.headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r.body = Some(Body::Text(body.to_string()));
    r
}

fn error(app: &App, err: &ApiError, request_id: &str) -> ApiGatewayV2httpResponse {
    let timestamp = crate::domain::rfc3339_millis(app.service.clock.now());
    response(err.code.status(), &err.body(&timestamp, request_id))
}

/// The `zoom-webhook` function's handler (and the local gateway's for its path).
pub async fn handle(
    app: &App,
    event: ApiGatewayV2httpRequest,
    context: Context,
) -> ApiGatewayV2httpResponse {
    let started = Instant::now();
    let request_id = event
        .request_context
        .request_id
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or(context.request_id);
    let span = tracing::info_span!("request", requestId = %request_id, function = "zoom-webhook", route = "POST /webhooks/zoom");
    async move {
        let result = receive(app, &event).await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                if e.code.status() >= 500 {
                    tracing::error!(
                        code = e.code.as_str(),
                        cause = e.cause.as_deref().unwrap_or(""),
                        "webhook failed"
                    );
                }
                error(app, &e, &request_id)
            }
        };
        tracing::info!(
            status = response.status_code,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            outcome = if response.status_code < 400 {
                "ok"
            } else {
                "error"
            },
            "request done"
        );
        response
    }
    .instrument(span)
    .await
}

async fn receive(
    app: &App,
    event: &ApiGatewayV2httpRequest,
) -> Result<ApiGatewayV2httpResponse, ApiError> {
    let path = event.raw_path.as_deref().unwrap_or("");
    if path != PATH {
        return Err(ApiError::not_found("Route"));
    }
    if event.request_context.http.method != http::Method::POST {
        return Err(ApiError::method_not_allowed(&["POST"]));
    }
    let raw = event.body.as_deref().unwrap_or("");
    // A base64 body is at most 4/3 of the decoded size; either form over the limit is 413.
    if raw.len() > MAX_BODY_BYTES * 4 / 3 + 4
        || (!event.is_base64_encoded && raw.len() > MAX_BODY_BYTES)
    {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let refused = |reason: Refusal| {
        tracing::warn!(reason = ?reason, "webhook delivery refused");
        crate::metrics::count("WebhookRejected", &[]);
        ApiError::new(
            crate::error::ErrorCode::Unauthenticated,
            "Webhook signature verification failed",
        )
    };
    let body: Vec<u8> = if event.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| refused(Refusal::BadEncoding))?
    } else {
        raw.as_bytes().to_vec()
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(refused(Refusal::EmptyBody));
    }
    let secrets = app
        .webhook
        .as_ref()
        .ok_or_else(|| ApiError::internal("ZOOM_WEBHOOK_SECRET_ID is not configured"))?
        .get()
        .await?;
    verify(&secrets, &event.headers, &body, app.service.clock.now()).map_err(refused)?;
    let delivery: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::validation("body", "is not valid JSON"))?;
    if delivery["event"] == "endpoint.url_validation" {
        let plain = delivery["payload"]["plainToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::validation("payload.plainToken", "is required"))?;
        return Ok(response(
            200,
            &json!({ "plainToken": plain, "encryptedToken": encrypted_token(&secrets.current, plain) }),
        ));
    }
    let outcome = app.service.zoom_event(&delivery).await?;
    Ok(response(200, &json!({ "status": outcome.as_str() })))
}
