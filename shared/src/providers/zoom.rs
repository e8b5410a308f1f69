//! Zoom: Server-to-Server OAuth and the Meetings API subset telemeet uses.
//!
//! Tokens are cached per container until 60 s before expiry and fetched once under
//! concurrency (the fetch holds the lock). Start URLs and tokens never reach a log line.

use super::http::{Answer, ProviderHttp};
use super::retry::{
    RetryPolicy, Sleeper, create_reconciling, retry_after_seconds, retry_verdict, transport_error,
};
use super::{
    CreateSpec, Deletion, MARKER_PREFIX, MeetingProvider, ProviderError, ProviderMeeting, Schedule,
    marker, secret_unreadable,
};
use crate::clock::Clock;
use crate::domain::{Meeting, ProviderKind, ProviderLinks};
use crate::ids::MeetingId;
use crate::secrets::{FromSecret, SecretCache, secret_opt_str, secret_str};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// A Zoom start_url expires two hours after Zoom generates it; hand out stored ones only
/// while at least 30 minutes remain.
pub const START_URL_LIFETIME: Duration = Duration::hours(2);
pub const START_URL_MAX_AGE: Duration = Duration::minutes(90);
/// Tokens are renewed this long before Zoom says they expire.
const TOKEN_MARGIN: Duration = Duration::seconds(60);
/// Upper bound on list pages read while reconciling (300 meetings a page).
const MAX_LIST_PAGES: usize = 10;

/// `ZOOM_SECRET_ID`: `{"accountId","clientId","clientSecret","userId"?}`.
pub struct ZoomCredentials {
    account_id: String,
    client_id: String,
    client_secret: String,
    user_id: String,
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
            user_id: secret_opt_str(json, "userId").unwrap_or_else(|| "me".to_owned()),
        })
    }
}

#[derive(Clone)]
struct Token {
    value: String,
    renew_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ZoomConfig {
    pub api_base_url: String,
    pub oauth_token_url: String,
}

pub struct ZoomProvider {
    api: ProviderHttp,
    config: ZoomConfig,
    credentials: SecretCache<ZoomCredentials>,
    clock: Arc<dyn Clock>,
    token: tokio::sync::Mutex<Option<Token>>,
    policy: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
}

/// Zoom's meeting ids are int64 and arrive as numbers or strings.
fn meeting_id_of(v: &Value) -> Option<String> {
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

impl ZoomProvider {
    pub fn new(
        http: reqwest::Client,
        config: ZoomConfig,
        credentials: SecretCache<ZoomCredentials>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
        sleeper: Arc<dyn Sleeper>,
    ) -> Self {
        Self {
            api: ProviderHttp {
                client: http,
                provider: "zoom",
            },
            config,
            credentials,
            clock,
            token: tokio::sync::Mutex::new(None),
            policy,
            sleeper,
        }
    }

    fn api_url(&self, segments: &[&str]) -> Result<reqwest::Url, ProviderError> {
        let mut url = reqwest::Url::parse(&self.config.api_base_url).map_err(|_| {
            ProviderError::Rejected {
                code: None,
                cause: "ZOOM_API_BASE_URL is not a URL".into(),
            }
        })?;
        url.path_segments_mut()
            .map_err(|_| ProviderError::Rejected {
                code: None,
                cause: "ZOOM_API_BASE_URL cannot take a path".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A valid access token, fetching one if the cached one is missing or near expiry.
    /// `stale` names a token the API just refused, which must not be handed out again.
    async fn access_token(&self, stale: Option<&str>) -> Result<String, ProviderError> {
        let mut cached = self.token.lock().await;
        let now = self.clock.now();
        if let Some(t) = cached.as_ref()
            && now < t.renew_at
            && stale != Some(t.value.as_str())
        {
            return Ok(t.value.clone());
        }
        let credentials = self.credentials.get().await.map_err(secret_unreadable)?;
        let token = match self.fetch_token(&credentials).await {
            // Wrong credentials may mean they were rotated: read the secret once more.
            Err(ProviderError::Rejected { .. }) => {
                let fresh = self
                    .credentials
                    .reread_after_auth_failure(Duration::zero())
                    .await
                    .map_err(secret_unreadable)?
                    .unwrap_or(credentials);
                self.fetch_token(&fresh).await
            }
            other => other,
        }?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    async fn fetch_token(&self, c: &ZoomCredentials) -> Result<Token, ProviderError> {
        let started = Instant::now();
        let response = self
            .api
            .client
            .post(&self.config.oauth_token_url)
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .query(&[
                ("grant_type", "account_credentials"),
                ("account_id", c.account_id.as_str()),
            ])
            .send()
            .await
            .map_err(|e| transport_error("zoom", &e, false))?;
        let status = response.status();
        super::http::record_call("zoom", "oauth_token", status, started);
        if status.is_server_error() {
            return Err(ProviderError::Unavailable {
                retry_after: retry_after_seconds(response.headers(), self.clock.now()),
                ambiguous: false,
                in_flight: false,
                cause: format!("zoom oauth answered {status}"),
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ProviderError::RateLimited {
                retry_after: retry_after_seconds(response.headers(), self.clock.now()),
                daily: false,
            });
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| transport_error("zoom", &e, false))?;
        if !status.is_success() {
            let oauth_error = body.get("error").and_then(|v| v.as_str()).unwrap_or("");
            tracing::error!(
                provider = "zoom",
                status = status.as_u16(),
                oauth_error,
                "Zoom refused the OAuth credentials: check accountId, clientId and clientSecret in the ZOOM_SECRET_ID secret and that the Server-to-Server app is activated"
            );
            return Err(ProviderError::Rejected {
                code: None,
                cause: format!("zoom oauth answered {status}"),
            });
        }
        let value = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Rejected {
                code: None,
                cause: "zoom oauth answer lacks access_token".into(),
            })?;
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        Ok(Token {
            value: value.to_owned(),
            renew_at: self.clock.now() + Duration::seconds(expires_in) - TOKEN_MARGIN,
        })
    }

    /// One HTTP exchange within `timeout`; an expired or revoked token (401 / code 124) is
    /// renewed once. A lost answer to a POST leaves us not knowing whether Zoom acted.
    async fn exchange(
        &self,
        op: &'static str,
        method: &Method,
        url: &reqwest::Url,
        body: Option<&Value>,
        timeout: std::time::Duration,
    ) -> Result<Answer, ProviderError> {
        let ambiguous = *method == Method::POST;
        let mut token = self.access_token(None).await?;
        let mut renewed = false;
        loop {
            let a = self
                .api
                .send(op, method, url, &format!("Bearer {token}"), body, timeout)
                .await?;
            let code = a.body.get("code").and_then(Value::as_i64);
            if (a.status == StatusCode::UNAUTHORIZED || code == Some(124)) && !renewed {
                renewed = true;
                token = self.access_token(Some(&token)).await?;
                continue;
            }
            return self.classify(a, ambiguous);
        }
    }

    /// An idempotent call under the retry policy.
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
                async move { retry_verdict(self.exchange(op, method, url, body, timeout).await) }
            })
            .await
    }

    fn classify(&self, a: Answer, ambiguous: bool) -> Result<Answer, ProviderError> {
        let code = a.body.get("code").and_then(Value::as_i64);
        match a.status {
            s if s.is_success() => Ok(a),
            StatusCode::TOO_MANY_REQUESTS => Err(ProviderError::RateLimited {
                retry_after: retry_after_seconds(&a.headers, self.clock.now()),
                daily: a
                    .headers
                    .get("x-ratelimit-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("daily-limit")),
            }),
            s if s.is_server_error() => Err(ProviderError::Unavailable {
                retry_after: retry_after_seconds(&a.headers, self.clock.now()),
                ambiguous,
                in_flight: false,
                cause: format!("zoom answered {s}"),
            }),
            StatusCode::NOT_FOUND => Err(ProviderError::NotFound),
            _ if code == Some(3001) => Err(ProviderError::NotFound),
            _ if code == Some(1001) => {
                tracing::error!(
                    provider = "zoom",
                    "Zoom does not know the user meetings are created for: check userId in the ZOOM_SECRET_ID secret (an id or email of a licensed user of the account)"
                );
                Err(ProviderError::Rejected {
                    code,
                    cause: "zoom user does not exist (1001)".into(),
                })
            }
            // Zoom also reports the daily create/update cap as code 300 with this message.
            _ if code == Some(300)
                && a.body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("daily")) =>
            {
                Err(ProviderError::RateLimited {
                    retry_after: retry_after_seconds(&a.headers, self.clock.now()),
                    daily: true,
                })
            }
            s => Err(ProviderError::Rejected {
                code,
                cause: format!("zoom answered {s} code {}", code.unwrap_or_default()),
            }),
        }
    }

    fn meeting_from(&self, body: &Value) -> Result<ProviderMeeting, ProviderError> {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let malformed = |what: &str| ProviderError::Rejected {
            code: None,
            cause: format!("zoom meeting lacks {what}"),
        };
        Ok(ProviderMeeting {
            provider_meeting_id: body
                .get("id")
                .and_then(meeting_id_of)
                .ok_or_else(|| malformed("id"))?,
            uuid: text("uuid"),
            links: ProviderLinks {
                join_url: text("join_url").ok_or_else(|| malformed("join_url"))?,
                host_url: text("start_url").ok_or_else(|| malformed("start_url"))?,
                host_url_fetched_at: Some(self.clock.now()),
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
        let url = self.api_url(&["meetings", &meeting_path_segment(provider_meeting_id)])?;
        let a = self
            .call("get_meeting", Method::GET, url, None, deadline)
            .await?;
        self.meeting_from(&a.body)
    }

    /// One page (300) of the user's scheduled meetings, and the next page's token ("" at
    /// the end).
    async fn scheduled_page(
        &self,
        user: &str,
        page_token: &str,
        deadline: Instant,
    ) -> Result<(Vec<Value>, String), ProviderError> {
        let mut url = self.api_url(&["users", user, "meetings"])?;
        url.query_pairs_mut()
            .append_pair("type", "scheduled")
            .append_pair("page_size", "300");
        if !page_token.is_empty() {
            url.query_pairs_mut()
                .append_pair("next_page_token", page_token);
        }
        let a = self
            .call("list_meetings", Method::GET, url, None, deadline)
            .await?;
        let next = a.body["next_page_token"].as_str().unwrap_or("").to_owned();
        let meetings = match a.body {
            Value::Object(mut o) => match o.remove("meetings") {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        Ok((meetings, next))
    }

    /// One pass over the user's scheduled meetings looking for our marker.
    async fn search_marker(
        &self,
        meeting_id: &MeetingId,
        deadline: Instant,
    ) -> Result<Option<ProviderMeeting>, ProviderError> {
        let user = self.user_id().await?;
        let wanted = marker(meeting_id);
        let mut page_token = String::new();
        for _ in 0..MAX_LIST_PAGES {
            let (meetings, next) = self.scheduled_page(&user, &page_token, deadline).await?;
            let found = meetings
                .iter()
                .find(|m| m["agenda"].as_str().is_some_and(|s| s.trim() == wanted))
                .and_then(|m| meeting_id_of(&m["id"]));
            if let Some(id) = found {
                // The list lacks start_url: read the meeting itself.
                return self.get_meeting(&id, deadline).await.map(Some);
            }
            if next.is_empty() {
                return Ok(None);
            }
            page_token = next;
        }
        // Not found in what we read is not "not created": stay ambiguous, never duplicate.
        Err(ProviderError::Unavailable {
            retry_after: None,
            ambiguous: true,
            in_flight: false,
            cause: format!("marker search stopped after {MAX_LIST_PAGES} pages"),
        })
    }

    async fn user_id(&self) -> Result<String, ProviderError> {
        let c = self.credentials.get().await.map_err(secret_unreadable)?;
        Ok(c.user_id.clone())
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
        let user = self.user_id().await?;
        let url = self.api_url(&["users", &user, "meetings"])?;
        let conversation = spec.kind == crate::domain::SubjectKind::Conversation;
        let body = json!({
            "topic": spec.topic,
            "type": 2,
            "start_time": spec.start_time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "duration": spec.duration_minutes,
            "timezone": spec.timezone,
            "password": spec.passcode,
            "agenda": marker(&spec.meeting_id),
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
        });
        create_reconciling(
            &self.policy,
            self.sleeper.as_ref(),
            deadline,
            || self.search_marker(&spec.meeting_id, deadline),
            |timeout| {
                let (url, body) = (&url, &body);
                async move {
                    self.exchange("create_meeting", &Method::POST, url, Some(body), timeout)
                        .await
                        .and_then(|a| self.meeting_from(&a.body))
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
        Ok((
            m.links.host_url,
            m.links
                .host_url_fetched_at
                .unwrap_or_else(|| self.clock.now()),
        ))
    }

    /// PATCH answers 204 with no body.
    async fn update(
        &self,
        meeting: &Meeting,
        schedule: &Schedule,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        let url = self.api_url(&[
            "meetings",
            &meeting_path_segment(&meeting.provider_meeting_id),
        ])?;
        let body = json!({
            "topic": schedule.topic,
            "start_time": schedule.start_time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "duration": schedule.duration_minutes,
            "timezone": schedule.timezone,
        });
        self.call("update_meeting", Method::PATCH, url, Some(&body), deadline)
            .await
            .map(drop)
    }

    /// 404 / 3001: already gone. 3002: in progress (the caller decides whether to end it).
    async fn delete(
        &self,
        provider_meeting_id: &str,
        deadline: Instant,
    ) -> Result<Deletion, ProviderError> {
        let url = self.api_url(&["meetings", &meeting_path_segment(provider_meeting_id)])?;
        match self
            .call("delete_meeting", Method::DELETE, url, None, deadline)
            .await
        {
            Ok(_) => Ok(Deletion::Deleted),
            Err(ProviderError::NotFound) => Ok(Deletion::AlreadyGone),
            Err(ProviderError::Rejected {
                code: Some(3002), ..
            }) => Ok(Deletion::InProgress),
            Err(e) => Err(e),
        }
    }

    async fn marked_meetings(
        &self,
        deadline: Instant,
    ) -> Result<Vec<(String, String, Option<DateTime<Utc>>)>, ProviderError> {
        let user = self.user_id().await?;
        let mut found = Vec::new();
        let mut page_token = String::new();
        loop {
            let (meetings, next) = self.scheduled_page(&user, &page_token, deadline).await?;
            for m in &meetings {
                let agenda = m["agenda"].as_str().unwrap_or("").trim();
                if let (Some(ours), Some(id)) =
                    (agenda.strip_prefix(MARKER_PREFIX), meeting_id_of(&m["id"]))
                {
                    let created = m["created_at"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc));
                    found.push((id, ours.to_owned(), created));
                }
            }
            if next.is_empty() {
                return Ok(found);
            }
            page_token = next;
        }
    }

    async fn end(&self, meeting: &Meeting, deadline: Instant) -> Result<(), ProviderError> {
        let url = self.api_url(&[
            "meetings",
            &meeting_path_segment(&meeting.provider_meeting_id),
            "status",
        ])?;
        let body = json!({ "action": "end" });
        self.call("end_meeting", Method::PUT, url, Some(&body), deadline)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
