//! The local stack: moto (DynamoDB + Secrets Manager), the Zoom and Zoho sandboxes and
//! local gateways, each a child process on a free loopback port, with the secrets seeded. The dev command
//! and the black-box tests start it the same way; dropping a [`Stack`] stops everything.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use telemeet::app::{App, Clients};
use telemeet::clock::Clock;
use telemeet::config::Config;
use telemeet::ids::RandomIds;
use telemeet::secrets::SecretsManagerSource;
use telemeet::service::Settings;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const ISSUER: &str = "telemeet-local";
pub const AUDIENCE: &str = "telemeet";
pub const TABLE_NAME: &str = "telemeet-local";
pub const AUTH_SECRET_ID: &str = "telemeet/local/auth";
pub const ZOOM_SECRET_ID: &str = "telemeet/local/zoom";
pub const JITSI_SECRET_ID: &str = "telemeet/local/jitsi";
pub const ZOHO_SECRET_ID: &str = "telemeet/local/zoho";
/// The local Zoho organisation (the sandbox checks the path's zsoid against it).
pub const ZOHO_ZSOID: &str = "70012345";
/// Where orgs' own provider connections live in the local Secrets Manager.
pub const ORG_SECRETS_PREFIX: &str = "telemeet/local/orgs/";
pub const ZOOM_WEBHOOK_SECRET_ID: &str = "telemeet/local/zoom-webhook";
/// The self-hosted Jitsi domain of the local stack (links point there; nothing serves it).
pub const JITSI_DOMAIN: &str = "meet.telemeet.local";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// RS256 keys for local use only (see keys/README.md).
pub const DEV_RS256_PRIVATE: &str = include_str!("../keys/dev-rs256-private.pem");
pub const DEV_RS256_PUBLIC: &str = include_str!("../keys/dev-rs256-public.pem");
pub const OTHER_RS256_PRIVATE: &str = include_str!("../keys/other-rs256-private.pem");

#[derive(Debug, Clone)]
pub struct Options {
    /// Local gateway processes sharing moto and the sandbox (0: none; the stack then
    /// creates the table itself).
    pub gateways: usize,
    /// Port of the first gateway; 0 picks a free one.
    pub gateway_port: u16,
    /// Copy the gateways' log lines to this process's stdout (the dev command).
    pub echo_logs: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            gateways: 1,
            gateway_port: 0,
            echo_logs: false,
        }
    }
}

/// How a test token is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The stack's HS256 secret.
    Hs256,
    /// The stack's trusted RS256 key.
    Rs256,
    /// An HS256 secret nobody trusts.
    WrongHs256,
    /// An RS256 key nobody trusts.
    WrongRs256,
    /// HS256 with the trusted RS256 *public* key as the HMAC secret (algorithm confusion).
    Hs256WithPublicKey,
}

pub struct Stack {
    pub root: PathBuf,
    pub moto_url: String,
    pub sandbox_url: String,
    /// The Zoho sandbox (accounts and Meeting API on one port).
    pub zoho_url: String,
    pub gateway_urls: Vec<String>,
    hs256_secret: String,
    zoom_client_secret: String,
    zoom_account_id: String,
    zoom_client_id: String,
    zoho_client_id: String,
    zoho_client_secret: String,
    zoho_refresh_token: String,
    /// The local Jitsi app secret (HS256), so tests can verify the links' tokens.
    pub jitsi_app_secret: String,
    /// The Zoom webhook secret token (the sandbox signs deliveries with it).
    pub webhook_secret: String,
    logs: Arc<Mutex<Vec<String>>>,
    minted: Mutex<Vec<String>>,
    http: reqwest::Client,
    /// Whether telemeet code logs into this stack (gateways or captured in-process apps).
    telemeet_logs: bool,
    /// The DynamoDB client in-process apps get (e.g. one with a counting interceptor).
    pub dynamodb: Option<aws_sdk_dynamodb::Client>,
    /// The Secrets Manager client in-process apps get (e.g. one recording its calls).
    pub secretsmanager: Option<aws_sdk_secretsmanager::Client>,
    // Declared last: dropped (killed) after everything else.
    children: Vec<Child>,
}

fn random(len: usize) -> String {
    use rand::RngExt;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| A[rng.random_range(0..A.len())] as char)
        .collect()
}

/// The repository root (this crate lives in infra/local-stack).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

fn python(root: &Path) -> Result<PathBuf, String> {
    let p = std::env::var_os("TELEMEET_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: run `bash infra/venv.sh` first (the README commands do)",
            p.display()
        ))
    }
}

/// A binary of this workspace next to the running executable (`target/<profile>/` or, for
/// tests, its `deps/` subfolder).
pub fn sibling_binary(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "binary {name} not found next to {}: run `cargo build --workspace --bins` first",
                exe.display()
            )
        })
}

impl Stack {
    pub async fn start(options: Options) -> Result<Stack, String> {
        let root = repo_root();
        let python = python(&root)?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut stack = Stack {
            root: root.clone(),
            moto_url: String::new(),
            sandbox_url: String::new(),
            zoho_url: String::new(),
            gateway_urls: Vec::new(),
            hs256_secret: random(48),
            zoom_client_secret: random(32),
            zoom_account_id: format!("acc{}", random(10)),
            zoom_client_id: format!("cid{}", random(12)),
            zoho_client_id: format!("1000.{}", random(20)),
            zoho_client_secret: random(32),
            zoho_refresh_token: format!("1000.{}.{}", random(32), random(32)),
            jitsi_app_secret: random(40),
            webhook_secret: random(32),
            logs: logs.clone(),
            minted: Mutex::new(Vec::new()),
            http: reqwest::Client::new(),
            telemeet_logs: options.gateways > 0,
            dynamodb: None,
            secretsmanager: None,
            children: Vec::new(),
        };

        let mut moto = Command::new(&python);
        moto.arg(root.join("infra/moto/serve.py"))
            .args(["--port", "0"]);
        stack.moto_url = stack.spawn("moto", moto, Ready::Line, false).await?;

        let mut sandbox = Command::new(&python);
        sandbox
            .arg(root.join("infra/zoom-sandbox/sandbox.py"))
            .args(["--port", "0"])
            .args(["--account-id", &stack.zoom_account_id])
            .args(["--client-id", &stack.zoom_client_id])
            .args(["--client-secret", &stack.zoom_client_secret])
            .args(["--webhook-secret", &stack.webhook_secret])
            // Zoom's 100 creates/updates per host user per day would stop tests that set up more
            // meetings than that through the one host; a test of the cap sets it (POST /__sandbox/daily-cap).
            .args(["--daily-cap", "1000000"]);
        stack.sandbox_url = stack
            .spawn("zoom-sandbox", sandbox, Ready::Line, false)
            .await?;

        let mut zoho = Command::new(&python);
        zoho.arg(root.join("infra/zoho-sandbox/sandbox.py"))
            .args(["--port", "0"])
            .args(["--client-id", &stack.zoho_client_id])
            .args(["--client-secret", &stack.zoho_client_secret])
            .args(["--refresh-token", &stack.zoho_refresh_token])
            .args(["--zsoid", ZOHO_ZSOID]);
        stack.zoho_url = stack
            .spawn("zoho-sandbox", zoho, Ready::Line, false)
            .await?;

        stack.seed_secrets().await?;
        if options.gateways == 0 {
            let def = local_gateway::template::table_definition(local_gateway::template::TEMPLATE)?;
            let aws = stack.aws_config().await;
            local_gateway::template::ensure_table(
                &aws_sdk_dynamodb::Client::new(&aws),
                TABLE_NAME,
                &def,
            )
            .await?;
        }
        let demo_tokens = stack.demo_tokens();
        for i in 0..options.gateways {
            let mut cmd = Command::new(sibling_binary("local-gateway")?);
            cmd.envs(stack.env())
                // The demo page at `/` acts as these (local only).
                .env("LOCAL_DEMO_TOKENS", &demo_tokens)
                .env("LOCAL_ZOOM_SANDBOX_URL", &stack.sandbox_url)
                .env(
                    "PORT",
                    if i == 0 { options.gateway_port } else { 0 }.to_string(),
                )
                // Tests fire hundreds of concurrent PUTs at one serialised moto.
                .env("LOCAL_CLAIM_WAIT_SECONDS", "25")
                // One gateway reads the table's stream and the delivery queue (as one set of
                // event functions serves a deployment).
                .env("LOCAL_EVENTS", if i == 0 { "on" } else { "off" });
            let url = stack
                .spawn(
                    &format!("gateway-{i}"),
                    cmd,
                    Ready::Listening,
                    options.echo_logs,
                )
                .await?;
            stack.gateway_urls.push(url);
        }
        Ok(stack)
    }

    /// The configuration every telemeet process of this stack reads.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("TABLE_NAME", TABLE_NAME.to_owned()),
            ("AUTH_SECRET_ID", AUTH_SECRET_ID.to_owned()),
            ("ZOOM_SECRET_ID", ZOOM_SECRET_ID.to_owned()),
            ("JITSI_SECRET_ID", JITSI_SECRET_ID.to_owned()),
            ("ZOHO_SECRET_ID", ZOHO_SECRET_ID.to_owned()),
            ("ZOHO_ACCOUNTS_URL", self.zoho_url.clone()),
            ("ZOHO_API_BASE_URL", self.zoho_url.clone()),
            ("ZOOM_WEBHOOK_SECRET_ID", ZOOM_WEBHOOK_SECRET_ID.to_owned()),
            ("MEETING_PROVIDER", "zoom".to_owned()),
            ("ORG_SECRETS_PREFIX", ORG_SECRETS_PREFIX.to_owned()),
            // Like the sandbox's --daily-cap: tests put far more meetings through one host
            // than Zoom's 100 a day; the budget tests set their own.
            ("ZOOM_HOST_DAILY_BUDGET", "1000000".to_owned()),
            ("ZOOM_API_BASE_URL", format!("{}/v2", self.sandbox_url)),
            (
                "ZOOM_OAUTH_TOKEN_URL",
                format!("{}/oauth/token", self.sandbox_url),
            ),
            ("AWS_ENDPOINT_URL", self.moto_url.clone()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "local".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    pub fn gateway(&self) -> &str {
        &self.gateway_urls[0]
    }

    /// The AWS SDK configuration of this stack (moto's endpoint, local credentials).
    pub async fn aws_config(&self) -> aws_config::SdkConfig {
        // The production HTTP client (one TLS configuration, shared/src/tls.rs); building
        // it only fails on a broken TLS setup, which every test should see at once.
        let loader = telemeet::tls::aws::loader().unwrap_or_else(|e| panic!("{e}"));
        loader
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "local-stack",
            ))
            .endpoint_url(&self.moto_url)
            .load()
            .await
    }

    /// An in-process [`App`] on this stack, with an injected clock (every wait and
    /// deadline of the app goes through it) and settings.
    pub async fn app(&self, clock: Arc<dyn Clock>, settings: Settings) -> Result<App, String> {
        self.app_configured(clock, settings, &[]).await
    }

    /// Like [`Stack::app`], with some configuration overridden (e.g. `FALLBACK_PROVIDER`).
    pub async fn app_configured(
        &self,
        clock: Arc<dyn Clock>,
        settings: Settings,
        overrides: &[(&str, &str)],
    ) -> Result<App, String> {
        let mut env = self.env();
        for (k, v) in overrides {
            env.retain(|(name, _)| name != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let config = Config::from_lookup(|k| {
            env.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })?;
        let aws = self.aws_config().await;
        let secrets = Arc::new(SecretsManagerSource::new(
            self.secretsmanager
                .clone()
                .unwrap_or_else(|| aws_sdk_secretsmanager::Client::new(&aws)),
        ));
        let clients = Clients {
            dynamodb: self
                .dynamodb
                .clone()
                .unwrap_or_else(|| aws_sdk_dynamodb::Client::new(&aws)),
            secrets: secrets.clone(),
            secret_writer: secrets,
            http: telemeet::app::http_client()?,
        };
        Ok(App::build(
            &config,
            clients,
            clock,
            Arc::new(RandomIds),
            settings,
        ))
    }

    async fn seed_secrets(&self) -> Result<(), String> {
        let client = aws_sdk_secretsmanager::Client::new(&self.aws_config().await);
        let secrets = [
            (
                AUTH_SECRET_ID,
                json!({
                    "issuer": ISSUER,
                    "audience": AUDIENCE,
                    "hs256Secret": self.hs256_secret,
                    "rs256PublicKeyPem": DEV_RS256_PUBLIC,
                }),
            ),
            (
                ZOOM_SECRET_ID,
                json!({
                    "accountId": self.zoom_account_id,
                    "clientId": self.zoom_client_id,
                    "clientSecret": self.zoom_client_secret,
                    "userId": "me",
                }),
            ),
            (
                ZOOM_WEBHOOK_SECRET_ID,
                json!({ "secretToken": self.webhook_secret }),
            ),
            (
                JITSI_SECRET_ID,
                json!({ "domain": JITSI_DOMAIN, "appId": "telemeet-local", "appSecret": self.jitsi_app_secret }),
            ),
            (
                ZOHO_SECRET_ID,
                json!({
                    "clientId": self.zoho_client_id,
                    "clientSecret": self.zoho_client_secret,
                    "refreshToken": self.zoho_refresh_token,
                    "dataCenter": "com",
                    "zsoid": ZOHO_ZSOID,
                }),
            ),
        ];
        for (name, value) in secrets {
            client
                .create_secret()
                .name(name)
                .secret_string(value.to_string())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "seeding {name}: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                    )
                })?;
        }
        Ok(())
    }

    /// Writes meeting records straight into the table (25 a request), as if created over
    /// time: for tests and benchmarks that need many meetings without creating each one.
    pub async fn put_meetings(&self, meetings: &[telemeet::domain::Meeting]) -> Result<(), String> {
        let client = aws_sdk_dynamodb::Client::new(&self.aws_config().await);
        for chunk in meetings.chunks(25) {
            let mut writes = Vec::with_capacity(chunk.len());
            for m in chunk {
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .set_item(Some(
                        telemeet::store::dynamo::meeting_item(m).map_err(|e| e.to_string())?,
                    ))
                    .build()
                    .map_err(|e| e.to_string())?;
                writes.push(
                    aws_sdk_dynamodb::types::WriteRequest::builder()
                        .put_request(put)
                        .build(),
                );
            }
            client
                .batch_write_item()
                .request_items(TABLE_NAME, writes)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "BatchWriteItem: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    )
                })?;
        }
        Ok(())
    }

    /// A `PUT /org/providers/zoom` body for the sandbox's own account, with a fresh webhook
    /// secret token (remembered for the leak checks) and the given extra fields.
    pub fn zoom_connection(&self, extra: &Value) -> Value {
        let token = format!("whtok-{}", random(32));
        self.remember(&token);
        let mut body = json!({
            "accountId": self.zoom_account_id,
            "clientId": self.zoom_client_id,
            "clientSecret": self.zoom_client_secret,
            "webhookSecretToken": token,
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        body
    }

    /// Adds a user to the sandbox's own Zoom account (a practitioner's Zoom login).
    pub async fn zoom_user(&self, email: &str) -> Value {
        let path = format!("/__sandbox/accounts/{}/users", self.zoom_account_id);
        self.sandbox(
            reqwest::Method::POST,
            &path,
            Some(json!({ "email": email })),
        )
        .await
    }

    /// A second Zoom account at the sandbox (a clinic's own), with these users; answers the
    /// `PUT /org/providers/zoom` body for it (its secrets remembered for the leak checks).
    pub async fn zoom_account(&self, emails: &[&str]) -> Value {
        let (account, client, secret) = (
            format!("acc{}", random(10)),
            format!("cid{}", random(12)),
            format!("csecret{}", random(24)),
        );
        self.remember(&secret);
        let mut body = self.zoom_connection(&json!({}));
        // The account's Zoom app signs its webhooks with the connection's secret token.
        let users: Vec<Value> = emails.iter().map(|e| json!({ "email": e })).collect();
        let made = self
            .sandbox(
                reqwest::Method::POST,
                "/__sandbox/accounts",
                Some(json!({ "accountId": account, "clientId": client,
                             "clientSecret": secret, "users": users,
                             "webhookSecret": body["webhookSecretToken"] })),
            )
            .await;
        assert_eq!(
            made["accountId"], account,
            "the sandbox made the account: {made}"
        );
        body["accountId"] = json!(account);
        body["clientId"] = json!(client);
        body["clientSecret"] = json!(secret);
        body
    }

    /// Replaces a secret's value (a rotation, or a misconfiguration in a test).
    pub async fn put_secret(&self, name: &str, value: &Value) {
        let client = aws_sdk_secretsmanager::Client::new(&self.aws_config().await);
        client
            .put_secret_value()
            .secret_id(name)
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutSecretValue {name}: {e}"));
        for secret in value
            .as_object()
            .into_iter()
            .flat_map(|o| o.values())
            .filter_map(Value::as_str)
        {
            if secret.len() >= 6 {
                self.remember(secret);
            }
        }
    }

    /// The demo page's tokens (practitioner dr-7, patient pat-9, service svc-1 of
    /// clinic-1), valid for 12 hours, as JSON.
    fn demo_tokens(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let token = |sub: &str, role: &str| {
            self.sign(
                Signer::Hs256,
                json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "role": role, "org": "clinic-1", "iat": now, "exp": now + 12 * 3600 }),
            )
        };
        json!({
            "practitioner": token("dr-7", "practitioner"),
            "patient": token("pat-9", "patient"),
            "service": token("svc-1", "service"),
        })
        .to_string()
    }

    /// A caller token signed with the stack's HS256 secret, valid for an hour.
    pub fn token(&self, sub: &str, role: &str, org: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign(
            Signer::Hs256,
            json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "role": role, "org": org, "iat": now, "exp": now + 3600 }),
        )
    }

    /// Any claims, signed as asked (for the authentication tests).
    pub fn sign(&self, signer: Signer, claims: Value) -> String {
        let (alg, key) = match signer {
            Signer::Hs256 => (
                Algorithm::HS256,
                EncodingKey::from_secret(self.hs256_secret.as_bytes()),
            ),
            Signer::WrongHs256 => (
                Algorithm::HS256,
                EncodingKey::from_secret(b"not-the-stack-secret-at-all-00000"),
            ),
            Signer::Rs256 => (Algorithm::RS256, rsa(DEV_RS256_PRIVATE)),
            Signer::Hs256WithPublicKey => (
                Algorithm::HS256,
                EncodingKey::from_secret(DEV_RS256_PUBLIC.as_bytes()),
            ),
            Signer::WrongRs256 => (Algorithm::RS256, rsa(OTHER_RS256_PRIVATE)),
        };
        let token = jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap_or_default();
        self.remember(&token);
        token
    }

    /// Records a secret-grade string the logs must never contain.
    pub fn remember(&self, secret: &str) {
        self.minted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(secret.to_owned());
    }

    /// A log writer feeding this stack's log lines, for in-process apps: their lines are
    /// checked by [`Stack::finish`] like the processes' output.
    pub fn capture_in_process_logs(&mut self) {
        assert!(
            telemeet::telemetry::init_with_writer(LogSink(self.logs.clone())),
            "another log subscriber is installed: run in-process stack tests one per process (cargo nextest)"
        );
        self.telemeet_logs = true;
    }

    /// Waits (up to 5 s: output is read asynchronously) until `count` log lines contain
    /// `needle`, and returns how many do.
    pub async fn log_lines_with(&self, needle: &str, count: usize) -> usize {
        let mut seen = 0;
        for _ in 0..50 {
            seen = self.logs().iter().filter(|l| l.contains(needle)).count();
            if seen >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    }

    /// Everything the stack's processes printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A request to the Zoom sandbox's control API (`/__sandbox/...`).
    pub async fn sandbox(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.control("Zoom", &self.sandbox_url, method, path, body)
            .await
    }

    /// A request to the Zoho sandbox's control API (`/__sandbox/...`).
    pub async fn zoho(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.control("Zoho", &self.zoho_url, method, path, body)
            .await
    }

    async fn control(
        &self,
        name: &str,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut req = self.http.request(method, format!("{base}{path}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        // Test infrastructure: a sandbox that does not answer must fail the test, never read
        // as zero calls.
        let reply = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name} sandbox {path}: {e}"));
        let text = reply
            .text()
            .await
            .unwrap_or_else(|e| panic!("{name} sandbox {path}: {e}"));
        if text.is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} sandbox {path}: {e}"))
    }

    /// How many requests the Zoho sandbox received (`counts`) or answered with 2xx
    /// (`succeeded`) for an operation key such as `POST /api/v2/{zsoid}/sessions.json`.
    pub async fn zoho_calls(&self, which: &str, operation: &str) -> u64 {
        let calls = self
            .zoho(reqwest::Method::GET, "/__sandbox/calls", None)
            .await;
        calls[which][operation]
            .as_u64()
            .unwrap_or_else(|| panic!("the Zoho sandbox does not count {which} {operation}"))
    }

    /// Injects a fault rule into the Zoho sandbox.
    pub async fn zoho_fault(&self, rule: Value) {
        self.zoho(reqwest::Method::POST, "/__sandbox/faults", Some(rule))
            .await;
    }

    /// How many requests the sandbox received for an operation key such as
    /// `POST /v2/users/{userId}/meetings`.
    pub async fn sandbox_count(&self, operation: &str) -> u64 {
        let calls = self
            .sandbox(reqwest::Method::GET, "/__sandbox/calls", None)
            .await;
        calls["counts"][operation]
            .as_u64()
            .unwrap_or_else(|| panic!("the sandbox does not count {operation}"))
    }

    pub async fn sandbox_succeeded(&self, operation: &str) -> u64 {
        let calls = self
            .sandbox(reqwest::Method::GET, "/__sandbox/calls", None)
            .await;
        calls["succeeded"][operation]
            .as_u64()
            .unwrap_or_else(|| panic!("the sandbox does not count {operation}"))
    }

    /// An access token from the sandbox's OAuth endpoint, with the stack's credentials.
    pub async fn zoom_access_token(&self) -> String {
        let connection = self.zoom_connection(&json!({}));
        self.zoom_access_token_for(&connection).await
    }

    /// An access token for the account of a `PUT /org/providers/zoom` body (`accountId`,
    /// `clientId`, `clientSecret`), as that account's own app would get one.
    pub async fn zoom_access_token_for(&self, connection: &Value) -> String {
        let field = |k: &str| connection[k].as_str().unwrap_or_default().to_owned();
        let answer: Value = match self
            .http
            .post(format!("{}/oauth/token", self.sandbox_url))
            .basic_auth(field("clientId"), Some(field("clientSecret")))
            .query(&[
                ("grant_type", "account_credentials"),
                ("account_id", field("accountId").as_str()),
            ])
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        answer["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Injects a fault rule into the sandbox.
    pub async fn fault(&self, rule: Value) {
        self.sandbox(reqwest::Method::POST, "/__sandbox/faults", Some(rule))
            .await;
    }

    /// Every secret-grade value of this run: ours, the minted tokens and all the sandbox
    /// issued (access tokens, start_url tokens, passcodes, links).
    pub async fn secrets(&self) -> Vec<String> {
        let mut all = vec![
            self.hs256_secret.clone(),
            self.zoom_client_secret.clone(),
            self.jitsi_app_secret.clone(),
            self.webhook_secret.clone(),
            self.zoho_client_secret.clone(),
            self.zoho_refresh_token.clone(),
        ];
        all.extend(
            self.minted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        let issued = self
            .sandbox(reqwest::Method::GET, "/__sandbox/issued", None)
            .await;
        for key in ["accessTokens", "zakTokens", "passwords"] {
            all.extend(
                issued[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
        let meetings = self
            .sandbox(reqwest::Method::GET, "/__sandbox/meetings", None)
            .await;
        for m in meetings["meetings"].as_array().into_iter().flatten() {
            for key in ["start_url", "join_url", "password", "encrypted_password"] {
                all.extend(m[key].as_str().map(str::to_owned));
            }
        }
        let zoho = self
            .zoho(reqwest::Method::GET, "/__sandbox/issued", None)
            .await;
        for key in [
            "accessTokens",
            "linkTokens",
            "refreshTokens",
            "clientSecrets",
        ] {
            all.extend(
                zoho[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
        let sessions = self
            .zoho(reqwest::Method::GET, "/__sandbox/meetings", None)
            .await;
        for m in sessions["meetings"].as_array().into_iter().flatten() {
            for key in ["startLink", "joinLink"] {
                all.extend(m[key].as_str().map(str::to_owned));
            }
        }
        all.retain(|s| s.len() >= 6);
        all
    }

    /// The end of every stack test: no secret, token or link in any log line, and every
    /// request the sandbox received conformed to Zoom's spec (minus `expected_invalid`).
    pub async fn finish(self, expected_invalid: u64) {
        let secrets = self.secrets().await;
        let calls = self
            .sandbox(reqwest::Method::GET, "/__sandbox/calls", None)
            .await;
        let logs = self.logs();
        // Leaked lines are shown with the secrets blanked out: test output is a log too.
        let leaks: Vec<String> = logs
            .iter()
            .filter(|line| secrets.iter().any(|s| line.contains(s.as_str())))
            .map(|line| {
                secrets
                    .iter()
                    .fold(line.clone(), |l, s| l.replace(s.as_str(), "<SECRET>"))
            })
            .collect();
        assert!(
            leaks.is_empty(),
            "{} log line(s) contain a secret, token or link, e.g. {:?}",
            leaks.len(),
            leaks.first()
        );
        let invalid = calls["invalid"].as_u64().unwrap_or(u64::MAX);
        assert_eq!(
            invalid, expected_invalid,
            "requests the Zoom sandbox found invalid against Zoom's spec: {}",
            calls["requests"]
        );
        let zoho = self
            .zoho(reqwest::Method::GET, "/__sandbox/calls", None)
            .await;
        assert_eq!(
            zoho["invalid"].as_u64(),
            Some(0),
            "requests the Zoho sandbox found invalid: {}",
            zoho["requests"]
        );
        if self.telemeet_logs {
            // The leak check above must have had telemeet's own lines to read.
            // (telemeet logs JSON lines with a level; moto and the sandbox do not.)
            assert!(
                logs.iter()
                    .any(|l| l.starts_with('{') && l.contains(r#""level":"#)),
                "no telemeet log line was captured"
            );
        }
    }

    async fn spawn(
        &mut self,
        name: &str,
        mut cmd: Command,
        ready: Ready,
        echo: bool,
    ) -> Result<String, String> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Dropping the stack kills its children; this also stops them when the owner dies
        // without dropping it (a killed test, Ctrl-C on a hung run).
        #[allow(unsafe_code, reason = "the workspace's one unsafe block")]
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| format!("starting {name}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        for (stream, tx) in [
            (
                Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                Some(tx),
            ),
            (Box::new(stderr), None),
        ] {
            let logs = self.logs.clone();
            let name = name.to_owned();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if echo {
                        println!("[{name}] {line}");
                    }
                    if let Some(tx) = &tx {
                        let _ = tx.send(line.clone());
                    }
                    logs.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        let url = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = rx.recv().await {
                if let Some(url) = ready.url(&line) {
                    return Some(url);
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        self.children.push(child);
        url.ok_or_else(|| {
            format!(
                "{name} did not become ready; its output:\n{}",
                self.logs().join("\n")
            )
        })
    }
}

/// `MakeWriter` for in-process logs: each event is written through its own writer, whose
/// bytes become log lines when it is dropped.
#[derive(Clone)]
struct LogSink(Arc<Mutex<Vec<String>>>);

struct LineWriter(Arc<Mutex<Vec<String>>>, Vec<u8>);

impl std::io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.1);
        let mut logs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        logs.extend(text.lines().map(str::to_owned));
    }
}

impl<'a> telemeet::telemetry::MakeWriter<'a> for LogSink {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter(self.0.clone(), Vec::new())
    }
}

fn rsa(pem: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem.as_bytes())
        .unwrap_or_else(|_| EncodingKey::from_secret(b"invalid"))
}

#[derive(Clone, Copy)]
enum Ready {
    /// A `READY <url>` line (moto, sandboxes).
    Line,
    /// The gateway's JSON `listening` log line.
    Listening,
}

impl Ready {
    fn url(self, line: &str) -> Option<String> {
        match self {
            Ready::Line => line.strip_prefix("READY ").map(|u| u.trim().to_owned()),
            Ready::Listening => {
                let v: Value = serde_json::from_str(line).ok()?;
                (v["message"] == "listening").then(|| v["url"].as_str().map(str::to_owned))?
            }
        }
    }
}

/// A scheduled appointment meeting of `org` (host dr-7, participant pat-9, 30 minutes) as the
/// store would hold it, for [`Stack::put_meetings`].
pub fn sample_meeting(
    n: usize,
    org: &str,
    provider: telemeet::domain::ProviderKind,
    provider_meeting_id: String,
    start: chrono::DateTime<chrono::Utc>,
) -> Result<telemeet::domain::Meeting, String> {
    use telemeet::domain::*;
    use telemeet::ids::*;
    let bad = |what: &str| format!("sample meeting {n}: bad {what}");
    let user = |u: &str| UserId::try_from(u.to_owned()).map_err(|_| bad("user"));
    Ok(Meeting {
        id: MeetingId::try_from(format!("mtg_seed{n:07}")).map_err(|_| bad("id"))?,
        org: OrgId::try_from(org.to_owned()).map_err(|_| bad("org"))?,
        subject: Subject {
            kind: SubjectKind::Appointment,
            id: SubjectId::try_from(format!("seed-{n}")).map_err(|_| bad("subject"))?,
        },
        provider,
        provider_meeting_id,
        provider_uuid: None,
        topic: "Video consultation".into(),
        start_time: start,
        duration_minutes: 30,
        timezone: "UTC".into(),
        status: MeetingStatus::Scheduled,
        host: user("dr-7")?,
        participants: vec![user("pat-9")?],
        initiated_by: user("svc-1")?,
        created_at: start,
        updated_at: start,
        started_at: None,
        ended_at: None,
        expires_at: None,
        attendance: Attendance::default(),
        links: ProviderLinks {
            join_url: "j".into(),
            host_url: "h".into(),
            host_url_fetched_at: None,
            password: None,
        },
        version: 1,
        provider_event_ts: None,
        account: telemeet::domain::Account::Deployment,
        provider_user: None,
        kept_until: None,
        room_closed_at: None,
        signals: Default::default(),
    })
}
