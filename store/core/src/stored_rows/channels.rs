//! The `channels` table: a row, and how a channel put compares with it.

use chat4all_domain::Timestamp;
use chat4all_domain::json_struct::{struct_from_json, struct_to_json};
use chat4all_proto::v1 as pb;

use super::truncated;
use crate::StoreError;
use crate::backend_rules::CHANNEL_ID_FIELD;

/// A `channels` row, column for column.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelColumns {
    pub id: String,
    pub vendor_name: String,
    pub vendor_channel_id: String,
    pub name: String,
    pub context: String,
    /// The channel's `type`.
    pub kind: String,
    /// A JSON object, the API's `Struct`; absent is empty.
    pub metadata: String,
    pub created_at: i64,
}

impl ChannelColumns {
    /// The row `channel` is stored as under `vendor`. Its id is kept if
    /// given (a migrated channel keeps its legacy id), else a new one.
    pub fn create(channel: &pb::Channel, vendor: (&str, &str), now: Timestamp) -> Self {
        let id = if channel.id.is_empty() {
            uuid::Uuid::now_v7().to_string()
        } else {
            channel.id.clone()
        };
        Self::new(
            id,
            vendor,
            channel,
            channel.created_at.map_or(now, Timestamp::from),
        )
    }

    pub fn new(id: String, vendor: (&str, &str), channel: &pb::Channel, created_at: Timestamp) -> Self {
        Self {
            id,
            vendor_name: vendor.0.to_owned(),
            vendor_channel_id: vendor.1.to_owned(),
            name: channel.name.clone(),
            context: channel.context.clone(),
            kind: channel.r#type.clone(),
            metadata: metadata_to_json(channel.metadata.as_ref()),
            created_at: created_at.as_micros(),
        }
    }

    /// Whether `channel` would change nothing. Metadata is compared as JSON
    /// values, and the stored side goes through a `Struct` first, so key
    /// order or an integer in the column cannot make an identical put look
    /// like an update.
    pub fn same_fields(&self, channel: &pb::Channel) -> Result<bool, StoreError> {
        if self.name != channel.name || self.context != channel.context || self.kind != channel.r#type {
            return Ok(false);
        }
        let stored = self.metadata_object()?;
        let given = channel.metadata.as_ref().map(struct_to_json).unwrap_or_default();
        Ok(struct_to_json(&struct_from_json(stored)) == given)
    }

    /// Why a new vendor key may not take `id`, which this channel holds:
    /// taking it over would merge two conversations.
    pub fn id_taken(&self, id: &str) -> StoreError {
        StoreError::Invalid {
            field: CHANNEL_ID_FIELD,
            reason: format!(
                "{id:?} is already the id of the {} channel {:?}",
                self.vendor_name, self.vendor_channel_id
            ),
        }
    }

    fn metadata_object(&self) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        serde_json::from_str(&self.metadata)
            .map_err(|e| StoreError::Corrupt(format!("channel {}: bad metadata: {e}", truncated(&self.id))))
    }
}

impl TryFrom<ChannelColumns> for pb::Channel {
    type Error = StoreError;

    fn try_from(row: ChannelColumns) -> Result<Self, StoreError> {
        let metadata = row.metadata_object()?;
        Ok(pb::Channel {
            id: row.id,
            vendor: Some(pb::ChannelVendor {
                channel_id: row.vendor_channel_id,
                name: row.vendor_name,
            }),
            name: row.name,
            context: row.context,
            r#type: row.kind,
            metadata: Some(struct_from_json(metadata)),
            created_at: Some(Timestamp::from_micros(row.created_at).into()),
        })
    }
}

/// Metadata as the column holds it.
pub fn metadata_to_json(metadata: Option<&prost_types::Struct>) -> String {
    serde_json::Value::Object(metadata.map(struct_to_json).unwrap_or_default()).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn metadata_that_is_no_object_is_corrupt() {
        let channel = ChannelColumns {
            metadata: "[1]".into(),
            ..ChannelColumns::new(
                "c".into(),
                ("chotot", "1"),
                &pb::Channel::default(),
                Timestamp::from_micros(0),
            )
        };
        assert!(matches!(
            pb::Channel::try_from(channel),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn channels_round_trip_and_compare_metadata_by_value() {
        let metadata = |v: serde_json::Value| match v {
            serde_json::Value::Object(o) => struct_from_json(o),
            _ => unreachable!(),
        };
        let channel = pb::Channel {
            name: "Nguyễn".into(),
            context: "item:1".into(),
            r#type: "buyer".into(),
            metadata: Some(metadata(json!({"price": 12_500_000.0, "tags": ["a", null]}))),
            ..Default::default()
        };
        let row = ChannelColumns::new(
            "id-1".into(),
            ("chotot", "42"),
            &channel,
            Timestamp::from_micros(5),
        );
        assert!(row.same_fields(&channel).unwrap());
        let reordered = ChannelColumns {
            metadata: r#"{"tags":["a",null],"price":12500000}"#.into(),
            ..row.clone()
        };
        assert!(reordered.same_fields(&channel).unwrap());
        let renamed = pb::Channel {
            name: "other".into(),
            ..channel.clone()
        };
        assert!(!row.same_fields(&renamed).unwrap());

        let back = pb::Channel::try_from(row).unwrap();
        assert_eq!(back.id, "id-1");
        assert_eq!(
            back.vendor,
            Some(pb::ChannelVendor {
                channel_id: "42".into(),
                name: "chotot".into()
            })
        );
        assert_eq!(back.metadata, channel.metadata);
        assert_eq!(back.r#type, "buyer");
        assert_eq!(back.created_at, Some(Timestamp::from_micros(5).into()));
        let empty = ChannelColumns::new(
            "e".into(),
            ("x", "y"),
            &pb::Channel::default(),
            Timestamp::from_micros(0),
        );
        assert_eq!(empty.metadata, "{}");
    }

    #[test]
    fn a_new_channel_keeps_a_given_id_and_time() {
        let given = pb::Channel {
            id: "legacy:42".into(),
            created_at: Some(Timestamp::from_micros(3).into()),
            ..Default::default()
        };
        let row = ChannelColumns::create(&given, ("chotot", "42"), Timestamp::from_micros(9));
        assert_eq!((row.id.as_str(), row.created_at), ("legacy:42", 3));
        let fresh = ChannelColumns::create(
            &pb::Channel::default(),
            ("chotot", "42"),
            Timestamp::from_micros(9),
        );
        assert!(fresh.id.parse::<uuid::Uuid>().is_ok(), "{}", fresh.id);
        assert_eq!(fresh.created_at, 9);
    }
}
