//! The inbound half: the adapter's `StreamEvents` (receipts and user
//! messages from the platform's webhooks) to `status-updates` and
//! `inbound`, acknowledged back event by event.
//!
//! Each event is enqueued on the producer in the order streamed (so a
//! receipt stays behind its message's SENT on the conversation's
//! partition) and acked back to the adapter once the broker acked it; only
//! then does the adapter answer the platform's webhook 200. So nothing is
//! held here that the adapter does not hold too: when the broker refuses
//! an event, it is simply not acked, the call is ended (after acking what
//! the broker did take) and re-opened, and the adapter streams every
//! unacked event again, in order. A redelivered event may be produced
//! twice (its ack was lost, or an event after it succeeded first);
//! downstream de-duplicates inbound by external id and the state machine
//! ignores a repeated or older receipt.
//!
//! A graceful stop takes no new event, waits up to [`DRAIN`] for the
//! deliveries in flight, acks them, and ends its side of the call; the
//! adapter hands whatever was not acked to the next sidecar.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chat4all_domain::Platform;
use chat4all_kafka::{Delivery, KafkaError, Producer, hops, topics};
use chat4all_proto::v1::{self as pb, connector_client::ConnectorClient, platform_event};
use chat4all_telemetry::{HopTracer, TraceContext};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const HOP: &str = "webhook";

/// How long a stopping (or re-connecting) sidecar waits for the broker's
/// acks of what it already enqueued.
const DRAIN: Duration = Duration::from_secs(5);

/// How long, once our side of the call ended, we wait for the adapter to
/// end its side: dropping the call earlier could cut our last acks off.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

type Acked = Pin<Box<dyn Future<Output = (u64, Result<(), KafkaError>)> + Send>>;

/// Why one call of `StreamEvents` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The sidecar is stopping.
    Shutdown,
    /// The adapter ended the stream (a newer subscriber, or it is stopping).
    Closed,
    /// The transport broke.
    Broke,
    /// The broker refused an event: the adapter streams it again.
    NotProduced,
}

pub(crate) async fn pump(
    mut connector: ConnectorClient<Channel>,
    producer: Producer,
    platform: Platform,
    tracer: HopTracer,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let (acks, ack_rx) = mpsc::unbounded_channel();
        let opened = tokio::select! {
            () = shutdown.cancelled() => return,
            opened = connector.stream_events(UnboundedReceiverStream::new(ack_rx)) => opened,
        };
        match opened {
            Ok(response) => {
                backoff = Duration::from_millis(100);
                let call = Call {
                    producer: &producer,
                    tracer: &tracer,
                    platform,
                    acks,
                };
                let ended = call.follow(response.into_inner(), &shutdown).await;
                if ended == Ended::Shutdown {
                    return;
                }
            }
            Err(status) => tracing::debug!(%platform, %status, "adapter event stream not open yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One call of `StreamEvents`.
struct Call<'a> {
    producer: &'a Producer,
    tracer: &'a HopTracer,
    platform: Platform,
    acks: mpsc::UnboundedSender<pb::EventAck>,
}

impl Call<'_> {
    async fn follow(
        self,
        mut stream: tonic::Streaming<pb::PlatformEvent>,
        shutdown: &CancellationToken,
    ) -> Ended {
        let platform = self.platform;
        let mut in_flight: FuturesUnordered<Acked> = FuturesUnordered::new();
        let ended = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Ended::Shutdown,
                Some((id, acked)) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Err(error) = acked {
                        self.not_produced(&error);
                        break Ended::NotProduced;
                    }
                    self.ack(id);
                }
                next = stream.message() => match next {
                    Ok(Some(event)) => {
                        let id = event.event_id;
                        match self.enqueue(event).await {
                            Ok(Some(delivery)) => in_flight.push(Box::pin(async move { (id, delivery.acked().await) })),
                            // Nothing to produce: nothing to wait for.
                            Ok(None) => self.ack(id),
                            Err(error) => {
                                self.not_produced(&error);
                                break Ended::NotProduced;
                            }
                        }
                    }
                    Ok(None) => break Ended::Closed,
                    Err(status) => {
                        tracing::warn!(%platform, %status, "adapter event stream broke");
                        break Ended::Broke;
                    }
                },
            }
        };
        // What the broker takes now still releases its webhook.
        let unacked = tokio::time::timeout(DRAIN, async {
            let mut unacked = 0_usize;
            while let Some((id, acked)) = in_flight.next().await {
                match acked {
                    Ok(()) => self.ack(id),
                    Err(_) => unacked += 1,
                }
            }
            unacked
        })
        .await
        .unwrap_or(in_flight.len());
        if unacked > 0 {
            tracing::warn!(%platform, unacked, "events left unacked: the adapter streams them again");
        }
        // Ending our side tells the adapter we are done: it hands back what
        // we did not ack and ends its side, which we wait for.
        drop(self.acks);
        if matches!(ended, Ended::Shutdown | Ended::NotProduced) {
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while let Ok(Some(_)) = stream.message().await {}
            })
            .await;
        }
        ended
    }

    fn ack(&self, id: u64) {
        // Gone only with the call, whose events the adapter then hands back.
        let _ = self.acks.send(pb::EventAck { event_ids: vec![id] });
    }

    fn not_produced(&self, error: &KafkaError) {
        tracing::warn!(platform = %self.platform, %error, "platform event not produced; the adapter streams it again");
        if let Err(renew) = self.producer.renew_if_failed() {
            tracing::error!(%renew, "could not replace the Kafka producer");
        }
    }

    /// Hands the event to the producer, in the order streamed; `None` when
    /// there is nothing to produce.
    async fn enqueue(&self, event: pb::PlatformEvent) -> Result<Option<Delivery>, KafkaError> {
        let platform = self.platform;
        // The adapter's webhook span, when the platform carried the trace back.
        let parent = TraceContext::parse(&event.traceparent);
        let (topic, key, payload, message_id) = match event.event {
            Some(platform_event::Event::Receipt(receipt)) => {
                let update = pb::StatusUpdate {
                    message_id: receipt.message_id.clone(),
                    conversation_id: receipt.conversation_id.clone(),
                    status: receipt.status,
                    at: receipt.at,
                    hop: HOP.to_owned(),
                    platform: platform.as_str().to_owned(),
                    platform_message_id: receipt.platform_message_id.clone(),
                    failure: receipt.failure,
                    recipient_id: receipt.recipient_id.clone(),
                    watermark: receipt.watermark,
                };
                // The conversation key keeps a receipt behind its message's
                // SENT; without it, the state machine still orders what
                // arrives. A watermark goes by its recipient.
                let key = if !receipt.conversation_id.is_empty() {
                    receipt.conversation_id
                } else if receipt.platform_message_id.is_empty() && !receipt.recipient_id.is_empty() {
                    format!("{platform}:{}", receipt.recipient_id)
                } else {
                    receipt.platform_message_id
                };
                metrics::counter!("chat4all_receipts_total", "platform" => platform.as_str()).increment(1);
                (
                    topics::STATUS_UPDATES,
                    key,
                    update.encode_to_vec(),
                    receipt.message_id,
                )
            }
            Some(platform_event::Event::Inbound(inbound)) => {
                let key = format!("{}:{}", platform, inbound.vendor_channel_id);
                metrics::counter!("chat4all_inbound_total", "platform" => platform.as_str()).increment(1);
                (topics::INBOUND, key, inbound.encode_to_vec(), String::new())
            }
            None => return Ok(None),
        };
        let hop = hops::send(self.tracer, topic, parent.as_ref(), &message_id);
        let mut headers = hops::headers(&hop, &message_id);
        if message_id.is_empty() {
            headers.message_id = None;
        }
        self.producer
            .enqueue(topic, &key, &payload, &headers)
            .await
            .map(Some)
    }
}
