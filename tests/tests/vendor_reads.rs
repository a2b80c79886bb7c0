//! The vendor interface through the gateway: a channel watched as a whole,
//! the platform's channel info and listings, and ListMessages that pages
//! with `before` and backfills the platform's history we never saw.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_proto::v1::{
    self as pb, ChannelInfoRequest, CreateChannelRequest, GetChannelRequest, ListMessagesRequest,
    UserProductsRequest, channel_info_request, get_channel_request,
    messaging_service_client::MessagingServiceClient,
};
use chat4all_tests::{TestSystem, send_request, wait_for, watch_channel, watch_conversation};
use tonic::Code;
use tonic::transport::Channel;

const WITHIN: Duration = Duration::from_secs(30);
/// The seeded Chotot history starts here (2023-11-14T22:13:20Z); ch-1001's
/// lines follow a minute apart from a minute after.
const SEED_EPOCH_SECS: i64 = 1_700_000_000;

fn vendor(name: &str, channel_id: &str) -> pb::ChannelVendor {
    pb::ChannelVendor {
        name: name.into(),
        channel_id: channel_id.into(),
    }
}

async fn create_channel(client: &mut MessagingServiceClient<Channel>, name: &str, id: &str) -> pb::Channel {
    client
        .create_channel(CreateChannelRequest {
            channel: Some(pb::Channel {
                vendor: Some(vendor(name, id)),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .channel
        .unwrap()
}

/// The next event of a stream, within the test's patience.
async fn next_event(stream: &mut tonic::Streaming<pb::MessageEvent>) -> pb::MessageEvent {
    tokio::time::timeout(WITHIN, stream.message())
        .await
        .expect("an event in time")
        .unwrap()
        .expect("the stream still open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_channel_watcher_sees_inbound_and_replies_filed_under_any_conversation() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();
    let channel = create_channel(&mut client, "whatsapp", "15557770009").await;
    let mut by_channel = client
        .watch_messages(watch_channel(channel.id.clone()))
        .await
        .unwrap()
        .into_inner();
    let mut by_side_conversation = client
        .watch_messages(watch_conversation("side-conversation"))
        .await
        .unwrap()
        .into_inner();

    t.system
        .simulator
        .inbound_text("whatsapp", "15557770009", "Ann", "still for sale?")
        .await
        .unwrap();
    let inbound = next_event(&mut by_channel).await;
    assert_eq!(inbound.kind, pb::MessageEventKind::Created as i32);
    assert_eq!(inbound.message.as_ref().unwrap().text, "still for sale?");
    assert_eq!(inbound.conversation_id, channel.id);

    // A reply to the channel, filed under a conversation of the caller's.
    let reply = client
        .send_message(send_request(&channel.id, "yes it is", "side-conversation"))
        .await
        .unwrap()
        .into_inner()
        .message_id;
    wait_for(&mut client, &reply, pb::DeliveryStatus::Read, WITHIN)
        .await
        .unwrap();
    // The CREATED comes from the gateway, the status changes from the
    // status-consumer: on the topic they may interleave, so each is looked
    // for, not its place.
    let mut channel_saw = Vec::new();
    while !(channel_saw.contains(&pb::DeliveryStatus::Read)
        && channel_saw.contains(&pb::DeliveryStatus::Accepted))
    {
        let event = next_event(&mut by_channel).await;
        assert_eq!(
            event.message_id, reply,
            "only the reply is left to see: {event:?}"
        );
        assert_eq!(event.conversation_id, "side-conversation");
        channel_saw.push(event.status());
    }
    assert!(
        channel_saw.contains(&pb::DeliveryStatus::Accepted),
        "{channel_saw:?}"
    );

    // The conversation's watcher saw the reply, never the channel's inbound.
    let mut conversation_saw = Vec::new();
    while conversation_saw.len() < channel_saw.len() {
        let event = next_event(&mut by_side_conversation).await;
        assert_eq!(event.message_id, reply, "{event:?}");
        conversation_saw.push(event.status());
    }
    assert_eq!(
        conversation_saw, channel_saw,
        "both scopes see the reply's every event"
    );

    let unknown = client
        .watch_messages(watch_channel("no-such-channel"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let neither = client
        .watch_messages(pb::WatchMessagesRequest { scope: None })
        .await
        .unwrap_err();
    assert_eq!(neither.code(), Code::InvalidArgument);
    assert!(neither.message().contains("channel_id"), "{}", neither.message());
    t.system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn channel_info_and_listings_come_from_the_platform() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();

    // A channel we do not know yet, by its vendor key.
    let info = client
        .get_channel_info(ChannelInfoRequest {
            key: Some(channel_info_request::Key::Vendor(vendor("chotot", "ch-1001"))),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.channel, None);
    let platform_view = info.info.unwrap();
    assert_eq!(platform_view.vendor_channel_id, "ch-1001");
    assert_eq!(platform_view.name, "Honda Vision 2020 - Minh");
    assert_eq!(
        platform_view.metadata.get("item_price").map(String::as_str),
        Some("18500000")
    );

    // By our id once we know it.
    let ours = create_channel(&mut client, "chotot", "ch-1001").await;
    let info = client
        .get_channel_info(ChannelInfoRequest {
            key: Some(channel_info_request::Key::ChannelId(ours.id.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.channel.unwrap().id, ours.id);
    assert_eq!(info.info.unwrap().name, "Honda Vision 2020 - Minh");

    let refused = |key| ChannelInfoRequest { key: Some(key) };
    for (request, code, says) in [
        (
            refused(channel_info_request::Key::Vendor(vendor("chotot", "ch-nope"))),
            Code::NotFound,
            "chotot",
        ),
        (
            refused(channel_info_request::Key::Vendor(vendor("telegram", "42"))),
            Code::Unimplemented,
            "telegram",
        ),
        (
            refused(channel_info_request::Key::ChannelId("no-such-channel".into())),
            Code::NotFound,
            "no-such-channel",
        ),
        (ChannelInfoRequest { key: None }, Code::InvalidArgument, "key"),
    ] {
        let status = client.get_channel_info(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(says), "{status:?}");
    }

    // The shop's seven listings, three to a page.
    let page = |page| UserProductsRequest {
        vendor_name: "chotot".into(),
        user_id: "9000001".into(),
        page_size: 3,
        page,
    };
    let first = client.list_user_products(page(1)).await.unwrap().into_inner();
    assert_eq!(first.products.len(), 3);
    assert!(first.has_more);
    assert_eq!(first.products[0].title, "Honda Vision 2020");
    assert_eq!(first.products[0].currency, "VND");
    let last = client.list_user_products(page(3)).await.unwrap().into_inner();
    assert_eq!(last.products.len(), 1);
    assert!(!last.has_more);

    for (request, code, field) in [
        (
            UserProductsRequest {
                vendor_name: "fax".into(),
                ..page(1)
            },
            Code::InvalidArgument,
            "vendor_name",
        ),
        (
            UserProductsRequest {
                user_id: String::new(),
                ..page(1)
            },
            Code::InvalidArgument,
            "user_id",
        ),
        (
            UserProductsRequest {
                vendor_name: "whatsapp".into(),
                ..page(1)
            },
            Code::Unimplemented,
            "whatsapp",
        ),
    ] {
        let status = client.list_user_products(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(field), "{status:?}");
    }
    t.system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_messages_backfills_the_platform_history_we_never_saw_once() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();

    // Minh writes live in the seeded channel ch-1001: it becomes ours.
    t.system
        .simulator
        .inbound_text("chotot", "5002", "Minh", "Tôi lấy xe nhé")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WITHIN;
    let channel = loop {
        let found = client
            .get_channel(GetChannelRequest {
                key: Some(get_channel_request::Key::Vendor(vendor("chotot", "ch-1001"))),
            })
            .await;
        match found {
            Ok(channel) => break channel.into_inner(),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("no channel: {e}"),
        }
    };
    // Our reply, which the platform's history then holds as the shop's.
    let reply = client
        .send_message(send_request(&channel.id, "Dạ bạn qua xem xe nhé", ""))
        .await
        .unwrap()
        .into_inner()
        .message_id;
    wait_for(&mut client, &reply, pb::DeliveryStatus::Sent, WITHIN)
        .await
        .unwrap();

    let list = |before: Option<i64>, page_size: u32| ListMessagesRequest {
        conversation_id: channel.id.clone(),
        page_size,
        before: before.map(|secs| prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        }),
        ..Default::default()
    };
    let texts =
        |page: &pb::ListMessagesResponse| page.messages.iter().map(|m| m.text.clone()).collect::<Vec<_>>();

    let before_backfill = client
        .list_messages(ListMessagesRequest {
            skip_backfill: true,
            ..list(None, 20)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before_backfill.backfilled, 0);
    assert_eq!(before_backfill.messages.len(), 2, "{:?}", texts(&before_backfill));

    // Minh's three seeded lines come in; the shop's two seeded lines and our
    // reply are ours and stay out; the live line is already held.
    let page = client.list_messages(list(None, 20)).await.unwrap().into_inner();
    assert_eq!(page.backfilled, 3);
    assert_eq!(
        texts(&page),
        [
            "Dạ bạn qua xem xe nhé",
            "Tôi lấy xe nhé",
            "Giá có bớt không shop?",
            "Xe đi được bao nhiêu km rồi?",
            "Chào shop, xe còn không ạ?",
        ],
        "newest first by when they were written"
    );
    let old = &page.messages[2];
    assert_eq!(old.source, "vendor:chotot");
    assert_eq!(old.sender_id, "5002");
    assert_eq!(old.status, pb::DeliveryStatus::Delivered as i32);
    assert_eq!(
        old.created_at.unwrap().seconds,
        SEED_EPOCH_SECS + 5 * 60,
        "kept at the time it was written"
    );

    // Again: nothing new.
    let again = client.list_messages(list(None, 20)).await.unwrap().into_inner();
    assert_eq!(again.backfilled, 0);
    assert_eq!(texts(&again), texts(&page));

    // `before` pages from a time, then the token goes on.
    let first = client
        .list_messages(list(Some(SEED_EPOCH_SECS + 4 * 60), 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(texts(&first), ["Xe đi được bao nhiêu km rồi?"]);
    assert_eq!(first.backfilled, 0);
    let rest = client
        .list_messages(ListMessagesRequest {
            page_token: first.next_page_token.clone(),
            ..list(None, 5)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(texts(&rest), ["Chào shop, xe còn không ạ?"]);
    assert!(rest.next_page_token.is_empty());

    let both = client
        .list_messages(ListMessagesRequest {
            page_token: first.next_page_token,
            ..list(Some(SEED_EPOCH_SECS), 5)
        })
        .await
        .unwrap_err();
    assert_eq!(both.code(), Code::InvalidArgument);
    assert!(both.message().contains("before"), "{both:?}");

    // The platform called once per send: the backfill sent nothing.
    let sends = t.system.simulator.received("chotot");
    assert_eq!(sends.len(), 1, "{sends:?}");
    t.system.stop().await.unwrap();
}
