//! A counting proxy in front of the local AWS endpoint (moto): the function processes get
//! its URL as `AWS_ENDPOINT_URL`, so every DynamoDB and Secrets Manager call they make is
//! counted by operation (`X-Amz-Target`), with the items a transaction or batch touches.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// Calls and items per operation, e.g. `DynamoDB.GetItem`, `SecretsManager.GetSecretValue`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: BTreeMap<String, u64>,
    /// Items written by transactions and batch writes, keys read by batch gets.
    pub items: BTreeMap<String, u64>,
}

impl Counts {
    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Counts) -> Counts {
        let diff = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>| {
            a.iter()
                .map(|(k, v)| (k.clone(), v - b.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect()
        };
        Counts {
            calls: diff(&self.calls, &before.calls),
            items: diff(&self.items, &before.items),
        }
    }

    pub fn calls_of(&self, prefix: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn get(&self, op: &str) -> u64 {
        self.calls.get(op).copied().unwrap_or(0)
    }

    pub fn items_of(&self, op: &str) -> u64 {
        self.items.get(op).copied().unwrap_or(0)
    }
}

pub struct Proxy {
    pub url: String,
    counts: Arc<Mutex<Counts>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `X-Amz-Target: DynamoDB_20120810.GetItem` → `DynamoDB.GetItem`.
fn operation(target: &str) -> String {
    let (service, op) = target.split_once('.').unwrap_or((target, ""));
    let service = if service.starts_with("DynamoDB") {
        "DynamoDB"
    } else if service.eq_ignore_ascii_case("secretsmanager") {
        "SecretsManager"
    } else {
        service
    };
    format!("{service}.{op}")
}

fn items(op: &str, body: &[u8]) -> u64 {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return 0;
    };
    let len = |v: &Value| v.as_array().map_or(0, Vec::len) as u64;
    match op {
        "DynamoDB.TransactWriteItems" => len(&v["TransactItems"]),
        "DynamoDB.BatchWriteItem" | "DynamoDB.BatchGetItem" => v["RequestItems"]
            .as_object()
            .map_or(0, |t| t.values().map(|x| len(x).max(len(&x["Keys"]))).sum()),
        _ => 0,
    }
}

impl Proxy {
    pub async fn start(upstream: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let counts = Arc::new(Mutex::new(Counts::default()));
        let client = reqwest::Client::new();
        let c = counts.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (c, client, upstream) = (c.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (c, client, upstream) = (c.clone(), client.clone(), upstream.clone());
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                forward(req, &client, &upstream, &c).await,
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            url,
            counts,
            server,
        })
    }

    pub fn counts(&self) -> Counts {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

async fn forward(
    req: Request<Incoming>,
    client: &reqwest::Client,
    upstream: &str,
    counts: &Mutex<Counts>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        let op = operation(target);
        let n = items(&op, &body);
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        *c.calls.entry(op.clone()).or_default() += 1;
        if n > 0 {
            *c.items.entry(op).or_default() += n;
        }
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut out = client.request(parts.method.clone(), format!("{upstream}{path}"));
    for (k, v) in &parts.headers {
        if k != http::header::HOST && k != http::header::CONTENT_LENGTH {
            out = out.header(k, v);
        }
    }
    let answer = match out.body(body).send().await {
        Ok(a) => a,
        Err(_) => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"upstream unreachable")));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            return r;
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut r = Response::new(Full::new(bytes));
    *r.status_mut() = status;
    for (k, v) in &headers {
        if k != http::header::CONTENT_LENGTH && k != http::header::TRANSFER_ENCODING {
            r.headers_mut().insert(k, v.clone());
        }
    }
    r
}
