//! Channels: put by vendor key (created, unchanged, updated), get, find,
//! list in pages.
//!
//! Every check makes its own vendor channel ids (and, for listing, its own
//! vendor name), so it finds only its own channels in a shared store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chat4all_domain::MessageId;
use chat4all_domain::json_struct::struct_from_json;
use chat4all_proto::v1 as pb;
use serde_json::json;

use super::support::t;
use crate::{PutChannelOutcome, SharedStore, StoreError};

/// A vendor channel id no other check (or earlier run) uses.
fn unique(tag: &str) -> String {
    format!("contract-{tag}-{}", MessageId::generate())
}

fn metadata(value: serde_json::Value) -> prost_types::Struct {
    match value {
        serde_json::Value::Object(object) => struct_from_json(object),
        other => panic!("metadata must be an object, not {other}"),
    }
}

fn channel(vendor: &str, vendor_channel_id: &str) -> pb::Channel {
    pb::Channel {
        id: String::new(),
        vendor: Some(pb::ChannelVendor {
            channel_id: vendor_channel_id.to_owned(),
            name: vendor.to_owned(),
        }),
        name: "Nguyễn Văn A".to_owned(),
        context: "item:12345".to_owned(),
        r#type: "buyer".to_owned(),
        metadata: Some(metadata(json!({
            "item_name": "Honda Wave",
            "item_price": 12_500_000.0,
            "tags": ["used", true, null],
            "vendor": {"auto_reply": false},
        }))),
        created_at: None,
    }
}

fn field_of(result: Result<(PutChannelOutcome, pb::Channel), StoreError>) -> &'static str {
    match result {
        Err(StoreError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A new vendor key is Created with a new id and a creation time; the same
/// put again is Unchanged; changed fields are Updated in place, id and
/// creation time kept. Get by id and find by vendor key see the latest.
pub async fn channel_put_is_keyed_by_vendor(store: SharedStore) {
    let vendor_id = unique("put");
    let first = channel("chotot", &vendor_id);
    let (outcome, created) = store.put_channel(first.clone()).await.unwrap();
    assert_eq!(outcome, PutChannelOutcome::Created);
    assert!(uuid::Uuid::parse_str(&created.id).is_ok(), "{:?}", created.id);
    assert!(created.created_at.is_some());
    assert_eq!(created.vendor, first.vendor);
    assert_eq!(
        (&created.name, &created.context, &created.r#type),
        (&first.name, &first.context, &first.r#type)
    );
    assert_eq!(created.metadata, first.metadata);

    let (outcome, again) = store.put_channel(first.clone()).await.unwrap();
    assert_eq!(outcome, PutChannelOutcome::Unchanged);
    assert_eq!(again, created);

    let changed = pb::Channel {
        metadata: Some(metadata(
            json!({"item_name": "Honda Wave", "item_price": 11_000_000.0}),
        )),
        ..first.clone()
    };
    let (outcome, updated) = store.put_channel(changed.clone()).await.unwrap();
    assert_eq!(outcome, PutChannelOutcome::Updated);
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(updated.metadata, changed.metadata);

    // A put naming another id or time for a known key changes neither.
    let renamed = pb::Channel {
        name: "Trần Thị B".to_owned(),
        created_at: Some(t(-1000).into()),
        ..changed
    };
    let (outcome, updated) = store.put_channel(renamed.clone()).await.unwrap();
    assert_eq!(outcome, PutChannelOutcome::Updated);
    assert_eq!(updated.name, "Trần Thị B");
    assert_eq!(updated.created_at, created.created_at);

    assert_eq!(
        store.get_channel(&created.id).await.unwrap(),
        Some(updated.clone())
    );
    assert_eq!(
        store.find_channel("chotot", &vendor_id).await.unwrap(),
        Some(updated)
    );
    // The key is the pair: the same platform id under another vendor is
    // another channel, or none.
    assert_eq!(store.find_channel("telegram", &vendor_id).await.unwrap(), None);
    assert_eq!(store.find_channel("chotot", &unique("none")).await.unwrap(), None);
    assert_eq!(store.get_channel(&unique("none")).await.unwrap(), None);
    assert_eq!(store.get_channel("").await.unwrap(), None);
}

/// A migrated channel keeps its legacy id and creation time; an id already
/// held by another vendor key is refused, not taken over.
pub async fn channel_given_id_is_kept(store: SharedStore) {
    let legacy_id = unique("legacy-id");
    let given = pb::Channel {
        id: legacy_id.clone(),
        created_at: Some(t(-3600).into()),
        metadata: None,
        ..channel("messenger", &unique("legacy"))
    };
    let (outcome, stored) = store.put_channel(given.clone()).await.unwrap();
    assert_eq!(outcome, PutChannelOutcome::Created);
    assert_eq!(stored.id, legacy_id);
    assert_eq!(stored.created_at, Some(t(-3600).into()));
    // No metadata reads back as empty metadata, and puts as the same.
    assert_eq!(
        stored.metadata.unwrap_or_default(),
        prost_types::Struct::default()
    );
    let (outcome, _) = store.put_channel(given).await.unwrap();
    assert_eq!(outcome, PutChannelOutcome::Unchanged);

    let clash = pb::Channel {
        id: legacy_id.clone(),
        ..channel("messenger", &unique("clash"))
    };
    assert_eq!(field_of(store.put_channel(clash.clone()).await), "channel.id");
    let vendor = clash.vendor.unwrap();
    assert_eq!(
        store
            .find_channel(&vendor.name, &vendor.channel_id)
            .await
            .unwrap(),
        None,
        "nothing was written"
    );
    assert_eq!(
        store.get_channel(&legacy_id).await.unwrap().map(|c| c.vendor),
        Some(stored.vendor)
    );
}

/// A channel without its vendor key cannot be found again: refused, naming
/// the missing field.
pub async fn channel_without_vendor_key_is_invalid(store: SharedStore) {
    let no_vendor = pb::Channel {
        vendor: None,
        ..channel("chotot", "x")
    };
    assert_eq!(
        field_of(store.put_channel(no_vendor).await),
        "channel.vendor.name"
    );
    let no_name = channel("", &unique("no-name"));
    assert_eq!(field_of(store.put_channel(no_name).await), "channel.vendor.name");
    let no_id = channel("chotot", "");
    assert_eq!(
        field_of(store.put_channel(no_id).await),
        "channel.vendor.channel_id"
    );
}

/// Pages through channels in id order to the end, with and without a
/// vendor filter; the last page has no cursor; a made-up cursor is refused.
pub async fn channels_list_in_pages(store: SharedStore) {
    let vendor = unique("vendor");
    let mut ours = BTreeSet::new();
    for i in 0..5 {
        let (_, c) = store
            .put_channel(channel(&vendor, &format!("{i}")))
            .await
            .unwrap();
        ours.insert(c.id);
    }
    // One with an id before and one after every generated one: ids order
    // the pages, whoever made them.
    for id in [format!("0-{vendor}"), format!("~-{vendor}")] {
        let c = pb::Channel {
            id: id.clone(),
            ..channel(&vendor, &id)
        };
        store.put_channel(c).await.unwrap();
        ours.insert(id);
    }

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .list_channels(Some(&vendor), cursor.as_deref(), 3)
            .await
            .unwrap();
        sizes.push(page.channels.len());
        assert!(
            page.channels
                .iter()
                .all(|c| c.vendor.as_ref().unwrap().name == vendor)
        );
        seen.extend(page.channels.into_iter().map(|c| c.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 1], "7 channels, 3 a page, no empty last page");
    assert_eq!(seen, ours.iter().cloned().collect::<Vec<_>>(), "in id order");

    let exact = store.list_channels(Some(&vendor), None, 7).await.unwrap();
    assert_eq!(exact.channels.len(), 7);
    assert_eq!(exact.next_cursor, None, "a full last page has no cursor");
    let default = store.list_channels(Some(&vendor), None, 0).await.unwrap();
    assert_eq!(default.channels.len(), 7, "0 means the default page size");

    // Without a filter: everyone's channels, ours among them, in id order.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_channels(None, cursor.as_deref(), 4).await.unwrap();
        assert!(page.channels.len() <= 4);
        all.extend(page.channels.into_iter().map(|c| c.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(all.windows(2).all(|w| w[0] < w[1]), "strictly in id order");
    let all: BTreeSet<_> = all.into_iter().collect();
    assert!(ours.is_subset(&all));

    for bad in ["not a cursor", "zz", "123"] {
        match store.list_channels(None, Some(bad), 3).await {
            Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "page_token", "{bad:?}"),
            other => panic!("cursor {bad:?} gave {other:?}"),
        }
    }
}
