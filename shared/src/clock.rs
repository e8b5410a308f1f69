//! The time port: every rule that reads the time, every wait and every deadline goes
//! through a [`Clock`], so tests drive time instead of sleeping through it.
//!
//! Three things come from a clock: the wall time ([`Clock::now`], for expiry, leases,
//! windows and tokens), a monotonic instant ([`Clock::instant`], for request budgets and
//! deadlines) and waits ([`Clock::sleep_until`]). A wait is time the code chooses to let
//! pass (a backoff, a poll, pacing); a deadline ([`Clock::timer`], used by [`timeout_at`])
//! only fires once time has passed it, and never moves time itself. The difference matters
//! for [`ManualClock`]: its waits jump ahead at once, its timers wait for the jump.

use chrono::{DateTime, Duration, Utc};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A future of the time port (boxed: the port is used as `dyn Clock`).
pub type Tick = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Why the code waits. Test clocks record it, so a test can tell a provider's backoff from
/// a poll; production ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wait {
    /// Backoff or `Retry-After` between attempts of a provider call.
    ProviderRetry,
    /// A caller that lost a subject's claim waits for the winner's meeting.
    ClaimPoll,
    /// A container waits for another container's refresh of a shared token.
    TokenPoll,
    /// A store call retried after a transaction conflict or unprocessed keys.
    StoreRetry,
    /// The cleanup spacing provider calls under its rate.
    Pace,
}

pub trait Clock: Send + Sync {
    /// The wall time.
    fn now(&self) -> DateTime<Utc>;

    /// The monotonic time that request budgets and deadlines are measured in.
    fn instant(&self) -> Instant;

    /// Lets time pass until `at` (nothing when it has passed): `why` is for test clocks.
    fn sleep_until(&self, at: Instant, why: Wait) -> Tick;

    /// Completes once time reaches `at`; never moves time (deadlines, timeouts).
    fn timer(&self, at: Instant) -> Tick;
}

impl dyn Clock + '_ {
    /// Lets `d` pass.
    pub async fn sleep(&self, d: std::time::Duration, why: Wait) {
        self.sleep_until(self.instant() + d, why).await;
    }

    /// How much of the budget up to `deadline` is left.
    pub fn left(&self, deadline: Instant) -> std::time::Duration {
        deadline.saturating_duration_since(self.instant())
    }
}

/// `work`, unless `deadline` comes first (`Err(Elapsed)`).
pub async fn timeout_at<F: Future>(
    clock: &dyn Clock,
    deadline: Instant,
    work: F,
) -> Result<F::Output, Elapsed> {
    let timer = clock.timer(deadline);
    tokio::select! {
        biased;
        out = work => Ok(out),
        () = timer => Err(Elapsed),
    }
}

/// A deadline passed before the work was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// The real clock: the system's wall time, `Instant`, tokio's timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, at: Instant, _why: Wait) -> Tick {
        Box::pin(tokio::time::sleep_until(at.into()))
    }

    fn timer(&self, at: Instant) -> Tick {
        Box::pin(tokio::time::sleep_until(at.into()))
    }
}

/// A clock that only moves when told to, or when the code waits: a wait jumps the clock to
/// its end at once and is recorded (like tokio's paused clock, but without pausing real
/// I/O, so tests can talk to real local servers). Timers fire when the clock reaches them.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    wall: DateTime<Utc>,
    /// How far the monotonic time is past `base`.
    elapsed: std::time::Duration,
    waits: Vec<Waited>,
    timers: Vec<(Instant, tokio::sync::oneshot::Sender<()>)>,
}

/// One recorded wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited {
    pub why: Wait,
    /// How long the code asked to wait.
    pub duration: std::time::Duration,
    /// When the wait ended, as time since the clock was made.
    pub until: std::time::Duration,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            base: Instant::now(),
            state: Mutex::new(State {
                wall: start,
                elapsed: std::time::Duration::ZERO,
                waits: Vec::new(),
                timers: Vec::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the wall and the monotonic time forward by `by` (a negative `by` moves the
    /// wall time only: monotonic time never goes back).
    pub fn advance(&self, by: Duration) {
        let mut state = self.state();
        state.wall += by;
        if let Ok(forward) = by.to_std() {
            state.elapsed += forward;
        }
        self.fire(&mut state);
    }

    /// Sets the wall time (the monotonic time stays).
    pub fn set(&self, to: DateTime<Utc>) {
        self.state().wall = to;
    }

    /// Every wait so far, in order.
    pub fn waits(&self) -> Vec<Waited> {
        self.state().waits.clone()
    }

    /// How long each wait for `why` asked for, in order.
    pub fn waits_for(&self, why: Wait) -> Vec<std::time::Duration> {
        self.waits()
            .into_iter()
            .filter(|w| w.why == why)
            .map(|w| w.duration)
            .collect()
    }

    /// The monotonic time since the clock was made.
    pub fn elapsed(&self) -> std::time::Duration {
        self.state().elapsed
    }

    /// Fires the timers time has reached (and forgets those nobody waits on any more).
    fn fire(&self, state: &mut State) {
        let now = self.base + state.elapsed;
        let (due, pending) = std::mem::take(&mut state.timers)
            .into_iter()
            .filter(|(_, waiter)| !waiter.is_closed())
            .partition::<Vec<_>, _>(|(at, _)| *at <= now);
        state.timers = pending;
        for (_, fired) in due {
            let _ = fired.send(());
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state().wall
    }

    fn instant(&self) -> Instant {
        self.base + self.state().elapsed
    }

    fn sleep_until(&self, at: Instant, why: Wait) -> Tick {
        let mut state = self.state();
        let now = self.base + state.elapsed;
        let duration = at.saturating_duration_since(now);
        state.elapsed += duration;
        state.wall += Duration::from_std(duration).unwrap_or_default();
        let until = state.elapsed;
        state.waits.push(Waited {
            why,
            duration,
            until,
        });
        self.fire(&mut state);
        // Lets other tasks run, as a real wait would.
        Box::pin(tokio::task::yield_now())
    }

    fn timer(&self, at: Instant) -> Tick {
        let mut state = self.state();
        if at <= self.base + state.elapsed {
            return Box::pin(std::future::ready(()));
        }
        let (fire, fired) = tokio::sync::oneshot::channel();
        state.timers.push((at, fire));
        Box::pin(async move {
            // A dropped clock never fires: the timer then waits forever, like time standing still.
            if fired.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// A clock for tests, starting now.
pub fn manual() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_moves_a_manual_clock_at_once_and_is_recorded() {
        let clock = manual();
        let start = (clock.now(), clock.instant());
        let dyn_clock: &dyn Clock = clock.as_ref();
        dyn_clock
            .sleep(std::time::Duration::from_secs(3), Wait::ProviderRetry)
            .await;
        assert_eq!(clock.now() - start.0, Duration::seconds(3));
        assert_eq!(clock.instant() - start.1, std::time::Duration::from_secs(3));
        assert_eq!(
            clock.waits_for(Wait::ProviderRetry),
            [std::time::Duration::from_secs(3)]
        );
        assert!(clock.waits_for(Wait::Pace).is_empty());
    }

    #[tokio::test]
    async fn a_timer_fires_only_when_the_clock_reaches_it() {
        let clock = manual();
        let deadline = clock.instant() + std::time::Duration::from_secs(2);
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move { timeout_at(clock.as_ref(), deadline, std::future::pending::<()>()).await }
        });
        tokio::task::yield_now().await;
        clock.advance(Duration::milliseconds(1999));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "not before its time");
        clock.advance(Duration::milliseconds(1));
        assert_eq!(waiting.await.ok(), Some(Err(Elapsed)));
    }

    #[tokio::test]
    async fn work_done_before_its_deadline_is_answered() {
        let clock = manual();
        let deadline = clock.instant() + std::time::Duration::from_secs(1);
        assert_eq!(
            timeout_at(clock.as_ref(), deadline, async { 7 }).await,
            Ok(7)
        );
    }
}
