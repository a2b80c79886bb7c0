//! The inbound half: the adapter's `StreamEvents` (receipts and user
//! messages from the platform's webhooks) to `status-updates` and `inbound`.
//! The stream is re-opened, with backoff, whenever it ends.

use std::time::Duration;

use chat4all_domain::Platform;
use chat4all_kafka::{KafkaError, Producer, RecordHeaders, hops, topics};
use chat4all_proto::v1::{self as pb, connector_client::ConnectorClient, platform_event};
use chat4all_telemetry::{HopTracer, TraceContext};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const HOP: &str = "webhook";

pub(crate) async fn pump(
    mut connector: ConnectorClient<Channel>,
    producer: Producer,
    platform: Platform,
    tracer: HopTracer,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let opened = tokio::select! {
            () = shutdown.cancelled() => return,
            opened = connector.stream_events(pb::StreamEventsRequest {}) => opened,
        };
        match opened {
            Ok(response) => {
                backoff = Duration::from_millis(100);
                let mut stream = response.into_inner();
                loop {
                    let next = tokio::select! {
                        () = shutdown.cancelled() => return,
                        next = stream.message() => next,
                    };
                    match next {
                        Ok(Some(event)) => publish(&producer, &tracer, platform, event, &shutdown).await,
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!(%platform, %status, "adapter event stream broke");
                            break;
                        }
                    }
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

async fn publish(
    producer: &Producer,
    tracer: &HopTracer,
    platform: Platform,
    event: pb::PlatformEvent,
    shutdown: &CancellationToken,
) {
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
            };
            // The conversation key keeps a receipt behind its message's SENT;
            // without it, the state machine still orders what arrives.
            let key = if receipt.conversation_id.is_empty() {
                receipt.platform_message_id
            } else {
                receipt.conversation_id
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
        None => return,
    };
    let hop = hops::send(tracer, topic, parent.as_ref(), &message_id);
    let mut headers = hops::headers(&hop, &message_id);
    if message_id.is_empty() {
        headers.message_id = None;
    }
    // Enqueued here, in the order the adapter streamed them (a receipt stays
    // behind its message's SENT on the conversation's partition); the ack
    // is awaited off the pump, so a slow broker does not hold webhooks up.
    let first = producer.enqueue(topic, &key, &payload, &headers).await;
    let producer = producer.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let acked = match first {
            Ok(delivery) => delivery.acked().await,
            Err(error) => Err(error),
        };
        if let Err(error) = acked {
            retry_until_acked(&producer, topic, &key, &payload, &headers, error, &shutdown).await;
        }
    });
}

/// Produces an event the broker did not ack again, with backoff, until it
/// does, on a new producer if this one failed for good: the adapter let go
/// of the event when it streamed it, so the sidecar must not.
async fn retry_until_acked(
    producer: &Producer,
    topic: &'static str,
    key: &str,
    payload: &[u8],
    headers: &RecordHeaders,
    mut error: KafkaError,
    shutdown: &CancellationToken,
) {
    let message_id = headers.message_id.as_deref().unwrap_or("");
    let mut backoff = Duration::from_millis(100);
    loop {
        if let Err(renew) = producer.renew_if_failed() {
            tracing::error!(%renew, "could not replace the Kafka producer");
        }
        tracing::warn!(%error, topic, message_id, "platform event not produced yet; retrying");
        tokio::select! {
            () = shutdown.cancelled() => {
                tracing::error!(topic, message_id, "platform event lost: stopped before the broker acked it");
                return;
            }
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
        let acked = match producer.enqueue(topic, key, payload, headers).await {
            Ok(delivery) => delivery.acked().await,
            Err(e) => Err(e),
        };
        match acked {
            Ok(()) => return,
            Err(e) => error = e,
        }
    }
}
