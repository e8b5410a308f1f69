//! The skeleton both OAuth REST providers (Zoom, Zoho) run on, so a fix to token handling,
//! retries, 429s or 5xx lands once: the token grant ([`grant`]), one authorised exchange
//! that replaces a refused token at most once ([`OAuthApi::exchange`]), the same under the
//! retry policy ([`OAuthApi::call`]), the classification of answers ([`OAuthApi::classify`]),
//! and the marker search and listing over a provider's pages ([`find_marked`],
//! [`all_marked`]). An adapter supplies a [`Dialect`] (what its answers mean), a
//! [`TokenSource`] (where its tokens come from) and a [`Listing`] (how its lists page).

use super::http::{Answer, ProviderHttp, exchange};
use super::retry::{RetryPolicy, create_reconciling, retry_after_seconds, retry_verdict};
use super::{Marked, ProviderError};
use crate::clock::Clock;
use crate::ids::MeetingId;
use crate::secrets::{FromSecret, SecretCache};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

/// What an OAuth REST provider's answers mean; everything else is shared.
pub trait Dialect: Send + Sync + 'static {
    /// The provider's name in logs and metrics.
    const NAME: &'static str;
    /// What to check when the provider refuses the credentials (logged, never sent).
    const CREDENTIALS_HINT: &'static str;
    /// Seconds to wait after a token grant refused for quota without `Retry-After`.
    const GRANT_QUOTA_WAIT: Option<u64>;
    /// Sends per exchange while the token is refused: the cached one, then (where tokens
    /// are shared between containers) another container's, then a new one.
    const TOKEN_TRIES: usize;

    /// The `Authorization` header for an access token.
    fn authorization(token: &str) -> String;

    /// The provider's own error code in an answer's body.
    fn error_code(body: &Value) -> Option<i64>;

    /// Whether the API refused the access token itself (expired, revoked): renew it.
    fn token_refused(a: &Answer) -> bool;

    /// Whether a 429 is the daily cap (fails fast) rather than a short-term limit.
    fn daily_limit(a: &Answer) -> bool;

    /// Whether a 429 is one host user's own daily cap (the others keep working).
    fn host_daily_limit(_a: &Answer) -> bool {
        false
    }

    /// What a 4xx answer other than 429 means, when the provider's code says more than
    /// "rejected" (not found, a daily cap, …); `None`: rejected (404: not found).
    /// `retry_after`: the answer's `Retry-After`, else the seconds to 00:00 UTC.
    fn refusal(a: &Answer, code: Option<i64>, retry_after: u64) -> Option<ProviderError>;

    /// Whether a token grant's answer says the grant quota is spent.
    fn grant_quota_spent(_status: StatusCode, _body: &Value) -> bool {
        false
    }

    /// Whether an answer of any status is the provider's throttle (Zoho sends one as 200 or
    /// 400): the seconds to wait when it names none. `None`: not a throttle.
    fn throttled(_a: &Answer) -> Option<u64> {
        None
    }
}

/// Where an adapter's access tokens come from (a container cache, or the shared table).
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token to call with, and whether it was granted just now. `stale` is one the API
    /// just refused: it is never handed out again.
    async fn token(
        &self,
        stale: Option<&str>,
        deadline: Instant,
    ) -> Result<(String, bool), ProviderError>;
}

/// A token a provider granted, and when it expires.
pub struct IssuedToken {
    pub value: String,
    pub expires_at: DateTime<Utc>,
}

/// One token grant, `request` ready to send: transport failures, 5xx and 429 are
/// classified as for API calls; a refusal is logged with the dialect's hint.
pub async fn grant<D: Dialect>(
    request: reqwest::RequestBuilder,
    clock: &dyn Clock,
) -> Result<IssuedToken, ProviderError> {
    let a = exchange(D::NAME, "oauth_token", request, false).await?;
    let retry_after = retry_after_seconds(&a.headers, clock.now());
    if a.status.is_server_error() {
        return Err(ProviderError::Unavailable {
            retry_after,
            ambiguous: false,
            in_flight: false,
            cause: format!("{} token grant answered {}", D::NAME, a.status),
        });
    }
    if a.status != StatusCode::TOO_MANY_REQUESTS && a.body.is_null() {
        // Not the provider's JSON (a proxy's page, a cut answer): a transport matter.
        return Err(ProviderError::unavailable(format!(
            "{} token grant answered {} without JSON",
            D::NAME,
            a.status
        )));
    }
    if a.status == StatusCode::TOO_MANY_REQUESTS || D::grant_quota_spent(a.status, &a.body) {
        tracing::warn!(
            provider = D::NAME,
            "the provider refused a new access token: too many requests"
        );
        return Err(ProviderError::RateLimited {
            retry_after: retry_after.or(D::GRANT_QUOTA_WAIT),
            daily: false,
        });
    }
    let text = |k: &str| a.body.get(k).and_then(Value::as_str);
    let Some(value) = text("access_token").filter(|_| a.status.is_success()) else {
        let oauth_error = text("error").unwrap_or_default();
        let status = a.status.as_u16();
        tracing::error!(
            provider = D::NAME,
            status,
            oauth_error,
            "{}",
            D::CREDENTIALS_HINT
        );
        return Err(ProviderError::rejected(format!(
            "{} refused the credentials ({status})",
            D::NAME
        )));
    };
    let expires_in = a.body.get("expires_in").and_then(Value::as_i64);
    Ok(IssuedToken {
        value: value.to_owned(),
        expires_at: clock.now() + Duration::seconds(expires_in.unwrap_or(3600)),
    })
}

/// A grant with the cached credentials; refused, the secret is read once more (it may
/// have been rotated) and the grant tried again with what it holds now (guarantee 5).
pub async fn grant_rereading<C, F, Fut>(
    secret: &SecretCache<C>,
    cached: Arc<C>,
    grant: F,
) -> Result<IssuedToken, ProviderError>
where
    C: FromSecret,
    F: Fn(Arc<C>) -> Fut,
    Fut: Future<Output = Result<IssuedToken, ProviderError>>,
{
    match grant(cached).await {
        // Read again only when the copy is old enough: a refused grant within 30 s of the
        // read stands (the caller-token path's floor), so refusals never flood Secrets Manager.
        Err(refused @ ProviderError::Rejected { .. }) => {
            match secret
                .reread_after_auth_failure(crate::secrets::REREAD_MIN_AGE)
                .await?
            {
                Some(fresh) => grant(fresh).await,
                None => Err(refused),
            }
        }
        other => other,
    }
}

/// An OAuth REST API's calls: authorised, classified, retried.
pub struct OAuthApi<D> {
    pub http: ProviderHttp,
    pub clock: Arc<dyn Clock>,
    pub policy: RetryPolicy,
    dialect: PhantomData<D>,
}

/// One request of an API: what it is for (`op`, in logs and metrics) and what it sends.
pub struct Request<'a> {
    pub op: &'static str,
    pub method: Method,
    pub url: reqwest::Url,
    pub body: Option<&'a Value>,
}

impl<'a> Request<'a> {
    /// A request without a body.
    pub fn new(op: &'static str, method: Method, url: reqwest::Url) -> Self {
        Self {
            op,
            method,
            url,
            body: None,
        }
    }

    /// A request carrying `body` as JSON.
    pub fn with(op: &'static str, method: Method, url: reqwest::Url, body: &'a Value) -> Self {
        Self {
            op,
            method,
            url,
            body: Some(body),
        }
    }
}

/// A delete's answer: gone now, or gone before (404 and the provider's "not found").
pub fn deletion(answer: Result<Answer, ProviderError>) -> Result<super::Deletion, ProviderError> {
    match answer {
        Ok(_) => Ok(super::Deletion::Deleted),
        Err(ProviderError::NotFound) => Ok(super::Deletion::AlreadyGone),
        Err(e) => Err(e),
    }
}

impl<D: Dialect> OAuthApi<D> {
    pub fn new(client: reqwest::Client, clock: Arc<dyn Clock>, policy: RetryPolicy) -> Self {
        Self {
            http: ProviderHttp {
                client,
                provider: D::NAME,
            },
            clock,
            policy,
            dialect: PhantomData,
        }
    }

    /// One exchange within `timeout`. A refused token is replaced by the next one
    /// `tokens` gives (another container's, else a new one), until a replacement granted
    /// just now is refused too: a token is renewed once per exchange at most.
    pub async fn exchange(
        &self,
        tokens: &dyn TokenSource,
        req: &Request<'_>,
        timeout: std::time::Duration,
        deadline: Instant,
    ) -> Result<Answer, ProviderError> {
        let (mut token, _) = tokens.token(None, deadline).await?;
        let mut granted = false;
        for attempt in 1..=D::TOKEN_TRIES {
            let auth = D::authorization(&token);
            let a = self
                .http
                .send(req.op, &req.method, &req.url, &auth, req.body, timeout)
                .await?;
            if !D::token_refused(&a) || granted || attempt == D::TOKEN_TRIES {
                return self.classify(a, req.method == Method::POST);
            }
            (token, granted) = tokens.token(Some(&token), deadline).await?;
        }
        Err(ProviderError::rejected(format!(
            "{} refused every access token",
            D::NAME
        )))
    }

    /// An idempotent request under the retry policy.
    pub async fn call(
        &self,
        tokens: &dyn TokenSource,
        req: Request<'_>,
        deadline: Instant,
    ) -> Result<Answer, ProviderError> {
        self.policy
            .run(self.clock.as_ref(), deadline, |_, timeout| {
                let req = &req;
                async move { retry_verdict(self.exchange(tokens, req, timeout, deadline).await) }
            })
            .await
    }

    /// A create (a POST the provider does not deduplicate) under the retry policy: after an
    /// ambiguous failure, `search` looks for what the last attempt may have made before
    /// another is sent. `parse` reads the created meeting from the answer.
    pub async fn create<T, S, SFut>(
        &self,
        tokens: &dyn TokenSource,
        req: Request<'_>,
        deadline: Instant,
        search: S,
        parse: impl Fn(&Value) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError>
    where
        S: Fn() -> SFut,
        SFut: Future<Output = Result<Option<T>, ProviderError>>,
    {
        let (req, parse) = (&req, &parse);
        create_reconciling(
            &self.policy,
            self.clock.as_ref(),
            deadline,
            search,
            |timeout| async move {
                self.exchange(tokens, req, timeout, deadline)
                    .await
                    .and_then(|a| parse(&a.body))
            },
        )
        .await
    }

    /// 2xx is the answer; 429 a rate limit (the daily cap fails fast); 5xx unavailable
    /// (`ambiguous` for a POST: it may have acted); 404 not found; else the dialect's
    /// reading of its code, or rejected.
    pub fn classify(&self, a: Answer, ambiguous: bool) -> Result<Answer, ProviderError> {
        let code = D::error_code(&a.body);
        let retry_after = || retry_after_seconds(&a.headers, self.clock.now());
        if let Some(wait) = D::throttled(&a) {
            return Err(ProviderError::RateLimited {
                retry_after: retry_after().or(Some(wait)),
                daily: false,
            });
        }
        match a.status {
            s if s.is_success() => Ok(a),
            StatusCode::TOO_MANY_REQUESTS if D::host_daily_limit(&a) => {
                Err(ProviderError::HostDailyLimit {
                    retry_after: retry_after().unwrap_or_else(|| until_midnight(self.clock.now())),
                })
            }
            // Without `Retry-After`, the limit's own window: a retry inside the same second
            // meets the same per-second limit.
            StatusCode::TOO_MANY_REQUESTS => Err(ProviderError::RateLimited {
                retry_after: retry_after().or(Some(RATE_LIMIT_WINDOW_SECONDS)),
                daily: D::daily_limit(&a),
            }),
            s if s.is_server_error() => Err(ProviderError::Unavailable {
                retry_after: retry_after(),
                ambiguous,
                in_flight: false,
                cause: format!("{} answered {s}", D::NAME),
            }),
            // The provider's own code first: Zoom answers "user does not exist" (1001) with
            // a 404 too, and that is no missing meeting.
            s => Err(
                match D::refusal(
                    &a,
                    code,
                    retry_after().unwrap_or_else(|| until_midnight(self.clock.now())),
                ) {
                    Some(e) => e,
                    None if s == StatusCode::NOT_FOUND => ProviderError::NotFound,
                    None => ProviderError::Rejected {
                        code,
                        cause: format!(
                            "{} answered {s} code {}",
                            D::NAME,
                            code.unwrap_or_default()
                        ),
                    },
                },
            ),
        }
    }
}

/// The wait after a 429 that names none: Zoom's and Zoho's short-term limits count requests
/// per second.
pub const RATE_LIMIT_WINDOW_SECONDS: u64 = 1;

/// Seconds until the provider's day ends (00:00 UTC): how long a daily cap lasts.
pub fn until_midnight(now: chrono::DateTime<chrono::Utc>) -> u64 {
    let end = crate::domain::org::next_utc_midnight(now);
    crate::domain::org::seconds_until(end, now)
}

/// Which of a provider's lists a [`Listing`] pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Where a meeting an earlier attempt created may be (marker search).
    Search,
    /// Where orphans hold rooms open (the cleanup).
    Orphans,
}

/// How a provider's meeting lists page.
#[async_trait]
pub trait Listing: Send + Sync {
    /// One page after `cursor` (`None`: the first), and the next page's cursor (`None`: the end).
    /// `user`: whose meetings, where lists are per user (Zoom); `None` the account default.
    async fn page(
        &self,
        scope: Scope,
        user: Option<&str>,
        cursor: Option<String>,
        deadline: Instant,
    ) -> Result<(Vec<Value>, Option<String>), ProviderError>;

    /// The list item as a marked meeting, if it carries our marker.
    fn marked(&self, item: &Value) -> Option<Marked>;
}

/// The provider meeting carrying `meeting_id`'s marker, reading at most `max_pages`. Not
/// found within them is not "not created": that stays ambiguous, so nobody duplicates it.
pub async fn find_marked(
    list: &dyn Listing,
    meeting_id: &MeetingId,
    user: Option<&str>,
    max_pages: usize,
    deadline: Instant,
) -> Result<Option<String>, ProviderError> {
    let mut cursor = None;
    for _ in 0..max_pages {
        let (items, next) = list.page(Scope::Search, user, cursor, deadline).await?;
        let found = items
            .iter()
            .filter_map(|i| list.marked(i))
            .find(|m| m.meeting_id == meeting_id.as_str());
        if let Some(m) = found {
            return Ok(Some(m.provider_meeting_id));
        }
        let Some(next) = next else { return Ok(None) };
        cursor = Some(next);
    }
    Err(ProviderError::Unavailable {
        retry_after: None,
        ambiguous: true,
        in_flight: false,
        cause: format!("marker search stopped after {max_pages} pages"),
    })
}

/// Every marked meeting in the orphan scope.
pub async fn all_marked(
    list: &dyn Listing,
    user: Option<&str>,
    deadline: Instant,
) -> Result<Vec<Marked>, ProviderError> {
    let (mut found, mut cursor) = (Vec::new(), None);
    loop {
        let (items, next) = list.page(Scope::Orphans, user, cursor, deadline).await?;
        found.extend(items.iter().filter_map(|i| list.marked(i)));
        let Some(next) = next else { return Ok(found) };
        cursor = Some(next);
    }
}

/// The deployment and meeting id a marker names, if `text` is a telemeet marker. Meeting
/// ids and deployment ids hold no `:`; a marker without a deployment is an old one.
pub fn parse_marker(text: Option<&str>) -> Option<(Option<String>, String)> {
    let rest = text?.trim().strip_prefix(super::MARKER_PREFIX)?;
    Some(match rest.split_once(':') {
        Some((deployment, id)) => (Some(deployment.to_owned()), id.to_owned()),
        None => (None, rest.to_owned()),
    })
}

/// An answer lacking something we need: the provider rejected our request, in effect.
pub fn malformed<D: Dialect>(what: &str) -> ProviderError {
    ProviderError::rejected(format!("{} answer lacks {what}", D::NAME))
}

/// The list in `body[field]` (empty when absent).
pub fn list_of(body: Value, field: &str) -> Vec<Value> {
    match body {
        Value::Object(mut o) => match o.remove(field) {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
