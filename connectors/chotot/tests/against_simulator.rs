//! The Chotot adapter against the real simulator over HTTP: gRPC calls in
//! through a tonic client (the kit's test harness), chat-api calls out to
//! the simulator's seeded marketplace, signed events back from it, events
//! out on `StreamEvents`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_adapter::signature::sign_hmac_sha256_hex;
use chat4all_adapter::testing::{self, AgainstSimulator, TRACEPARENT, inbound, next_event, request};
use chat4all_adapter::{AdapterArgs, Secret};
use chat4all_chotot::ChototConfig;
use chat4all_chotot::config::{DEFAULT_SENDER_ID, DEFAULT_WEBHOOK_SECRET};
use chat4all_proto::v1 as pb;
use chat4all_simulator::{InjectedFailure, SimulatorConfig, SimulatorHandle};
use serde_json::json;
use tonic::Code;

async fn setup_with(config: impl FnOnce(ChototConfig) -> ChototConfig) -> AgainstSimulator {
    testing::against_simulator(SimulatorConfig::default(), |serve| {
        chat4all_chotot::bind(config(ChototConfig {
            serve: AdapterArgs {
                request_timeout: Duration::from_secs(5),
                ..serve
            },
            ..ChototConfig::default()
        }))
    })
    .await
}

async fn setup() -> AgainstSimulator {
    setup_with(|c| c).await
}

fn event(sender_id: &str, text: &str, client_gen_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"pattern": "chat.event.messages", "data": {
        "channel_id": "ch-1001", "sender_id": sender_id, "created_at": 1_700_000_900_000_i64,
        "type": "text", "message": text, "metadata": {"item_name": "Honda Vision 2020"},
        "receiver_ids": [DEFAULT_SENDER_ID], "client_gen_id": client_gen_id}}))
    .unwrap()
}

/// Waits until the simulator has had `n` webhooks accepted.
async fn webhooks_accepted(sim: &SimulatorHandle, n: usize) {
    for _ in 0..100 {
        if sim.webhooks_posted("chotot").0 >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {n} accepted webhooks, got {:?}",
        sim.webhooks_posted("chotot")
    );
}

#[tokio::test]
async fn a_send_is_one_call_and_its_echo_is_not_inbound() {
    let s = setup().await;
    let mut events = s.adapter.events().await;
    let accepted = s
        .adapter
        .accepted(request("msg-1", "ch-1001", "Dạ xe vẫn còn ạ"))
        .await;
    assert!(accepted.platform_message_id.starts_with("msg-"), "{accepted:?}");
    assert!(accepted.at.is_some_and(|t| t.seconds > 1_700_000_000));

    let received = s.sim.received("chotot");
    assert_eq!(received.len(), 1, "exactly one platform call");
    let call = &received[0];
    assert_eq!(call.http_status, 200);
    chat4all_adapter::testing::assert_continues_trace(call.traceparent.as_deref(), TRACEPARENT);
    assert_eq!(
        call.body,
        json!({"channel_id": "ch-1001", "sender_id": DEFAULT_SENDER_ID,
               "message": "Dạ xe vẫn còn ạ", "type": "text"})
    );
    assert_eq!(
        call.platform_message_id.as_deref(),
        Some(accepted.platform_message_id.as_str())
    );

    // chat-api published the send back; the adapter took it (200) and kept
    // it to itself.
    webhooks_accepted(&s.sim, 1).await;
    testing::no_event_within(&mut events, Duration::from_millis(300)).await;

    // An echo posted by hand is dropped the same way.
    assert_eq!(
        s.sim
            .post_webhook("chotot", event(DEFAULT_SENDER_ID, "our own words", "cg-ours"))
            .await
            .unwrap(),
        200
    );
    let id = s
        .sim
        .inbound_text("chotot", "5002", "Minh", "Ok shop")
        .await
        .unwrap();
    let message = inbound(next_event(&mut events).await);
    assert_eq!(
        (message.text.as_str(), message.external_message_id.as_str()),
        ("Ok shop", id.as_str())
    );
}

#[tokio::test]
async fn describe_says_what_chotot_offers() {
    let s = setup().await;
    let describe = s.adapter.describe().await;
    assert_eq!(describe.platform, "chotot");
    let caps = describe.capabilities.unwrap();
    assert!(!caps.delivery_receipts && !caps.read_receipts);
    assert!(caps.history && caps.channel_info && caps.user_products);
    assert_eq!(caps.default_rate_per_second, 50.0);
}

#[tokio::test]
async fn an_inbound_event_streams_as_an_inbound_message() {
    let s = setup().await;
    // The simulator's webhook is answered once a subscriber acked it.
    let mut events = s.adapter.events().await;
    let id = s
        .sim
        .inbound_text("chotot", "5002", "Minh", "Giá cuối bao nhiêu shop?")
        .await
        .unwrap();
    let message = inbound(next_event(&mut events).await);
    assert_eq!(message.platform, "chotot");
    assert_eq!(
        message.vendor_channel_id, "ch-1001",
        "the channel Minh shares with the shop"
    );
    assert_eq!(message.sender_id, "5002");
    assert_eq!(message.sender_name, "Minh");
    assert_eq!(message.external_message_id, id);
    assert_eq!(message.text, "Giá cuối bao nhiêu shop?");
    assert!(message.at.is_some_and(|t| t.seconds > 1_700_000_000));

    // The same message is in the channel's history under the same id.
    let history = s
        .adapter
        .grpc
        .clone()
        .list_messages(pb::ConnectorListMessagesRequest {
            vendor_channel_id: "ch-1001".into(),
            user_id: "5002".into(),
            limit: 1,
            before: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.messages.len(), 1);
    assert_eq!(history.messages[0].external_message_id, id);
}

#[tokio::test]
async fn unsigned_forged_or_broken_events_are_refused_and_never_streamed() {
    let s = setup().await;
    let mut events = s.adapter.events().await;
    let body = event("5002", "forged", "cg-forged");
    let header = "x-chotot-signature";
    assert_eq!(s.adapter.post_webhook(body.clone(), None).await, 401, "unsigned");
    let wrong = sign_hmac_sha256_hex(&Secret::from("not-the-secret"), &body);
    assert_eq!(
        s.adapter.post_webhook(body.clone(), Some((header, wrong))).await,
        403,
        "wrongly signed"
    );
    let good = sign_hmac_sha256_hex(&Secret::from(DEFAULT_WEBHOOK_SECRET), &body);
    assert_eq!(
        s.adapter
            .post_webhook(b"tampered".to_vec(), Some((header, good)))
            .await,
        403,
        "signature of another body"
    );
    assert_eq!(
        s.sim
            .post_webhook("chotot", b"{\"pattern\": ".to_vec())
            .await
            .unwrap(),
        400,
        "bad JSON"
    );

    let id = s
        .sim
        .inbound_text("chotot", "5003", "Hoa", "genuine")
        .await
        .unwrap();
    let message = inbound(next_event(&mut events).await);
    assert_eq!(
        (message.text.as_str(), message.external_message_id.as_str()),
        ("genuine", id.as_str())
    );
    assert_eq!(message.vendor_channel_id, "ch-1002");
}

#[tokio::test]
async fn refusals_map_to_the_kind_the_sidecar_acts_on() {
    let s = setup().await;

    s.sim
        .fail_next("chotot", 1, InjectedFailure::rate_limited(Duration::from_secs(7)))
        .unwrap();
    let e = s.adapter.refused(request("m-429", "ch-1001", "x")).await;
    assert_eq!(e.kind(), pb::PlatformErrorKind::RateLimited);
    assert_eq!((e.code.as_str(), e.http_status), ("rate_limited", 429));
    assert_eq!(
        e.retry_after,
        Some(chat4all_proto::Duration { seconds: 7, nanos: 0 })
    );

    let e = s.adapter.refused(request("m-404", "ch-nope", "x")).await;
    assert_eq!(e.kind(), pb::PlatformErrorKind::Permanent);
    assert_eq!((e.code.as_str(), e.http_status), ("not_found", 404));
    assert_eq!(e.message, "channel ch-nope not found");

    s.sim
        .fail_next("chotot", 1, InjectedFailure::server_error())
        .unwrap();
    let e = s.adapter.refused(request("m-500", "ch-1001", "x")).await;
    assert_eq!((e.kind(), e.http_status), (pb::PlatformErrorKind::Transient, 500));

    // The shop is not in Minh and Hoa's channel.
    let e = s.adapter.refused(request("m-403", "ch-1003", "x")).await;
    assert_eq!((e.kind(), e.http_status), (pb::PlatformErrorKind::Permanent, 403));
    assert_eq!(s.sim.received_count("chotot"), 4, "one platform call each");
}

#[tokio::test]
async fn wrong_credentials_are_permanent_on_send_and_failed_precondition_on_reads() {
    let s = setup_with(|c| ChototConfig {
        project_uuid: "someone-else".into(),
        ..c
    })
    .await;
    let e = s.adapter.refused(request("m-401", "ch-1001", "x")).await;
    assert_eq!(
        (e.kind(), e.code.as_str(), e.http_status),
        (pb::PlatformErrorKind::Permanent, "unauthorized", 401)
    );
    let status = s
        .adapter
        .grpc
        .clone()
        .get_channel_info(pb::GetChannelInfoRequest {
            vendor_channel_id: "ch-1001".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
}

#[tokio::test]
async fn history_pages_back_with_before_and_limit() {
    let s = setup().await;
    let list = |before: Option<chat4all_proto::Timestamp>, user: &str| {
        let mut grpc = s.adapter.grpc.clone();
        let request = pb::ConnectorListMessagesRequest {
            vendor_channel_id: "ch-1001".into(),
            user_id: user.into(),
            limit: 2,
            before,
        };
        async move { grpc.list_messages(request).await.map(|r| r.into_inner().messages) }
    };
    let mut texts = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = list(before, "5002").await.unwrap();
        if page.is_empty() {
            break;
        }
        pages += 1;
        assert!(page.len() <= 2, "the limit holds");
        for m in &page {
            assert_eq!(
                (m.platform.as_str(), m.vendor_channel_id.as_str()),
                ("chotot", "ch-1001")
            );
            if let Some(b) = before {
                assert!(m.at.unwrap().seconds < b.seconds, "strictly before");
            }
            texts.push(m.text.clone());
        }
        before = page.last().unwrap().at;
    }
    assert_eq!(pages, 3);
    assert_eq!(
        texts,
        [
            "Giá có bớt không shop?",
            "Khoảng 12.000 km",
            "Xe đi được bao nhiêu km rồi?",
            "Dạ còn bạn ơi",
            "Chào shop, xe còn không ạ?"
        ],
        "newest first"
    );

    // With no user, the history is the shop's view.
    let shop_view = list(None, "").await.unwrap();
    assert_eq!(shop_view[0].sender_id, "5002");
    assert_eq!(shop_view[1].sender_id, DEFAULT_SENDER_ID);
    // Our shop's own lines are marked, so a backfill can leave them out.
    assert_eq!(
        shop_view.iter().map(|m| m.from_us).collect::<Vec<_>>(),
        [false, true]
    );

    let outsider = list(None, "5001").await.unwrap_err();
    assert_eq!(outsider.code(), Code::PermissionDenied);
    let status = s
        .adapter
        .grpc
        .clone()
        .list_messages(pb::ConnectorListMessagesRequest {
            vendor_channel_id: "ch-missing".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = s
        .adapter
        .grpc
        .clone()
        .list_messages(pb::ConnectorListMessagesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn user_products_page_to_the_end() {
    let s = setup().await;
    let mut ids = Vec::new();
    let mut page = 1;
    loop {
        let answer = s
            .adapter
            .grpc
            .clone()
            .list_user_products(pb::ListUserProductsRequest {
                user_id: DEFAULT_SENDER_ID.into(),
                limit: 3,
                page,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(answer.products.len() <= 3);
        for p in &answer.products {
            assert!(!p.title.is_empty() && p.price > 0, "{p:?}");
            assert_eq!(p.currency, "VND");
            assert!(p.url.contains(&p.id) && p.image_url.contains(&p.id), "{p:?}");
            ids.push(p.id.clone());
        }
        if !answer.has_more {
            break;
        }
        page += 1;
        assert!(page < 10, "has_more must end");
    }
    assert_eq!(page, 3);
    assert_eq!(ids.len(), 7);
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 7, "no listing twice");

    let first = s
        .adapter
        .grpc
        .clone()
        .list_user_products(pb::ListUserProductsRequest {
            user_id: DEFAULT_SENDER_ID.into(),
            limit: 0,
            page: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (first.products.len(), first.has_more),
        (7, false),
        "defaults: page 1 of 20"
    );

    let status = s
        .adapter
        .grpc
        .clone()
        .list_user_products(pb::ListUserProductsRequest {
            user_id: "404404".into(),
            limit: 3,
            page: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn channel_info_carries_the_listing() {
    let s = setup().await;
    let info = s
        .adapter
        .grpc
        .clone()
        .get_channel_info(pb::GetChannelInfoRequest {
            vendor_channel_id: "ch-1001".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.vendor_channel_id, "ch-1001");
    assert_eq!(info.name, "Honda Vision 2020 - Minh");
    assert_eq!(info.metadata["item_name"], "Honda Vision 2020");
    assert_eq!(info.metadata["item_price"], "18500000");
    assert_eq!(info.metadata["external_channel_id"], "legacy-ch-1001");
    assert_eq!(info.metadata["members"], format!("5002,{DEFAULT_SENDER_ID}"));

    let status = s
        .adapter
        .grpc
        .clone()
        .get_channel_info(pb::GetChannelInfoRequest {
            vendor_channel_id: "ch-nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn an_echo_that_overtakes_the_answer_is_still_ours() {
    let s = setup().await;
    s.sim.set_echo_before_response("chotot", true).unwrap();
    let mut events = s.adapter.events().await;
    s.adapter.accepted(request("msg-e", "ch-1002", "Dạ còn ạ")).await;
    assert_eq!(
        s.sim.webhooks_posted("chotot"),
        (1, 0),
        "the echo was accepted before the send was answered"
    );
    testing::no_event_within(&mut events, Duration::from_millis(300)).await;
}
