//! Two-way sync end to end: a platform user writes, a watching client sees
//! it once; the client replies and the platform gets it once; a webhook the
//! platform delivers twice is stored once, in a channel made on the fly.

use std::time::Duration;

use chat4all_proto::v1::{
    self as pb, CreateChannelRequest, GetChannelRequest, ListMessagesRequest, get_channel_request,
};
use chat4all_tests::{TestSystem, send_request, wait_for};

const WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_writes_a_watcher_sees_it_once_and_the_reply_reaches_the_platform_once() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();
    let channel = client
        .create_channel(CreateChannelRequest {
            channel: Some(pb::Channel {
                vendor: Some(pb::ChannelVendor {
                    name: "whatsapp".into(),
                    channel_id: "15557770001".into(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .channel
        .unwrap();
    let mut watch = client
        .watch_messages(chat4all_tests::watch_conversation(channel.id.clone()))
        .await
        .unwrap()
        .into_inner();

    t.system
        .simulator
        .inbound_text("whatsapp", "15557770001", "Ann", "is the bike still for sale?")
        .await
        .unwrap();
    let event = tokio::time::timeout(WITHIN, watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.kind, pb::MessageEventKind::Created as i32);
    let message = event.message.unwrap();
    assert_eq!(message.text, "is the bike still for sale?");
    assert_eq!(message.source, "vendor:whatsapp");
    assert_eq!(
        (message.sender_id.as_str(), message.sender_name.as_str()),
        ("15557770001", "Ann")
    );
    assert_eq!(message.conversation_id, channel.id);
    // Once: nothing more arrives for it.
    let more = tokio::time::timeout(Duration::from_millis(800), watch.message()).await;
    assert!(more.is_err(), "a second event arrived: {more:?}");

    let reply = client
        .send_message(send_request(&channel.id, "yes, come and see it", ""))
        .await
        .unwrap()
        .into_inner()
        .message_id;
    let m = wait_for(&mut client, &reply, pb::DeliveryStatus::Read, WITHIN)
        .await
        .unwrap();
    assert_eq!(m.status, pb::DeliveryStatus::Read as i32, "{m:?}");
    let calls = t.system.simulator.received("whatsapp");
    assert_eq!(
        calls.iter().filter(|c| c.text == "yes, come and see it").count(),
        1,
        "{calls:?}"
    );
    t.system.stop().await.unwrap();
}

fn whatsapp_inbound(wamid: &str, from: &str, text: &str) -> Vec<u8> {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "100000000000000", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "100000000000001"},
            "contacts": [{"profile": {"name": "Bao"}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": "1700000000", "type": "text", "text": {"body": text}}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_delivered_twice_is_stored_once_in_a_channel_made_on_the_fly() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();
    let body = whatsapp_inbound("wamid.TWICE-1", "15557770002", "hello twice");
    assert_eq!(
        t.system
            .simulator
            .post_webhook("whatsapp", body.clone())
            .await
            .unwrap(),
        200
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        t.system.simulator.post_webhook("whatsapp", body).await.unwrap(),
        200
    );
    let other = whatsapp_inbound("wamid.TWICE-2", "15557770002", "and once more");
    assert_eq!(
        t.system.simulator.post_webhook("whatsapp", other).await.unwrap(),
        200
    );

    // The channel was made by the first message of an unknown conversation.
    let key = pb::ChannelVendor {
        name: "whatsapp".into(),
        channel_id: "15557770002".into(),
    };
    let get = || GetChannelRequest {
        key: Some(get_channel_request::Key::Vendor(key.clone())),
    };
    let deadline = tokio::time::Instant::now() + WITHIN;
    let channel = loop {
        match client.get_channel(get()).await {
            Ok(c) => break c.into_inner(),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("no channel: {e}"),
        }
    };
    assert_eq!(channel.name, "Bao");
    let list = || ListMessagesRequest {
        conversation_id: channel.id.clone(),
        page_size: 10,
        page_token: String::new(),
        ..Default::default()
    };
    let texts = loop {
        let page = client.list_messages(list()).await.unwrap().into_inner();
        let texts: Vec<String> = page.messages.into_iter().map(|m| m.text).collect();
        if texts.len() >= 2 || tokio::time::Instant::now() > deadline {
            break texts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again: Vec<String> = client
        .list_messages(list())
        .await
        .unwrap()
        .into_inner()
        .messages
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["and once more", "hello twice"]);
    assert_eq!(again, texts, "the second delivery stored nothing");
    t.system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn our_own_echo_is_neither_resent_nor_stored_as_inbound() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();
    // Chotot posts every message of a channel back as an event, ours
    // included; Messenger sends an is_echo carrying our metadata.
    for (recipient, platform, vendor_channel) in [
        ("chotot:ch-1002", "chotot", "ch-1002"),
        ("messenger:24000000000000077", "messenger", "24000000000000077"),
    ] {
        let text = format!("echo me on {platform}");
        let id = client
            .send_message(send_request(recipient, &text, ""))
            .await
            .unwrap()
            .into_inner()
            .message_id;
        let m = wait_for(&mut client, &id, pb::DeliveryStatus::Sent, WITHIN)
            .await
            .unwrap();
        assert!(m.status >= pb::DeliveryStatus::Sent as i32, "{m:?}");
        // Time for the echo to come back and be dropped.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let calls = t.system.simulator.received(platform);
        assert_eq!(
            calls.iter().filter(|c| c.text == text).count(),
            1,
            "sent once: {calls:?}"
        );
        let key = pb::ChannelVendor {
            name: platform.into(),
            channel_id: vendor_channel.into(),
        };
        let channel = client
            .get_channel(GetChannelRequest {
                key: Some(get_channel_request::Key::Vendor(key)),
            })
            .await;
        assert_eq!(
            channel.map(|c| c.into_inner().id).map_err(|s| s.code()),
            Err(tonic::Code::NotFound),
            "the echo made no channel, hence stored no inbound message"
        );
    }
    t.system.stop().await.unwrap();
}
