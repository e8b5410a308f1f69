//! Spacing provider calls under a rate, per provider account: each Zoom account (the
//! deployment's, or an org's own) has its own rate limit, so accounts are paced apart.

use crate::clock::{Clock, Wait};
use crate::domain::{Account, Meeting, ProviderKind};
use crate::ids::OrgId;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A provider account: whose rate limit a call counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey {
    pub provider: ProviderKind,
    /// The org whose own account it is; `None`: the deployment's.
    pub org: Option<OrgId>,
}

impl AccountKey {
    /// The account `m` was made in.
    pub fn of(m: &Meeting) -> Self {
        Self {
            provider: m.provider,
            org: (m.account == Account::Org).then(|| m.org.clone()),
        }
    }

    /// A name for the account that says nothing about whose it is (an SQS message group
    /// id is visible to anyone who can read the queue's metrics and consoles).
    pub fn digest(&self) -> String {
        let org = self.org.as_ref().map_or("", |o| o.as_str());
        let named = ["telemeet-cleanup", self.provider.as_str(), org].join("\n");
        let digest = Sha256::digest(named);
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

/// One [`Pacer`] per provider account, made on first use.
pub struct Pacers {
    rate: u32,
    by_account: Mutex<HashMap<AccountKey, Arc<Pacer>>>,
}

impl Pacers {
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            by_account: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for the next slot of `account`'s rate.
    pub async fn wait(&self, account: &AccountKey, clock: &dyn Clock) {
        let pacer = {
            let mut all = self.by_account.lock().unwrap_or_else(|e| e.into_inner());
            all.entry(account.clone())
                .or_insert_with(|| Arc::new(Pacer::new(self.rate)))
                .clone()
        };
        pacer.wait(clock).await;
    }
}

/// Spaces calls so that there are never more than `rate` a second: they are sent at 90% of
/// it, leaving headroom for network jitter bunching them on the provider's side.
pub struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(rate: u32) -> Self {
        Self {
            interval: Duration::from_secs(10) / (rate.max(1) * 9),
            next: tokio::sync::Mutex::new(None),
        }
    }

    /// Waits for this call's slot.
    pub async fn wait(&self, clock: &dyn Clock) {
        let at = {
            let mut next = self.next.lock().await;
            let at = next.map_or(clock.instant(), |n| n.max(clock.instant()));
            *next = Some(at + self.interval);
            at
        };
        clock.sleep_until(at, Wait::Pace).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::manual;

    /// The most calls in any one second, of these send times.
    fn peak(sends: &[Duration]) -> usize {
        sends
            .iter()
            .map(|t| {
                sends
                    .iter()
                    .filter(|u| **u >= *t && **u < *t + Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn guarantee_8_calls_are_spaced_under_the_rate_even_when_concurrent() {
        for rate in [1, 10, 50] {
            let clock = manual();
            let pacer = std::sync::Arc::new(Pacer::new(rate));
            let calls: Vec<_> = (0..3 * rate)
                .map(|_| {
                    let (clock, pacer) = (clock.clone(), pacer.clone());
                    tokio::spawn(async move { pacer.wait(clock.as_ref()).await })
                })
                .collect();
            for c in calls {
                c.await.expect("call");
            }
            let sends: Vec<Duration> = clock
                .waits()
                .iter()
                .filter(|w| w.why == Wait::Pace)
                .map(|w| w.until)
                .collect();
            assert_eq!(sends.len(), 3 * rate as usize);
            assert!(
                peak(&sends) <= rate as usize,
                "rate {rate}: {} in a second",
                peak(&sends)
            );
            // At 90% of the rate: 3 × rate calls take 3 / 0.9 seconds, less one interval.
            let span = sends.iter().max().copied().unwrap_or_default();
            assert!(
                span >= Duration::from_secs_f64(
                    (3.0 * f64::from(rate) - 1.0) / (0.9 * f64::from(rate)) - 0.01
                ),
                "rate {rate}: {span:?}"
            );
        }
    }
}
