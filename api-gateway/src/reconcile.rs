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
//!
//! A message is re-published at most once per `after`, doubling
//! (`republish_pace`): a lagging status pipeline must not be fed copies of
//! what it lags on.
//!
//! Each round also marks SENT messages whose receipt is overdue
//! (`overdue`): those are counted, never re-published.
//!
//! One gateway replica reconciles at a time: each round first takes (or
//! keeps) the store's `reconciler` lease, for three rounds' time, so N
//! replicas do not re-publish the same messages N times, and a replica that
//! dies hands the job over once its lease runs out.

use std::time::Duration;

use chat4all_domain::{DeliveryStatus, MessageId, Timestamp};
use chat4all_kafka::{Producer, topics};
use chat4all_store::SharedStore;
use chat4all_telemetry::{HopTracer, TraceContext};
use tokio_util::sync::CancellationToken;

use crate::republish_pace::RepublishPace;
use crate::{ReconcileArgs, publish};

mod overdue;

/// The most messages of one status re-published in a round; the next
/// round takes the rest.
const BATCH: u32 = 500;

/// The store lease one reconciler holds at a time.
pub(crate) const LEASE: &str = "reconciler";

/// Whether this replica, `holder`, reconciles this round.
pub(crate) async fn my_turn(store: &SharedStore, holder: &str, every: Duration) -> bool {
    match store.acquire_lease(LEASE, holder, every.saturating_mul(3)).await {
        Ok(held) => held,
        Err(error) => {
            tracing::warn!(%error, "cannot take the reconciler lease; skipping this round");
            false
        }
    }
}

pub(crate) async fn run(
    store: SharedStore,
    producer: Producer,
    tracer: HopTracer,
    config: ReconcileArgs,
    shutdown: CancellationToken,
) {
    // The pod's name where there is one, and always something unique: two
    // processes must never think they share the lease.
    let holder = format!(
        "{}/{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "gateway".to_owned()),
        uuid::Uuid::now_v7()
    );
    let mut paces = [RepublishPace::default(), RepublishPace::default()];
    overdue::register();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.every) => {}
        }
        if !my_turn(&store, &holder, config.every).await {
            metrics::counter!("chat4all_reconcile_rounds_total", "ran" => "false").increment(1);
            overdue::not_mine();
            continue;
        }
        metrics::counter!("chat4all_reconcile_rounds_total", "ran" => "true").increment(1);
        match once(&store, &producer, &tracer, config, &mut paces).await {
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
        // Apart from the re-publishing: it needs no broker, so a broker
        // down does not hide overdue receipts.
        if let Err(error) = overdue::round(&store, config.receipt_deadline).await {
            tracing::warn!(%error, "looking for overdue receipts failed; next round retries");
        }
    }
}

/// One round; returns how many messages were re-published.
pub(crate) async fn once(
    store: &SharedStore,
    producer: &Producer,
    tracer: &HopTracer,
    config: ReconcileArgs,
    paces: &mut [RepublishPace; 2],
) -> anyhow::Result<usize> {
    let mut count = 0;
    for ((status, after), pace) in [
        (DeliveryStatus::Accepted, config.after),
        (DeliveryStatus::Routed, config.routed_after),
    ]
    .into_iter()
    .zip(paces.iter_mut())
    {
        let deadline = Timestamp::now().as_micros() - i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
        let stuck = store
            .stuck_messages(status, Timestamp::from_micros(deadline), BATCH)
            .await?;
        let ids: Vec<MessageId> = stuck.iter().filter_map(|m| m.id.parse().ok()).collect();
        let due = pace.due(&ids, after, tokio::time::Instant::now());
        let stuck: Vec<_> = stuck
            .into_iter()
            .filter(|m| m.id.parse().is_ok_and(|id| due.contains(&id)))
            .collect();
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use chat4all_domain::{MessageId, Platform};
    use chat4all_store::{MessageRef, NewMessage, StatusChange, TransitionOutcome};
    use chat4all_store_embedded::{EmbeddedOptions, EmbeddedStore};

    use super::*;

    const HOUR: i64 = 3600 * 1_000_000;

    fn hours_ago(hours: i64) -> Timestamp {
        Timestamp::from_micros(Timestamp::now().as_micros() - hours * HOUR)
    }

    /// A message to `recipient` created two days ago, SENT `sent_hours_ago`.
    async fn sent(store: &SharedStore, recipient: &str, sent_hours_ago: i64) -> MessageId {
        let id = MessageId::generate();
        store
            .put_message(NewMessage {
                id,
                conversation_id: "overdue".parse().unwrap(),
                recipient: recipient.parse().unwrap(),
                text: "hi".into(),
                source: chat4all_domain::SOURCE_API.into(),
                trace_id: String::new(),
                created_at: hours_ago(48),
                idempotency_key: None,
            })
            .await
            .unwrap();
        move_to(store, id, DeliveryStatus::Sent, hours_ago(sent_hours_ago)).await;
        id
    }

    async fn move_to(store: &SharedStore, id: MessageId, status: DeliveryStatus, at: Timestamp) {
        let change = StatusChange {
            message: MessageRef::Id(id),
            status,
            at,
            hop: "test".into(),
            platform_message_id: None,
            failure: None,
        };
        store.apply_transitions(vec![change]).await.unwrap();
    }

    async fn notes(store: &SharedStore, id: MessageId) -> usize {
        let message = store.get_message(id).await.unwrap().unwrap();
        message
            .history
            .iter()
            .filter(|e| TransitionOutcome::from_proto(e.outcome) == Some(TransitionOutcome::Noted))
            .count()
    }

    fn counted(rendered: &str, platform: &str) -> Option<String> {
        let series = format!("chat4all_receipts_overdue_total{{platform=\"{platform}\"}} ");
        rendered
            .lines()
            .find_map(|l| l.strip_prefix(&series).map(str::to_owned))
    }

    #[tokio::test]
    async fn a_receipt_overdue_is_marked_once_and_counted_where_receipts_come() {
        let metrics = chat4all_telemetry::metrics_handle();
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(
            EmbeddedStore::open(&dir.path().join("overdue.db"), EmbeddedOptions::default()).unwrap(),
        );
        let whatsapp = sent(&store, "whatsapp:15551234567", 30).await;
        let telegram = sent(&store, "telegram:42", 30).await;
        let delivered = sent(&store, "messenger:7001", 30).await;
        move_to(&store, delivered, DeliveryStatus::Delivered, hours_ago(29)).await;
        // Created two days ago, but sent only an hour ago (retries): not late.
        let lately_sent = sent(&store, "whatsapp:15551234568", 1).await;
        let day = Duration::from_secs(24 * 3600);

        let first = overdue::round(&store, day).await.unwrap();
        assert_eq!(first.marked, [(whatsapp, Platform::WhatsApp)]);
        assert_eq!(
            first.now.into_iter().collect::<Vec<_>>(),
            [
                (Platform::WhatsApp, 1),
                (Platform::Instagram, 0),
                (Platform::Messenger, 0)
            ]
        );
        let second = overdue::round(&store, day).await.unwrap();
        assert!(second.marked.is_empty(), "marked once: {second:?}");
        assert_eq!(second.now.get(&Platform::WhatsApp), Some(&1), "still overdue");

        assert_eq!(notes(&store, whatsapp).await, 1);
        for other in [telegram, delivered, lately_sent] {
            assert_eq!(notes(&store, other).await, 0, "{other}");
        }
        let rendered = metrics.render();
        assert_eq!(counted(&rendered, "whatsapp").as_deref(), Some("1"), "{rendered}");
        assert_eq!(counted(&rendered, "telegram"), None);
        assert!(
            rendered.contains("chat4all_messages_awaiting_receipt_overdue{platform=\"whatsapp\"} 1"),
            "{rendered}"
        );
    }

    #[tokio::test]
    async fn one_replica_reconciles_at_a_time_and_a_dead_ones_turn_passes() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore =
            Arc::new(EmbeddedStore::open(&dir.path().join("lease.db"), EmbeddedOptions::default()).unwrap());
        let every = Duration::from_millis(100);
        let rounds = |holder: &'static str| {
            let store = store.clone();
            async move {
                let mut mine = 0;
                for _ in 0..5 {
                    mine += usize::from(my_turn(&store, holder, every).await);
                }
                mine
            }
        };
        // Both replicas look five times within the lease: one does every round.
        let (a, b) = tokio::join!(rounds("gateway-a"), rounds("gateway-b"));
        assert_eq!((a.min(b), a.max(b)), (0, 5), "a={a} b={b}");
        let (holder, other) = if a == 5 {
            ("gateway-a", "gateway-b")
        } else {
            ("gateway-b", "gateway-a")
        };
        assert!(my_turn(&store, holder, every).await);
        // The holder stops looking (it died): after three rounds' time the
        // other takes over.
        tokio::time::sleep(every * 3 + Duration::from_millis(100)).await;
        assert!(my_turn(&store, other, every).await);
        assert!(!my_turn(&store, holder, every).await);
    }
}
