//! A local Lambda runtime API (`/2018-06-01/runtime/...`): the function process polls
//! `invocation/next`, answers on `invocation/{id}/response` or `/error`, and reports start-up
//! failures on `init/error`. One emulator serves one function process, so the timings it
//! records (first poll, each answer) belong to that process alone.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";

/// How one invocation ended.
#[derive(Debug)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

struct Pending {
    event: Vec<u8>,
    deadline_ms: u64,
    done: oneshot::Sender<(Outcome, Instant)>,
}

#[derive(Default)]
struct State {
    first_poll: Option<Instant>,
    init_error: Option<String>,
    waiting: HashMap<String, oneshot::Sender<(Outcome, Instant)>>,
}

/// The emulator of one function process.
pub struct Emulator {
    pub addr: SocketAddr,
    queue: mpsc::UnboundedSender<Pending>,
    state: Arc<Mutex<State>>,
    polled: Arc<Notify>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

impl Emulator {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let (queue, rx) = mpsc::unbounded_channel::<Pending>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let state = Arc::new(Mutex::new(State::default()));
        let polled = Arc::new(Notify::new());
        let (st, pl) = (state.clone(), polled.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (rx, st, pl) = (rx.clone(), st.clone(), pl.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (rx, st, pl) = (rx.clone(), st.clone(), pl.clone());
                        async move { Ok::<_, std::convert::Infallible>(route(req, rx, st, pl).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            queue,
            state,
            polled,
            server,
        })
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the function process.
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// When the process first asked for work (its init ended), if it has.
    pub fn first_poll(&self) -> Option<Instant> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first_poll
    }

    pub fn init_error(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .init_error
            .clone()
    }

    /// Waits until the process first polls, or `timeout`.
    pub async fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(t) = self.first_poll() {
                return Some(t);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ =
                tokio::time::timeout(left.min(Duration::from_millis(50)), self.polled.notified())
                    .await;
        }
    }

    /// Queues one invocation (the process picks it up on its next poll) and waits for its
    /// outcome and the instant the answer arrived.
    pub async fn invoke(&self, event: &Value, timeout: Duration) -> Option<(Outcome, Instant)> {
        let (done, rx) = oneshot::channel();
        let deadline_ms = u64::try_from(
            (std::time::SystemTime::now() + timeout)
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_millis(),
        )
        .ok()?;
        self.queue
            .send(Pending {
                event: serde_json::to_vec(event).ok()?,
                deadline_ms,
                done,
            })
            .ok()?;
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }
}

type Queue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>;

async fn route(
    req: Request<Incoming>,
    rx: Queue,
    state: Arc<Mutex<State>>,
    polled: Arc<Notify>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return reply(StatusCode::NOT_FOUND, "not a runtime API path");
    };
    match (req.method().as_str(), rest) {
        ("GET", "/invocation/next") => next_invocation(rx, &state, &polled).await,
        ("POST", "/init/error") => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            state.lock().unwrap_or_else(|e| e.into_inner()).init_error = Some(
                body.map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default(),
            );
            reply(StatusCode::ACCEPTED, "{}")
        }
        ("POST", other) => match other
            .strip_prefix("/invocation/")
            .and_then(|r| r.split_once('/'))
        {
            Some((id, kind)) => {
                let (id, kind) = (id.to_owned(), kind.to_owned());
                invocation_outcome(req, &id, &kind, &state).await
            }
            None => reply(StatusCode::NOT_FOUND, "unknown runtime path"),
        },
        _ => reply(StatusCode::NOT_FOUND, "unknown runtime path"),
    }
}

/// `GET invocation/next`: records the first poll, then hands out the next queued event.
async fn next_invocation(
    rx: Queue,
    state: &Mutex<State>,
    polled: &Notify,
) -> Response<Full<Bytes>> {
    {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.first_poll.get_or_insert_with(Instant::now);
    }
    polled.notify_waiters();
    let Some(next) = rx.lock().await.recv().await else {
        return reply(StatusCode::GONE, "emulator stopped");
    };
    let id = format!("{:032x}", rand::random::<u128>());
    state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .waiting
        .insert(id.clone(), next.done);
    let mut r = reply(StatusCode::OK, next.event);
    let h = r.headers_mut();
    let mut set = |k: &'static str, v: String| {
        if let Ok(v) = http::HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", next.deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:000000000000:function:telemeet-bench".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    set("content-type", "application/json".into());
    r
}

/// `POST invocation/{id}/response` or `/error`: the outcome goes to the waiting invoke.
async fn invocation_outcome(
    req: Request<Incoming>,
    id: &str,
    kind: &str,
    state: &Mutex<State>,
) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let outcome = match kind {
        "response" => Outcome::Response(value),
        "error" => Outcome::Error(value),
        _ => return reply(StatusCode::NOT_FOUND, "unknown runtime path"),
    };
    let waiter = state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .waiting
        .remove(id);
    match waiter {
        Some(w) => {
            let _ = w.send((outcome, at));
            reply(StatusCode::ACCEPTED, "{}")
        }
        None => reply(StatusCode::BAD_REQUEST, "unknown request id"),
    }
}
