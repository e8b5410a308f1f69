//! The one retry policy of every provider call (guarantee 4): a timeout per attempt, an
//! overall deadline, exponential backoff with full jitter on transient failures, and
//! `Retry-After` honoured when it fits the deadline.

use super::ProviderError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Waiting, as a port: tests record the waits instead of sleeping through them.
#[async_trait]
pub trait Sleeper: Send + Sync {
    async fn sleep(&self, duration: Duration);
}

/// Real waiting.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// Backoff before attempt n+1 is uniform in [0, min(max_delay, base_delay * 2^n)).
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
        }
    }
}

/// What one attempt concluded.
pub enum Verdict<T> {
    Done(Result<T, ProviderError>),
    /// Worth another attempt; `after` is the provider's own `Retry-After`.
    Retry {
        error: ProviderError,
        after: Option<Duration>,
    },
}

/// Slack of the backstop timeout over an attempt's own.
const BACKSTOP: Duration = Duration::from_millis(200);
/// Attempts shorter than this are not started: they could only time out.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

impl RetryPolicy {
    /// Runs `attempt(n, timeout)` until it is done, attempts run out or `deadline` would be
    /// passed. An attempt that outlives its timeout counts as an ambiguous failure.
    pub async fn run<T, F, Fut>(
        &self,
        deadline: Instant,
        sleeper: &dyn Sleeper,
        mut attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut(u32, Duration) -> Fut,
        Fut: Future<Output = Verdict<T>>,
    {
        let mut last: Option<ProviderError> = None;
        for n in 1..=self.max_attempts.max(1) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining < MIN_ATTEMPT {
                break;
            }
            let timeout = self.attempt_timeout.min(remaining);
            // The attempt's own timeout (its HTTP client's) should report first; this one is
            // the backstop.
            let verdict = match tokio::time::timeout(timeout + BACKSTOP, attempt(n, timeout)).await
            {
                Ok(v) => v,
                Err(_) => Verdict::Retry {
                    error: ProviderError::Unavailable {
                        retry_after: None,
                        ambiguous: true,
                        in_flight: true,
                        cause: "provider call timed out".into(),
                    },
                    after: None,
                },
            };
            let (error, after) = match verdict {
                Verdict::Done(result) => return result,
                Verdict::Retry { error, after } => (error, after),
            };
            if n == self.max_attempts {
                return Err(error);
            }
            let wait = after.unwrap_or_else(|| self.backoff(n));
            if Instant::now() + wait + MIN_ATTEMPT > deadline {
                // The provider's wait does not fit what is left: give its answer now.
                return Err(error);
            }
            sleeper.sleep(wait).await;
            last = Some(error);
        }
        Err(last.unwrap_or_else(|| ProviderError::Unavailable {
            retry_after: None,
            ambiguous: false,
            in_flight: false,
            cause: "no time left for a provider call".into(),
        }))
    }

    /// Full jitter: uniform in [0, min(max, base * 2^(n-1))).
    fn backoff(&self, n: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1 << (n - 1).min(16))
            .min(self.max_delay);
        let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(rand::random_range(0..millis))
    }
}

/// Whether a failed attempt is worth another: transient failures and per-second rate limits,
/// never a daily cap (it fails fast) or a refusal.
pub fn retry_verdict<T>(result: Result<T, ProviderError>) -> Verdict<T> {
    let error = match result {
        Err(error) => error,
        ok => return Verdict::Done(ok),
    };
    let after = match &error {
        ProviderError::Unavailable { retry_after, .. }
        | ProviderError::RateLimited {
            retry_after,
            daily: false,
        } => retry_after.map(Duration::from_secs),
        _ => return Verdict::Done(Err(error)),
    };
    Verdict::Retry { error, after }
}

/// A create that is not idempotent at the provider, under `policy`: after an ambiguous
/// failure the next attempt first looks for the meeting by its marker (`search`), so a
/// retry never makes a second one. A request that may still land later (timed out in
/// flight) ends the attempts: the next claimant, told to reconcile, looks for it then.
pub async fn create_reconciling<T, S, SFut, C, CFut>(
    policy: &RetryPolicy,
    sleeper: &dyn Sleeper,
    deadline: Instant,
    search: S,
    create: C,
) -> Result<T, ProviderError>
where
    S: Fn() -> SFut,
    SFut: Future<Output = Result<Option<T>, ProviderError>>,
    C: Fn(Duration) -> CFut,
    CFut: Future<Output = Result<T, ProviderError>>,
{
    let reconcile = AtomicBool::new(false);
    policy
        .run(deadline, sleeper, |_, timeout| {
            let (search, create, reconcile) = (&search, &create, &reconcile);
            async move {
                if reconcile.load(Ordering::Relaxed) {
                    match search().await {
                        Ok(Some(found)) => return Verdict::Done(Ok(found)),
                        Ok(None) => {}
                        Err(e) => return retry_verdict(Err(e)),
                    }
                }
                let result = create(timeout).await;
                match &result {
                    Err(ProviderError::Unavailable {
                        in_flight: true, ..
                    }) => return Verdict::Done(result),
                    Err(e) if e.is_ambiguous() => reconcile.store(true, Ordering::Relaxed),
                    _ => {}
                }
                retry_verdict(result)
            }
        })
        .await
}

/// `Retry-After` in seconds, as an HTTP date or as an ISO (RFC 3339) date.
pub fn retry_after_seconds(headers: &HeaderMap, now: DateTime<Utc>) -> Option<u64> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(s);
    }
    let at = DateTime::parse_from_rfc2822(v)
        .or_else(|_| DateTime::parse_from_rfc3339(v))
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).num_seconds().max(0) as u64)
}

/// A transport failure of a call to `provider`. A refused connection never reached it; a
/// timeout or a cut answer to a request that changes something (`maybe_sent`) may have.
pub fn transport_error(provider: &str, e: &reqwest::Error, maybe_sent: bool) -> ProviderError {
    let ambiguous = maybe_sent && !e.is_connect();
    ProviderError::Unavailable {
        retry_after: None,
        ambiguous,
        // A timed-out request may still be processed after we gave up on it.
        in_flight: maybe_sent && e.is_timeout(),
        cause: format!(
            "{provider} unreachable ({})",
            if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};
    use std::sync::Mutex;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after_seconds(&h, now), Some(7));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sat, 21 Nov 2026 10:00:42 GMT"),
        );
        assert_eq!(retry_after_seconds(&h, now), Some(42));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("2026-11-21T10:01:00Z"),
        );
        assert_eq!(retry_after_seconds(&h, now), Some(60));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after_seconds(&h, now), None);
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Duration>>);

    #[async_trait]
    impl Sleeper for Recorder {
        async fn sleep(&self, d: Duration) {
            self.0.lock().unwrap().push(d);
        }
    }

    fn unavailable() -> ProviderError {
        ProviderError::Unavailable {
            retry_after: None,
            ambiguous: false,
            in_flight: false,
            cause: "5xx".into(),
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_with_bounded_jittered_backoff() {
        let policy = RetryPolicy::default();
        let sleeper = Recorder::default();
        let deadline = Instant::now() + Duration::from_secs(10);
        let result = policy
            .run(deadline, &sleeper, |n, _| async move {
                if n < 3 {
                    Verdict::Retry {
                        error: unavailable(),
                        after: None,
                    }
                } else {
                    Verdict::Done(Ok(n))
                }
            })
            .await;
        assert_eq!(result.unwrap(), 3);
        let waits = sleeper.0.lock().unwrap().clone();
        assert_eq!(waits.len(), 2);
        assert!(waits[0] < Duration::from_millis(200) && waits[1] < Duration::from_millis(400));
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_the_last_error_is_answered() {
        let policy = RetryPolicy::default();
        let sleeper = Recorder::default();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut calls = 0;
        let result: Result<(), _> = policy
            .run(deadline, &sleeper, |_, _| {
                calls += 1;
                async {
                    Verdict::Retry {
                        error: unavailable(),
                        after: None,
                    }
                }
            })
            .await;
        assert!(matches!(result, Err(ProviderError::Unavailable { .. })));
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn retry_after_is_honoured_only_when_it_fits_the_deadline() {
        let policy = RetryPolicy::default();
        let sleeper = Recorder::default();
        let limited = || ProviderError::RateLimited {
            retry_after: Some(2),
            daily: false,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let result = policy
            .run(deadline, &sleeper, |n, _| async move {
                if n == 1 {
                    Verdict::Retry {
                        error: limited(),
                        after: Some(Duration::from_secs(2)),
                    }
                } else {
                    Verdict::Done(Ok(()))
                }
            })
            .await;
        assert!(result.is_ok());
        assert_eq!(*sleeper.0.lock().unwrap(), [Duration::from_secs(2)]);

        let short = Instant::now() + Duration::from_secs(1);
        let result: Result<(), _> = policy
            .run(short, &sleeper, |_, _| async move {
                Verdict::Retry {
                    error: limited(),
                    after: Some(Duration::from_secs(2)),
                }
            })
            .await;
        assert!(matches!(result, Err(ProviderError::RateLimited { .. })));
        assert_eq!(
            sleeper.0.lock().unwrap().len(),
            1,
            "no wait past the deadline"
        );
    }

    #[tokio::test]
    async fn an_attempt_outliving_its_timeout_is_an_ambiguous_failure() {
        let policy = RetryPolicy {
            max_attempts: 1,
            attempt_timeout: Duration::from_millis(60),
            ..Default::default()
        };
        let result: Result<(), _> = policy
            .run(
                Instant::now() + Duration::from_secs(5),
                &Recorder::default(),
                |_, _| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Verdict::Done(Ok(()))
                },
            )
            .await;
        assert!(matches!(
            result,
            Err(ProviderError::Unavailable {
                ambiguous: true,
                in_flight: true,
                ..
            })
        ));
    }
}
