//! The circuit breaker of one platform: closed, open, half-open.
//!
//! Consecutive transient failures (5xx, timeouts, 429s) open it; while open,
//! no call reaches the platform and messages wait their turn instead of
//! burning retries against an outage. After `open_for` (or the platform's
//! retry-after, if longer) one probe goes through: its success closes the
//! breaker, its failure opens it again. A permanent refusal counts as a
//! success: the platform is up and answering.
//!
//! Waiters poll the state every few milliseconds rather than being woken:
//! the breaker changes state a few times an outage, never on a hot path.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// When to open and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive failures that open a closed breaker.
    pub failure_threshold: u32,
    /// How long it stays open before a probe.
    pub open_for: Duration,
}

/// What the breaker is doing, for health and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub const ALL: [BreakerState; 3] = [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen];

    /// The value of the `chat4all_breaker_state` gauge.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

impl State {
    fn public(&self) -> BreakerState {
        match self {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    platform: &'static str,
    config: BreakerConfig,
    state: Mutex<State>,
}

/// Leave to make one call. Report how it went; a permit dropped unreported
/// (the call was cancelled) lets another probe go.
#[must_use]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

const POLL: Duration = Duration::from_millis(20);

impl Breaker {
    pub fn new(platform: &'static str, config: BreakerConfig) -> Self {
        let breaker = Self {
            platform,
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        };
        breaker.publish(BreakerState::Closed);
        breaker
    }

    pub fn state(&self) -> BreakerState {
        self.lock().public()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, state: BreakerState) {
        metrics::gauge!("chat4all_breaker_state", "platform" => self.platform).set(state.gauge());
    }

    fn transition(&self, state: &mut State, to: State) {
        let (from, to_public) = (state.public(), to.public());
        *state = to;
        if from != to_public {
            metrics::counter!("chat4all_breaker_transitions_total", "platform" => self.platform, "to" => to_public.as_str())
                .increment(1);
            self.publish(to_public);
            tracing::warn!(
                platform = self.platform,
                from = from.as_str(),
                to = to_public.as_str(),
                "circuit breaker"
            );
        }
    }

    /// Waits until a call may go to the platform.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let wait_until = {
                let mut state = self.lock();
                match *state {
                    State::Closed { .. } => {
                        return Permit {
                            breaker: self,
                            probe: false,
                            reported: false,
                        };
                    }
                    State::Open { until } if Instant::now() >= until => {
                        self.transition(&mut state, State::HalfOpen { probing: true });
                        return Permit {
                            breaker: self,
                            probe: true,
                            reported: false,
                        };
                    }
                    State::Open { until } => until,
                    State::HalfOpen { probing: false } => {
                        *state = State::HalfOpen { probing: true };
                        return Permit {
                            breaker: self,
                            probe: true,
                            reported: false,
                        };
                    }
                    State::HalfOpen { probing: true } => Instant::now() + POLL,
                }
            };
            tokio::time::sleep_until(wait_until.min(Instant::now() + POLL)).await;
        }
    }

    fn on_success(&self, probe: bool) {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => *state = State::Closed { failures: 0 },
            State::HalfOpen { .. } if probe => self.transition(&mut state, State::Closed { failures: 0 }),
            // A call let through before the breaker opened: it says nothing
            // about now.
            _ => {}
        }
    }

    fn on_failure(&self, probe: bool, retry_after: Option<Duration>) {
        let open_for = retry_after.map_or(self.config.open_for, |after| after.max(self.config.open_for));
        let mut state = self.lock();
        match *state {
            State::Closed { failures } if failures + 1 >= self.config.failure_threshold => {
                self.transition(
                    &mut state,
                    State::Open {
                        until: Instant::now() + open_for,
                    },
                );
            }
            State::Closed { failures } => {
                *state = State::Closed {
                    failures: failures + 1,
                }
            }
            State::HalfOpen { .. } if probe => {
                self.transition(
                    &mut state,
                    State::Open {
                        until: Instant::now() + open_for,
                    },
                );
            }
            _ => {}
        }
    }

    fn on_abandoned(&self, probe: bool) {
        let mut state = self.lock();
        if probe && matches!(*state, State::HalfOpen { probing: true }) {
            *state = State::HalfOpen { probing: false };
        }
    }
}

impl Permit<'_> {
    /// Whether this call is the half-open probe: its failure is the
    /// platform's, not the message's.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The platform answered (a refusal included).
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.on_success(self.probe);
    }

    /// The platform failed, or asked us to wait `retry_after`.
    pub fn failure(mut self, retry_after: Option<Duration>) {
        self.reported = true;
        self.breaker.on_failure(self.probe, retry_after);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.on_abandoned(self.probe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(
            "test",
            BreakerConfig {
                failure_threshold: 3,
                open_for: Duration::from_secs(5),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_closes_after_a_good_probe() {
        let b = breaker();
        b.acquire().await.failure(None);
        b.acquire().await.failure(None);
        b.acquire().await.success(); // resets the count
        for _ in 0..3 {
            b.acquire().await.failure(None);
        }
        assert_eq!(b.state(), BreakerState::Open);

        // Nobody passes while open...
        let started = Instant::now();
        let probe = b.acquire().await;
        assert!(
            started.elapsed() >= Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // ...and only one probe while half-open.
        assert!(
            tokio::time::timeout(Duration::from_secs(1), b.acquire())
                .await
                .is_err()
        );
        probe.success();
        assert_eq!(b.state(), BreakerState::Closed);
        b.acquire().await.success();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_at_least_the_platforms_retry_after() {
        let b = breaker();
        for _ in 0..3 {
            b.acquire().await.failure(None);
        }
        b.acquire().await.failure(Some(Duration::from_secs(30)));
        assert_eq!(b.state(), BreakerState::Open);
        let started = Instant::now();
        let probe = b.acquire().await;
        assert!(
            started.elapsed() >= Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        drop(probe); // abandoned: the next caller probes
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.acquire().await.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_let_through_before_opening_does_not_reopen_a_probing_breaker() {
        let b = breaker();
        let late = b.acquire().await;
        for _ in 0..3 {
            b.acquire().await.failure(None);
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        let probe = b.acquire().await;
        late.failure(None);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        probe.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
