//! The Messenger adapter against the real simulator over HTTP: gRPC calls in
//! through a tonic client, Send API calls out to the simulator, signed
//! webhooks back from it, events out on `StreamEvents`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat4all_adapter::signature::sign_hmac_sha256_hex;
use chat4all_adapter::testing::{
    self, AgainstSimulator, RunningAdapter, TRACEPARENT, next_inbound, next_receipt, no_receipt_within,
    request,
};
use chat4all_adapter::{AdapterArgs, Secret};
use chat4all_messenger::MessengerConfig;
use chat4all_proto::v1 as pb;
use chat4all_simulator::{InjectedFailure, MetaMessagingSimConfig, SimulatorConfig, SimulatorHandle};
use serde_json::json;

const PSID: &str = "24680135790";
const PAGE: &str = "100000000000010";

async fn setup(request_timeout: Duration) -> (RunningAdapter, SimulatorHandle) {
    let sim = SimulatorConfig {
        messenger: MetaMessagingSimConfig {
            receipt_delay: Duration::from_millis(2),
            ..MetaMessagingSimConfig::messenger()
        },
        ..SimulatorConfig::default()
    };
    let AgainstSimulator { adapter, sim } = testing::against_simulator(sim, |serve| {
        chat4all_messenger::bind(MessengerConfig {
            serve: AdapterArgs {
                request_timeout,
                ..serve
            },
            ..MessengerConfig::default()
        })
    })
    .await;
    // Deterministic receipts: watermarks only, unless a test says otherwise.
    sim.set_delivery_mids("messenger", 0.0).unwrap();
    (adapter, sim)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn page(event: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"object": "page", "entry": [{"id": PAGE, "time": now_ms(), "messaging": [event]}]}),
    )
    .unwrap()
}

#[tokio::test]
async fn a_send_is_one_call_and_the_watermarks_become_receipts() {
    let (s, sim) = setup(Duration::from_secs(5)).await;
    let mut events = s.events().await;

    let accepted = s.accepted(request("msg-1", PSID, "Hello from Chat4All")).await;
    assert!(accepted.platform_message_id.starts_with("m_"), "{accepted:?}");

    let received = sim.received("messenger");
    assert_eq!(received.len(), 1, "exactly one platform call");
    let call = &received[0];
    assert_eq!(call.http_status, 200);
    chat4all_adapter::testing::assert_continues_trace(call.traceparent.as_deref(), TRACEPARENT);
    let metadata = call.opaque.clone().unwrap();
    // Our metadata carries the platform call's own context, the one the
    // HTTP header carried.
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&metadata).unwrap(),
        json!({"m": "msg-1", "c": "conv-msg-1", "t": call.traceparent.as_deref().unwrap()})
    );
    assert_eq!(
        call.body,
        json!({
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {"text": "Hello from Chat4All", "metadata": metadata},
        })
    );

    // The echo is dropped; the delivery and read watermarks name our message.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let (r, traceparent) = next_receipt(&mut events).await;
        assert_eq!(
            (r.message_id.as_str(), r.conversation_id.as_str()),
            ("msg-1", "conv-msg-1")
        );
        assert_eq!(r.platform_message_id, accepted.platform_message_id);
        // The trace continues on the receipt.
        chat4all_adapter::testing::assert_continues_trace(Some(&traceparent), TRACEPARENT);
        statuses.push(r.status());
    }
    assert_eq!(
        statuses,
        [pb::DeliveryStatus::Delivered, pb::DeliveryStatus::Read]
    );
    no_receipt_within(&mut events, Duration::from_millis(100)).await;
    assert_eq!(
        sim.received_count("messenger"),
        1,
        "receipts cost no platform call"
    );
}

#[tokio::test]
async fn a_watermark_without_mids_delivers_every_earlier_message_once() {
    let (s, sim) = setup(Duration::from_secs(5)).await;
    sim.set_receipts("messenger", false).unwrap();
    let mut events = s.events().await;
    let mut mids = Vec::new();
    for i in 1..=3 {
        mids.push(
            s.accepted(request(&format!("w-{i}"), PSID, "x"))
                .await
                .platform_message_id,
        );
    }
    s.accepted(request("other-person", "1357924680", "x")).await;

    let watermark = now_ms();
    let delivery = page(
        json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": watermark,
                               "delivery": {"watermark": watermark}}),
    );
    assert_eq!(
        sim.post_webhook("messenger", delivery.clone()).await.unwrap(),
        200
    );
    for (i, mid) in mids.iter().enumerate() {
        let (r, _) = next_receipt(&mut events).await;
        assert_eq!(r.status(), pb::DeliveryStatus::Delivered);
        assert_eq!(
            (r.message_id.clone(), &r.platform_message_id),
            (format!("w-{}", i + 1), mid)
        );
    }
    // The same event again (Meta redelivers) reports nothing new.
    assert_eq!(sim.post_webhook("messenger", delivery).await.unwrap(), 200);
    no_receipt_within(&mut events, Duration::from_millis(150)).await;

    let read = page(
        json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": now_ms(),
                           "read": {"watermark": watermark}}),
    );
    assert_eq!(sim.post_webhook("messenger", read).await.unwrap(), 200);
    for i in 1..=3 {
        let (r, _) = next_receipt(&mut events).await;
        assert_eq!(
            (r.message_id.clone(), r.status()),
            (format!("w-{i}"), pb::DeliveryStatus::Read)
        );
    }
    no_receipt_within(&mut events, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn mids_echo_first_and_reversed_receipts_still_resolve_once() {
    let (s, sim) = setup(Duration::from_secs(5)).await;
    sim.set_delivery_mids("messenger", 1.0).unwrap();
    sim.set_echo_before_response("messenger", true).unwrap();
    sim.set_out_of_order("messenger", true).unwrap();
    let mut events = s.events().await;
    let accepted = s.accepted(request("msg-r", PSID, "hi")).await;

    // Read arrives first: it reports READ, and the later delivery (read
    // implies delivered) reports nothing.
    let (r, _) = next_receipt(&mut events).await;
    assert_eq!(
        (r.message_id.as_str(), r.status()),
        ("msg-r", pb::DeliveryStatus::Read)
    );
    assert_eq!(r.platform_message_id, accepted.platform_message_id);
    no_receipt_within(&mut events, Duration::from_millis(150)).await;
    assert_eq!(
        sim.webhooks_posted("messenger"),
        (3, 0),
        "echo, read, delivery all accepted"
    );
}

#[tokio::test]
async fn echoes_are_recognised_and_never_streamed_as_inbound() {
    let (s, sim) = setup(Duration::from_secs(5)).await;
    let mut events = s.events().await;
    let ours = json!({"m": "msg-9", "c": "conv-9"}).to_string();
    for metadata in [Some(ours), None] {
        let mut message = json!({"is_echo": true, "app_id": 1, "mid": "m_echo", "text": "from the page"});
        if let Some(metadata) = metadata {
            message["metadata"] = json!(metadata);
        }
        let echo = page(
            json!({"sender": {"id": PAGE}, "recipient": {"id": PSID}, "timestamp": now_ms(),
                               "message": message}),
        );
        assert_eq!(sim.post_webhook("messenger", echo).await.unwrap(), 200);
    }
    let id = sim
        .inbound_text("messenger", PSID, "", "Is this still available?")
        .await
        .unwrap();
    let message = next_inbound(&mut events).await;
    assert_eq!(message.platform, "messenger");
    assert_eq!(
        (message.vendor_channel_id.as_str(), message.sender_id.as_str()),
        (PSID, PSID)
    );
    assert_eq!(
        (message.external_message_id.as_str(), message.text.as_str()),
        (id.as_str(), "Is this still available?")
    );
    assert!(message.at.is_some_and(|t| t.seconds > 1_700_000_000));
}

#[tokio::test]
async fn forged_or_broken_webhooks_are_refused_and_never_streamed() {
    let (s, sim) = setup(Duration::from_secs(5)).await;
    let mut events = s.events().await;
    let forged = page(
        json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": now_ms(),
                             "message": {"mid": "m_forged", "text": "forged"}}),
    );
    assert_eq!(s.post_webhook(forged.clone(), None).await, 401, "unsigned");
    let wrong = format!(
        "sha256={}",
        sign_hmac_sha256_hex(&Secret::from("not-the-app-secret"), &forged)
    );
    assert_eq!(
        s.post_webhook(forged, Some(("x-hub-signature-256", wrong))).await,
        403,
        "wrongly signed"
    );
    assert_eq!(
        sim.post_webhook("messenger", b"{\"object\": ".to_vec())
            .await
            .unwrap(),
        400,
        "bad JSON"
    );
    assert_eq!(
        sim.post_webhook("messenger", br#"{"object":"instagram","entry":[]}"#.to_vec())
            .await
            .unwrap(),
        400,
        "another platform's envelope"
    );
    let id = sim.inbound_text("messenger", PSID, "", "genuine").await.unwrap();
    let message = next_inbound(&mut events).await;
    assert_eq!(
        (message.text.as_str(), message.external_message_id.as_str()),
        ("genuine", id.as_str())
    );
}

#[tokio::test]
async fn refusals_map_to_the_kind_the_sidecar_acts_on() {
    let (s, sim) = setup(Duration::from_secs(5)).await;
    let limit = InjectedFailure::rate_limited(Duration::from_secs(7)).with_code(613);
    sim.fail_next("messenger", 1, limit).unwrap();
    let e = s.refused(request("m-613", PSID, "x")).await;
    assert_eq!(
        (e.kind(), e.code.as_str(), e.http_status),
        (pb::PlatformErrorKind::RateLimited, "613", 429)
    );
    assert_eq!(
        e.retry_after,
        Some(chat4all_proto::Duration { seconds: 7, nanos: 0 })
    );

    let e = s.refused(request("m-551", "9990001", "x")).await;
    assert_eq!(
        (e.kind(), e.code.as_str(), e.http_status),
        (pb::PlatformErrorKind::Permanent, "551", 400)
    );
    assert!(e.message.contains("isn't available"), "{}", e.message);

    sim.fail_next("messenger", 1, InjectedFailure::server_error())
        .unwrap();
    let e = s.refused(request("m-500", PSID, "x")).await;
    assert_eq!((e.kind(), e.http_status), (pb::PlatformErrorKind::Transient, 500));

    assert_eq!(sim.received_count("messenger"), 3, "one platform call each");
    let e = s.refused(request("m-long", PSID, &"x".repeat(2001))).await;
    assert_eq!(
        (e.kind(), e.code.as_str()),
        (pb::PlatformErrorKind::Permanent, "text_too_long")
    );
    assert_eq!(
        sim.received_count("messenger"),
        3,
        "too long: refused without a call"
    );
}

#[tokio::test]
async fn an_answer_held_past_the_timeout_is_ambiguous_and_its_receipts_still_count() {
    let (s, sim) = setup(Duration::from_millis(300)).await;
    sim.set_timeout("messenger", Some(Duration::MAX)).unwrap();
    let mut events = s.events().await;
    let e = s.refused(request("m-slow", PSID, "x")).await;
    assert_eq!(
        (e.kind(), e.code.as_str()),
        (pb::PlatformErrorKind::Ambiguous, "timeout")
    );
    // The platform took it: its echo told the adapter the mid, and the
    // watermarks name our message.
    let (r, _) = next_receipt(&mut events).await;
    assert_eq!(
        (r.message_id.as_str(), r.status()),
        ("m-slow", pb::DeliveryStatus::Delivered)
    );
    assert!(r.platform_message_id.starts_with("m_"), "{r:?}");
}

#[tokio::test]
async fn describe_and_the_subscription_handshake() {
    let (s, _sim) = setup(Duration::from_secs(5)).await;
    let describe = s.describe().await;
    assert_eq!(describe.platform, "messenger");
    let caps = describe.capabilities.unwrap();
    assert!(caps.delivery_receipts && caps.read_receipts);
    assert!(!caps.history && !caps.channel_info && !caps.user_products);
    assert_eq!(
        (caps.max_text_length, caps.default_rate_per_second),
        (2000, 300.0)
    );
    assert_eq!(
        s.verify_subscription(chat4all_adapter::meta::config::DEFAULT_VERIFY_TOKEN, "8675309")
            .await,
        (200, "8675309".to_owned())
    );
    assert_eq!(s.verify_subscription("nope", "1").await.0, 403);
}
