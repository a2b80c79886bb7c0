//! The Instagram adapter against the real simulator over HTTP: read
//! receipts naming one mid, no delivery receipts, echoes dropped, inbound
//! texts streamed, refusals mapped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat4all_adapter::testing::{
    self, AgainstSimulator, RunningAdapter, TRACEPARENT, next_inbound, next_receipt, no_receipt_within,
    request,
};
use chat4all_instagram::InstagramConfig;
use chat4all_proto::v1 as pb;
use chat4all_simulator::{InjectedFailure, MetaMessagingSimConfig, SimulatorConfig, SimulatorHandle};
use serde_json::json;

const IGSID: &str = "6543210987654321";
const ACCOUNT: &str = "17841400000000001";

async fn setup() -> (RunningAdapter, SimulatorHandle) {
    let sim = SimulatorConfig {
        instagram: MetaMessagingSimConfig {
            receipt_delay: Duration::from_millis(2),
            ..MetaMessagingSimConfig::instagram()
        },
        ..SimulatorConfig::default()
    };
    let AgainstSimulator { adapter, sim } = testing::against_simulator(sim, |serve| {
        chat4all_instagram::bind(InstagramConfig {
            serve,
            ..InstagramConfig::default()
        })
    })
    .await;
    (adapter, sim)
}

fn instagram(event: serde_json::Value) -> Vec<u8> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    serde_json::to_vec(
        &json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "messaging": [event]}]}),
    )
    .unwrap()
}

#[tokio::test]
async fn a_send_is_one_call_on_the_shared_path_and_only_read_comes_back() {
    let (s, sim) = setup().await;
    let mut events = s.events().await;
    let accepted = s.accepted(request("ig-1", IGSID, "Hello on Instagram")).await;

    let received = sim.received("instagram");
    assert_eq!(received.len(), 1);
    assert_eq!(
        sim.received_count("messenger"),
        0,
        "the token told the platforms apart"
    );
    let call = &received[0];
    assert_eq!(
        call.platform_message_id.as_deref(),
        Some(accepted.platform_message_id.as_str())
    );
    assert_eq!(
        call.body,
        json!({
            "recipient": {"id": IGSID},
            "messaging_type": "RESPONSE",
            "message": {"text": "Hello on Instagram", "metadata": call.opaque.clone().unwrap()},
        })
    );

    let (r, traceparent) = next_receipt(&mut events).await;
    assert_eq!(
        r.status(),
        pb::DeliveryStatus::Read,
        "no delivery receipt on Instagram"
    );
    assert_eq!(
        (r.message_id.as_str(), r.conversation_id.as_str()),
        ("ig-1", "conv-ig-1")
    );
    assert_eq!(r.platform_message_id, accepted.platform_message_id);
    chat4all_adapter::testing::assert_continues_trace(Some(&traceparent), TRACEPARENT);
    no_receipt_within(&mut events, Duration::from_millis(150)).await;

    // Were a delivery event to come, it would not become a receipt.
    let delivery = instagram(
        json!({"sender": {"id": IGSID}, "delivery": {"mids": [accepted.platform_message_id], "watermark": 1}}),
    );
    assert_eq!(sim.post_webhook("instagram", delivery).await.unwrap(), 200);
    no_receipt_within(&mut events, Duration::from_millis(100)).await;

    let caps = s.describe().await.capabilities.unwrap();
    assert!(!caps.delivery_receipts && caps.read_receipts, "{caps:?}");
    assert_eq!(
        (caps.max_text_length, caps.default_rate_per_second),
        (2000, 300.0)
    );
}

#[tokio::test]
async fn echoes_are_dropped_and_inbound_texts_streamed() {
    let (s, sim) = setup().await;
    let mut events = s.events().await;
    let echo = instagram(
        json!({"sender": {"id": ACCOUNT}, "recipient": {"id": IGSID}, "timestamp": 1,
                                "message": {"is_echo": true, "mid": "m_typed", "text": "typed in the app"}}),
    );
    assert_eq!(sim.post_webhook("instagram", echo).await.unwrap(), 200);
    let id = sim.inbound_text("instagram", IGSID, "", "hello").await.unwrap();
    let message = next_inbound(&mut events).await;
    assert_eq!(message.platform, "instagram");
    assert_eq!(
        (message.vendor_channel_id.as_str(), message.sender_id.as_str()),
        (IGSID, IGSID)
    );
    assert_eq!(
        (message.external_message_id.as_str(), message.text.as_str()),
        (id.as_str(), "hello")
    );

    assert_eq!(s.post_webhook(b"{}".to_vec(), None).await, 401);
    assert_eq!(
        s.post_webhook(b"{}".to_vec(), Some(("x-hub-signature-256", "sha256=00".into())))
            .await,
        403
    );
    assert_eq!(sim.post_webhook("instagram", b"[".to_vec()).await.unwrap(), 400);
    assert_eq!(
        sim.post_webhook("instagram", br#"{"object":"page","entry":[]}"#.to_vec())
            .await
            .unwrap(),
        400
    );
    no_receipt_within(&mut events, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn refusals_map_through_the_graph_rules() {
    let (s, sim) = setup().await;
    sim.fail_next(
        "instagram",
        1,
        InjectedFailure::rate_limited(Duration::from_secs(3)).with_code(4),
    )
    .unwrap();
    let e = s.refused(request("ig-4", IGSID, "x")).await;
    assert_eq!(
        (e.kind(), e.code.as_str()),
        (pb::PlatformErrorKind::RateLimited, "4")
    );
    let e = s.refused(request("ig-551", "999123", "x")).await;
    assert_eq!(
        (e.kind(), e.code.as_str()),
        (pb::PlatformErrorKind::Permanent, "551")
    );
    sim.set_error_rate("instagram", 1.0, InjectedFailure::server_error())
        .unwrap();
    let e = s.refused(request("ig-500", IGSID, "x")).await;
    assert_eq!((e.kind(), e.http_status), (pb::PlatformErrorKind::Transient, 500));
}
