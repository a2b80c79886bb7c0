//! The Telegram adapter against the real simulator over HTTP: gRPC calls in
//! through a tonic client (the kit's test harness), Bot API calls out to the
//! simulator, updates back from it with the secret token, events out on
//! `StreamEvents`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_adapter::AdapterArgs;
use chat4all_adapter::testing::{self, AgainstSimulator, TRACEPARENT, inbound, next_event, request};
use chat4all_proto::v1 as pb;
use chat4all_simulator::{InjectedFailure, SimulatorConfig};
use chat4all_telegram::TelegramConfig;
use chat4all_telegram::config::DEFAULT_WEBHOOK_SECRET;
use serde_json::json;

async fn setup_with(config: impl FnOnce(TelegramConfig) -> TelegramConfig) -> AgainstSimulator {
    testing::against_simulator(SimulatorConfig::default(), |serve| {
        chat4all_telegram::bind(config(TelegramConfig {
            serve: AdapterArgs {
                request_timeout: Duration::from_secs(5),
                ..serve
            },
            ..TelegramConfig::default()
        }))
    })
    .await
}

async fn setup() -> AgainstSimulator {
    setup_with(|c| c).await
}

fn update(update_id: i64, chat: i64, message_id: i64, text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"update_id": update_id, "message": {
        "message_id": message_id,
        "from": {"id": chat, "is_bot": false, "first_name": "Binh", "username": "binh_t"},
        "chat": {"id": chat, "first_name": "Binh", "type": "private"},
        "date": 1_700_000_000, "text": text}}))
    .unwrap()
}

#[tokio::test]
async fn a_send_is_one_platform_call_with_the_bot_api_body() {
    let s = setup().await;
    let accepted = s
        .adapter
        .accepted(request("msg-1", "123456789", "Hello from Chat4All"))
        .await;
    assert_eq!(
        accepted.platform_message_id, "123456789:1",
        "<chat_id>:<message_id>"
    );
    assert!(accepted.at.is_some());

    let received = s.sim.received("telegram");
    assert_eq!(received.len(), 1, "exactly one platform call");
    let call = &received[0];
    assert_eq!(call.http_status, 200);
    chat4all_adapter::testing::assert_continues_trace(call.traceparent.as_deref(), TRACEPARENT);
    assert_eq!(
        call.body,
        json!({"chat_id": 123_456_789, "text": "Hello from Chat4All"})
    );
    assert_eq!(call.platform_message_id.as_deref(), Some("123456789:1"));

    // Message ids are per chat: the next send to the same chat is 2.
    let again = s.adapter.accepted(request("msg-2", "123456789", "again")).await;
    assert_eq!(again.platform_message_id, "123456789:2");
}

#[tokio::test]
async fn describe_says_no_receipts_and_the_limits() {
    let s = setup().await;
    let describe = s.adapter.describe().await;
    assert_eq!(describe.platform, "telegram");
    let caps = describe.capabilities.unwrap();
    assert!(
        !caps.delivery_receipts && !caps.read_receipts,
        "Telegram messages end at SENT"
    );
    assert!(!caps.history && !caps.channel_info && !caps.user_products);
    assert_eq!((caps.max_text_length, caps.default_rate_per_second), (4096, 30.0));
}

#[tokio::test]
async fn an_inbound_update_streams_as_an_inbound_message() {
    let s = setup().await;
    // Sent before anyone subscribes: it waits in the queue, and the
    // webhook waits for the subscriber's ack.
    let sim = s.sim.clone();
    let sent = tokio::spawn(async move {
        sim.inbound_text("telegram", "4242", "Anna", "Xin chào shop")
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!sent.is_finished(), "answered before anyone acked it");
    let mut events = s.adapter.events().await;
    let id = sent.await.unwrap().unwrap();
    assert_eq!(id, "4242:1");
    let event = next_event(&mut events).await;
    chat4all_adapter::testing::assert_new_trace(&event.traceparent);
    let message = inbound(event);
    assert_eq!(message.platform, "telegram");
    assert_eq!(message.vendor_channel_id, "4242");
    assert_eq!(message.sender_id, "4242");
    assert_eq!(message.sender_name, "Anna");
    assert_eq!(message.external_message_id, id);
    assert_eq!(message.text, "Xin chào shop");
    assert!(message.at.is_some_and(|t| t.seconds > 1_700_000_000));
}

#[tokio::test]
async fn a_redelivered_update_is_answered_and_dropped() {
    let s = setup().await;
    let mut events = s.adapter.events().await;
    let body = update(555_000_001, 77, 9, "only once");
    assert_eq!(s.sim.post_webhook("telegram", body.clone()).await.unwrap(), 200);
    assert_eq!(
        s.sim.post_webhook("telegram", body).await.unwrap(),
        200,
        "a repeat is answered 200, or Telegram would hold back every later update"
    );
    let first = inbound(next_event(&mut events).await);
    assert_eq!(
        (first.text.as_str(), first.external_message_id.as_str()),
        ("only once", "77:9")
    );

    // The next event is the one after, not the repeat.
    s.sim.inbound_text("telegram", "78", "Chi", "next").await.unwrap();
    let second = inbound(next_event(&mut events).await);
    assert_eq!(second.text, "next");
}

#[tokio::test]
async fn updates_without_the_secret_or_not_json_are_refused_and_never_streamed() {
    let s = setup().await;
    let mut events = s.adapter.events().await;
    let body = update(1, 66, 1, "forged");
    let header = "x-telegram-bot-api-secret-token";
    assert_eq!(s.adapter.post_webhook(body.clone(), None).await, 401, "no token");
    assert_eq!(
        s.adapter
            .post_webhook(body.clone(), Some((header, "not-the-secret".to_owned())))
            .await,
        403,
        "wrong token"
    );
    assert_eq!(
        s.adapter
            .post_webhook(
                b"{\"update_id\": ".to_vec(),
                Some((header, DEFAULT_WEBHOOK_SECRET.to_owned()))
            )
            .await,
        400,
        "bad JSON"
    );
    assert_eq!(
        s.sim
            .post_webhook("telegram", br#"{"message": {"text": "no update id"}}"#.to_vec())
            .await
            .unwrap(),
        400,
        "not an update"
    );

    // The refused ones left no trace: update 1 is new, and it is the first
    // event to arrive.
    assert_eq!(s.sim.post_webhook("telegram", body).await.unwrap(), 200);
    let message = inbound(next_event(&mut events).await);
    assert_eq!(message.text, "forged");
    testing::no_event_within(&mut events, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn refusals_map_to_the_kind_the_sidecar_acts_on() {
    let s = setup().await;

    s.sim
        .fail_next(
            "telegram",
            1,
            InjectedFailure::rate_limited(Duration::from_secs(35)),
        )
        .unwrap();
    let e = s.adapter.refused(request("m-429", "4242", "x")).await;
    assert_eq!(e.kind(), pb::PlatformErrorKind::RateLimited);
    assert_eq!((e.code.as_str(), e.http_status), ("429", 429));
    assert_eq!(e.message, "Too Many Requests: retry after 35");
    assert_eq!(
        e.retry_after,
        Some(chat4all_proto::Duration {
            seconds: 35,
            nanos: 0
        })
    );

    let e = s.adapter.refused(request("m-400", "999123", "x")).await;
    assert_eq!(e.kind(), pb::PlatformErrorKind::Permanent);
    assert_eq!((e.code.as_str(), e.http_status), ("400", 400));
    assert_eq!(e.message, "Bad Request: chat not found");
    assert_eq!(e.retry_after, None);

    s.sim
        .fail_next("telegram", 1, InjectedFailure::server_error())
        .unwrap();
    let e = s.adapter.refused(request("m-500", "4242", "x")).await;
    assert_eq!((e.kind(), e.http_status), (pb::PlatformErrorKind::Transient, 500));

    assert_eq!(s.sim.received_count("telegram"), 3, "one platform call each");
    let e = s
        .adapter
        .refused(request("m-long", "4242", &"x".repeat(4097)))
        .await;
    assert_eq!(
        (e.kind(), e.code.as_str()),
        (pb::PlatformErrorKind::Permanent, "text_too_long")
    );
    assert_eq!(
        s.sim.received_count("telegram"),
        3,
        "too long: refused without a call"
    );
}

#[tokio::test]
async fn a_wrong_token_is_permanent_and_a_slow_platform_transient() {
    let s = setup_with(|c| TelegramConfig {
        bot_token: "100000001:not-the-token".into(),
        serve: AdapterArgs {
            request_timeout: Duration::from_millis(300),
            ..c.serve
        },
        ..c
    })
    .await;
    let e = s.adapter.refused(request("m-401", "4242", "x")).await;
    assert_eq!(
        (e.kind(), e.code.as_str(), e.message.as_str()),
        (pb::PlatformErrorKind::Permanent, "401", "Unauthorized")
    );
    assert!(!e.message.contains("not-the-token"));

    let s = setup_with(|c| TelegramConfig {
        serve: AdapterArgs {
            request_timeout: Duration::from_millis(300),
            ..c.serve
        },
        ..c
    })
    .await;
    s.sim
        .set_latency("telegram", Duration::from_millis(1500))
        .unwrap();
    let e = s.adapter.refused(request("m-slow", "4242", "x")).await;
    assert_eq!(
        (e.kind(), e.code.as_str()),
        (pb::PlatformErrorKind::Ambiguous, "timeout")
    );
    assert!(
        !e.message.contains("chat4all-dev-telegram-bot-token"),
        "the token in the URL stays out of errors: {}",
        e.message
    );
}

#[tokio::test]
async fn calls_telegram_lacks_are_unimplemented_with_the_reason() {
    let s = setup().await;
    let status = s
        .adapter
        .grpc
        .clone()
        .list_user_products(pb::ListUserProductsRequest {
            user_id: "4242".into(),
            limit: 10,
            page: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert!(
        status.message().contains(
            "platform telegram does not support user products: Telegram has no marketplace listings"
        ),
        "{}",
        status.message()
    );
    let status = s
        .adapter
        .grpc
        .clone()
        .list_messages(pb::ConnectorListMessagesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let status = s
        .adapter
        .grpc
        .clone()
        .get_channel_info(pb::GetChannelInfoRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn the_simulators_duplicate_webhooks_stream_once() {
    let s = setup().await;
    s.sim
        .set_duplicate_webhooks("telegram", Some(Duration::from_millis(50)))
        .unwrap();
    let mut events = s.adapter.events().await;
    let id = s
        .sim
        .inbound_text("telegram", "4343", "Dung", "posted twice")
        .await
        .unwrap();
    assert_eq!(inbound(next_event(&mut events).await).external_message_id, id);
    testing::no_event_within(&mut events, Duration::from_millis(400)).await;
}
