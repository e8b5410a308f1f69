//! One HTTP exchange with a provider's API, the same for every provider: a timeout, the
//! transport failure classified, one log line (operation, status, latency; never the URL,
//! the authorization or a body) and the JSON answer.

use super::ProviderError;
use super::retry::transport_error;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A provider's answer: status, headers and the JSON body (`Null` when there is none).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// A provider's API client.
#[derive(Clone)]
pub struct ProviderHttp {
    pub client: reqwest::Client,
    pub provider: &'static str,
}

impl ProviderHttp {
    /// Sends one API request. A POST that fails after it may have been sent is ambiguous:
    /// the provider may have acted on it.
    pub async fn send(
        &self,
        op: &'static str,
        method: &Method,
        url: &reqwest::Url,
        authorization: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Answer, ProviderError> {
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .timeout(timeout)
            .header(AUTHORIZATION, authorization);
        if let Some(b) = body {
            request = request.json(b);
        }
        exchange(self.provider, op, request, *method == Method::POST).await
    }
}

/// One exchange of `request`, ready to send: transport failures classified (`changes`: the
/// request changes something, so a failure after sending is ambiguous), the call recorded,
/// the answer read (its body `Null` when it is not JSON).
pub async fn exchange(
    provider: &'static str,
    op: &'static str,
    request: reqwest::RequestBuilder,
    changes: bool,
) -> Result<Answer, ProviderError> {
    let started = Instant::now();
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(provider, &e, changes))?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| transport_error(provider, &e, changes))?;
    record_call(provider, op, status, started);
    Ok(Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

/// Every provider call, API or token grant, gives one log line and one latency metric.
pub fn record_call(provider: &'static str, op: &'static str, status: StatusCode, started: Instant) {
    let latency = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        provider,
        op,
        status = status.as_u16(),
        latency_ms = latency as u64,
        "provider call"
    );
    crate::metrics::emit(
        "ProviderLatency",
        latency,
        crate::metrics::Unit::Milliseconds,
        &[("provider", provider), ("op", op)],
    );
}
