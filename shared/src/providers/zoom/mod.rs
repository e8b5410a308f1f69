//! Zoom: Server-to-Server OAuth and the Meetings API subset telemeet uses, on the shared
//! OAuth skeleton ([`super::api`]); this module holds only what is Zoom's: its URLs and
//! bodies, its error codes ([`Zoom`]), its lists, and its webhook events ([`events`]).
//!
//! Access tokens are shared by all containers through the table ([`SharedToken`], one record
//! per connection), so a cold container reads one instead of paying a grant from zoom.us;
//! each container keeps its copy until 60 s before expiry, and fetches it once under
//! concurrency. Start URLs and tokens never reach a log line.

pub mod events;
pub mod webhook;

use super::api::{
    self, Dialect, IssuedToken, Listing, OAuthApi, Request, Scope, TokenSource, grant_rereading,
};
use super::http::Answer;
use super::retry::RetryPolicy;
use super::shared_token::{Contention, RefreshBudget, SealKey, SharedToken};
use super::{
    CreateSpec, Deletion, Marked, MeetingProvider, ProviderError, ProviderMeeting, Schedule, marker,
};
use crate::clock::Clock;
use crate::domain::{Meeting, ProviderKind, ProviderLinks, SubjectKind};
use crate::ids::MeetingId;
use crate::secrets::{FromSecret, SecretCache, secret_opt_str, secret_str};
use crate::store::TokenStore;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// A Zoom start_url expires two hours after Zoom generates it; hand out stored ones only
/// while at least 30 minutes remain.
pub const START_URL_LIFETIME: Duration = Duration::hours(2);
pub const START_URL_MAX_AGE: Duration = Duration::minutes(90);
/// What the shared token's seal key is derived for (with the client secret).
const SEAL_PURPOSE: &str = "telemeet/zoom-token/v1";
/// Upper bound on list pages read while reconciling (300 meetings a page).
const MAX_LIST_PAGES: usize = 10;

/// `ZOOM_SECRET_ID`: `{"accountId","clientId","clientSecret","userId"?}` (default user
/// `me`), or an org connection's secret, which names its default user as `defaultUser`
/// (absent or null: none, so unmapped hosts are refused).
pub struct ZoomCredentials {
    pub(crate) account_id: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    user_id: Option<String>,
}

impl fmt::Debug for ZoomCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ZoomCredentials(..)")
    }
}

impl FromSecret for ZoomCredentials {
    fn from_secret(json: &Map<String, Value>) -> Result<Self, String> {
        Ok(Self {
            account_id: secret_str(json, "accountId")?,
            client_id: secret_str(json, "clientId")?,
            client_secret: secret_str(json, "clientSecret")?,
            user_id: if json.contains_key("defaultUser") {
                secret_opt_str(json, "defaultUser")
            } else {
                Some(secret_opt_str(json, "userId").unwrap_or_else(|| "me".to_owned()))
            },
        })
    }
}

#[derive(Debug, Clone)]
pub struct ZoomConfig {
    pub api_base_url: String,
    pub oauth_token_url: String,
    /// `DEPLOYMENT_ID`, named in every meeting's marker.
    pub deployment: String,
}

/// What Zoom's answers mean.
pub struct Zoom;

/// Zoom's code for an expired or invalid access token.
const TOKEN_EXPIRED: i64 = 124;
/// The meeting does not exist (or no longer).
const MEETING_NOT_FOUND: i64 = 3001;
/// The user meetings are created for is not in the account.
const USER_NOT_FOUND: i64 = 1001;
/// A limit, among them the daily create/update cap ("... in one day").
const LIMIT_REACHED: i64 = 300;
/// The meeting is in progress (a delete is refused).
pub const IN_PROGRESS: i64 = 3002;
/// "Sorry, you cannot delete this meeting since it has ended." (DELETE, HTTP 400): an ended
/// meeting holds nothing to delete.
pub const ENDED: i64 = 3007;

impl Dialect for Zoom {
    const NAME: &'static str = "zoom";
    const CREDENTIALS_HINT: &'static str = "Zoom refused the OAuth credentials: check accountId, clientId and clientSecret (the ZOOM_SECRET_ID secret, or the org's PUT /org/providers/zoom) and that the Server-to-Server app is activated";
    const GRANT_QUOTA_WAIT: Option<u64> = None;
    // The container's token, the table's (another container renewed it), a new one.
    const TOKEN_TRIES: usize = 3;

    fn authorization(token: &str) -> String {
        format!("Bearer {token}")
    }

    fn error_code(body: &Value) -> Option<i64> {
        body.get("code").and_then(Value::as_i64)
    }

    fn token_refused(a: &Answer) -> bool {
        a.status == reqwest::StatusCode::UNAUTHORIZED
            || Self::error_code(&a.body) == Some(TOKEN_EXPIRED)
    }

    /// The account's daily cap says so in `X-RateLimit-Type`.
    fn daily_limit(a: &Answer) -> bool {
        a.headers
            .get("x-ratelimit-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("daily-limit"))
    }

    /// A host user's own daily cap of meeting creates and updates (100 a day) comes as a
    /// 429 with neither `X-RateLimit-Type` nor `Retry-After`, its message naming the daily
    /// limit: no per-second limit, and no reason to stop other hosts.
    fn host_daily_limit(a: &Answer) -> bool {
        let header = |name: &str| a.headers.get(name).is_some();
        !header("x-ratelimit-type")
            && !header("retry-after")
            && a.body["message"]
                .as_str()
                .is_some_and(|m| m.to_ascii_lowercase().contains("daily"))
    }

    fn refusal(a: &Answer, code: Option<i64>, retry_after: u64) -> Option<ProviderError> {
        match code? {
            MEETING_NOT_FOUND => Some(ProviderError::NotFound),
            USER_NOT_FOUND => {
                tracing::error!(
                    provider = "zoom",
                    "Zoom does not know the user meetings are created for: check the host directory (PUT /org/hosts/{{userId}}) or the account's default user (an id or email of a licensed user of the account)"
                );
                Some(ProviderError::UnknownHost)
            }
            // "A maximum of {n} meetings can be created/updated for a single user in one day."
            LIMIT_REACHED
                if a.body["message"].as_str().is_some_and(|m| {
                    let m = m.to_ascii_lowercase();
                    m.contains("one day") || m.contains("daily")
                }) =>
            {
                Some(ProviderError::HostDailyLimit { retry_after })
            }
            _ => None,
        }
    }
}

pub struct ZoomProvider {
    api: OAuthApi<Zoom>,
    config: ZoomConfig,
    credentials: SecretCache<ZoomCredentials>,
    token: SharedToken,
}

/// The shared token's record key: one per connection (this deployment's secret `secret_id`,
/// the deployment's or an org's) and Zoom app (account and client), so orgs never share one
/// even with the same Zoom app (guarantee 9); a digest, as the key holds no secret anyway.
fn record_key(deployment: &str, secret_id: &str, c: &ZoomCredentials) -> String {
    let named = [deployment, secret_id, &c.account_id, &c.client_id].join("\n");
    let digest = Sha256::digest(named);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("zoom#{hex}")
}

/// Zoom's meeting ids are int64 and arrive as numbers or strings.
pub fn meeting_id_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_i64().map(|i| i.to_string()),
        Value::String(s) => s.parse::<i64>().ok().map(|i| i.to_string()),
        _ => None,
    }
}

/// The schedule of a Zoom meeting object, when it carries one.
fn schedule_of(body: &Value) -> Option<Schedule> {
    Some(Schedule {
        topic: body.get("topic")?.as_str()?.to_owned(),
        start_time: DateTime::parse_from_rfc3339(body.get("start_time")?.as_str()?)
            .ok()?
            .with_timezone(&Utc),
        duration_minutes: u32::try_from(body.get("duration")?.as_u64()?).ok()?,
        timezone: body.get("timezone")?.as_str()?.to_owned(),
    })
}

/// Zoom's own list of time zone IDs (the table in its API references, vendored with the
/// sandbox, which checks against the same file). Zoom accepts only these.
const ZOOM_ZONES: &str = include_str!("../../../../infra/zoom-sandbox/spec/timezones.txt");

fn zoom_zones() -> impl Iterator<Item = &'static str> {
    ZOOM_ZONES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The UTC offsets (seconds) of `tz` on the first of each month of `year`.
fn offsets_of(tz: chrono_tz::Tz, year: i32) -> Option<Vec<i32>> {
    use chrono::{Offset, TimeZone};
    (1..=12)
        .map(|month| {
            let at = chrono::NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(12, 0, 0)?;
            Some(tz.offset_from_utc_datetime(&at).fix().local_minus_utc())
        })
        .collect()
}

/// The zone Zoom is told for a meeting in `zone` starting at `start`: the zone itself when
/// Zoom knows it; else a Zoom zone keeping the same clock all that year (`Europe/Kyiv` →
/// `Europe/Kiev`), the most similar name first; else `UTC`. The start is always sent in
/// UTC (`…Z`), so the zone only decides how Zoom shows it; our record keeps the caller's.
pub fn zone_for(zone: &str, start: DateTime<Utc>) -> &str {
    if let Some(known) = zoom_zones().find(|z| *z == zone) {
        return known;
    }
    let year = chrono::Datelike::year(&start);
    let Some(wanted) = zone
        .parse::<chrono_tz::Tz>()
        .ok()
        .and_then(|tz| offsets_of(tz, year))
    else {
        return "UTC";
    };
    let same_clock = |z: &&str| {
        z.parse::<chrono_tz::Tz>()
            .ok()
            .and_then(|tz| offsets_of(tz, year))
            .is_some_and(|o| o == wanted)
    };
    // The most similar name among those keeping the same clock (`Europe/Kyiv` shares
    // `Europe/K` with `Europe/Kiev`, `Europe/` only with `Europe/Athens`); the list's first.
    let shared = |z: &&str| {
        z.bytes()
            .zip(zone.bytes())
            .take_while(|(a, b)| a == b)
            .count()
    };
    zoom_zones()
        .filter(same_clock)
        .fold(None, |best: Option<&str>, z| match best {
            Some(b) if shared(&b) >= shared(&z) => Some(b),
            _ => Some(z),
        })
        .unwrap_or("UTC")
}

fn zoom_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The create body: a scheduled meeting (type 2) with a passcode and our marker.
fn create_body(spec: &CreateSpec, deployment: &str) -> Value {
    let conversation = spec.kind == SubjectKind::Conversation;
    json!({
        "topic": spec.schedule.topic,
        "type": 2,
        "start_time": zoom_time(spec.schedule.start_time),
        "duration": spec.schedule.duration_minutes,
        "timezone": zone_for(&spec.schedule.timezone, spec.schedule.start_time),
        "password": spec.passcode,
        "agenda": marker(deployment, &spec.meeting_id),
        "settings": {
            // Appointments: the host admits the patient. Conversations: whoever calls
            // first waits in the room for the other.
            "waiting_room": !conversation,
            "join_before_host": conversation,
            "host_video": true,
            "participant_video": true,
            "mute_upon_entry": false,
            "approval_type": 2,
            "auto_recording": "none",
            "meeting_authentication": false,
        },
    })
}

impl ZoomProvider {
    pub fn new(
        http: reqwest::Client,
        config: ZoomConfig,
        credentials: SecretCache<ZoomCredentials>,
        tokens: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            api: OAuthApi::new(http, clock.clone(), policy),
            config,
            credentials,
            token: SharedToken::new(tokens, clock, RefreshBudget::ZOOM)
                .with_contention(Contention::ZOOM),
        }
    }

    fn api_url(&self, segments: &[&str]) -> Result<reqwest::Url, ProviderError> {
        let mut url = reqwest::Url::parse(&self.config.api_base_url)
            .map_err(|_| ProviderError::rejected("ZOOM_API_BASE_URL is not a URL"))?;
        url.path_segments_mut()
            .map_err(|_| ProviderError::rejected("ZOOM_API_BASE_URL cannot take a path"))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn meeting_url(
        &self,
        provider_meeting_id: &str,
        tail: &[&str],
    ) -> Result<reqwest::Url, ProviderError> {
        let id = meeting_path_segment(provider_meeting_id);
        let segments: Vec<&str> = ["meetings", id.as_str()]
            .into_iter()
            .chain(tail.iter().copied())
            .collect();
        self.api_url(&segments)
    }

    fn fetch_token(
        &self,
        c: Arc<ZoomCredentials>,
    ) -> impl std::future::Future<Output = Result<IssuedToken, ProviderError>> + '_ {
        let request = self
            .api
            .http
            .client
            .post(&self.config.oauth_token_url)
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .query(&[
                ("grant_type", "account_credentials"),
                ("account_id", c.account_id.as_str()),
            ]);
        api::grant::<Zoom>(request, self.api.clock.as_ref())
    }

    fn meeting_from(&self, body: &Value) -> Result<ProviderMeeting, ProviderError> {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let need = |k: &str| text(k).ok_or_else(|| api::malformed::<Zoom>(k));
        Ok(ProviderMeeting {
            provider_meeting_id: body
                .get("id")
                .and_then(meeting_id_of)
                .ok_or_else(|| api::malformed::<Zoom>("id"))?,
            uuid: text("uuid"),
            links: ProviderLinks {
                join_url: need("join_url")?,
                host_url: need("start_url")?,
                host_url_fetched_at: Some(self.api.clock.now()),
                password: text("password").filter(|p| !p.is_empty()),
            },
            schedule: schedule_of(body),
        })
    }

    async fn get_meeting(
        &self,
        provider_meeting_id: &str,
        deadline: Instant,
    ) -> Result<ProviderMeeting, ProviderError> {
        let url = self.meeting_url(provider_meeting_id, &[])?;
        let a = self
            .api
            .call(
                self,
                Request::new("get_meeting", Method::GET, url),
                deadline,
            )
            .await?;
        self.meeting_from(&a.body)
    }

    async fn search_marker(
        &self,
        meeting_id: &MeetingId,
        user: Option<&str>,
        deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError> {
        match api::find_marked(self, meeting_id, user, MAX_LIST_PAGES, deadline).await? {
            // The list lacks start_url: read the meeting itself.
            Some(id) => self.get_meeting(&id, deadline).await.map(Some),
            None => Ok(None),
        }
    }

    /// `user`, else the account's default user; neither: the host is not mapped.
    async fn user_id(&self, user: Option<&str>) -> Result<String, ProviderError> {
        match user {
            Some(u) => Ok(u.to_owned()),
            None => self
                .credentials
                .get()
                .await?
                .user_id
                .clone()
                .ok_or(ProviderError::UnknownHost),
        }
    }
}

#[async_trait]
impl TokenSource for ZoomProvider {
    async fn token(
        &self,
        stale: Option<&str>,
        deadline: Instant,
    ) -> Result<(String, bool), ProviderError> {
        let c = self.credentials.get().await?;
        let seal = SealKey::derive(&c.client_secret, SEAL_PURPOSE);
        let key = record_key(&self.config.deployment, self.credentials.id(), &c);
        let fetch = || grant_rereading(&self.credentials, c.clone(), |c| self.fetch_token(c));
        // Boxed: the shared token's state machine is large, and request futures nest deep.
        Box::pin(self.token.get(&key, &seal, stale, deadline, fetch)).await
    }
}

#[async_trait]
impl Listing for ZoomProvider {
    /// One page (300) of the user's scheduled meetings (both scopes: a create in flight and
    /// an orphan are scheduled meetings).
    async fn page(
        &self,
        _scope: Scope,
        user: Option<&str>,
        cursor: Option<String>,
        deadline: Instant,
    ) -> Result<(Vec<Value>, Option<String>), ProviderError> {
        let user = self.user_id(user).await?;
        let mut url = self.api_url(&["users", &user, "meetings"])?;
        url.query_pairs_mut()
            .append_pair("type", "scheduled")
            .append_pair("page_size", "300");
        if let Some(token) = &cursor {
            url.query_pairs_mut().append_pair("next_page_token", token);
        }
        let a = self
            .api
            .call(
                self,
                Request::new("list_meetings", Method::GET, url),
                deadline,
            )
            .await?;
        let next = a.body["next_page_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok((api::list_of(a.body, "meetings"), next))
    }

    fn marked(&self, m: &Value) -> Option<Marked> {
        let (deployment, meeting_id) = api::parse_marker(m["agenda"].as_str())?;
        Some(Marked {
            deployment,
            meeting_id,
            provider_meeting_id: meeting_id_of(&m["id"])?,
            created_at: m["created_at"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
        })
    }
}

/// A meeting id or UUID as one path segment. Zoom wants UUIDs that start with `/` or
/// contain `//` encoded twice (the segment encoder adds the second layer).
pub fn meeting_path_segment(id: &str) -> String {
    if id.starts_with('/') || id.contains("//") {
        id.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    } else {
        id.to_owned()
    }
}

#[async_trait]
impl MeetingProvider for ZoomProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Zoom
    }

    /// Not idempotent: after an ambiguous failure the next attempt first looks the meeting up
    /// by its marker, so a retry never makes a second one.
    async fn create(
        &self,
        spec: &CreateSpec,
        deadline: Instant,
    ) -> Result<ProviderMeeting, ProviderError> {
        let user = self.user_id(spec.host_user.as_deref()).await?;
        let url = self.api_url(&["users", &user, "meetings"])?;
        let body = create_body(spec, &self.config.deployment);
        let req = Request::with("create_meeting", Method::POST, url, &body);
        let search = || self.search_marker(&spec.meeting_id, Some(&user), deadline);
        self.api
            .create(self, req, deadline, search, |b| self.meeting_from(b))
            .await
    }

    async fn find_by_marker(
        &self,
        meeting_id: &MeetingId,
        host_user: Option<&str>,
        deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError> {
        self.search_marker(meeting_id, host_user, deadline).await
    }

    async fn verify(&self, _deadline: Instant) -> Result<(), ProviderError> {
        let c = self.credentials.get().await?;
        self.fetch_token(c).await.map(drop)
    }

    async fn default_host(&self, _deadline: Instant) -> Result<Option<String>, ProviderError> {
        Ok(self.credentials.get().await?.user_id.clone())
    }

    fn known_default_host(&self) -> Option<Option<String>> {
        self.credentials.peek().map(|c| c.user_id.clone())
    }

    fn host_link_max_age(&self) -> Option<Duration> {
        Some(START_URL_MAX_AGE)
    }

    fn host_link_lifetime(&self) -> Option<Duration> {
        Some(START_URL_LIFETIME)
    }

    async fn fresh_host_link(
        &self,
        meeting: &Meeting,
        deadline: Instant,
    ) -> Result<(String, DateTime<Utc>), ProviderError> {
        let m = self
            .get_meeting(&meeting.provider_meeting_id, deadline)
            .await?;
        let at = m
            .links
            .host_url_fetched_at
            .unwrap_or_else(|| self.api.clock.now());
        Ok((m.links.host_url, at))
    }

    /// PATCH answers 204 with no body.
    async fn update(
        &self,
        meeting: &Meeting,
        schedule: &Schedule,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        let url = self.meeting_url(&meeting.provider_meeting_id, &[])?;
        let body = json!({
            "topic": schedule.topic,
            "start_time": zoom_time(schedule.start_time),
            "duration": schedule.duration_minutes,
            "timezone": zone_for(&schedule.timezone, schedule.start_time),
        });
        let req = Request::with("update_meeting", Method::PATCH, url, &body);
        self.api.call(self, req, deadline).await.map(drop)
    }

    /// 404 / 3001: already gone; 3007: ended, so nothing to delete either. 3002: in progress
    /// (the caller decides whether to end it).
    async fn delete(
        &self,
        provider_meeting_id: &str,
        deadline: Instant,
    ) -> Result<Deletion, ProviderError> {
        let url = self.meeting_url(provider_meeting_id, &[])?;
        let req = Request::new("delete_meeting", Method::DELETE, url);
        match api::deletion(self.api.call(self, req, deadline).await) {
            Err(ProviderError::Rejected {
                code: Some(IN_PROGRESS),
                ..
            }) => Ok(Deletion::InProgress),
            Err(ProviderError::Rejected {
                code: Some(ENDED), ..
            }) => Ok(Deletion::AlreadyGone),
            other => other,
        }
    }

    async fn marked_meetings(
        &self,
        host_user: Option<&str>,
        deadline: Instant,
    ) -> Result<Vec<Marked>, ProviderError> {
        api::all_marked(self, host_user, deadline).await
    }

    /// `GET /users/{userId}/meetings`: one list per host.
    fn lists_per_host(&self) -> bool {
        true
    }

    async fn end(&self, meeting: &Meeting, deadline: Instant) -> Result<(), ProviderError> {
        let url = self.meeting_url(&meeting.provider_meeting_id, &["status"])?;
        let body = json!({ "action": "end" });
        let req = Request::with("end_meeting", Method::PUT, url, &body);
        self.api.call(self, req, deadline).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_zoom_does_not_list_are_sent_as_an_equivalent_zoom_zone_or_utc() {
        let start = DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(zone_for("Europe/Berlin", start), "Europe/Berlin");
        // Renamed in 2022 (tzdata); Zoom's list still has the old name.
        assert_eq!(zone_for("Europe/Kyiv", start), "Europe/Kiev");
        assert_eq!(zone_for("Asia/Kolkata", start), "Asia/Kolkata");
        // Same clock all year as a Zoom zone of its region.
        let ulaanbaatar = zone_for("Asia/Ulaanbaatar", start);
        assert!(zoom_zones().any(|z| z == ulaanbaatar), "{ulaanbaatar}");
        assert_eq!(zone_for("Not/AZone", start), "UTC");
        assert_eq!(zone_for("UTC", start), "UTC");
    }

    #[test]
    fn meeting_ids_are_int64_from_numbers_or_strings() {
        assert_eq!(
            meeting_id_of(&json!(85746065432_i64)).as_deref(),
            Some("85746065432")
        );
        assert_eq!(
            meeting_id_of(&json!("9223372036854775807")).as_deref(),
            Some("9223372036854775807")
        );
        assert_eq!(meeting_id_of(&json!("abc")), None);
        assert_eq!(meeting_id_of(&json!(1.5)), None);
    }

    #[test]
    fn uuids_starting_with_a_slash_or_holding_a_double_slash_are_encoded_twice() {
        let mut url = reqwest::Url::parse("https://api.zoom.us/v2").unwrap();
        url.path_segments_mut()
            .unwrap()
            .extend(["meetings", &meeting_path_segment("/ajXp112QmuoKj4854875==")]);
        assert_eq!(
            url.path(),
            "/v2/meetings/%252FajXp112QmuoKj4854875%253D%253D"
        );
        let mut url = reqwest::Url::parse("https://api.zoom.us/v2").unwrap();
        url.path_segments_mut()
            .unwrap()
            .extend(["meetings", &meeting_path_segment("ab//cd")]);
        assert_eq!(url.path(), "/v2/meetings/ab%252F%252Fcd");
        // Ids and ordinary UUIDs pass as they are.
        assert_eq!(meeting_path_segment("85746065432"), "85746065432");
        assert_eq!(
            meeting_path_segment("4444AAAiAAAAAiAiAiiAii=="),
            "4444AAAiAAAAAiAiAiiAii=="
        );
    }
}
