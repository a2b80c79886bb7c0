//! Channels: the public API through the gateway, and the migration of
//! legacy channel documents into the store the system reads.

use std::io::Write as _;
use std::sync::Arc;

use chat4all_proto::v1::{
    self as pb, CreateChannelRequest, GetChannelRequest, ListChannelsRequest, get_channel_request,
};
use chat4all_store::SharedStore;
use chat4all_store_grpc::StoreClient;
use chat4all_tests::TestSystem;
use tonic::Code;

fn vendor(name: &str, channel_id: &str) -> Option<pb::ChannelVendor> {
    Some(pb::ChannelVendor {
        name: name.into(),
        channel_id: channel_id.into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn channels_are_created_once_found_by_id_or_vendor_and_listed() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();
    let new = |name: &str| CreateChannelRequest {
        channel: Some(pb::Channel {
            vendor: vendor("telegram", "777"),
            name: name.into(),
            ..Default::default()
        }),
    };
    let first = client.create_channel(new("support")).await.unwrap().into_inner();
    assert!(first.created);
    let channel = first.channel.unwrap();
    assert!(!channel.id.is_empty() && channel.created_at.is_some());
    let again = client.create_channel(new("support")).await.unwrap().into_inner();
    assert!(!again.created);
    assert_eq!(again.channel.unwrap().id, channel.id);

    let by_id = GetChannelRequest {
        key: Some(get_channel_request::Key::ChannelId(channel.id.clone())),
    };
    assert_eq!(
        client.get_channel(by_id).await.unwrap().into_inner().id,
        channel.id
    );
    let by_vendor = GetChannelRequest {
        key: Some(get_channel_request::Key::Vendor(
            vendor("telegram", "777").unwrap(),
        )),
    };
    assert_eq!(
        client.get_channel(by_vendor).await.unwrap().into_inner().id,
        channel.id
    );
    let missing = GetChannelRequest {
        key: Some(get_channel_request::Key::ChannelId("nope".into())),
    };
    assert_eq!(
        client.get_channel(missing).await.unwrap_err().code(),
        Code::NotFound
    );

    client
        .create_channel(CreateChannelRequest {
            channel: Some(pb::Channel {
                vendor: vendor("chotot", "ch-9"),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let telegram = client
        .list_channels(ListChannelsRequest {
            vendor_name: "telegram".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        telegram
            .channels
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        [channel.id.as_str()]
    );
    let all = client
        .list_channels(ListChannelsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.channels.len(), 1);
    assert!(!all.next_page_token.is_empty());

    let bad = client
        .create_channel(CreateChannelRequest {
            channel: Some(pb::Channel {
                vendor: vendor("fax", "1"),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("channel.vendor.name"), "{}", bad.message());
    t.system.stop().await.unwrap();
}

const SAMPLE: &str = r#"{"_id":{"$oid":"64b000000000000000000001"},"external_channel_id":"ch-1001","item_name":"Honda Wave 2019","item_price":12500000,"name":"Minh","context":"ad","type":"buyer"}
{"_id":"64b000000000000000000002","external_channel_id":"ch-1002","item_name":"iPhone 13","item_price":9900000,"name":"Hoa"}
this is not json
{"_id":"64b000000000000000000001","external_channel_id":"ch-1001","item_name":"Honda Wave 2019","item_price":12500000,"name":"Minh","context":"ad","type":"buyer"}

{"_id":"64b000000000000000000003","name":"no vendor at all"}
{"id":"c-4","vendor":{"channel_id":"555","name":"telegram"},"name":"already migrated"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_channels_migrate_once_and_broken_lines_are_reported() {
    let t = TestSystem::start().await.unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(SAMPLE.as_bytes()).unwrap();
    // Through the store service of the running system, as an operator would.
    let store: SharedStore =
        Arc::new(StoreClient::connect(&format!("http://{}", t.system.store_addr)).unwrap());

    let first = chat4all::migrate::channels(&store, file.path()).await.unwrap();
    assert_eq!((first.migrated, first.unchanged), (3, 1), "{first}");
    assert_eq!(
        first.rejected.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        [3, 6],
        "{first}"
    );
    assert!(first.rejected[0].1.contains("not JSON"), "{first}");
    assert!(
        first.rejected[1]
            .1
            .contains("neither vendor nor external_channel_id"),
        "{first}"
    );
    assert!(
        first.to_string().ends_with("migrated 3, unchanged 1, rejected 2"),
        "{first}"
    );

    let second = chat4all::migrate::channels(&store, file.path()).await.unwrap();
    assert_eq!(
        (second.migrated, second.unchanged, second.rejected.len()),
        (0, 4, 2),
        "{second}"
    );

    // The migrated channel, through the public API, keeps its legacy id.
    let mut client = t.client().await.unwrap();
    let found = client
        .get_channel(GetChannelRequest {
            key: Some(get_channel_request::Key::Vendor(
                vendor("chotot", "ch-1001").unwrap(),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.id, "64b000000000000000000001");
    let metadata = chat4all_domain::json_struct::struct_to_json(found.metadata.as_ref().unwrap());
    assert_eq!(metadata["item_name"], serde_json::json!("Honda Wave 2019"));
    t.system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_channel_id_as_recipient_routes_by_its_vendor() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();
    let channel = client
        .create_channel(CreateChannelRequest {
            channel: Some(pb::Channel {
                vendor: vendor("telegram", "424242"),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .channel
        .unwrap();
    let sent = client
        .send_message(chat4all_tests::send_request(&channel.id, "via the channel", ""))
        .await
        .unwrap()
        .into_inner();
    let m = chat4all_tests::wait_for(
        &mut client,
        &sent.message_id,
        pb::DeliveryStatus::Sent,
        std::time::Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(m.status, pb::DeliveryStatus::Sent as i32, "{m:?}");
    assert_eq!(m.conversation_id, channel.id);
    assert_eq!(
        m.recipient.map(|r| (r.platform, r.id)),
        Some(("telegram".into(), "424242".into()))
    );
    let calls = t.system.simulator.received("telegram");
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.text == "via the channel" && c.to == "424242")
            .count(),
        1,
        "{calls:?}"
    );

    let unknown = client
        .send_message(chat4all_tests::send_request("no-such-channel", "x", ""))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(unknown.message().contains("recipient"), "{}", unknown.message());
    t.system.stop().await.unwrap();
}
