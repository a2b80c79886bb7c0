//! The inbound half: the adapter's `StreamEvents` (receipts and user
//! messages from the platform's webhooks) to `status-updates` and `inbound`.
//! The stream is re-opened, with backoff, whenever it ends.

use std::time::Duration;

use chat4all_domain::Platform;
use chat4all_kafka::{Producer, RecordHeaders, hops, topics};
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
    // The pump goes on to the next event while this one waits for its ack,
    // so a slow broker does not hold the webhooks up.
    tokio::spawn(produce_until_acked(
        producer.clone(),
        topic,
        key,
        payload,
        headers,
        shutdown.clone(),
    ));
}

/// Produces one event until the broker acks it. A producer failed for good
/// stops the sidecar, to be started again with a new one: the event in hand
/// is then lost, since the adapter let go of it when it was streamed.
async fn produce_until_acked(
    producer: Producer,
    topic: &'static str,
    key: String,
    payload: Vec<u8>,
    headers: RecordHeaders,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let acked = match producer.enqueue(topic, &key, &payload, &headers).await {
            Ok(delivery) => delivery.acked().await,
            Err(error) => Err(error),
        };
        let Err(error) = acked else { return };
        let message_id = headers.message_id.as_deref().unwrap_or("");
        if let Some(fatal) = producer.fatal_error() {
            tracing::error!(%error, %fatal, topic, message_id, "platform event lost: the Kafka producer failed for good; stopping");
            shutdown.cancel();
            return;
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
    }
}
