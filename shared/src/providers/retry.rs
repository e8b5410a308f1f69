//! The one retry policy of every provider call (guarantee 4): a timeout per attempt, an
//! overall deadline, exponential backoff with full jitter on transient failures, and
//! `Retry-After` honoured when it fits the deadline.

use super::ProviderError;
use crate::clock::{Clock, Wait, timeout_at};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
        clock: &dyn Clock,
        deadline: Instant,
        mut attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut(u32, Duration) -> Fut,
        Fut: Future<Output = Verdict<T>>,
    {
        let mut last: Option<ProviderError> = None;
        for n in 1..=self.max_attempts.max(1) {
            let remaining = clock.left(deadline);
            if remaining < MIN_ATTEMPT {
                break;
            }
            let timeout = self.attempt_timeout.min(remaining);
            // The attempt's own timeout (its HTTP client's) should report first; this one is
            // the backstop.
            let backstop = clock.instant() + timeout + BACKSTOP;
            let verdict = match timeout_at(clock, backstop, attempt(n, timeout)).await {
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
            if clock.instant() + wait + MIN_ATTEMPT > deadline {
                // The provider's wait does not fit what is left: give its answer now.
                return Err(error);
            }
            clock.sleep(wait, Wait::ProviderRetry).await;
            last = Some(error);
        }
        Err(last.unwrap_or_else(|| ProviderError::unavailable("no time left for a provider call")))
    }

    /// Full jitter: uniform in [0, min(max, base * 2^(n-1))).
    pub fn backoff(&self, n: u32) -> Duration {
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
        ProviderError::TokenStore(_) => None,
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
    clock: &dyn Clock,
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
        .run(clock, deadline, |_, timeout| {
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

/// The longest `Retry-After` taken as it is: a provider's hint beyond a day is a day (and no
/// header can overflow a deadline).
const MAX_RETRY_AFTER: u64 = 86_400;

/// `Retry-After` in seconds, as an HTTP date or as an ISO (RFC 3339) date, at most a day.
pub fn retry_after_seconds(headers: &HeaderMap, now: DateTime<Utc>) -> Option<u64> {
    retry_after(headers, now).map(|s| s.min(MAX_RETRY_AFTER))
}

fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<u64> {
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
    use crate::clock::{ManualClock, manual};
    use reqwest::header::{HeaderValue, RETRY_AFTER};

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
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("18446744073709551615"),
        );
        assert_eq!(
            retry_after_seconds(&h, now),
            Some(86_400),
            "capped, never an overflow"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after_seconds(&h, now), None);
    }

    fn unavailable() -> ProviderError {
        ProviderError::unavailable("5xx")
    }

    fn waits(clock: &ManualClock) -> Vec<Duration> {
        clock.waits_for(Wait::ProviderRetry)
    }

    #[tokio::test]
    async fn guarantee_4_transient_failures_are_retried_with_bounded_jittered_backoff() {
        let policy = RetryPolicy::default();
        let clock = manual();
        let deadline = clock.instant() + Duration::from_secs(10);
        let result = policy
            .run(clock.as_ref(), deadline, |n, _| async move {
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
        let waits = waits(&clock);
        assert_eq!(waits.len(), 2);
        assert!(waits[0] < Duration::from_millis(200) && waits[1] < Duration::from_millis(400));
    }

    #[test]
    fn guarantee_4_backoff_is_full_jitter_between_zero_and_its_cap() {
        // Uniform in [0, cap): over many draws, some come close to the cap, some close to
        // zero, and they average about half of it. A backoff that always waits zero (or
        // always the cap) fails here.
        let policy = RetryPolicy::default();
        for (n, cap) in [
            (1, 200u64),
            (2, 400),
            (3, 800),
            (4, 1600),
            (5, 2000),
            (9, 2000),
        ] {
            let draws: Vec<u64> = (0..2000)
                .map(|_| u64::try_from(policy.backoff(n).as_millis()).unwrap())
                .collect();
            let mean = draws.iter().sum::<u64>() / draws.len() as u64;
            assert!(
                draws.iter().all(|d| *d < cap),
                "attempt {n}: under {cap} ms"
            );
            assert!(
                draws.iter().any(|d| *d >= cap * 9 / 10),
                "attempt {n}: near the cap"
            );
            assert!(
                draws.iter().any(|d| *d <= cap / 10),
                "attempt {n}: near zero"
            );
            assert!(
                (cap * 2 / 5..=cap * 3 / 5).contains(&mean),
                "attempt {n}: mean {mean} of {cap}"
            );
        }
    }

    #[tokio::test]
    async fn guarantee_4_attempts_are_bounded_and_the_last_error_is_answered() {
        let policy = RetryPolicy::default();
        let clock = manual();
        let deadline = clock.instant() + Duration::from_secs(10);
        let mut calls = 0;
        let result: Result<(), _> = policy
            .run(clock.as_ref(), deadline, |_, _| {
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
    async fn guarantee_4_retry_after_is_honoured_only_when_it_fits_the_deadline() {
        let policy = RetryPolicy::default();
        let clock = manual();
        let limited = || ProviderError::RateLimited {
            retry_after: Some(2),
            daily: false,
        };
        let deadline = clock.instant() + Duration::from_secs(10);
        let result = policy
            .run(clock.as_ref(), deadline, |n, _| async move {
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
        assert_eq!(waits(&clock), [Duration::from_secs(2)]);

        let short = clock.instant() + Duration::from_secs(1);
        let result: Result<(), _> = policy
            .run(clock.as_ref(), short, |_, _| async move {
                Verdict::Retry {
                    error: limited(),
                    after: Some(Duration::from_secs(2)),
                }
            })
            .await;
        assert!(matches!(result, Err(ProviderError::RateLimited { .. })));
        assert_eq!(waits(&clock).len(), 1, "no wait past the deadline");
    }

    #[tokio::test]
    async fn guarantee_4_an_attempt_outliving_its_timeout_is_an_ambiguous_failure() {
        let policy = RetryPolicy {
            max_attempts: 1,
            attempt_timeout: Duration::from_millis(60),
            ..Default::default()
        };
        let clock = manual();
        let deadline = clock.instant() + Duration::from_secs(5);
        let run = policy.run(clock.as_ref(), deadline, |_, _| async {
            std::future::pending::<()>().await;
            Verdict::Done(Ok(()))
        });
        tokio::pin!(run);
        // The attempt hangs; time passes, 10 ms a step, until the backstop gives up on it.
        let result: Result<(), _> = loop {
            tokio::select! {
                biased;
                r = &mut run => break r,
                () = tokio::task::yield_now() => clock.advance(chrono::Duration::milliseconds(10)),
            }
        };
        assert!(
            clock.elapsed() >= Duration::from_millis(260),
            "not before its backstop"
        );
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
