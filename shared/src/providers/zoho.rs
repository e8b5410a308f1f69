//! Zoho Meeting: sessions created, updated and deleted through `/api/v2/{zsoid}/sessions`,
//! authorised by `Zoho-oauthtoken` access tokens from a refresh token.
//!
//! Access tokens are shared by all containers through the table ([`SharedToken`]): Zoho
//! grants only 10 per refresh token per 10 minutes. The data centre picks both hosts.
//! Start links and tokens never reach a log line.

use super::http::{Answer, ProviderHttp};
use super::retry::{
    RetryPolicy, Sleeper, create_reconciling, retry_after_seconds, retry_verdict, transport_error,
};
use super::shared_token::{IssuedToken, RefreshBudget, SealKey, SharedToken};
use super::{
    CreateSpec, Deletion, MARKER_PREFIX, MeetingProvider, ProviderError, ProviderMeeting, Schedule,
    marker, secret_unreadable,
};
use crate::clock::Clock;
use crate::domain::{Meeting, ProviderKind, ProviderLinks};
use crate::ids::MeetingId;
use crate::secrets::{FromSecret, SecretCache, secret_opt_str};
use crate::store::TokenStore;
use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// Zoho's code for a refused access token (`INVALID_OAUTHTOKEN`).
pub const INVALID_OAUTHTOKEN: i64 = 2000;
/// Sessions listed per page, and the pages read while looking for a marker.
const PAGE_SIZE: usize = 100;
const MAX_LIST_PAGES: usize = 10;
/// The token call must end well inside the shared token's lock lease.
const TOKEN_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// What the seal key is derived for (changing it invalidates stored tokens).
const SEAL_PURPOSE: &str = "telemeet/zoho-access-token/v1";

/// A Zoho data centre: where the account lives decides both the accounts and API hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataCenter {
    Us,
    Eu,
    In,
    Au,
    Jp,
    Ca,
    Sa,
    Uk,
    Cn,
}

impl DataCenter {
    /// The `dataCenter` field: the domain suffix Zoho uses (`com`, `eu`, `in`, `com.au`,
    /// `jp`, `ca`, `sa`, `uk`, `com.cn`) or the region's short name (`us`, `au`, `cn`).
    pub fn parse(v: &str) -> Option<Self> {
        Some(match v.trim().to_ascii_lowercase().as_str() {
            "com" | "us" => Self::Us,
            "eu" => Self::Eu,
            "in" => Self::In,
            "com.au" | "au" => Self::Au,
            "jp" => Self::Jp,
            "ca" | "zohocloud.ca" => Self::Ca,
            "sa" => Self::Sa,
            "uk" => Self::Uk,
            "com.cn" | "cn" => Self::Cn,
            _ => return None,
        })
    }

    /// The registrable domain of this data centre's Zoho services.
    fn domain(self) -> &'static str {
        match self {
            Self::Us => "zoho.com",
            Self::Eu => "zoho.eu",
            Self::In => "zoho.in",
            Self::Au => "zoho.com.au",
            Self::Jp => "zoho.jp",
            Self::Ca => "zohocloud.ca",
            Self::Sa => "zoho.sa",
            Self::Uk => "zoho.uk",
            Self::Cn => "zoho.com.cn",
        }
    }

    pub fn accounts_url(self) -> String {
        format!("https://accounts.{}", self.domain())
    }

    pub fn api_url(self) -> String {
        format!("https://meeting.{}", self.domain())
    }
}

/// `ZOHO_SECRET_ID`: `{"clientId","clientSecret","refreshToken","dataCenter","zsoid"}`,
/// optionally `"presenter"` (the zuid meetings are created for; else the token's own user).
pub struct ZohoCredentials {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    data_center: DataCenter,
    zsoid: String,
    presenter: Option<String>,
}

impl fmt::Debug for ZohoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ZohoCredentials(..)")
    }
}

/// A string field, or a number written as one (Zoho's ids are numbers in its own answers).
fn text_or_number(json: &Map<String, Value>, field: &str) -> Option<String> {
    match json.get(field)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

impl FromSecret for ZohoCredentials {
    fn from_secret(json: &Map<String, Value>) -> Result<Self, String> {
        let need = |f: &str| text_or_number(json, f).ok_or_else(|| format!("secret lacks {f}"));
        let dc = need("dataCenter")?;
        Ok(Self {
            client_id: need("clientId")?,
            client_secret: need("clientSecret")?,
            refresh_token: need("refreshToken")?,
            data_center: DataCenter::parse(&dc)
                .ok_or("dataCenter must be one of com, eu, in, com.au, jp, ca, sa, uk, com.cn")?,
            zsoid: need("zsoid")?,
            presenter: secret_opt_str(json, "presenter")
                .or_else(|| text_or_number(json, "presenter")),
        })
    }
}

impl ZohoCredentials {
    /// The shared token's record key: one per refresh token (Zoho's limit is per refresh
    /// token), named by a digest so the table never holds the refresh token.
    fn record_key(&self) -> String {
        let digest = Sha256::digest(format!("{}\n{}", self.client_id, self.refresh_token));
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("zoho#{hex}")
    }
}

/// Host overrides for a local stack (`ZOHO_ACCOUNTS_URL`, `ZOHO_API_BASE_URL`); unset in
/// production, where the secret's data centre decides.
#[derive(Debug, Clone, Default)]
pub struct ZohoConfig {
    pub accounts_url: Option<String>,
    pub api_base_url: Option<String>,
}

pub struct ZohoProvider {
    api: ProviderHttp,
    config: ZohoConfig,
    credentials: SecretCache<ZohoCredentials>,
    clock: Arc<dyn Clock>,
    token: SharedToken,
    presenter: tokio::sync::OnceCell<String>,
    policy: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
}

/// Zoho's error code: `{"error":{"code":…}}` (number or digits), or a top-level `code`.
fn error_code(body: &Value) -> Option<i64> {
    let code = body
        .get("error")
        .and_then(|e| e.get("code").or_else(|| e.get("errorCode")))
        .or_else(|| body.get("code"))?;
    match code {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Whether Zoho refused the access token itself (expired, revoked).
fn token_refused(status: StatusCode, body: &Value) -> bool {
    let named = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("INVALID_OAUTHTOKEN"))
    };
    status == StatusCode::UNAUTHORIZED
        || error_code(body) == Some(INVALID_OAUTHTOKEN)
        || named(body.get("error").and_then(|e| e.get("message")))
        || named(body.get("code"))
}

/// Zoho's local-time format for `startTime`, in the session's own time zone.
fn zoho_start_time(start: DateTime<Utc>, timezone: &str) -> String {
    const FORMAT: &str = "%b %d, %Y %I:%M %p";
    match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => tz
            .from_utc_datetime(&start.naive_utc())
            .format(FORMAT)
            .to_string(),
        Err(_) => start.format(FORMAT).to_string(),
    }
}

fn millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn meeting_key(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_u64().map(|k| k.to_string()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// The schedule a Zoho session carries.
fn schedule_of(session: &Value) -> Option<Schedule> {
    Some(Schedule {
        topic: session.get("topic")?.as_str()?.to_owned(),
        start_time: DateTime::from_timestamp_millis(millis(session.get("startTimeMillisec")?)?)?,
        duration_minutes: u32::try_from(millis(session.get("duration")?)? / 60_000).ok()?,
        timezone: session.get("timezone")?.as_str()?.to_owned(),
    })
}

fn rejected(cause: impl Into<String>) -> ProviderError {
    ProviderError::Rejected {
        code: None,
        cause: cause.into(),
    }
}

impl ZohoProvider {
    pub fn new(
        http: reqwest::Client,
        config: ZohoConfig,
        credentials: SecretCache<ZohoCredentials>,
        tokens: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
        sleeper: Arc<dyn Sleeper>,
    ) -> Self {
        Self {
            api: ProviderHttp {
                client: http,
                provider: "zoho",
            },
            config,
            credentials,
            token: SharedToken::new(tokens, clock.clone(), RefreshBudget::ZOHO),
            clock,
            presenter: tokio::sync::OnceCell::new(),
            policy,
            sleeper,
        }
    }

    async fn credentials(&self) -> Result<Arc<ZohoCredentials>, ProviderError> {
        self.credentials.get().await.map_err(secret_unreadable)
    }

    /// `{api host}/api/v2/{segments…}`; the last segment gets Zoho's `.json` suffix.
    fn api_url(
        &self,
        c: &ZohoCredentials,
        segments: &[&str],
    ) -> Result<reqwest::Url, ProviderError> {
        let base = self
            .config
            .api_base_url
            .clone()
            .unwrap_or_else(|| c.data_center.api_url());
        let mut url =
            reqwest::Url::parse(&base).map_err(|_| rejected("Zoho API base is not a URL"))?;
        let mut parts: Vec<String> = vec!["api".into(), "v2".into()];
        parts.extend(segments.iter().map(|s| (*s).to_owned()));
        if let Some(last) = parts.last_mut() {
            last.push_str(".json");
        }
        url.path_segments_mut()
            .map_err(|_| rejected("Zoho API base cannot take a path"))?
            .pop_if_empty()
            .extend(&parts);
        Ok(url)
    }

    fn token_url(&self, c: &ZohoCredentials) -> String {
        let base = self
            .config
            .accounts_url
            .clone()
            .unwrap_or_else(|| c.data_center.accounts_url());
        format!("{}/oauth/v2/token", base.trim_end_matches('/'))
    }

    /// A valid access token (shared through the table), and whether it was just fetched;
    /// `stale` names one Zoho just refused.
    async fn access_token(
        &self,
        stale: Option<&str>,
        deadline: Instant,
    ) -> Result<(String, bool), ProviderError> {
        let c = self.credentials().await?;
        let seal = SealKey::derive(&c.client_secret, SEAL_PURPOSE);
        let record_key = c.record_key();
        self.token
            .get(&record_key, &seal, stale, deadline, || {
                self.fetch_token_rereading(c.clone())
            })
            .await
    }

    /// A new token; wrong credentials may mean they were rotated: read the secret once more.
    async fn fetch_token_rereading(
        &self,
        c: Arc<ZohoCredentials>,
    ) -> Result<IssuedToken, ProviderError> {
        match self.fetch_token(&c).await {
            Err(ProviderError::Rejected { .. }) => {
                let fresh = self
                    .credentials
                    .reread_after_auth_failure(Duration::zero())
                    .await
                    .map_err(secret_unreadable)?
                    .unwrap_or(c);
                self.fetch_token(&fresh).await
            }
            other => other,
        }
    }

    async fn fetch_token(&self, c: &ZohoCredentials) -> Result<IssuedToken, ProviderError> {
        let started = Instant::now();
        let response = self
            .api
            .client
            .post(self.token_url(c))
            .timeout(TOKEN_CALL_TIMEOUT)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.client_secret.as_str()),
                ("refresh_token", c.refresh_token.as_str()),
            ])
            .send()
            .await
            .map_err(|e| transport_error("zoho", &e, false))?;
        let status = response.status();
        super::http::record_call("zoho", "oauth_token", status, started);
        let headers = response.headers().clone();
        if status.is_server_error() {
            return Err(ProviderError::Unavailable {
                retry_after: retry_after_seconds(&headers, self.clock.now()),
                ambiguous: false,
                in_flight: false,
                cause: format!("zoho accounts answered {status}"),
            });
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| transport_error("zoho", &e, false))?;
        let error = body.get("error").and_then(Value::as_str).unwrap_or("");
        // Zoho answers "Access Denied" (400) once a refresh token's token quota is spent.
        if status == StatusCode::TOO_MANY_REQUESTS || error.eq_ignore_ascii_case("Access Denied") {
            tracing::warn!(
                provider = "zoho",
                "Zoho refused a new access token: too many requests for this refresh token"
            );
            return Err(ProviderError::RateLimited {
                retry_after: retry_after_seconds(&headers, self.clock.now()).or(Some(60)),
                daily: false,
            });
        }
        let value = body.get("access_token").and_then(Value::as_str);
        let (Some(value), true) = (value, status.is_success()) else {
            // Zoho reports wrong credentials with 200 and an `error` field.
            tracing::error!(
                provider = "zoho",
                status = status.as_u16(),
                oauth_error = error,
                "Zoho refused the OAuth credentials: check clientId, clientSecret, refreshToken and dataCenter in the ZOHO_SECRET_ID secret"
            );
            return Err(rejected(format!(
                "zoho accounts refused the refresh token ({status})"
            )));
        };
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        Ok(IssuedToken {
            value: value.to_owned(),
            expires_at: self.clock.now() + Duration::seconds(expires_in),
        })
    }

    /// One HTTP exchange within `timeout`. A refused token is replaced: by the table's when
    /// another container already renewed it, else by a new one, fetched once at most.
    async fn exchange(
        &self,
        op: &'static str,
        method: &Method,
        url: &reqwest::Url,
        body: Option<&Value>,
        timeout: std::time::Duration,
        deadline: Instant,
    ) -> Result<Answer, ProviderError> {
        let (mut token, _) = self.access_token(None, deadline).await?;
        let mut fetched = false;
        // The cached token, the table's, a new one: three tries at most.
        for attempt in 1..=3 {
            let a = self
                .api
                .send(
                    op,
                    method,
                    url,
                    &format!("Zoho-oauthtoken {token}"),
                    body,
                    timeout,
                )
                .await?;
            if token_refused(a.status, &a.body) && !fetched && attempt < 3 {
                (token, fetched) = self.access_token(Some(&token), deadline).await?;
                continue;
            }
            return self.classify(a, *method == Method::POST);
        }
        Err(rejected("zoho refused every access token"))
    }

    async fn call(
        &self,
        op: &'static str,
        method: Method,
        url: reqwest::Url,
        body: Option<&Value>,
        deadline: Instant,
    ) -> Result<Answer, ProviderError> {
        self.policy
            .run(deadline, self.sleeper.as_ref(), |_, timeout| {
                let (method, url) = (&method, &url);
                async move {
                    retry_verdict(
                        self.exchange(op, method, url, body, timeout, deadline)
                            .await,
                    )
                }
            })
            .await
    }

    fn classify(&self, a: Answer, ambiguous: bool) -> Result<Answer, ProviderError> {
        let code = error_code(&a.body);
        match a.status {
            s if s.is_success() => Ok(a),
            StatusCode::TOO_MANY_REQUESTS => Err(ProviderError::RateLimited {
                retry_after: retry_after_seconds(&a.headers, self.clock.now()),
                daily: false,
            }),
            s if s.is_server_error() => Err(ProviderError::Unavailable {
                retry_after: retry_after_seconds(&a.headers, self.clock.now()),
                ambiguous,
                in_flight: false,
                cause: format!("zoho answered {s}"),
            }),
            StatusCode::NOT_FOUND => Err(ProviderError::NotFound),
            s => {
                if s == StatusCode::FORBIDDEN {
                    tracing::error!(
                        provider = "zoho",
                        "Zoho refused the organisation: check zsoid in the ZOHO_SECRET_ID secret and the OAuth scopes (ZohoMeeting.meeting.ALL)"
                    );
                }
                Err(ProviderError::Rejected {
                    code,
                    cause: format!("zoho answered {s} code {}", code.unwrap_or_default()),
                })
            }
        }
    }

    /// The zuid sessions are created for: the secret's `presenter`, else the token's user.
    async fn presenter(
        &self,
        c: &ZohoCredentials,
        deadline: Instant,
    ) -> Result<String, ProviderError> {
        if let Some(p) = &c.presenter {
            return Ok(p.clone());
        }
        self.presenter
            .get_or_try_init(|| async {
                let url = self.api_url(c, &["user"])?;
                let a = self
                    .call("current_user", Method::GET, url, None, deadline)
                    .await?;
                a.body
                    .pointer("/userDetails/zuid")
                    .and_then(meeting_key)
                    .ok_or_else(|| rejected("zoho user.json lacks userDetails.zuid"))
            })
            .await
            .cloned()
    }

    fn session_body(&self, presenter: &str, meeting_id: &MeetingId, schedule: &Schedule) -> Value {
        let presenter = presenter
            .parse::<u64>()
            .map_or_else(|_| json!(presenter), |z| json!(z));
        json!({ "session": {
            "topic": schedule.topic,
            "agenda": marker(meeting_id),
            "presenter": presenter,
            "startTime": zoho_start_time(schedule.start_time, &schedule.timezone),
            "duration": u64::from(schedule.duration_minutes) * 60_000,
            "timezone": schedule.timezone,
        }})
    }

    fn meeting_from(&self, session: &Value) -> Result<ProviderMeeting, ProviderError> {
        let text = |k: &str| session.get(k).and_then(Value::as_str).map(str::to_owned);
        let malformed = |what: &str| rejected(format!("zoho session lacks {what}"));
        Ok(ProviderMeeting {
            provider_meeting_id: session
                .get("meetingKey")
                .and_then(meeting_key)
                .ok_or_else(|| malformed("meetingKey"))?,
            uuid: None,
            links: ProviderLinks {
                join_url: text("joinLink").ok_or_else(|| malformed("joinLink"))?,
                host_url: text("startLink").ok_or_else(|| malformed("startLink"))?,
                host_url_fetched_at: Some(self.clock.now()),
                password: None,
            },
            schedule: schedule_of(session),
        })
    }

    async fn get_session(
        &self,
        c: &ZohoCredentials,
        key: &str,
        deadline: Instant,
    ) -> Result<ProviderMeeting, ProviderError> {
        let url = self.api_url(c, &[&c.zsoid, "sessions", key])?;
        let a = self
            .call("get_session", Method::GET, url, None, deadline)
            .await?;
        self.meeting_from(&a.body["session"])
    }

    /// One page (1-based `index`) of the organisation's sessions of `listtype`.
    async fn list_page(
        &self,
        c: &ZohoCredentials,
        listtype: &str,
        index: usize,
        deadline: Instant,
    ) -> Result<Vec<Value>, ProviderError> {
        let mut url = self.api_url(c, &[&c.zsoid, "sessions"])?;
        url.query_pairs_mut()
            .append_pair("listtype", listtype)
            .append_pair("index", &index.to_string())
            .append_pair("count", &PAGE_SIZE.to_string());
        let a = self
            .call("list_sessions", Method::GET, url, None, deadline)
            .await?;
        Ok(match a.body {
            Value::Object(mut o) => match o.remove("session") {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
    }

    async fn search_marker(
        &self,
        meeting_id: &MeetingId,
        deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError> {
        let c = self.credentials().await?;
        let wanted = marker(meeting_id);
        for page in 0..MAX_LIST_PAGES {
            let sessions = self
                .list_page(&c, "all", 1 + page * PAGE_SIZE, deadline)
                .await?;
            let found = sessions
                .iter()
                .find(|s| s["agenda"].as_str().is_some_and(|a| a.trim() == wanted))
                .and_then(|s| meeting_key(&s["meetingKey"]));
            if let Some(key) = found {
                return self.get_session(&c, &key, deadline).await.map(Some);
            }
            if sessions.len() < PAGE_SIZE {
                return Ok(None);
            }
        }
        // Not found in what we read is not "not created": stay ambiguous, never duplicate.
        Err(ProviderError::Unavailable {
            retry_after: None,
            ambiguous: true,
            in_flight: false,
            cause: format!("marker search stopped after {MAX_LIST_PAGES} pages"),
        })
    }
}

#[async_trait]
impl MeetingProvider for ZohoProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Zoho
    }

    async fn create(
        &self,
        spec: &CreateSpec,
        deadline: Instant,
    ) -> Result<ProviderMeeting, ProviderError> {
        let c = self.credentials().await?;
        let presenter = self.presenter(&c, deadline).await?;
        let url = self.api_url(&c, &[&c.zsoid, "sessions"])?;
        let body = self.session_body(
            &presenter,
            &spec.meeting_id,
            &Schedule {
                topic: spec.topic.clone(),
                start_time: spec.start_time,
                duration_minutes: spec.duration_minutes,
                timezone: spec.timezone.clone(),
            },
        );
        create_reconciling(
            &self.policy,
            self.sleeper.as_ref(),
            deadline,
            || self.search_marker(&spec.meeting_id, deadline),
            |timeout| {
                let (url, body) = (&url, &body);
                async move {
                    self.exchange(
                        "create_session",
                        &Method::POST,
                        url,
                        Some(body),
                        timeout,
                        deadline,
                    )
                    .await
                    .and_then(|a| self.meeting_from(&a.body["session"]))
                }
            },
        )
        .await
    }

    async fn find_by_marker(
        &self,
        meeting_id: &MeetingId,
        deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError> {
        self.search_marker(meeting_id, deadline).await
    }

    /// Zoho's start link does not expire: it asks the presenter to sign in.
    fn host_link_max_age(&self) -> Option<Duration> {
        None
    }

    fn host_link_lifetime(&self) -> Option<Duration> {
        None
    }

    async fn fresh_host_link(
        &self,
        meeting: &Meeting,
        deadline: Instant,
    ) -> Result<(String, DateTime<Utc>), ProviderError> {
        let c = self.credentials().await?;
        let m = self
            .get_session(&c, &meeting.provider_meeting_id, deadline)
            .await?;
        Ok((m.links.host_url, self.clock.now()))
    }

    /// A full edit: Zoho's PUT wants every field again (the marker stays).
    async fn update(
        &self,
        meeting: &Meeting,
        schedule: &Schedule,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        let c = self.credentials().await?;
        let presenter = self.presenter(&c, deadline).await?;
        let url = self.api_url(&c, &[&c.zsoid, "sessions", &meeting.provider_meeting_id])?;
        let body = self.session_body(&presenter, &meeting.id, schedule);
        self.call("update_session", Method::PUT, url, Some(&body), deadline)
            .await
            .map(drop)
    }

    async fn delete(
        &self,
        provider_meeting_id: &str,
        deadline: Instant,
    ) -> Result<Deletion, ProviderError> {
        let c = self.credentials().await?;
        let url = self.api_url(&c, &[&c.zsoid, "sessions", provider_meeting_id])?;
        match self
            .call("delete_session", Method::DELETE, url, None, deadline)
            .await
        {
            Ok(_) => Ok(Deletion::Deleted),
            Err(ProviderError::NotFound) => Ok(Deletion::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    /// Upcoming sessions carrying our marker (past ones hold no room open).
    async fn marked_meetings(
        &self,
        deadline: Instant,
    ) -> Result<Vec<(String, String, Option<DateTime<Utc>>)>, ProviderError> {
        let c = self.credentials().await?;
        let mut found = Vec::new();
        for page in 0.. {
            let sessions = self
                .list_page(&c, "upcoming", 1 + page * PAGE_SIZE, deadline)
                .await?;
            for s in &sessions {
                let agenda = s["agenda"].as_str().unwrap_or("").trim();
                if let (Some(ours), Some(key)) = (
                    agenda.strip_prefix(MARKER_PREFIX),
                    meeting_key(&s["meetingKey"]),
                ) {
                    let created =
                        millis(&s["createdTimeMillisec"]).and_then(DateTime::from_timestamp_millis);
                    found.push((key, ours.to_owned(), created));
                }
            }
            if sessions.len() < PAGE_SIZE {
                break;
            }
        }
        Ok(found)
    }

    /// Zoho's API has no call that ends a running session: the record is ended here and
    /// the room closes when the presenter leaves.
    async fn end(&self, _meeting: &Meeting, _deadline: Instant) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_centre_chooses_both_the_accounts_and_the_api_host() {
        let cases = [
            (
                "com",
                "https://accounts.zoho.com",
                "https://meeting.zoho.com",
            ),
            (
                "us",
                "https://accounts.zoho.com",
                "https://meeting.zoho.com",
            ),
            ("eu", "https://accounts.zoho.eu", "https://meeting.zoho.eu"),
            ("in", "https://accounts.zoho.in", "https://meeting.zoho.in"),
            (
                "com.au",
                "https://accounts.zoho.com.au",
                "https://meeting.zoho.com.au",
            ),
            ("jp", "https://accounts.zoho.jp", "https://meeting.zoho.jp"),
            (
                "ca",
                "https://accounts.zohocloud.ca",
                "https://meeting.zohocloud.ca",
            ),
            ("sa", "https://accounts.zoho.sa", "https://meeting.zoho.sa"),
            ("uk", "https://accounts.zoho.uk", "https://meeting.zoho.uk"),
            (
                "com.cn",
                "https://accounts.zoho.com.cn",
                "https://meeting.zoho.com.cn",
            ),
        ];
        for (dc, accounts, api) in cases {
            let d = DataCenter::parse(dc).unwrap();
            assert_eq!(
                (d.accounts_url().as_str(), d.api_url().as_str()),
                (accounts, api),
                "{dc}"
            );
        }
        assert_eq!(DataCenter::parse(" EU "), Some(DataCenter::Eu));
        assert_eq!(DataCenter::parse("mars"), None);
    }

    #[test]
    fn start_times_are_written_in_the_sessions_own_time_zone() {
        let t = DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(zoho_start_time(t, "Europe/Berlin"), "Nov 21, 2026 11:00 AM");
        assert_eq!(
            zoho_start_time(t, "America/New_York"),
            "Nov 21, 2026 05:00 AM"
        );
        assert_eq!(zoho_start_time(t, "UTC"), "Nov 21, 2026 10:00 AM");
    }

    #[test]
    fn a_refused_token_is_recognised_by_status_code_or_name() {
        use serde_json::json;
        assert!(token_refused(StatusCode::UNAUTHORIZED, &Value::Null));
        assert!(token_refused(
            StatusCode::BAD_REQUEST,
            &json!({"error": {"code": 2000, "message": "x"}})
        ));
        assert!(token_refused(
            StatusCode::OK,
            &json!({"error": {"code": "2000"}})
        ));
        assert!(token_refused(
            StatusCode::BAD_REQUEST,
            &json!({"code": "INVALID_OAUTHTOKEN"})
        ));
        assert!(!token_refused(
            StatusCode::BAD_REQUEST,
            &json!({"error": {"code": 7001, "message": "Invalid input"}})
        ));
    }

    #[test]
    fn the_record_key_names_the_refresh_token_without_holding_it() {
        let creds = |rt: &str| ZohoCredentials {
            client_id: "cid".into(),
            client_secret: "cs".into(),
            refresh_token: rt.into(),
            data_center: DataCenter::Us,
            zsoid: "1".into(),
            presenter: None,
        };
        let a = creds("1000.refresh.one").record_key();
        assert!(a.starts_with("zoho#") && !a.contains("refresh"));
        assert_eq!(a, creds("1000.refresh.one").record_key());
        assert_ne!(a, creds("1000.refresh.two").record_key());
    }
}
