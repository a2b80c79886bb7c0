//! Inbound messages: stored once per key within its window, in the channel
//! of their vendor key (found, or created on the first message), DELIVERED
//! from the start and never taken for an unsent message.
//!
//! Every check makes its own vendor channel ids, so it finds only its own
//! channels and keys in a shared store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Platform, Timestamp};
use chat4all_proto::v1 as pb;

use super::support::{history, message_id, states, status, t};
use crate::{InboundOutcome, InboundResult, NewInbound, SharedStore, StoreError, TransitionOutcome};

/// Long enough that no check outlives it.
const WINDOW: Duration = Duration::from_secs(600);

/// A vendor channel id no other check (or earlier run) uses.
fn unique(tag: &str) -> String {
    format!("contract-inbound-{tag}-{}", MessageId::generate())
}

fn inbound(vendor_channel_id: &str, external_id: &str, text: &str) -> NewInbound {
    NewInbound {
        id: MessageId::generate(),
        platform: Platform::Telegram,
        vendor_channel_id: vendor_channel_id.to_owned(),
        external_message_id: external_id.to_owned(),
        sender_id: "user-7".to_owned(),
        sender_name: "Trần Thị B".to_owned(),
        text: text.to_owned(),
        at: t(5),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        dedup_window: WINDOW,
    }
}

async fn put(store: &SharedStore, i: NewInbound) -> InboundResult {
    store.put_inbound(i).await.unwrap()
}

async fn channel_messages(store: &SharedStore, channel: &pb::Channel) -> Vec<String> {
    let conversation: ConversationId = channel.id.parse().unwrap();
    let page = store.list_messages(&conversation, None, 100).await.unwrap();
    page.messages.into_iter().map(|m| m.id).collect()
}

/// The first message of a user: Stored, in a new channel named after the
/// sender, DELIVERED at its time with one history entry, with everything
/// the spec puts on it; get_message and find_channel agree.
pub async fn inbound_first_message_creates_channel(store: SharedStore) {
    let vendor_id = unique("first");
    let given = inbound(&vendor_id, "ext-1", "xin chào");
    let r = put(&store, given.clone()).await;
    assert_eq!(r.outcome, InboundOutcome::Stored);
    assert!(r.channel_created);

    let c = &r.channel;
    assert!(!c.id.is_empty());
    assert_eq!(
        c.vendor,
        Some(pb::ChannelVendor {
            channel_id: vendor_id.clone(),
            name: "telegram".to_owned(),
        })
    );
    assert_eq!(c.name, given.sender_name);
    assert_eq!(
        store.find_channel("telegram", &vendor_id).await.unwrap().as_ref(),
        Some(c)
    );

    let m = &r.message;
    assert_eq!(message_id(m), given.id);
    assert_eq!(m.conversation_id, c.id);
    let recipient = m.recipient.as_ref().unwrap();
    assert_eq!(
        (recipient.platform.as_str(), recipient.id.as_str()),
        ("telegram", vendor_id.as_str())
    );
    assert_eq!(m.text, "xin chào");
    assert_eq!(m.source, "vendor:telegram");
    assert_eq!(m.trace_id, given.trace_id);
    assert_eq!(m.platform_message_id, "ext-1");
    assert_eq!(
        (m.sender_id.as_str(), m.sender_name.as_str()),
        ("user-7", "Trần Thị B")
    );
    assert_eq!(status(m), DeliveryStatus::Delivered);
    assert_eq!(states(m), [(DeliveryStatus::Delivered, t(5))]);
    assert_eq!(Timestamp::from(m.created_at.unwrap()), t(5));
    assert_eq!(
        history(m),
        [(
            DeliveryStatus::Delivered,
            TransitionOutcome::Applied,
            "router".to_owned(),
            t(5)
        )]
    );

    let got = store.get_message(given.id).await.unwrap().unwrap();
    assert_eq!(&got, m);
    assert_eq!(channel_messages(&store, c).await, std::slice::from_ref(&m.id));
}

/// A sender without a name: the channel is named after its vendor id.
pub async fn inbound_channel_without_sender_name_is_named_by_vendor_id(store: SharedStore) {
    let vendor_id = unique("noname");
    let r = put(
        &store,
        NewInbound {
            sender_name: String::new(),
            ..inbound(&vendor_id, "ext-1", "hi")
        },
    )
    .await;
    assert!(r.channel_created);
    assert_eq!(r.channel.name, vendor_id);
    assert_eq!(r.message.sender_name, "");
}

/// The same key within its window is a Duplicate: the first message and
/// channel come back and nothing new is stored. Another message of the same
/// user is Stored in the same channel, which is not created again.
pub async fn inbound_redelivery_is_duplicate(store: SharedStore) {
    let vendor_id = unique("dup");
    let first = put(&store, inbound(&vendor_id, "ext-1", "one")).await;

    let again = inbound(&vendor_id, "ext-1", "one");
    let again_id = again.id;
    let dup = put(&store, again).await;
    assert_eq!(dup.outcome, InboundOutcome::Duplicate);
    assert!(!dup.channel_created);
    assert_eq!(dup.message.id, first.message.id);
    assert_eq!(dup.channel, first.channel);
    assert_eq!(store.get_message(again_id).await.unwrap(), None);
    assert_eq!(
        channel_messages(&store, &first.channel).await,
        std::slice::from_ref(&first.message.id)
    );

    let second = put(&store, inbound(&vendor_id, "ext-2", "two")).await;
    assert_eq!(second.outcome, InboundOutcome::Stored);
    assert!(!second.channel_created);
    assert_eq!(second.channel, first.channel);
    assert_eq!(second.message.conversation_id, first.channel.id);
    assert_eq!(
        channel_messages(&store, &first.channel).await,
        [second.message.id.clone(), first.message.id.clone()]
    );

    // The key is the vendor channel's: the same external id elsewhere is
    // another message.
    let elsewhere = put(&store, inbound(&unique("dup-other"), "ext-1", "one")).await;
    assert_eq!(elsewhere.outcome, InboundOutcome::Stored);
    assert!(elsewhere.channel_created);
}

/// Once the window has passed, the key counts as unseen: Stored again as a
/// new message in the same channel.
pub async fn inbound_key_expires_after_its_window(store: SharedStore) {
    let vendor_id = unique("expiry");
    let short = |text: &str| NewInbound {
        dedup_window: Duration::from_millis(50),
        ..inbound(&vendor_id, "ext-1", text)
    };
    let first = put(&store, short("one")).await;
    assert_eq!(first.outcome, InboundOutcome::Stored);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The later put keeps the key for the full window, so the check below
    // does not race a 50 ms expiry.
    let later = put(&store, inbound(&vendor_id, "ext-1", "one")).await;
    assert_eq!(later.outcome, InboundOutcome::Stored);
    assert!(!later.channel_created);
    assert_ne!(later.message.id, first.message.id);
    assert_eq!(later.channel, first.channel);
    assert_eq!(channel_messages(&store, &first.channel).await.len(), 2);

    // The new put renewed the key: within the window again, a duplicate of
    // the later message.
    let dup = put(&store, inbound(&vendor_id, "ext-1", "one")).await;
    assert_eq!(dup.outcome, InboundOutcome::Duplicate);
    assert_eq!(dup.message.id, later.message.id);
}

/// A channel put beforehand (a migrated one, with its own name and id) is
/// found by its vendor key and left as it was.
pub async fn inbound_finds_an_existing_channel(store: SharedStore) {
    let vendor_id = unique("existing");
    let (_, existing) = store
        .put_channel(pb::Channel {
            id: format!("legacy-{vendor_id}"),
            vendor: Some(pb::ChannelVendor {
                channel_id: vendor_id.clone(),
                name: "telegram".to_owned(),
            }),
            name: "Operator's name".to_owned(),
            context: "item:1".to_owned(),
            ..pb::Channel::default()
        })
        .await
        .unwrap();
    let r = put(&store, inbound(&vendor_id, "ext-1", "hi")).await;
    assert_eq!(r.outcome, InboundOutcome::Stored);
    assert!(!r.channel_created);
    assert_eq!(r.channel, existing);
    assert_eq!(r.message.conversation_id, existing.id);
    assert_eq!(store.get_channel(&existing.id).await.unwrap(), Some(existing));
}

/// No vendor channel id or external id: Invalid, naming the field.
pub async fn inbound_without_key_is_invalid(store: SharedStore) {
    let field_of = |r: Result<InboundResult, StoreError>| match r {
        Err(StoreError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let no_channel = inbound("", "ext-1", "hi");
    assert_eq!(
        field_of(store.put_inbound(no_channel).await),
        "inbound.vendor_channel_id"
    );
    let no_external = inbound(&unique("invalid"), "", "hi");
    assert_eq!(
        field_of(store.put_inbound(no_external).await),
        "inbound.external_message_id"
    );
}

/// Inbound messages are never ACCEPTED, so the reconciler never finds one
/// to re-publish.
pub async fn inbound_messages_are_never_stuck(store: SharedStore) {
    let vendor_id = unique("stuck");
    let r = put(&store, inbound(&vendor_id, "ext-1", "hi")).await;
    let stuck = store
        .stuck_messages(DeliveryStatus::Accepted, Timestamp::now(), 500)
        .await
        .unwrap();
    assert!(
        stuck
            .iter()
            .all(|m| !m.source.starts_with("vendor:") && m.id != r.message.id),
        "an inbound message among the stuck: {stuck:?}"
    );
}
