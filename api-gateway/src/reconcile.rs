//! The reconciliation job: messages whose record was lost on the way (the
//! broker was down past librdkafka's retries, or came back empty) are
//! re-published on `messages`.
//!
//! - Still ACCEPTED past `after`: the `messages` record (or the router's
//!   ROUTED) was lost.
//! - Still ROUTED past `routed_after`, and claimed by no sidecar: the
//!   `<platform>-outbound` record was lost. The router routes it again.
//!
//! Either is safe when the first record was only slow: the router's ROUTED
//! is an idempotent repeat and the sidecar's claim keeps the platform call
//! single.

use chat4all_domain::{DeliveryStatus, Timestamp};
use chat4all_kafka::{Producer, topics};
use chat4all_store::SharedStore;
use chat4all_telemetry::{HopTracer, TraceContext};
use tokio_util::sync::CancellationToken;

use crate::{ReconcileArgs, publish};

/// The most messages of one status re-published in a round; the next
/// round takes the rest.
const BATCH: u32 = 500;

pub(crate) async fn run(
    store: SharedStore,
    producer: Producer,
    tracer: HopTracer,
    config: ReconcileArgs,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.every) => {}
        }
        match once(&store, &producer, &tracer, config).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "re-published stuck messages"),
            Err(error) => {
                tracing::warn!(%error, "reconciliation failed; next round retries");
                // No round can succeed on a failed producer (one a broker
                // that restarted fenced, or no longer knows): replaced.
                if let Err(renew) = producer.renew_if_failed() {
                    tracing::error!(%renew, "could not replace the Kafka producer");
                }
            }
        }
    }
}

/// One round; returns how many messages were re-published.
pub(crate) async fn once(
    store: &SharedStore,
    producer: &Producer,
    tracer: &HopTracer,
    config: ReconcileArgs,
) -> anyhow::Result<usize> {
    let mut count = 0;
    for (status, after) in [
        (DeliveryStatus::Accepted, config.after),
        (DeliveryStatus::Routed, config.routed_after),
    ] {
        let deadline = Timestamp::now().as_micros() - i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
        let stuck = store
            .stuck_messages(status, Timestamp::from_micros(deadline), BATCH)
            .await?;
        let mut deliveries = Vec::with_capacity(stuck.len());
        for message in &stuck {
            let trace = TraceContext::in_trace(&message.trace_id).unwrap_or_else(TraceContext::new_root);
            deliveries
                .push(publish::enqueue(producer, tracer, message, &trace, publish::Queue::default()).await?);
        }
        for delivery in deliveries {
            delivery.acked().await?;
        }
        metrics::counter!("chat4all_reconciled_total", "topic" => topics::MESSAGES, "status" => status.as_str())
            .increment(stuck.len() as u64);
        count += stuck.len();
    }
    Ok(count)
}
