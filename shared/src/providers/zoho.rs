//! Zoho Meeting: sessions created, updated and deleted through `/api/v2/{zsoid}/sessions`,
//! authorised by `Zoho-oauthtoken` access tokens from a refresh token, on the shared OAuth
//! skeleton ([`super::api`]). This module holds only what is Zoho's: data centres, URLs and
//! bodies, its error codes ([`Zoho`]) and its lists.
//!
//! Access tokens are shared by all containers through the table ([`SharedToken`]): Zoho
//! grants only 10 per refresh token per 10 minutes. The data centre picks both hosts.
//! Start links and tokens never reach a log line.

use super::api::{self, Dialect, IssuedToken, OAuthApi, Request, TokenSource, grant_rereading};
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
use chrono::{DateTime, Duration, DurationRound, NaiveDateTime, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// Zoho's code for a refused access token (`INVALID_OAUTHTOKEN`).
pub const INVALID_OAUTHTOKEN: i64 = 2000;
/// Zoho's code for a meeting key it does not know (`INVALID_MEETING_KEY`).
pub const INVALID_MEETING_KEY: i64 = 4000;
/// Sessions listed per page, and the pages read while looking for a marker.
const PAGE_SIZE: usize = 100;
const MAX_LIST_PAGES: usize = 10;
/// Pages of upcoming sessions the orphan pass reads at most.
const MAX_ORPHAN_PAGES: usize = 50;
/// The wait after a throttle answer: Zoho says only "try again after some time".
const THROTTLE_WAIT_SECONDS: u64 = 60;
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
    text_value(json.get(field)?)
}

fn text_value(v: &Value) -> Option<String> {
    match v {
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

    fn refusal(a: &Answer, code: Option<i64>, _retry_after: u64) -> Option<ProviderError> {
        // Documented without its status: whatever it is, the session is not there.
        if code == Some(INVALID_MEETING_KEY) {
            return Some(ProviderError::NotFound);
        }
        if a.status == StatusCode::FORBIDDEN {
            tracing::error!(
                provider = "zoho",
                "Zoho refused the organisation: check zsoid in the ZOHO_SECRET_ID secret and the OAuth scopes (ZohoMeeting.meeting.ALL)"
            );
        }
        None
    }

    /// Zoho answers "Access Denied" (200 or 400, localised) once a refresh token's token
    /// quota is spent.
    fn grant_quota_spent(_status: StatusCode, body: &Value) -> bool {
        throttle_body(body)
    }

    /// A throttle answer is a rate limit whatever its status: never a success nor a
    /// refusal of the credentials.
    fn throttled(a: &Answer) -> Option<u64> {
        throttle_body(&a.body).then_some(THROTTLE_WAIT_SECONDS)
    }
}

/// Whether `body` is Zoho's "too many requests" answer, recognised by its shape rather than
/// its (localised) words: a top-level `error` string that is no OAuth error code (those are
/// lower-case identifiers such as `invalid_client`), with `status: "failure"` or an
/// `error_description`. The Meeting API's own errors are objects (`{"error":{"code":…}}`).
fn throttle_body(body: &Value) -> bool {
    let Some(error) = body.get("error").and_then(Value::as_str) else {
        return false;
    };
    let oauth_code = !error.is_empty()
        && error
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let failure = body.get("status").and_then(Value::as_str) == Some("failure");
    !oauth_code && (failure || body.get("error_description").is_some_and(Value::is_string))
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

/// Zoho's local-time format for `startTime` (its answers append a zone abbreviation).
const START_FORMAT: &str = "%b %d, %Y %I:%M %p";

/// Zoho takes start times to the minute: one with seconds goes to the next minute, never to
/// the one before (a conversation starting "now" would start up to 59 s in the past).
fn whole_minute_up(t: DateTime<Utc>) -> DateTime<Utc> {
    let cut = t.duration_trunc(Duration::minutes(1)).unwrap_or(t);
    if cut < t {
        cut + Duration::minutes(1)
    } else {
        cut
    }
}

/// A listed `startTime` ("Jun 19, 2020 07:00 PM IST") read in the session's `timezone`: the
/// abbreviation is ambiguous (IST), the IANA name is not. `None`: unreadable.
fn listed_start(session: &Value) -> Option<Vec<DateTime<Utc>>> {
    let text = session.get("startTime")?.as_str()?;
    let local: Vec<&str> = text.split_whitespace().take(5).collect();
    let naive = NaiveDateTime::parse_from_str(&local.join(" "), START_FORMAT).ok()?;
    let tz: chrono_tz::Tz = session.get("timezone")?.as_str()?.parse().ok()?;
    // Both readings of a time the clocks pass twice.
    let times: Vec<_> = tz
        .from_local_datetime(&naive)
        .earliest()
        .into_iter()
        .chain(tz.from_local_datetime(&naive).latest())
        .map(|t| t.with_timezone(&Utc))
        .collect();
    (!times.is_empty()).then_some(times)
}

/// Whether a listed session may be the one `schedule` made: same topic, and the same start
/// where its start can be read. The list carries no agenda, so this only narrows.
fn may_be(session: &Value, schedule: &Schedule) -> bool {
    let topic = session.get("topic").and_then(Value::as_str);
    let start = whole_minute_up(schedule.start_time);
    topic.is_none_or(|t| t == schedule.topic)
        && listed_start(session).is_none_or(|times| times.contains(&start))
}

/// Zoho's local-time format for `startTime`, in the session's own time zone.
fn zoho_start_time(start: DateTime<Utc>, timezone: &str) -> String {
    match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => tz
            .from_utc_datetime(&start.naive_utc())
            .format(START_FORMAT)
            .to_string(),
        Err(_) => start.format(START_FORMAT).to_string(),
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

/// The schedule a Zoho session carries (its start from `startTimeMillisec`, else from
/// `startTime` in its time zone).
fn schedule_of(session: &Value) -> Option<Schedule> {
    let start = session
        .get("startTimeMillisec")
        .and_then(millis)
        .and_then(DateTime::from_timestamp_millis)
        .or_else(|| listed_start(session)?.first().copied())?;
    Some(Schedule {
        topic: session.get("topic")?.as_str()?.to_owned(),
        start_time: start,
        duration_minutes: u32::try_from(millis(session.get("duration")?)? / 60_000).ok()?,
        timezone: session.get("timezone")?.as_str()?.to_owned(),
    })
}

/// Zoho's marker: the shared one ([`marker`]) and, after a `:`, when it was written (epoch
/// seconds). Zoho tells no session's creation time, and the orphan pass must leave alone a
/// session young enough to belong to a create still in flight.
fn zoho_marker(deployment: &str, id: &MeetingId, at: DateTime<Utc>) -> String {
    format!("{}:{}", marker(deployment, id), at.timestamp())
}

/// What a Zoho marker names: the shared marker's deployment and meeting id, and the time it
/// was written (`None`: a marker from before markers carried it).
struct ZohoMarker {
    deployment: Option<String>,
    meeting_id: String,
    marked_at: Option<DateTime<Utc>>,
}

fn parse_zoho_marker(text: Option<&str>) -> Option<ZohoMarker> {
    let text = text?.trim();
    // `telemeet:{deployment}:{id}:{seconds}`: three parts after the prefix, the last digits.
    let timed = text.rsplit_once(':').and_then(|(head, secs)| {
        let at = secs.parse::<i64>().ok()?;
        match api::parse_marker(Some(head))? {
            (Some(d), id) if !id.contains(':') => Some((d, id, DateTime::from_timestamp(at, 0)?)),
            _ => None,
        }
    });
    if let Some((deployment, meeting_id, at)) = timed {
        return Some(ZohoMarker {
            deployment: Some(deployment),
            meeting_id,
            marked_at: Some(at),
        });
    }
    let (deployment, meeting_id) = api::parse_marker(Some(text))?;
    Some(ZohoMarker {
        deployment,
        meeting_id,
        marked_at: None,
    })
}

/// What the list's `index` counts: Zoho's pages disagree (records from 1, or page numbers
/// from 0; see infra/zoho-sandbox/README.md), so the reader works out which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexMode {
    RecordsFrom1,
    PagesFrom0,
}

impl IndexMode {
    /// The index of the page after the one read at `index`.
    fn next(self, index: usize) -> usize {
        match self {
            Self::RecordsFrom1 => index + PAGE_SIZE,
            Self::PagesFrom0 => index + 1,
        }
    }

    /// Which reading the first page (`zero`, no index) and index 1 show. Records from 1:
    /// both read the same records. Page numbers: two disjoint pages, the first one full
    /// whenever the second has any (a few shared only if sessions came between the reads).
    fn of(zero: &[Value], one: &[Value]) -> Self {
        if one.is_empty() {
            return Self::PagesFrom0; // the first page held everything either way
        }
        if zero.is_empty() {
            return Self::RecordsFrom1;
        }
        let keys: HashSet<String> = zero.iter().filter_map(session_key).collect();
        let shared = one
            .iter()
            .filter_map(session_key)
            .filter(|k| keys.contains(k))
            .count();
        if shared * 2 > zero.len().min(one.len()) {
            Self::RecordsFrom1
        } else {
            Self::PagesFrom0
        }
    }
}

fn session_key(session: &Value) -> Option<String> {
    meeting_key(session.get("meetingKey")?)
}

/// `page`'s sessions not in `all` yet (pages may overlap), appended to it.
fn merge(all: &mut Vec<Value>, page: Vec<Value>) {
    let mut seen: HashSet<String> = all.iter().filter_map(session_key).collect();
    all.extend(
        page.into_iter()
            .filter(|s| session_key(s).is_some_and(|k| seen.insert(k))),
    );
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

    /// A create's or full edit's body; `marked_at` goes into the marker (see [`zoho_marker`]).
    fn session_body(
        &self,
        presenter: &str,
        meeting_id: &MeetingId,
        schedule: &Schedule,
        marked_at: DateTime<Utc>,
    ) -> Value {
        let presenter = presenter
            .parse::<u64>()
            .map_or_else(|_| json!(presenter), |z| json!(z));
        let start = whole_minute_up(schedule.start_time);
        json!({ "session": {
            "topic": schedule.topic,
            "agenda": zoho_marker(&self.config.deployment, meeting_id, marked_at),
            "presenter": presenter,
            "startTime": zoho_start_time(start, &schedule.timezone),
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
                // The join link does not carry the passcode: it is given beside it.
                password: session.get("pwd").and_then(text_value),
            },
            schedule: schedule_of(session),
        })
    }

    /// The session under `key` as its own GET answers it (`None`: gone).
    async fn read_session(
        &self,
        c: &ZohoCredentials,
        key: &str,
        deadline: Instant,
    ) -> Result<Option<Value>, ProviderError> {
        let url = self.sessions_url(c, Some(key))?;
        let req = Request::new("get_session", Method::GET, url);
        match self.api.call(self, req, deadline).await {
            Ok(a) => Ok(a.body.get("session").cloned()),
            Err(ProviderError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page of the list at `index` (`None`: Zoho's default, the first page).
    async fn list_page(
        &self,
        c: &ZohoCredentials,
        listtype: &str,
        index: Option<usize>,
        deadline: Instant,
    ) -> Result<Vec<Value>, ProviderError> {
        let mut url = self.sessions_url(c, None)?;
        url.query_pairs_mut().append_pair("listtype", listtype);
        if let Some(i) = index {
            url.query_pairs_mut().append_pair("index", &i.to_string());
        }
        url.query_pairs_mut()
            .append_pair("count", &PAGE_SIZE.to_string());
        let req = Request::new("list_sessions", Method::GET, url);
        let a = self.api.call(self, req, deadline).await?;
        Ok(api::list_of(a.body, "session"))
    }

    /// The first page (no `index`: Zoho's default) and the page at index 1, and what `index`
    /// counts: index 1 is the first page again if it counts records from 1, the second if it
    /// numbers pages from 0 (never index 0: a list counting records may refuse it). A list
    /// refusing the default counts records. Returns the mode, the sessions read and the last
    /// page's length.
    async fn first_pages(
        &self,
        c: &ZohoCredentials,
        listtype: &str,
        deadline: Instant,
    ) -> Result<(IndexMode, Vec<Value>, usize), ProviderError> {
        let one = self.list_page(c, listtype, Some(1), deadline).await?;
        let len = one.len();
        let zero = match self.list_page(c, listtype, None, deadline).await {
            Err(ProviderError::Rejected { .. }) => return Ok((IndexMode::RecordsFrom1, one, len)),
            other => other?,
        };
        let mode = IndexMode::of(&zero, &one);
        let mut all = zero;
        merge(&mut all, one);
        Ok((mode, all, len))
    }

    /// Every session of `listtype`, reading at most `max_pages` pages. A longer list is no
    /// answer (ambiguous): a marker search must not read "not there" into it.
    async fn sessions(
        &self,
        c: &ZohoCredentials,
        listtype: &str,
        max_pages: usize,
        deadline: Instant,
    ) -> Result<Vec<Value>, ProviderError> {
        let (mode, mut all, mut last_len) = self.first_pages(c, listtype, deadline).await?;
        let (mut index, mut pages) = (1, 2);
        while last_len >= PAGE_SIZE {
            if pages >= max_pages {
                return Err(ProviderError::Unavailable {
                    retry_after: None,
                    ambiguous: true,
                    in_flight: false,
                    cause: format!("Zoho session list longer than {max_pages} pages"),
                });
            }
            index = mode.next(index);
            let page = self.list_page(c, listtype, Some(index), deadline).await?;
            last_len = page.len();
            merge(&mut all, page);
            pages += 1;
        }
        Ok(all)
    }

    /// The session carrying `meeting_id`'s marker. The list carries no agenda: candidates
    /// (when `schedule` is known, only those of its topic and start) are read one by one.
    async fn search_marker(
        &self,
        meeting_id: &MeetingId,
        schedule: Option<&Schedule>,
        deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError> {
        let c = self.credentials().await?;
        let listed = self.sessions(&c, "all", MAX_LIST_PAGES, deadline).await?;
        let candidates = listed
            .iter()
            .filter(|s| schedule.is_none_or(|sch| may_be(s, sch)))
            .filter_map(session_key);
        for key in candidates {
            let Some(session) = self.read_session(&c, &key, deadline).await? else {
                continue;
            };
            let marked = parse_zoho_marker(session["agenda"].as_str());
            if marked.is_some_and(|m| m.meeting_id == meeting_id.as_str()) {
                return self.meeting_from(&session).map(Some);
            }
        }
        Ok(None)
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
        let now = self.api.clock.now();
        let body = self.session_body(&presenter, &spec.meeting_id, &spec.schedule, now);
        let req = Request::with("create_session", Method::POST, url, &body);
        let search = || self.search_marker(&spec.meeting_id, Some(&spec.schedule), deadline);
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
        self.search_marker(meeting_id, None, deadline).await
    }

    /// One refresh grant (it counts towards Zoho's 10 per 10 minutes, like any other).
    async fn verify(&self, _deadline: Instant) -> Result<(), ProviderError> {
        let c = self.credentials().await?;
        self.fetch_token(c).await.map(drop)
    }

    fn known_default_host(&self) -> Option<Option<String>> {
        let c = self.credentials.peek()?;
        if let Some(p) = &c.presenter {
            return Some(Some(p.clone()));
        }
        if !c.token_user_presents {
            return Some(None);
        }
        self.presenter.get().map(|p| Some(p.clone()))
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
        let session = self
            .read_session(&c, &meeting.provider_meeting_id, deadline)
            .await?
            .ok_or(ProviderError::NotFound)?;
        Ok((
            self.meeting_from(&session)?.links.host_url,
            self.api.clock.now(),
        ))
    }

    /// A full edit: Zoho's PUT wants every field again (the marker stays, dated by the
    /// record's creation: an update only ever makes it look younger, never an orphan sooner).
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
        let body = self.session_body(&presenter, &meeting.id, schedule, meeting.created_at);
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

    /// The organisation's upcoming sessions (past ones hold no room open), whoever presents
    /// them, each read on its own: the list carries no agenda. A marker without its time
    /// may belong to a create in flight, so it is never offered as an orphan.
    async fn marked_meetings(
        &self,
        _host_user: Option<&str>,
        deadline: Instant,
    ) -> Result<Vec<Marked>, ProviderError> {
        let c = self.credentials().await?;
        let listed = self
            .sessions(&c, "upcoming", MAX_ORPHAN_PAGES, deadline)
            .await?;
        let mut found = Vec::new();
        for key in listed.iter().filter_map(session_key) {
            let Some(session) = self.read_session(&c, &key, deadline).await? else {
                continue;
            };
            let Some(m) = parse_zoho_marker(session["agenda"].as_str()) else {
                continue;
            };
            if let Some(at) = m.marked_at {
                found.push(Marked {
                    provider_meeting_id: key,
                    deployment: m.deployment,
                    meeting_id: m.meeting_id,
                    created_at: Some(at),
                });
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
    fn throttle_answers_are_recognised_by_shape_in_any_language() {
        let english = json!({"error": "Access Denied", "status": "failure",
            "error_description": "You have made too many requests continuously. Please try again after some time."});
        let chinese = json!({"error": "拒绝访问", "status": "failure",
            "error_description": "您已连续提出过多请求，请稍后再试。"});
        let token_limit = json!({"error": "Access Denied",
            "error_description": "Token creation throttle limit reached. Please reuse the valid tokens you currently have."});
        for body in [&english, &chinese, &token_limit] {
            assert!(throttle_body(body), "{body}");
        }
        for body in [
            json!({"error": "invalid_client"}),
            json!({"error": "invalid_code", "error_description": "x"}),
            json!({"error": "unsupported_grant_type"}),
            json!({"error": {"code": 2000, "message": "INVALID_OAUTHTOKEN"}}),
            json!({"error": {"errorCode": 4000, "key": "INVALID_MEETING_KEY"}}),
            json!({"access_token": "t", "expires_in": 3600}),
            json!({"error": "Access Denied"}),
        ] {
            assert!(!throttle_body(&body), "{body}");
        }
    }

    #[test]
    fn an_invalid_meeting_key_is_a_session_not_found_whatever_its_status() {
        let answer = |status: StatusCode| Answer {
            status,
            headers: reqwest::header::HeaderMap::new(),
            body: json!({"error": {"errorCode": 4000, "message": "The meeting key is invalid.",
                "key": "INVALID_MEETING_KEY"}}),
        };
        for status in [StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND] {
            let a = answer(status);
            let code = error_code(&a.body);
            assert!(matches!(
                Zoho::refusal(&a, code, 0),
                Some(ProviderError::NotFound)
            ));
        }
    }

    #[test]
    fn start_times_with_seconds_go_to_the_next_minute() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            whole_minute_up(t("2026-11-21T10:00:00Z")),
            t("2026-11-21T10:00:00Z")
        );
        assert_eq!(
            whole_minute_up(t("2026-11-21T10:00:01Z")),
            t("2026-11-21T10:01:00Z")
        );
        assert_eq!(
            whole_minute_up(t("2026-11-21T10:59:59.5Z")),
            t("2026-11-21T11:00:00Z")
        );
        assert_eq!(
            whole_minute_up(t("2026-11-21T10:00:00.001Z")),
            t("2026-11-21T10:01:00Z")
        );
    }

    #[test]
    fn a_listed_start_is_read_in_the_sessions_own_time_zone() {
        let s = json!({"startTime": "Jun 19, 2020 07:00 PM IST", "timezone": "Asia/Kolkata"});
        let utc = DateTime::parse_from_rfc3339("2020-06-19T13:30:00Z").unwrap();
        assert_eq!(listed_start(&s), Some(vec![utc.with_timezone(&Utc); 2]));
        let bad = json!({"startTime": "19/06/2020 19:00", "timezone": "Asia/Kolkata"});
        assert_eq!(listed_start(&bad), None);
    }

    #[test]
    fn markers_carry_their_time_and_old_ones_still_read() {
        let id = MeetingId::parse("mtg_1", "t").unwrap();
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let text = zoho_marker("prod", &id, at);
        assert_eq!(text, "telemeet:prod:mtg_1:1800000000");
        let m = parse_zoho_marker(Some(&text)).unwrap();
        assert_eq!(
            (m.deployment.as_deref(), m.meeting_id.as_str(), m.marked_at),
            (Some("prod"), "mtg_1", Some(at))
        );
        let old = parse_zoho_marker(Some("telemeet:prod:mtg_1")).unwrap();
        assert_eq!(
            (
                old.deployment.as_deref(),
                old.meeting_id.as_str(),
                old.marked_at
            ),
            (Some("prod"), "mtg_1", None)
        );
        let oldest = parse_zoho_marker(Some("telemeet:mtg_1")).unwrap();
        assert_eq!(
            (oldest.deployment, oldest.meeting_id.as_str()),
            (None, "mtg_1")
        );
        assert!(parse_zoho_marker(Some("Follow-up")).is_none());
    }

    #[test]
    fn the_first_two_pages_tell_what_index_counts() {
        let page = |keys: std::ops::Range<u64>| -> Vec<Value> {
            keys.map(|k| json!({ "meetingKey": k })).collect()
        };
        // Records from 1: index 0 reads as index 1 (or one fewer); pages: two disjoint pages.
        assert_eq!(
            IndexMode::of(&page(1..101), &page(1..101)),
            IndexMode::RecordsFrom1
        );
        assert_eq!(
            IndexMode::of(&page(1..100), &page(1..101)),
            IndexMode::RecordsFrom1
        );
        assert_eq!(IndexMode::of(&[], &page(1..5)), IndexMode::RecordsFrom1);
        assert_eq!(
            IndexMode::of(&page(1..101), &page(101..150)),
            IndexMode::PagesFrom0
        );
        assert_eq!(
            IndexMode::of(&page(1..101), &page(100..150)),
            IndexMode::PagesFrom0,
            "one session came between"
        );
        assert_eq!(IndexMode::of(&page(1..40), &[]), IndexMode::PagesFrom0);
        assert_eq!(IndexMode::RecordsFrom1.next(1), 101);
        assert_eq!(IndexMode::PagesFrom0.next(1), 2);
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
