//! What a sidecar does when a platform call may or may not have acted: the
//! request left and no answer came back (a timeout, a reset mid-call, an
//! adapter killed mid-call), or it took over the claim of a sidecar that
//! died during its call.
//!
//! A blind retry could send the message twice, so the policy is:
//! - a platform whose webhooks echo our sends with our ids (`send_echoes`:
//!   Messenger, Instagram) settles it: the adapter turns the echo into a SENT
//!   receipt that the status-consumer applies, so the message reaching SENT
//!   in the store within `echo_window` confirms the send, and its absence
//!   refutes it (then it is sent again);
//! - otherwise, a message the store already shows SENT or past (a receipt
//!   naming our id came) is settled as sent; one whose caller asked for
//!   at-least-once is sent again;
//! - otherwise it is never sent again: it ends FAILED with reason
//!   `outcome_unknown`, counted in `chat4all_outcome_unknown_total`. A
//!   receipt that comes later (a WhatsApp `delivered`) still moves it on.

use std::time::Duration;

use chat4all_domain::{DeliveryStatus, MessageId, Timestamp};
use chat4all_proto::v1 as pb;
use chat4all_store::SharedStore;
use tokio_util::sync::CancellationToken;

/// The failure code of a message whose send may or may not have happened.
pub(crate) const OUTCOME_UNKNOWN: &str = "outcome_unknown";

/// How often the store is asked whether the echo came.
const POLL: Duration = Duration::from_millis(250);

/// How an ambiguous call was settled.
#[derive(Debug)]
pub(crate) enum Settled {
    /// The platform took it (its echo reached the store).
    Sent(pb::SendAccepted),
    /// The platform did not take it, or the caller accepts a second send:
    /// call again.
    CallAgain,
    /// Never sent again: FAILED with this failure.
    Unknown(pb::Failure),
    /// Shutdown came while waiting: the claim stays, in doubt, for the next
    /// holder to settle.
    Interrupted,
}

pub(crate) struct Settler {
    pub(crate) platform: &'static str,
    pub(crate) store: SharedStore,
    pub(crate) echoes: bool,
    pub(crate) echo_window: Duration,
    pub(crate) shutdown: CancellationToken,
}

impl Settler {
    /// Settles message `id` after a call that may have acted, `why`.
    pub(crate) async fn settle(&self, id: MessageId, message: &pb::OutboundMessage, why: &str) -> Settled {
        // Whatever the platform: a receipt may have settled it already (a
        // WhatsApp `sent` status names our id), or a holder that died after
        // announcing SENT without recording the answer.
        if !self.echoes
            && let Ok(Some(stored)) = self.store.get_message(id).await
            && let Some(accepted) = taken(&stored)
        {
            metrics::counter!("chat4all_ambiguous_sends_total", "platform" => self.platform, "settled" => "confirmed")
                .increment(1);
            return Settled::Sent(accepted);
        }
        if self.echoes {
            match self.await_echo(id).await {
                Some(Settled::CallAgain) => {
                    metrics::counter!("chat4all_ambiguous_sends_total", "platform" => self.platform, "settled" => "refuted")
                        .increment(1);
                    tracing::info!(message_id = %id, why, "no echo within the window: the platform did not take it");
                    return Settled::CallAgain;
                }
                Some(settled) => {
                    if matches!(settled, Settled::Sent(_)) {
                        metrics::counter!("chat4all_ambiguous_sends_total", "platform" => self.platform, "settled" => "confirmed")
                            .increment(1);
                    }
                    return settled;
                }
                None => {}
            }
        }
        if message.at_least_once {
            metrics::counter!("chat4all_ambiguous_sends_total", "platform" => self.platform, "settled" => "at_least_once")
                .increment(1);
            tracing::warn!(message_id = %id, why, "the platform may have taken it; sending again (at-least-once)");
            return Settled::CallAgain;
        }
        metrics::counter!("chat4all_ambiguous_sends_total", "platform" => self.platform, "settled" => "unknown")
            .increment(1);
        metrics::counter!("chat4all_outcome_unknown_total", "platform" => self.platform).increment(1);
        tracing::warn!(message_id = %id, why, "the platform may have taken it; not sending again");
        Settled::Unknown(pb::Failure {
            code: OUTCOME_UNKNOWN.to_owned(),
            reason: format!(
                "the platform may or may not have taken the message ({why}); not sent again, \
                 since a second send could reach the user twice"
            ),
        })
    }

    /// Waits up to the window for the echo's SENT; None when the store
    /// could not be read for the whole window (then the echo settles
    /// nothing, and the default policy applies).
    async fn await_echo(&self, id: MessageId) -> Option<Settled> {
        let deadline = tokio::time::Instant::now() + self.echo_window;
        let mut read_once = false;
        loop {
            match self.store.get_message(id).await {
                Ok(Some(message)) => {
                    read_once = true;
                    if let Some(accepted) = taken(&message) {
                        return Some(Settled::Sent(accepted));
                    }
                }
                Ok(None) => read_once = true,
                Err(error) => {
                    tracing::warn!(message_id = %id, %error, "cannot read the message to settle its send")
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return read_once.then_some(Settled::CallAgain);
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return Some(Settled::Interrupted),
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// The send as the store knows it, once the message is SENT or past it.
fn taken(message: &pb::Message) -> Option<pb::SendAccepted> {
    let status = DeliveryStatus::from_proto(message.status)?;
    if !matches!(
        status,
        DeliveryStatus::Sent | DeliveryStatus::Delivered | DeliveryStatus::Read
    ) {
        return None;
    }
    let sent_at = message
        .timeline
        .iter()
        .find(|t| t.status == pb::DeliveryStatus::Sent as i32)
        .and_then(|t| t.at)
        .unwrap_or_else(|| Timestamp::now().into());
    Some(pb::SendAccepted {
        platform_message_id: message.platform_message_id.clone(),
        at: Some(sent_at),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_sent_or_later_counts_as_taken() {
        let mut message = pb::Message {
            status: pb::DeliveryStatus::Routed.into(),
            platform_message_id: "m_1".into(),
            ..Default::default()
        };
        assert!(taken(&message).is_none());
        message.status = pb::DeliveryStatus::Failed.into();
        assert!(taken(&message).is_none());
        message.status = pb::DeliveryStatus::Sent.into();
        message.timeline.push(pb::StateTimestamp {
            status: pb::DeliveryStatus::Sent.into(),
            at: Some(Timestamp::from_secs(1_700_000_000).into()),
        });
        let accepted = taken(&message).unwrap();
        assert_eq!(accepted.platform_message_id, "m_1");
        assert_eq!(accepted.at, Some(Timestamp::from_secs(1_700_000_000).into()));
        message.status = pb::DeliveryStatus::Read.into();
        assert!(taken(&message).is_some());
    }
}
