//! The local gateway: serves telemeet's production paths on loopback, turning each HTTP
//! request into the API Gateway (HTTP API, payload v2) event the Lambdas receive and
//! handing it to the same handler code.

pub mod cleanup;
pub mod demo;
pub mod events;
pub mod template;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Context, RequestExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use telemeet::App;
use telemeet::cleanup::CleanupSettings;
use telemeet::http::router::{self, Function};
use tokio::net::TcpListener;

/// The local-only door to the weekly cleanup (DESIGN.md, Local stack).
pub const CLEANUP_PATH: &str = "/local/events/cleanup";
/// Local only: the scheduled no-show pass of the `event-router` function.
pub const NO_SHOW_PATH: &str = "/local/events/no-show";

/// API Gateway's own payload limit; smaller bodies reach the handler, which enforces ours.
const GATEWAY_MAX_BODY: usize = 10 * 1024 * 1024;
/// The deadline a local invocation gets, like a Lambda timeout.
const INVOCATION_TIMEOUT_MS: u64 = 30_000;

/// The cleanup as the gateway runs it: its settings, and the work queue when the stack
/// has one (then `detail.fanOut: true` runs a whole fanned-out cycle).
pub struct LocalCleanup {
    pub settings: CleanupSettings,
    pub queue: Option<cleanup::LocalCleanupQueue>,
}

/// Binds `127.0.0.1:port` (0 = any free port). Nothing but loopback is ever bound.
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// Serves until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    cleanup: Arc<LocalCleanup>,
    demo: Arc<demo::Demo>,
    events: Option<Arc<events::LocalEvents>>,
) -> std::io::Result<()> {
    let counter = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, peer) = listener.accept().await?;
        let (app, cleanup, demo) = (app.clone(), cleanup.clone(), demo.clone());
        let (counter, events) = (counter.clone(), events.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let (app, cleanup, demo) = (app.clone(), cleanup.clone(), demo.clone());
                let events = events.clone();
                let n = counter.fetch_add(1, Ordering::Relaxed);
                async move {
                    Ok::<_, std::convert::Infallible>(
                        invoke(&app, &cleanup, &demo, events.as_deref(), req, peer, n).await,
                    )
                }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection closed");
            }
        });
    }
}

fn json_answer(status: u16, body: &Value) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn plain(status: u16, message: &str) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(
        json!({ "message": message }).to_string(),
    )));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// The gateway's own doors (the demo page, its token and event helpers, the cleanup
/// trigger): not in the template, and not for any web page to drive.
fn is_local_door(path: &str) -> bool {
    path == "/" || path.starts_with("/local/")
}

/// Whether `host` (a `Host` header or an `Origin`'s host, with or without a port) names
/// this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:3000`
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A request may use the local doors only when it is addressed to loopback (no DNS
/// rebinding) and is not a cross-site browser request (no other site's `Origin`, no
/// `Sec-Fetch-Site: cross-site`): then a web page the developer visits cannot drive them.
pub fn local_door_allowed(headers: &http::HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host_ok = text("host").is_some_and(is_loopback_host);
    let origin_ok = match text("origin") {
        None => true,
        Some(o) => reqwest::Url::parse(o)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .is_some_and(|h| is_loopback_host(&h)),
    };
    let fetch_ok = text("sec-fetch-site").is_none_or(|s| s != "cross-site");
    host_ok && origin_ok && fetch_ok
}

async fn invoke(
    app: &App,
    cleanup: &LocalCleanup,
    demo: &demo::Demo,
    events: Option<&events::LocalEvents>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    n: u64,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, GATEWAY_MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        // API Gateway answers oversize payloads itself, in its own format.
        Err(_) => return plain(413, "Request Entity Too Large"),
    };
    if is_local_door(parts.uri.path()) && !local_door_allowed(&parts.headers) {
        return plain(
            403,
            "the local gateway's own routes answer loopback, same-site requests only",
        );
    }
    // Local only: the demo page and its two helpers (never in the Lambda functions).
    let target = (parts.uri.path(), parts.uri.query().unwrap_or(""));
    if let Some(answer) = demo
        .handle(&parts.method, target, &parts.headers, &body)
        .await
    {
        return answer;
    }
    let request_id = format!("local-{}-{n}", std::process::id());
    let event = api_gateway_event(&parts, &body, peer, &request_id);
    let mut context = Context::default();
    context.request_id = request_id;
    context.deadline = chrono::Utc::now().timestamp_millis().max(0) as u64 + INVOCATION_TIMEOUT_MS;
    if parts.uri.path() == NO_SHOW_PATH && parts.method == http::Method::POST {
        return no_show_pass(events, &body).await;
    }
    if parts.uri.path() == CLEANUP_PATH && parts.method == http::Method::POST {
        return cleanup_door(app, cleanup, &body, &context).await;
    }
    let path = parts.uri.path();
    if path == telemeet::http::webhook::PATH
        || path.starts_with(telemeet::http::webhook::ORG_PATH_PREFIX)
    {
        // The webhook function takes the raw event, like API Gateway hands it over.
        let Ok(raw) = serde_json::from_value(event) else {
            return plain(400, "Bad Request");
        };
        let answer = telemeet::http::webhook::handle(app, raw, context).await;
        return from_gateway_response(answer);
    }
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(_) => return plain(400, "Bad Request"),
    };
    let request = request.with_lambda_context(context);
    // Route to the function API Gateway would invoke; unknown paths get the handler's 404.
    let function = router::route(request.method(), request.raw_http_path())
        .map(|r| r.route.owner())
        .unwrap_or(Function::CreateMeeting);
    let Ok(response) = telemeet::http::handle(app, function, request).await;
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

/// Local only: hands an EventBridge scheduled event to the cleanup, answers its summary
/// (with `detail.fanOut`, a whole fanned-out cycle's).
async fn cleanup_door(
    app: &App,
    cleanup: &LocalCleanup,
    body: &[u8],
    context: &Context,
) -> hyper::Response<Full<Bytes>> {
    let Ok(scheduled) = serde_json::from_slice::<Value>(body) else {
        return plain(400, "the body must be an EventBridge scheduled event");
    };
    if scheduled["detail"]["fanOut"] == true {
        return fan_out(app, cleanup, &scheduled).await;
    }
    let deadline = telemeet::cleanup::deadline_of(context, app.service.clock.as_ref());
    match telemeet::cleanup::run(app, &cleanup.settings, &scheduled, deadline).await {
        Ok(summary) => json_answer(200, &summary),
        Err(invalid) => {
            let e = telemeet::http::error::ApiError::from(invalid);
            json_answer(
                e.code.status(),
                &e.body(&chrono::Utc::now().to_rfc3339(), &context.request_id),
            )
        }
    }
}

/// Local only: a weekly cycle fanned out through the work queue (planner, then every
/// worker run until the queue is empty), its summed summary with the number of runs.
/// Boxed here, so the cycle's large future is never part of `invoke`'s.
fn fan_out<'a>(
    app: &'a App,
    cleanup: &'a LocalCleanup,
    scheduled: &'a Value,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = hyper::Response<Full<Bytes>>> + Send + 'a>>
{
    Box::pin(async move {
        let Some(queue) = &cleanup.queue else {
            return plain(400, "the local stack has no cleanup queue");
        };
        let sender = queue.sender();
        let worker = cleanup::Worker {
            app,
            settings: &cleanup.settings,
            sender: &sender,
            timeout: cleanup::FUNCTION_TIMEOUT,
        };
        match cleanup::cycle(queue, worker, scheduled).await {
            Ok(summary) => json_answer(200, &summary),
            Err(e) => plain(500, &e),
        }
    })
}

/// Local only: the no-show pass of `event-router`, at the scheduled event's `time`.
async fn no_show_pass(
    events: Option<&events::LocalEvents>,
    body: &[u8],
) -> hyper::Response<Full<Bytes>> {
    let (Some(events), Ok(scheduled)) = (events, serde_json::from_slice::<Value>(body)) else {
        return plain(400, "events are off, or the body is no scheduled event");
    };
    match telemeet::notify::route::handle(&events.app, &scheduled).await {
        Ok(summary) => json_answer(200, &summary),
        Err(e) => plain(500, &e),
    }
}

/// What API Gateway makes of a function's payload v2 answer.
fn from_gateway_response(
    r: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse,
) -> hyper::Response<Full<Bytes>> {
    use base64::Engine;
    let bytes = match r.body {
        Some(Body::Text(t)) if r.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(t)
            .map(Bytes::from)
            .unwrap_or_default(),
        Some(Body::Text(t)) => Bytes::from(t),
        Some(Body::Binary(b)) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let mut response = hyper::Response::new(Full::new(bytes));
    *response.status_mut() = u16::try_from(r.status_code)
        .ok()
        .and_then(|s| hyper::StatusCode::from_u16(s).ok())
        .unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    *response.headers_mut() = r.headers;
    response
}

/// The payload v2 event API Gateway's HTTP API sends for this request.
pub fn api_gateway_event(
    parts: &http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
    request_id: &str,
) -> Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        let Ok(v) = value.to_str() else { continue };
        // API Gateway joins repeated headers with commas.
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|e| {
                if let Value::String(s) = e {
                    s.push(',');
                    s.push_str(v);
                }
            })
            .or_insert_with(|| Value::String(v.to_owned()));
    }
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok("") => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => {
            use base64::Engine;
            (
                Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
                true,
            )
        }
    };
    let now = chrono::Utc::now();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_local_doors_answer_loopback_same_site_requests_only() {
        for ok in [
            &[("host", "127.0.0.1:3000")][..],
            &[
                ("host", "localhost:3000"),
                ("origin", "http://localhost:3000"),
            ],
            &[("host", "[::1]:3000"), ("sec-fetch-site", "same-origin")],
            &[("host", "127.0.0.1"), ("origin", "http://127.0.0.1:3000")],
        ] {
            assert!(local_door_allowed(&headers(ok)), "{ok:?}");
        }
        for refused in [
            &[][..],
            &[("host", "evil.example")],
            &[("host", "127.0.0.1.evil.example:3000")],
            &[("host", "localhost.evil.example")],
            &[
                ("host", "127.0.0.1:3000"),
                ("origin", "https://evil.example"),
            ],
            &[("host", "127.0.0.1:3000"), ("origin", "null")],
            &[("host", "127.0.0.1:3000"), ("sec-fetch-site", "cross-site")],
        ] {
            assert!(!local_door_allowed(&headers(refused)), "{refused:?}");
        }
        assert!(is_local_door("/") && is_local_door("/local/events/cleanup"));
        assert!(!is_local_door("/meetings/mtg_1"));
    }
}
