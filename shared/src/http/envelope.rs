//! The one request envelope of every entry point (the API functions and the webhook): the
//! request's span (request id, function, route) on every log line, errors turned into the
//! contract's body and logged with their cause, and one final "request done" line.

use super::error::ApiError;
use crate::clock::Clock;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::{Body, Response};
use serde_json::Value;
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;

/// A response type an entry point answers with.
pub trait Reply: Sized {
    fn status(&self) -> u16;

    /// A JSON answer.
    fn json(status: u16, body: &Value) -> Self;

    /// The error's answer: its body, and the headers it calls for.
    fn error(err: &ApiError, body: &Value) -> Self;
}

const JSON: http::HeaderValue = http::HeaderValue::from_static("application/json");
// Meetings and links are personal: no shared caches.
const NO_STORE: http::HeaderValue = http::HeaderValue::from_static("no-store");

/// The headers an error asks for: `Retry-After` and `Allow`.
fn error_headers(err: &ApiError, headers: &mut http::HeaderMap) {
    if let Some(s) = err.retry_after
        && let Ok(v) = http::HeaderValue::from_str(&s.to_string())
    {
        headers.insert(http::header::RETRY_AFTER, v);
    }
    if let Some(allow) = err.allow.as_deref()
        && let Ok(v) = http::HeaderValue::from_str(allow)
    {
        headers.insert(http::header::ALLOW, v);
    }
}

impl Reply for Response<Body> {
    fn status(&self) -> u16 {
        Response::status(self).as_u16()
    }

    fn json(status: u16, body: &Value) -> Self {
        let mut response = Response::new(Body::Text(body.to_string()));
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, JSON);
        response
            .headers_mut()
            .insert(http::header::CACHE_CONTROL, NO_STORE);
        response
    }

    fn error(err: &ApiError, body: &Value) -> Self {
        let mut response = Self::json(err.code.status(), body);
        error_headers(err, response.headers_mut());
        if err.code.status() == 401 {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The webhook's raw API Gateway answer (Zoom signs, it does not send bearer tokens).
impl Reply for ApiGatewayV2httpResponse {
    fn status(&self) -> u16 {
        u16::try_from(self.status_code).unwrap_or(500)
    }

    fn json(status: u16, body: &Value) -> Self {
        let mut r = ApiGatewayV2httpResponse::default();
        r.status_code = i64::from(status);
        r.headers.insert(http::header::CONTENT_TYPE, JSON);
        r.headers.insert(http::header::CACHE_CONTROL, NO_STORE);
        r.body = Some(lambda_http::aws_lambda_events::encodings::Body::Text(
            body.to_string(),
        ));
        r
    }

    fn error(err: &ApiError, body: &Value) -> Self {
        let mut r = Self::json(err.code.status(), body);
        error_headers(err, &mut r.headers);
        r
    }
}

/// Names the matched route in the request's span (and so on every line after).
pub fn record_route(template: &'static str) {
    tracing::Span::current().record("route", template);
}

/// Runs `work` inside the request's span and answers what it gives, or its error's body.
pub async fn enveloped<R, F>(
    clock: &dyn Clock,
    function: &'static str,
    request_id: &str,
    work: F,
) -> R
where
    R: Reply,
    F: Future<Output = Result<R, ApiError>>,
{
    // Real time: the latency measured for the log, not a deadline.
    let started = Instant::now();
    let span = tracing::info_span!("request", requestId = %request_id, function, route = tracing::field::Empty);
    async move {
        let response = match work.await {
            Ok(ok) => ok,
            Err(err) => {
                log_error(&err);
                let timestamp = crate::domain::rfc3339_millis(clock.now());
                R::error(&err, &err.body(&timestamp, request_id))
            }
        };
        let status = response.status();
        tracing::info!(
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            outcome = if (200..300).contains(&status) {
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

/// 5xx: an error with its cause chain. A refusal with a cause (a provider's rate limit,
/// say): a warning. Plain refusals (404, 403, …) are in the final line's status.
fn log_error(err: &ApiError) {
    let code = err.code.as_str();
    if err.code.status() >= 500 {
        tracing::error!(code, cause = err.cause.as_deref(), "request failed");
    } else if let Some(cause) = err.cause.as_deref() {
        tracing::warn!(code, cause, "request refused");
    }
}
