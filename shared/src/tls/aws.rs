//! The AWS SDK's HTTP client: the SDK sends through a `reqwest` client on the process's one
//! TLS configuration ([`super::client_config`]) instead of its own hyper and rustls stack,
//! which loads the system certificate store at init.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::time::Duration;

/// Below the SDK's default connect timeout (3.1 s): a DynamoDB endpoint answers in ms.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The SDK's configuration from the environment (`AWS_ENDPOINT_URL` points it at a local
/// stack), sending through [`client`]. Profile files are not read: telemeet is configured by
/// its environment (Lambda has no `~/.aws`), and looking for them cost file I/O at init.
pub fn loader() -> Result<aws_config::ConfigLoader, String> {
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
    let no_files = EnvConfigFiles::builder()
        .with_contents(EnvConfigFileKind::Config, "")
        .build();
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .profile_files(no_files)
        .http_client(client()?))
}

/// An SDK HTTP client over one pooled `reqwest` client.
pub fn client() -> Result<SharedHttpClient, String> {
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(super::client_config()?)
        .connect_timeout(CONNECT_TIMEOUT)
        // The SDK signs exactly what it sends: no redirect is followed, no proxy rewrites.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("AWS HTTP client: {e}"))?;
    Ok(SharedHttpClient::new(Client { http }))
}

#[derive(Debug, Clone)]
struct Client {
    http: reqwest::Client,
}

impl HttpClient for Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            http: self.http.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    http: reqwest::Client,
    /// The SDK's read timeout, applied to the whole exchange (reqwest has no per-request one).
    read_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (http, read_timeout) = (self.http.clone(), self.read_timeout);
        HttpConnectorFuture::new(async move { send(&http, request, read_timeout).await })
    }
}

async fn send(
    http: &reqwest::Client,
    request: HttpRequest,
    read_timeout: Option<Duration>,
) -> Result<HttpResponse, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?;
    let (parts, body) = request.into_parts();
    // DynamoDB, Secrets Manager and SQS requests are JSON held in memory.
    let bytes = body
        .bytes()
        .ok_or_else(|| ConnectorError::user("a streaming request body is not supported".into()))?
        .to_vec();
    let mut request = reqwest::Request::try_from(http::Request::from_parts(parts, bytes))
        .map_err(|e| ConnectorError::user(e.into()))?;
    if let Some(t) = read_timeout {
        *request.timeout_mut() = Some(t);
    }
    let mut response = http.execute(request).await.map_err(classify)?;
    let mut head = http::Response::builder().status(response.status().as_u16());
    if let Some(headers) = head.headers_mut() {
        *headers = std::mem::take(response.headers_mut());
    }
    let body = response.bytes().await.map_err(classify)?;
    let response = head
        .body(SdkBody::from(body))
        .map_err(|e| ConnectorError::other(e.into(), None))?;
    HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
}

/// The SDK retries timeouts and I/O failures (transient), not a malformed request.
fn classify(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}
