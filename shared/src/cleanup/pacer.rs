//! Spacing provider calls under a rate.

use crate::clock::{Clock, Wait};
use std::time::{Duration, Instant};

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
