//! The misbehaviour every platform shares, decided in one place so that a
//! switch means the same on WhatsApp, Messenger, Instagram, Telegram and
//! Chotot. A platform module calls:
//! - [`Shared::plan_send`] once per send, after its own checks (token,
//!   body): it says whether the send fails (a 429 burst, `fail_next`, the
//!   error rate, a failing recipient, in that order) and how its answer and
//!   webhooks are to misbehave;
//! - [`Shared::hold_answer`] just before answering (latency, then the
//!   timeout hold);
//! - [`post_receipts`] to post the webhooks that follow a send (in reverse
//!   when receipts are out of order);
//!
//! and `Shared::deliver` (in `state`) posts every webhook twice when
//! duplicates are on. The [`SimulatorHandle`] setters of these switches are
//! here too.
//!
//! Random draws come from a per-platform generator that tests can seed
//! ([`SimulatorHandle::seed`]), so an error rate is repeatable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{BurstCycle, Fraction, InjectedFailure, Switches};
use crate::state::{Shared, SimulatorError, SimulatorHandle};
use crate::webhooks::SignedWebhook;

/// A platform's random source: from the OS unless seeded.
#[derive(Debug)]
pub(crate) struct SimRng(StdRng);

impl Default for SimRng {
    fn default() -> Self {
        Self(StdRng::from_os_rng())
    }
}

impl SimRng {
    /// Whether an event of probability `p` happens.
    pub(crate) fn draw(&mut self, p: Fraction) -> bool {
        match p.per_million() {
            0 => false,
            n if n >= 1_000_000 => true,
            n => self.0.random_range(0..1_000_000) < n,
        }
    }
}

/// What the switches say about one send.
#[derive(Debug, Clone)]
pub(crate) struct SendPlan {
    /// The failure to answer with; `None` accepts the send.
    pub(crate) failure: Option<InjectedFailure>,
    /// Whether that failure is the failing-recipients one.
    pub(crate) unknown_recipient: bool,
    /// Added before the answer and before the first webhook.
    pub(crate) latency: Duration,
    /// The answer is held this long after the platform acted.
    pub(crate) timeout: Option<Duration>,
    /// Whether webhooks follow the send.
    pub(crate) receipts: bool,
    /// Whether the echo goes out before the answer.
    pub(crate) echo_before_response: bool,
    /// Whether a delivery receipt lists its mids (Messenger).
    pub(crate) delivery_mids: bool,
    /// Where webhooks go now.
    pub(crate) webhook_url: Option<String>,
}

impl Shared {
    /// Whether this send to `recipient` fails and how it is answered: the
    /// one decision every platform's send endpoint takes. `unknown_recipient`
    /// is the platform's own answer for a recipient on the failing list.
    pub(crate) fn plan_send(
        &self,
        platform: &str,
        recipient: &str,
        unknown_recipient: InjectedFailure,
    ) -> Result<SendPlan, SimulatorError> {
        self.with(platform, |state| {
            let switches = &mut state.switches;
            let mut unknown = false;
            let cycling = switches
                .burst_cycle
                .is_some_and(|cycle| cycle.bursting(self.started.elapsed()));
            let failure = if cycling || switches.burst_until.is_some_and(|until| Instant::now() < until) {
                Some(switches.burst_failure.clone())
            } else if switches.fail_next > 0 {
                switches.fail_next -= 1;
                Some(switches.failure.clone())
            } else if state.rng.draw(switches.error_rate) {
                Some(switches.error_failure.clone())
            } else if switches.fails_recipient(recipient) {
                unknown = true;
                Some(unknown_recipient)
            } else {
                None
            };
            let switches = &state.switches;
            // Only a send the platform acts on can time out after acting.
            let timeout = if failure.is_none() && state.rng.draw(switches.timeout_rate) {
                Some(Duration::MAX)
            } else {
                switches.timeout
            };
            SendPlan {
                unknown_recipient: unknown,
                failure,
                latency: switches.latency,
                timeout,
                receipts: switches.receipts,
                echo_before_response: switches.echo_before_response,
                delivery_mids: state.rng.draw(switches.delivery_mids),
                webhook_url: state.webhook_url.clone(),
            }
        })
    }

    /// The plan of a send refused before the switches are consulted (a bad
    /// token or body): no failure drawn, nothing consumed, but the answer is
    /// as slow as any other.
    pub(crate) fn plan_refusal(&self, platform: &str) -> SendPlan {
        self.with(platform, |state| SendPlan {
            failure: None,
            unknown_recipient: false,
            latency: state.switches.latency,
            timeout: state.switches.timeout,
            receipts: false,
            echo_before_response: false,
            delivery_mids: false,
            webhook_url: None,
        })
        .unwrap_or(SendPlan {
            failure: None,
            unknown_recipient: false,
            latency: Duration::ZERO,
            timeout: None,
            receipts: false,
            echo_before_response: false,
            delivery_mids: false,
            webhook_url: None,
        })
    }

    /// Waits as `plan` says before the answer goes out; returns at once
    /// when the simulator shuts down, so a held answer never blocks it.
    pub(crate) async fn hold_answer(&self, plan: &SendPlan) {
        let hold = plan.latency.saturating_add(plan.timeout.unwrap_or_default());
        if hold.is_zero() {
            return;
        }
        tokio::select! {
            () = self.stop.cancelled() => {}
            // tokio caps a far deadline: `Duration::MAX` waits "forever".
            () = tokio::time::sleep(hold) => {}
        }
    }

    /// Whether receipts are still on for `platform` (they may have been
    /// switched off since the send).
    pub(crate) fn receipts_on(&self, platform: &str) -> bool {
        self.with(platform, |s| s.switches.receipts).unwrap_or(false)
    }

    /// Whether receipts of `platform` go newest first.
    pub(crate) fn out_of_order(&self, platform: &str) -> bool {
        self.with(platform, |s| s.switches.out_of_order).unwrap_or(false)
    }
}

/// Posts the webhooks that follow a send, `first_delay` before the first
/// and `gap` between the others: in order, or newest first when receipts
/// are out of order. Stops when receipts are switched off or at shutdown.
pub(crate) async fn post_receipts(
    shared: Arc<Shared>,
    platform: &'static str,
    mut hooks: Vec<SignedWebhook>,
    first_delay: Duration,
    gap: Duration,
) {
    if shared.out_of_order(platform) {
        hooks.reverse();
    }
    let mut delay = first_delay;
    for hook in hooks {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = gap;
        if !shared.receipts_on(platform) {
            return;
        }
        let delivered = shared.deliver(platform, &hook).await;
        let _ = shared.with(platform, |s| match &delivered {
            Ok(()) => s.receipts_delivered += 1,
            Err(_) => s.receipts_failed += 1,
        });
        if let Err(e) = delivered {
            tracing::warn!(platform, error = %e, "receipt not delivered");
        }
    }
}

/// Posts `hook` again after `delay`, as Meta redelivers an event it already
/// got a 200 for. Not retried and not counted: it is the platform's
/// mistake, not a webhook of its own.
pub(crate) fn post_duplicate(shared: &Shared, platform: &'static str, hook: &SignedWebhook) {
    let Ok(Some(delay)) = shared.with(platform, |s| s.switches.duplicate_webhooks) else {
        return;
    };
    let poster = shared.poster.clone();
    let stop = shared.stop.clone();
    let hook = hook.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        match poster.post_once(&hook).await {
            Ok(status) => tracing::debug!(platform, status, "duplicate webhook posted"),
            Err(e) => tracing::debug!(platform, error = %e, "duplicate webhook not delivered"),
        }
    });
}

impl SimulatorHandle {
    fn change(&self, platform: &str, f: impl FnOnce(&mut Switches)) -> Result<(), SimulatorError> {
        self.shared.with(platform, |s| f(&mut s.switches))
    }

    /// Answers a fraction `rate` (0 to 1) of `platform`'s sends with `failure`.
    pub fn set_error_rate(
        &self,
        platform: &str,
        rate: f64,
        failure: InjectedFailure,
    ) -> Result<(), SimulatorError> {
        self.change(platform, |s| {
            s.error_rate = Fraction::new(rate);
            s.error_failure = failure;
        })
    }

    /// For `duration` from now, answers every send of `platform` with
    /// `failure` (a 429 with `Retry-After`, typically).
    pub fn burst(
        &self,
        platform: &str,
        duration: Duration,
        failure: InjectedFailure,
    ) -> Result<(), SimulatorError> {
        self.change(platform, |s| {
            s.burst_until = Instant::now().checked_add(duration);
            s.burst_failure = failure;
        })
    }

    /// Recurring bursts: every send of `platform` fails with the burst's
    /// failure for `length` out of every `every`; `None` stops them.
    pub fn set_burst_cycle(&self, platform: &str, cycle: Option<BurstCycle>) -> Result<(), SimulatorError> {
        self.change(platform, |s| s.burst_cycle = cycle)
    }

    /// Acts on a fraction `rate` (0 to 1) of `platform`'s accepted sends
    /// and holds their answers until the client gives up.
    pub fn set_timeout_rate(&self, platform: &str, rate: f64) -> Result<(), SimulatorError> {
        self.change(platform, |s| s.timeout_rate = Fraction::new(rate))
    }

    /// Holds every answer of `platform` this long after acting on the send
    /// (`Duration::MAX`: until the client gives up); `None` stops holding.
    pub fn set_timeout(&self, platform: &str, hold: Option<Duration>) -> Result<(), SimulatorError> {
        self.change(platform, |s| s.timeout = hold)
    }

    /// Posts every webhook of `platform` a second time, `delay` after the
    /// first was accepted; `None` stops it.
    pub fn set_duplicate_webhooks(
        &self,
        platform: &str,
        delay: Option<Duration>,
    ) -> Result<(), SimulatorError> {
        self.change(platform, |s| s.duplicate_webhooks = delay)
    }

    /// Posts the receipts of each send newest first.
    pub fn set_out_of_order(&self, platform: &str, enabled: bool) -> Result<(), SimulatorError> {
        self.change(platform, |s| s.out_of_order = enabled)
    }

    /// Posts the echo of each send (and waits for it to be accepted) before
    /// answering the send. Platforms without echoes ignore it.
    pub fn set_echo_before_response(&self, platform: &str, enabled: bool) -> Result<(), SimulatorError> {
        self.change(platform, |s| s.echo_before_response = enabled)
    }

    /// The fraction (0 to 1) of delivery receipts that list their mids
    /// (Messenger); the others carry only the watermark.
    pub fn set_delivery_mids(&self, platform: &str, fraction: f64) -> Result<(), SimulatorError> {
        self.change(platform, |s| s.delivery_mids = Fraction::new(fraction))
    }

    /// Seeds `platform`'s random source, for repeatable error rates.
    pub fn seed(&self, platform: &str, seed: u64) -> Result<(), SimulatorError> {
        self.shared
            .with(platform, |s| s.rng = SimRng(StdRng::seed_from_u64(seed)))
    }
}
