//! The WhatsApp adapter against the real simulator over HTTP: gRPC calls in
//! through a tonic client, Graph API calls out to the simulator, signed
//! webhooks back from it, events out on `StreamEvents`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_adapter::signature::sign_hmac_sha256_hex;
use chat4all_adapter::testing::{self, AgainstSimulator, TRACEPARENT, next_event as next, request};
use chat4all_adapter::{AdapterArgs, Secret};
use chat4all_proto::v1 as pb;
use chat4all_simulator::{InjectedFailure, SimulatorConfig, WhatsAppSimConfig};
use chat4all_whatsapp::WhatsAppConfig;
use pb::platform_event::Event;
use serde_json::json;

/// The running adapter (the kit's shared harness) and the simulator.
async fn setup(request_timeout: Duration) -> AgainstSimulator {
    let sim = SimulatorConfig {
        whatsapp: WhatsAppSimConfig {
            receipt_delay: Duration::from_millis(2),
            ..WhatsAppSimConfig::default()
        },
        ..SimulatorConfig::default()
    };
    testing::against_simulator(sim, |serve| {
        chat4all_whatsapp::bind(WhatsAppConfig {
            serve: AdapterArgs {
                request_timeout,
                ..serve
            },
            ..WhatsAppConfig::default()
        })
    })
    .await
}

#[tokio::test]
async fn a_send_is_one_platform_call_and_its_receipts_stream_back() {
    let s = setup(Duration::from_secs(5)).await;
    let mut events = s.events().await;

    let accepted = match s
        .send(request("msg-1", "+15551234567", "Hello from Chat4All"))
        .await
    {
        pb::send_response::Result::Accepted(a) => a,
        other => panic!("expected accepted, got {other:?}"),
    };
    assert!(accepted.platform_message_id.starts_with("wamid."), "{accepted:?}");
    assert!(accepted.at.is_some());

    let received = s.sim.received("whatsapp");
    assert_eq!(received.len(), 1, "exactly one platform call");
    let call = &received[0];
    assert_eq!(call.http_status, 200);
    chat4all_adapter::testing::assert_continues_trace(call.traceparent.as_deref(), TRACEPARENT);
    assert_eq!(
        call.platform_message_id.as_deref(),
        Some(accepted.platform_message_id.as_str())
    );
    let opaque = call.opaque.clone().unwrap();
    // The callback data carries the platform call's own context, the one
    // its header carried, so receipts continue from it.
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&opaque).unwrap(),
        json!({"m": "msg-1", "c": "conv-msg-1", "t": call.traceparent.as_deref().unwrap()})
    );
    assert_eq!(
        call.body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "15551234567",
            "type": "text",
            "text": {"body": "Hello from Chat4All", "preview_url": false},
            "biz_opaque_callback_data": opaque,
        })
    );

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let event = next(&mut events).await;
        // The trace continues on the receipt.
        chat4all_adapter::testing::assert_continues_trace(Some(&event.traceparent), TRACEPARENT);
        let Some(Event::Receipt(receipt)) = event.event else {
            panic!("expected a receipt: {event:?}")
        };
        assert_eq!(receipt.message_id, "msg-1");
        assert_eq!(receipt.conversation_id, "conv-msg-1");
        assert_eq!(receipt.platform_message_id, accepted.platform_message_id);
        assert!(receipt.at.is_some_and(|t| t.seconds > 1_700_000_000));
        assert_eq!(receipt.failure, None);
        statuses.push(receipt.status());
    }
    assert_eq!(
        statuses,
        [
            pb::DeliveryStatus::Sent,
            pb::DeliveryStatus::Delivered,
            pb::DeliveryStatus::Read
        ]
    );
    assert_eq!(
        s.sim.received_count("whatsapp"),
        1,
        "receipts cost no platform call"
    );
}

#[tokio::test]
async fn refusals_map_to_the_kind_the_sidecar_acts_on() {
    let s = setup(Duration::from_secs(5)).await;

    s.sim
        .fail_next(
            "whatsapp",
            1,
            InjectedFailure::rate_limited(Duration::from_secs(7)),
        )
        .unwrap();
    let e = s.refused(request("m-429", "15551234567", "x")).await;
    assert_eq!(e.kind(), pb::PlatformErrorKind::RateLimited);
    assert_eq!((e.code.as_str(), e.http_status), ("130429", 429));
    assert_eq!(
        e.retry_after,
        Some(chat4all_proto::Duration { seconds: 7, nanos: 0 })
    );

    s.sim
        .fail_next("whatsapp", 1, InjectedFailure::server_error())
        .unwrap();
    let e = s.refused(request("m-500", "15551234567", "x")).await;
    assert_eq!(e.kind(), pb::PlatformErrorKind::Transient);
    assert_eq!(e.http_status, 500);

    let e = s.refused(request("m-unknown", "9991234567", "x")).await;
    assert_eq!(e.kind(), pb::PlatformErrorKind::Permanent);
    assert_eq!((e.code.as_str(), e.http_status), ("131026", 400));
    assert!(e.message.contains("Message undeliverable"), "{}", e.message);
    assert!(
        e.message.contains("not a WhatsApp user"),
        "details carried: {}",
        e.message
    );

    // One platform call each; the retry is the sidecar's decision, not ours.
    assert_eq!(s.sim.received_count("whatsapp"), 3);
    let e = s
        .refused(request("m-long", "15551234567", &"x".repeat(4097)))
        .await;
    assert_eq!(
        (e.kind(), e.code.as_str()),
        (pb::PlatformErrorKind::Permanent, "text_too_long")
    );
    assert_eq!(
        s.sim.received_count("whatsapp"),
        3,
        "too long: refused without a call"
    );
}

#[tokio::test]
async fn a_platform_slower_than_the_timeout_is_ambiguous() {
    let s = setup(Duration::from_millis(300)).await;
    s.sim
        .set_latency("whatsapp", Duration::from_millis(1500))
        .unwrap();
    let e = s.refused(request("m-slow", "15551234567", "x")).await;
    assert_eq!(
        (e.kind(), e.code.as_str()),
        (pb::PlatformErrorKind::Ambiguous, "timeout")
    );
    assert_eq!(
        s.sim.received_count("whatsapp"),
        1,
        "the platform did get the call"
    );
}

#[tokio::test]
async fn forged_or_broken_webhooks_are_refused_and_never_streamed() {
    let s = setup(Duration::from_secs(5)).await;
    let mut events = s.events().await;
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "contacts": [{"profile": {"name": "Mallory"}, "wa_id": "15550009999"}],
            "messages": [{"from": "15550009999", "id": "wamid.FORGED", "timestamp": "1700000000",
                          "type": "text", "text": {"body": "forged"}}]}}]}]
    }))
    .unwrap();
    let post = |signature: Option<String>, body: Vec<u8>| {
        let mut call = s.http.post(&s.webhook_url).body(body);
        if let Some(signature) = signature {
            call = call.header("x-hub-signature-256", signature);
        }
        async move { call.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None, body.clone()).await, 401, "unsigned");
    let wrong = format!(
        "sha256={}",
        sign_hmac_sha256_hex(&Secret::from("not-the-app-secret"), &body)
    );
    assert_eq!(post(Some(wrong), body.clone()).await, 403, "wrongly signed");
    assert_eq!(
        s.sim
            .post_webhook("whatsapp", b"{\"object\": ".to_vec())
            .await
            .unwrap(),
        400,
        "bad JSON"
    );
    assert_eq!(
        s.sim
            .post_webhook("whatsapp", br#"{"object":"page","entry":[]}"#.to_vec())
            .await
            .unwrap(),
        400,
        "not a WhatsApp envelope"
    );

    // The first event to arrive is the genuine one sent after them.
    let id = s
        .sim
        .inbound_text("whatsapp", "15551230000", "Alice", "genuine")
        .await
        .unwrap();
    let event = next(&mut events).await;
    let Some(Event::Inbound(message)) = event.event else {
        panic!("expected inbound: {event:?}")
    };
    assert_eq!(message.text, "genuine");
    assert_eq!(message.external_message_id, id);
}

#[tokio::test]
async fn an_inbound_text_streams_as_an_inbound_message() {
    let s = setup(Duration::from_secs(5)).await;
    // Sent before anyone subscribes: it waits in the queue, and the
    // webhook waits for the subscriber's ack.
    let sim = s.sim.clone();
    let sent = tokio::spawn(async move {
        sim.inbound_text(
            "whatsapp",
            "16315551234",
            "Kerry Fisher",
            "Is this still available?",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!sent.is_finished(), "answered before anyone acked it");
    let mut events = s.events().await;
    let id = sent.await.unwrap().unwrap();
    let event = next(&mut events).await;
    chat4all_adapter::testing::assert_new_trace(&event.traceparent);
    let Some(Event::Inbound(message)) = event.event else {
        panic!("expected inbound: {event:?}")
    };
    assert_eq!(message.platform, "whatsapp");
    assert_eq!(message.vendor_channel_id, "16315551234");
    assert_eq!(message.sender_id, "16315551234");
    assert_eq!(message.sender_name, "Kerry Fisher");
    assert_eq!(message.external_message_id, id);
    assert_eq!(message.text, "Is this still available?");
    assert!(message.at.is_some_and(|t| t.seconds > 1_700_000_000));
}

#[tokio::test]
async fn describe_handshake_and_unsupported_calls() {
    let s = setup(Duration::from_secs(5)).await;
    let describe = s
        .grpc
        .clone()
        .describe(pb::DescribeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(describe.platform, "whatsapp");
    let caps = describe.capabilities.unwrap();
    assert!(caps.delivery_receipts && caps.read_receipts);
    assert!(!caps.history && !caps.channel_info && !caps.user_products);
    assert_eq!((caps.max_text_length, caps.default_rate_per_second), (4096, 80.0));

    let url = format!(
        "{}?hub.mode=subscribe&hub.verify_token={}&hub.challenge=8675309",
        s.webhook_url,
        chat4all_whatsapp::config::DEFAULT_VERIFY_TOKEN
    );
    let answer = s.http.get(url).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.text().await.unwrap(), "8675309");
    let refused = s.http.get(format!(
        "{}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
        s.webhook_url
    ));
    assert_eq!(refused.send().await.unwrap().status().as_u16(), 403);

    let status = s
        .grpc
        .clone()
        .list_messages(pb::ConnectorListMessagesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert!(
        status
            .message()
            .contains("platform whatsapp does not support message history"),
        "{}",
        status.message()
    );
}
