//! [`MetaAdapter`]: the one [`PlatformAdapter`] over any [`MetaPlatform`].
//!
//! What a `messaging` event means:
//! - inbound text → an [`pb::InboundMessage`], the sender's page- or
//!   account-scoped id being the conversation;
//! - an echo → never an inbound message (it is the page talking). With our
//!   metadata it confirms our send (its mid and platform stamp go to the
//!   index) and becomes a SENT receipt, which settles a send whose HTTP
//!   answer never came; without, someone typed in the page's inbox and it
//!   is dropped. Both are counted (`chat4all_echoes_total{platform,ours}`);
//! - `delivery` → DELIVERED receipts: one per listed mid, and one per send
//!   of ours to that person at or before the watermark not yet reported
//!   (see [`super::sent`]); ignored on a platform without delivery receipts;
//! - `read` → READ receipts, by watermark (Messenger) or by `mid` (Instagram).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chat4all_proto::v1 as pb;
use pb::platform_event::Event;

use crate::{Operation, PlatformAdapter, Secret, SignatureScheme, WebhookParseError};

use super::send::{SendApiClient, SendBody};
use super::sent::{MidLookup, Progress, SentIndex, SentMessage};
use super::webhook::{self, MessagingEvent};
use super::{MetaError, MetaPlatform, MetaSettings, OurIds};

/// A Meta messaging platform's side of the kit.
#[derive(Debug)]
pub struct MetaAdapter {
    platform: &'static MetaPlatform,
    client: SendApiClient,
    signature: SignatureScheme,
    verify_token: Secret,
    sent: SentIndex,
}

impl MetaAdapter {
    /// An adapter of `platform` configured by `settings` (validated here).
    pub fn new(platform: &'static MetaPlatform, settings: &MetaSettings) -> Result<Self, MetaError> {
        settings.validate(platform)?;
        // At 0 from start-up: `increase()` over a series that appears at 1
        // misses its first event.
        for ours in ["true", "false"] {
            metrics::counter!("chat4all_echoes_total", "platform" => platform.name, "ours" => ours)
                .increment(0);
        }
        Ok(Self {
            platform,
            client: SendApiClient::new(settings)?,
            signature: SignatureScheme::meta(settings.app_secret.clone()),
            verify_token: settings.verify_token.clone(),
            sent: SentIndex::new(settings.sent_index_capacity),
        })
    }

    /// The index of sends, for inspection.
    pub fn sent(&self) -> &SentIndex {
        &self.sent
    }

    fn skipped(&self, reason: &'static str) {
        metrics::counter!("chat4all_meta_webhook_skipped_total", "platform" => self.platform.name, "reason" => reason)
            .increment(1);
    }

    /// An echo of ours confirms the send as a SENT receipt: after a call
    /// that timed out, it is how the sidecar learns the platform took it.
    fn echo(
        &self,
        recipient: Option<&str>,
        mid: &str,
        metadata: Option<&str>,
        at_ms: Option<i64>,
    ) -> Option<pb::PlatformEvent> {
        let ours = metadata.and_then(OurIds::decode);
        let known = match (&ours, recipient) {
            (Some(ours), Some(recipient)) => self.sent.echoed(recipient, &ours.message_id, mid, at_ms),
            _ => false,
        };
        let label = if ours.is_some() { "true" } else { "false" };
        metrics::counter!("chat4all_echoes_total", "platform" => self.platform.name, "ours" => label)
            .increment(1);
        tracing::debug!(
            platform = self.platform.name,
            ours = ours.is_some(),
            known,
            "echo"
        );
        let ours = ours?;
        Some(pb::PlatformEvent {
            event: Some(Event::Receipt(pb::Receipt {
                platform_message_id: mid.to_owned(),
                message_id: ours.message_id,
                conversation_id: ours.conversation_id,
                status: pb::DeliveryStatus::Sent as i32,
                at: Some(timestamp(at_ms)),
                failure: None,
                ..Default::default()
            })),
            traceparent: ours.traceparent,
            ..Default::default()
        })
    }

    /// Receipts at `progress` for the listed mids, then for every send the
    /// watermark covers that the mids did not already name.
    fn receipts(
        &self,
        sender: Option<&str>,
        mids: &[String],
        watermark_ms: Option<i64>,
        at: chat4all_proto::Timestamp,
        progress: Progress,
        events: &mut Vec<pb::PlatformEvent>,
    ) {
        for mid in mids.iter().filter(|m| !m.is_empty()) {
            match self.sent.mid(sender, mid, progress) {
                MidLookup::New(sent) => events.push(receipt(Some(&sent), mid, progress, at)),
                MidLookup::Unknown => events.push(receipt(None, mid, progress, at)),
                MidLookup::AlreadyReported => {}
            }
        }
        match (sender, watermark_ms) {
            (Some(sender), Some(watermark)) => {
                for sent in self.sent.watermark(sender, watermark, progress) {
                    let mid = sent.mid.clone().unwrap_or_default();
                    events.push(receipt(Some(&sent), &mid, progress, at));
                }
                // What this replica did not send, or sent before a restart,
                // the status-consumer finds in the store.
                events.push(watermark_receipt(sender, watermark, progress, at));
            }
            (None, Some(_)) => self.skipped("watermark_without_sender"),
            _ => {}
        }
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A platform time in unix milliseconds, or now when it has none.
fn timestamp(ms: Option<i64>) -> chat4all_proto::Timestamp {
    match ms.and_then(|ms| u64::try_from(ms).ok()) {
        Some(ms) => (UNIX_EPOCH + Duration::from_millis(ms)).into(),
        None => SystemTime::now().into(),
    }
}

fn status_of(progress: Progress) -> i32 {
    let status = match progress {
        Progress::Delivered => pb::DeliveryStatus::Delivered,
        Progress::Read => pb::DeliveryStatus::Read,
    };
    status as i32
}

/// Every message to `recipient` the platform took at or before
/// `watermark_ms` reached `progress`.
fn watermark_receipt(
    recipient: &str,
    watermark_ms: i64,
    progress: Progress,
    at: chat4all_proto::Timestamp,
) -> pb::PlatformEvent {
    pb::PlatformEvent {
        event: Some(Event::Receipt(pb::Receipt {
            status: status_of(progress),
            at: Some(at),
            recipient_id: recipient.to_owned(),
            watermark: Some(timestamp(Some(watermark_ms))),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn receipt(
    sent: Option<&SentMessage>,
    mid: &str,
    progress: Progress,
    at: chat4all_proto::Timestamp,
) -> pb::PlatformEvent {
    pb::PlatformEvent {
        event: Some(Event::Receipt(pb::Receipt {
            platform_message_id: mid.to_owned(),
            message_id: sent.map(|s| s.message_id.clone()).unwrap_or_default(),
            conversation_id: sent.map(|s| s.conversation_id.clone()).unwrap_or_default(),
            status: status_of(progress),
            at: Some(at),
            ..Default::default()
        })),
        traceparent: sent.map(|s| s.traceparent.clone()).unwrap_or_default(),
        ..Default::default()
    }
}

#[async_trait]
impl PlatformAdapter for MetaAdapter {
    fn platform(&self) -> &'static str {
        self.platform.name
    }

    fn capabilities(&self) -> pb::Capabilities {
        self.platform.capabilities
    }

    async fn send(
        &self,
        request: &pb::SendRequest,
        traceparent: Option<&str>,
    ) -> Result<pb::SendAccepted, pb::PlatformError> {
        let recipient = request.recipient_id.trim();
        let ours = OurIds {
            message_id: request.message_id.clone(),
            conversation_id: request.conversation_id.clone(),
            traceparent: traceparent.unwrap_or_default().to_owned(),
        };
        let body = SendBody::text(
            recipient,
            &request.text,
            ours.encode(self.platform.max_metadata_len),
        );
        // The send's time is when the request left, not when its answer
        // came: the platform stamps the message in between, so a watermark
        // at or after the platform's stamp covers it (here and in the store,
        // where SENT keeps this time).
        let leaving = SystemTime::now();
        self.sent.pending(
            recipient,
            &request.message_id,
            &request.conversation_id,
            &ours.traceparent,
            unix_ms(leaving),
        );
        match self.client.send(&body, traceparent).await {
            Ok(mid) => {
                if mid.is_empty() {
                    tracing::warn!(
                        platform = self.platform.name,
                        message_id = %request.message_id,
                        "platform accepted the message without a readable id"
                    );
                }
                self.sent.accepted(recipient, &request.message_id, &mid);
                Ok(pb::SendAccepted {
                    platform_message_id: mid,
                    at: Some(leaving.into()),
                })
            }
            Err(error) => {
                // No HTTP answer (a timeout) may still be a message the
                // platform took: keep it for its echo and receipts.
                if error.http_status != 0 {
                    self.sent.refused(recipient, &request.message_id);
                }
                Err(error)
            }
        }
    }

    fn webhook_signature(&self) -> &SignatureScheme {
        &self.signature
    }

    fn webhook_verify_token(&self) -> Option<&Secret> {
        Some(&self.verify_token)
    }

    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<pb::PlatformEvent>, WebhookParseError> {
        let name = self.platform.name;
        let mut events = Vec::new();
        for event in webhook::parse(body, self.platform.webhook_object)? {
            match event {
                MessagingEvent::Inbound {
                    sender,
                    mid,
                    text,
                    timestamp_ms,
                } => events.push(pb::PlatformEvent {
                    event: Some(Event::Inbound(pb::InboundMessage {
                        platform: name.to_owned(),
                        vendor_channel_id: sender.clone(),
                        sender_id: sender,
                        external_message_id: mid,
                        text,
                        at: Some(timestamp(timestamp_ms)),
                        sender_name: String::new(),
                        from_us: false,
                    })),
                    traceparent: String::new(),
                    ..Default::default()
                }),
                MessagingEvent::Echo {
                    recipient,
                    mid,
                    metadata,
                    timestamp_ms,
                } => events.extend(self.echo(recipient.as_deref(), &mid, metadata.as_deref(), timestamp_ms)),
                MessagingEvent::Delivery {
                    sender,
                    mids,
                    watermark_ms,
                    timestamp_ms,
                } => {
                    if self.platform.capabilities.delivery_receipts {
                        let at = timestamp(timestamp_ms);
                        self.receipts(
                            sender.as_deref(),
                            &mids,
                            watermark_ms,
                            at,
                            Progress::Delivered,
                            &mut events,
                        );
                    } else {
                        self.skipped("delivery_not_offered");
                    }
                }
                MessagingEvent::Read {
                    sender,
                    watermark_ms,
                    mid,
                    timestamp_ms,
                } => {
                    let at = timestamp(timestamp_ms);
                    let mids: Vec<String> = mid.into_iter().collect();
                    self.receipts(
                        sender.as_deref(),
                        &mids,
                        watermark_ms,
                        at,
                        Progress::Read,
                        &mut events,
                    );
                }
                MessagingEvent::Other { kind } => self.skipped(kind),
            }
        }
        Ok(events)
    }

    fn webhook_not_queued(&self, body: &[u8]) {
        let Ok(events) = webhook::parse(body, self.platform.webhook_object) else {
            return;
        };
        for event in events {
            match event {
                MessagingEvent::Delivery {
                    sender,
                    mids,
                    watermark_ms,
                    ..
                } => self
                    .sent
                    .unmark(sender.as_deref(), &mids, watermark_ms, Progress::Delivered),
                MessagingEvent::Read {
                    sender,
                    watermark_ms,
                    mid,
                    ..
                } => {
                    let mids: Vec<String> = mid.into_iter().collect();
                    self.sent
                        .unmark(sender.as_deref(), &mids, watermark_ms, Progress::Read);
                }
                _ => {}
            }
        }
    }

    fn unsupported_reason(&self, operation: Operation) -> &'static str {
        (self.platform.unsupported_reason)(operation)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    static TEST_PLATFORM: MetaPlatform = MetaPlatform {
        name: "testmeta",
        webhook_object: "page",
        capabilities: pb::Capabilities {
            delivery_receipts: true,
            read_receipts: true,
            channel_info: false,
            history: false,
            user_products: false,
            max_text_length: 2000,
            default_rate_per_second: 300.0,
            send_echoes: true,
        },
        max_metadata_len: 1000,
        unsupported_reason: |_| "no",
    };

    fn adapter() -> MetaAdapter {
        let settings = MetaSettings {
            api_base_url: "http://127.0.0.1:9".into(),
            api_version: "v21.0".into(),
            access_token: "t".into(),
            app_secret: "s".into(),
            verify_token: "v".into(),
            request_timeout: Duration::from_secs(1),
            sent_index_capacity: 100,
        };
        MetaAdapter::new(&TEST_PLATFORM, &settings).unwrap()
    }

    fn page(events: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"object": "page", "entry": [{"id": "PAGE", "time": 1, "messaging": events}]}),
        )
        .unwrap()
    }

    /// The receipts naming a message; watermark receipts are `watermarks`'.
    fn receipts(events: &[pb::PlatformEvent]) -> Vec<(String, String, pb::DeliveryStatus)> {
        events
            .iter()
            .filter_map(|e| match &e.event {
                Some(Event::Receipt(r)) if r.watermark.is_some() => None,
                Some(Event::Receipt(r)) => {
                    Some((r.platform_message_id.clone(), r.message_id.clone(), r.status()))
                }
                other => panic!("not a receipt: {other:?}"),
            })
            .collect()
    }

    /// The watermark receipts: recipient, watermark in ms, status.
    fn watermarks(events: &[pb::PlatformEvent]) -> Vec<(String, i64, pb::DeliveryStatus)> {
        events
            .iter()
            .filter_map(|e| match &e.event {
                Some(Event::Receipt(r)) => r.watermark.map(|w| {
                    let ms = w.seconds * 1000 + i64::from(w.nanos / 1_000_000);
                    (r.recipient_id.clone(), ms, r.status())
                }),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn watermarks_and_mids_become_receipts_once() {
        let a = adapter();
        a.sent.pending("PSID", "ours-1", "c", "", 100);
        a.sent.accepted("PSID", "ours-1", "m_1");
        a.sent.pending("PSID", "ours-2", "c", "", 200);
        a.sent.accepted("PSID", "ours-2", "m_2");

        let delivery = page(json!([
            {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE"}, "timestamp": 300,
             "delivery": {"mids": ["m_2", "m_other"], "watermark": 250}}
        ]));
        let events = a.parse_webhook(&delivery).unwrap();
        use pb::DeliveryStatus::{Delivered, Read};
        assert_eq!(
            watermarks(&events),
            [("PSID".into(), 250, Delivered)],
            "what another replica sent, the store resolves"
        );
        assert_eq!(
            receipts(&events),
            [
                ("m_2".into(), "ours-2".into(), Delivered),
                ("m_other".into(), String::new(), Delivered),
                ("m_1".into(), "ours-1".into(), Delivered),
            ]
        );
        assert_eq!(
            receipts(&a.parse_webhook(&delivery).unwrap()).len(),
            1,
            "only the unknown mid repeats (the watermark goes to the store again, where it is a repeat)"
        );

        let read = page(json!([{"sender": {"id": "PSID"}, "timestamp": 400, "read": {"watermark": 150}}]));
        assert_eq!(
            receipts(&a.parse_webhook(&read).unwrap()),
            [("m_1".into(), "ours-1".into(), Read)]
        );
    }

    #[test]
    fn echoes_are_never_inbound_and_inbound_text_is() {
        let a = adapter();
        a.sent.pending("PSID", "ours-1", "c", "", 100);
        let metadata = OurIds {
            message_id: "ours-1".into(),
            ..Default::default()
        }
        .encode(1000);
        let body = page(json!([
            {"sender": {"id": "PAGE"}, "recipient": {"id": "PSID"}, "timestamp": 120,
             "message": {"is_echo": true, "app_id": 1, "metadata": metadata, "mid": "m_1", "text": "ours"}},
            {"sender": {"id": "PAGE"}, "recipient": {"id": "PSID"}, "timestamp": 121,
             "message": {"is_echo": true, "mid": "m_typed", "text": "typed in the inbox"}},
            {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE"}, "timestamp": 1_700_000_000_123_i64,
             "message": {"mid": "m_in", "text": "hello"}}
        ]));
        let events = a.parse_webhook(&body).unwrap();
        assert_eq!(events.len(), 2, "our echo and the inbound text: {events:?}");
        let Some(Event::Receipt(echo)) = &events[0].event else {
            panic!("{events:?}")
        };
        assert_eq!(
            (
                echo.message_id.as_str(),
                echo.platform_message_id.as_str(),
                echo.status
            ),
            ("ours-1", "m_1", pb::DeliveryStatus::Sent as i32),
            "our echo confirms the send"
        );
        let Some(Event::Inbound(m)) = &events[1].event else {
            panic!("{events:?}")
        };
        assert_eq!(
            (
                m.platform.as_str(),
                m.vendor_channel_id.as_str(),
                m.sender_id.as_str()
            ),
            ("testmeta", "PSID", "PSID")
        );
        assert_eq!(
            (m.external_message_id.as_str(), m.text.as_str()),
            ("m_in", "hello")
        );
        assert_eq!(
            m.at,
            Some(chat4all_proto::Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_000_000
            })
        );
        // The echo gave the send its mid and platform stamp.
        let read = page(json!([{"sender": {"id": "PSID"}, "read": {"watermark": 119}}]));
        assert!(
            receipts(&a.parse_webhook(&read).unwrap()).is_empty(),
            "the platform stamp is 120"
        );
        let read = page(json!([{"sender": {"id": "PSID"}, "read": {"watermark": 120}}]));
        assert_eq!(receipts(&a.parse_webhook(&read).unwrap())[0].0, "m_1");
    }
}
