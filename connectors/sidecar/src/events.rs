//! The inbound half: the adapter's `StreamEvents` (receipts and user
//! messages from the platform's webhooks) to `status-updates` and `inbound`.
//! The stream is re-opened, with backoff, whenever it ends.

use std::time::Duration;

use chat4all_domain::Platform;
use chat4all_kafka::{Producer, RecordHeaders, topics};
use chat4all_proto::v1::{self as pb, connector_client::ConnectorClient, platform_event};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const HOP: &str = "webhook";

pub(crate) async fn pump(
    mut connector: ConnectorClient<Channel>,
    producer: Producer,
    platform: Platform,
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
                        Ok(Some(event)) => publish(&producer, platform, event).await,
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

async fn publish(producer: &Producer, platform: Platform, event: pb::PlatformEvent) {
    let traceparent = (!event.traceparent.is_empty()).then_some(event.traceparent);
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
                Some(receipt.message_id).filter(|m| !m.is_empty()),
            )
        }
        Some(platform_event::Event::Inbound(inbound)) => {
            let key = format!("{}:{}", platform, inbound.vendor_channel_id);
            metrics::counter!("chat4all_inbound_total", "platform" => platform.as_str()).increment(1);
            (topics::INBOUND, key, inbound.encode_to_vec(), None)
        }
        None => return,
    };
    let headers = RecordHeaders::new(traceparent, message_id);
    match producer.enqueue(topic, &key, &payload, &headers).await {
        Ok(delivery) => {
            tokio::spawn(async move {
                if let Err(error) = delivery.acked().await {
                    tracing::warn!(%error, topic, "platform event not produced");
                }
            });
        }
        Err(error) => tracing::warn!(%error, topic, "platform event not produced"),
    }
}
