//! Zoho Meeting: sessions created, updated and deleted through `/api/v2/{zsoid}/sessions`,
//! authorised by `Zoho-oauthtoken` access tokens from a refresh token, on the shared OAuth
//! skeleton ([`super::api`]). This module holds only what is Zoho's: data centres, URLs and
//! bodies, its error codes ([`Zoho`]) and its lists.
//!
//! Access tokens are shared by all containers through the table ([`SharedToken`]): Zoho
//! grants only 10 per refresh token per 10 minutes. The data centre picks both hosts.
//! Start links and tokens never reach a log line.

use super::api::{
    self, Dialect, IssuedToken, Listing, OAuthApi, Request, Scope, TokenSource, grant_rereading,
};
use super::http::Answer;
use super::retry::RetryPolicy;
use super::shared_token::{RefreshBudget, SealKey, SharedToken};
use super::{
    CreateSpec, Deletion, Marked, MeetingProvider, ProviderError, ProviderMeeting, Schedule, marker,
};
use crate::clock::Clock;
use crate::domain::{Meeting, ProviderKind, ProviderLinks};
use crate::ids::MeetingId;
use crate::secrets::{FromSecret, SecretCache, secret_opt_str};
use crate::store::TokenStore;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
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
/// An org connection's secret names its default as `defaultPresenter` (absent or null: none,
/// so unmapped hosts are refused).
pub struct ZohoCredentials {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    data_center: DataCenter,
    zsoid: String,
    presenter: Option<String>,
    /// Whether an unnamed presenter means the token's own user (the deployment's secret).
    token_user_presents: bool,
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
                .or_else(|| text_or_number(json, "presenter"))
                .or_else(|| text_or_number(json, "defaultPresenter")),
            token_user_presents: !json.contains_key("defaultPresenter"),
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
    /// `DEPLOYMENT_ID`, named in every session's marker.
    pub deployment: String,
}

pub struct ZohoProvider {
    api: OAuthApi<Zoho>,
    config: ZohoConfig,
    credentials: SecretCache<ZohoCredentials>,
    token: SharedToken,
    presenter: tokio::sync::OnceCell<String>,
}

/// What Zoho's answers mean.
pub struct Zoho;

impl Dialect for Zoho {
    const NAME: &'static str = "zoho";
    const CREDENTIALS_HINT: &'static str = "Zoho refused the OAuth credentials: check clientId, clientSecret, refreshToken and dataCenter (the ZOHO_SECRET_ID secret, or the org's PUT /org/providers/zoho)";
    // Zoho locks a refresh token that keeps asking: wait a minute.
    const GRANT_QUOTA_WAIT: Option<u64> = Some(60);
    // The container's token, the table's (another container renewed it), a new one.
    const TOKEN_TRIES: usize = 3;

    fn authorization(token: &str) -> String {
        format!("Zoho-oauthtoken {token}")
    }

    fn error_code(body: &Value) -> Option<i64> {
        error_code(body)
    }

    fn token_refused(a: &Answer) -> bool {
        token_refused(a.status, &a.body)
    }

    fn daily_limit(_a: &Answer) -> bool {
        false
    }

    fn refusal(a: &Answer, _code: Option<i64>, _retry_after: u64) -> Option<ProviderError> {
        if a.status == StatusCode::FORBIDDEN {
            tracing::error!(
                provider = "zoho",
                "Zoho refused the organisation: check zsoid in the ZOHO_SECRET_ID secret and the OAuth scopes (ZohoMeeting.meeting.ALL)"
            );
        }
        None
    }

    /// Zoho answers "Access Denied" (400) once a refresh token's token quota is spent.
    fn grant_quota_spent(_status: StatusCode, body: &Value) -> bool {
        body.get("error")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("Access Denied"))
    }
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

impl ZohoProvider {
    pub fn new(
        http: reqwest::Client,
        config: ZohoConfig,
        credentials: SecretCache<ZohoCredentials>,
        tokens: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            api: OAuthApi::new(http, clock.clone(), policy),
            config,
            credentials,
            token: SharedToken::new(tokens, clock, RefreshBudget::ZOHO),
            presenter: tokio::sync::OnceCell::new(),
        }
    }

    async fn credentials(&self) -> Result<Arc<ZohoCredentials>, ProviderError> {
        Ok(self.credentials.get().await?)
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
        let mut url = reqwest::Url::parse(&base)
            .map_err(|_| ProviderError::rejected("Zoho API base is not a URL"))?;
        let mut parts: Vec<String> = vec!["api".into(), "v2".into()];
        parts.extend(segments.iter().map(|s| (*s).to_owned()));
        if let Some(last) = parts.last_mut() {
            last.push_str(".json");
        }
        url.path_segments_mut()
            .map_err(|_| ProviderError::rejected("Zoho API base cannot take a path"))?
            .pop_if_empty()
            .extend(&parts);
        Ok(url)
    }

    fn sessions_url(
        &self,
        c: &ZohoCredentials,
        key: Option<&str>,
    ) -> Result<reqwest::Url, ProviderError> {
        match key {
            Some(k) => self.api_url(c, &[&c.zsoid, "sessions", k]),
            None => self.api_url(c, &[&c.zsoid, "sessions"]),
        }
    }

    fn token_url(&self, c: &ZohoCredentials) -> String {
        let base = self
            .config
            .accounts_url
            .clone()
            .unwrap_or_else(|| c.data_center.accounts_url());
        format!("{}/oauth/v2/token", base.trim_end_matches('/'))
    }

    fn fetch_token(
        &self,
        c: Arc<ZohoCredentials>,
    ) -> impl std::future::Future<Output = Result<IssuedToken, ProviderError>> + '_ {
        let request = self
            .api
            .http
            .client
            .post(self.token_url(&c))
            .timeout(TOKEN_CALL_TIMEOUT)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.client_secret.as_str()),
                ("refresh_token", c.refresh_token.as_str()),
            ]);
        api::grant::<Zoho>(request, self.api.clock.as_ref())
    }

    /// The zuid sessions are created for: `mapped` (the host directory's), else the
    /// secret's default, else (the deployment's secret only) the token's own user.
    async fn presenter(
        &self,
        c: &ZohoCredentials,
        mapped: Option<&str>,
        deadline: Instant,
    ) -> Result<String, ProviderError> {
        if let Some(p) = mapped.or(c.presenter.as_deref()) {
            return Ok(p.to_owned());
        }
        if !c.token_user_presents {
            return Err(ProviderError::UnknownHost);
        }
        self.presenter
            .get_or_try_init(|| async {
                let url = self.api_url(c, &["user"])?;
                let a = self
                    .api
                    .call(
                        self,
                        Request::new("current_user", Method::GET, url),
                        deadline,
                    )
                    .await?;
                a.body
                    .pointer("/userDetails/zuid")
                    .and_then(meeting_key)
                    .ok_or_else(|| api::malformed::<Zoho>("userDetails.zuid"))
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
            "agenda": marker(&self.config.deployment, meeting_id),
            "presenter": presenter,
            "startTime": zoho_start_time(schedule.start_time, &schedule.timezone),
            "duration": u64::from(schedule.duration_minutes) * 60_000,
            "timezone": schedule.timezone,
        }})
    }

    fn meeting_from(&self, session: &Value) -> Result<ProviderMeeting, ProviderError> {
        let text = |k: &str| session.get(k).and_then(Value::as_str).map(str::to_owned);
        let need = |k: &str| text(k).ok_or_else(|| api::malformed::<Zoho>(k));
        Ok(ProviderMeeting {
            provider_meeting_id: session
                .get("meetingKey")
                .and_then(meeting_key)
                .ok_or_else(|| api::malformed::<Zoho>("meetingKey"))?,
            uuid: None,
            links: ProviderLinks {
                join_url: need("joinLink")?,
                host_url: need("startLink")?,
                host_url_fetched_at: Some(self.api.clock.now()),
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
        let url = self.sessions_url(c, Some(key))?;
        let a = self
            .api
            .call(
                self,
                Request::new("get_session", Method::GET, url),
                deadline,
            )
            .await?;
        self.meeting_from(&a.body["session"])
    }

    async fn search_marker(
        &self,
        meeting_id: &MeetingId,
        deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError> {
        let Some(key) = api::find_marked(self, meeting_id, None, MAX_LIST_PAGES, deadline).await?
        else {
            return Ok(None);
        };
        let c = self.credentials().await?;
        self.get_session(&c, &key, deadline).await.map(Some)
    }
}

#[async_trait]
impl TokenSource for ZohoProvider {
    async fn token(
        &self,
        stale: Option<&str>,
        deadline: Instant,
    ) -> Result<(String, bool), ProviderError> {
        let c = self.credentials().await?;
        let seal = SealKey::derive(&c.client_secret, SEAL_PURPOSE);
        let record_key = c.record_key();
        let fetch = || grant_rereading(&self.credentials, c.clone(), |c| self.fetch_token(c));
        self.token
            .get(&record_key, &seal, stale, deadline, fetch)
            .await
    }
}

#[async_trait]
impl Listing for ZohoProvider {
    /// One page of the organisation's sessions: all of them when searching, upcoming ones
    /// for orphans (past ones hold no room open). Pages are 1-based indexes.
    async fn page(
        &self,
        scope: Scope,
        _user: Option<&str>,
        cursor: Option<String>,
        deadline: Instant,
    ) -> Result<(Vec<Value>, Option<String>), ProviderError> {
        let c = self.credentials().await?;
        let index: usize = cursor.and_then(|i| i.parse().ok()).unwrap_or(1);
        let mut url = self.sessions_url(&c, None)?;
        let listtype = if scope == Scope::Search {
            "all"
        } else {
            "upcoming"
        };
        url.query_pairs_mut()
            .append_pair("listtype", listtype)
            .append_pair("index", &index.to_string())
            .append_pair("count", &PAGE_SIZE.to_string());
        let a = self
            .api
            .call(
                self,
                Request::new("list_sessions", Method::GET, url),
                deadline,
            )
            .await?;
        let sessions = api::list_of(a.body, "session");
        let next = (sessions.len() >= PAGE_SIZE).then(|| (index + PAGE_SIZE).to_string());
        Ok((sessions, next))
    }

    fn marked(&self, s: &Value) -> Option<Marked> {
        let (deployment, meeting_id) = api::parse_marker(s["agenda"].as_str())?;
        Some(Marked {
            deployment,
            meeting_id,
            provider_meeting_id: meeting_key(&s["meetingKey"])?,
            created_at: millis(&s["createdTimeMillisec"]).and_then(DateTime::from_timestamp_millis),
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
        let presenter = self
            .presenter(&c, spec.host_user.as_deref(), deadline)
            .await?;
        let url = self.sessions_url(&c, None)?;
        let body = self.session_body(&presenter, &spec.meeting_id, &spec.schedule);
        let req = Request::with("create_session", Method::POST, url, &body);
        let search = || self.search_marker(&spec.meeting_id, deadline);
        self.api
            .create(self, req, deadline, search, |b| {
                self.meeting_from(&b["session"])
            })
            .await
    }

    /// Zoho lists the organisation's sessions, whoever presents them.
    async fn find_by_marker(
        &self,
        meeting_id: &MeetingId,
        _host_user: Option<&str>,
        deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError> {
        self.search_marker(meeting_id, deadline).await
    }

    /// One refresh grant (it counts towards Zoho's 10 per 10 minutes, like any other).
    async fn verify(&self, _deadline: Instant) -> Result<(), ProviderError> {
        let c = self.credentials().await?;
        self.fetch_token(c).await.map(drop)
    }

    async fn default_host(&self, deadline: Instant) -> Result<Option<String>, ProviderError> {
        let c = self.credentials().await?;
        match self.presenter(&c, None, deadline).await {
            Ok(p) => Ok(Some(p)),
            Err(ProviderError::UnknownHost) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Zoho's start link does not expire: it asks the presenter to sign in.
    async fn fresh_host_link(
        &self,
        meeting: &Meeting,
        deadline: Instant,
    ) -> Result<(String, DateTime<Utc>), ProviderError> {
        let c = self.credentials().await?;
        let m = self
            .get_session(&c, &meeting.provider_meeting_id, deadline)
            .await?;
        Ok((m.links.host_url, self.api.clock.now()))
    }

    /// A full edit: Zoho's PUT wants every field again (the marker stays).
    async fn update(
        &self,
        meeting: &Meeting,
        schedule: &Schedule,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        let c = self.credentials().await?;
        let presenter = self
            .presenter(&c, meeting.provider_user.as_deref(), deadline)
            .await?;
        let url = self.sessions_url(&c, Some(&meeting.provider_meeting_id))?;
        let body = self.session_body(&presenter, &meeting.id, schedule);
        let req = Request::with("update_session", Method::PUT, url, &body);
        self.api.call(self, req, deadline).await.map(drop)
    }

    async fn delete(
        &self,
        provider_meeting_id: &str,
        deadline: Instant,
    ) -> Result<Deletion, ProviderError> {
        let c = self.credentials().await?;
        let url = self.sessions_url(&c, Some(provider_meeting_id))?;
        let req = Request::new("delete_session", Method::DELETE, url);
        api::deletion(self.api.call(self, req, deadline).await)
    }

    /// Zoho lists the sessions of the whole organisation, whoever presents them.
    async fn marked_meetings(
        &self,
        _host_user: Option<&str>,
        deadline: Instant,
    ) -> Result<Vec<Marked>, ProviderError> {
        api::all_marked(self, None, deadline).await
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
            token_user_presents: true,
        };
        let a = creds("1000.refresh.one").record_key();
        assert!(a.starts_with("zoho#") && !a.contains("refresh"));
        assert_eq!(a, creds("1000.refresh.one").record_key());
        assert_ne!(a, creds("1000.refresh.two").record_key());
    }
}
