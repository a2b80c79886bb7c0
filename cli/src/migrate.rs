//! `chat4all migrate channels`: legacy channel documents (one JSON object a
//! line, as `mongoexport` writes them) into the vendor + metadata model.
//! (`chat4all migrate schema`, the store's CQL schema, is [`schema`].)
//!
//! A legacy document carries `external_channel_id`, `item_name` and
//! `item_price`; the Chotot plan moves the first into `vendor` (every
//! legacy channel is Chotot's) and the item fields into `metadata`. Fields
//! the model does not name go to `metadata` too, so nothing is lost. A
//! channel keeps its legacy `_id`, so references to it stay valid.
//!
//! Channels are keyed by vendor in the store: running the migration again
//! finds each one unchanged. A line that cannot be migrated is reported
//! with its number and the rest go on.

use std::fmt;
use std::path::Path;

use anyhow::Context as _;
use chat4all_proto::v1 as pb;
use chat4all_store::{PutChannelOutcome, SharedStore};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The vendor of every legacy channel.
const LEGACY_VENDOR: &str = "chotot";

/// Fields of the channel model itself; every other field is metadata.
const MODEL_FIELDS: &[&str] = &[
    "_id",
    "id",
    "name",
    "context",
    "type",
    "vendor",
    "metadata",
    "external_channel_id",
];

/// What a migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub migrated: usize,
    pub unchanged: usize,
    /// `(line number, why)`.
    pub rejected: Vec<(usize, String)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (line, why) in &self.rejected {
            writeln!(f, "line {line}: rejected: {why}")?;
        }
        write!(
            f,
            "migrated {}, unchanged {}, rejected {}",
            self.migrated,
            self.unchanged,
            self.rejected.len()
        )
    }
}

/// `chat4all migrate schema`: creates the store's keyspace if absent and
/// applies the schema versions it lacks, as a store does at start-up; for a
/// deployment that migrates once before its stores start.
pub async fn schema(
    config: &chat4all_store_scylla::ScyllaConfig,
) -> anyhow::Result<chat4all_store_scylla::MigrationReport> {
    chat4all_store_scylla::migrate_schema(config)
        .await
        .with_context(|| {
            format!(
                "migrating keyspace {} on {}",
                config.keyspace,
                config.nodes.join(",")
            )
        })
}

/// Migrates every line of `path` into `store`.
pub async fn channels(store: &SharedStore, path: &Path) -> anyhow::Result<Report> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let mut lines = BufReader::new(file).lines();
    let mut report = Report::default();
    let mut number = 0;
    while let Some(line) = lines
        .next_line()
        .await
        .with_context(|| format!("reading {}", path.display()))?
    {
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let channel = match serde_json::from_str::<Value>(&line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(to_channel)
        {
            Ok(channel) => channel,
            Err(why) => {
                report.rejected.push((number, why));
                continue;
            }
        };
        match store.put_channel(channel).await {
            Ok((PutChannelOutcome::Unchanged, _)) => report.unchanged += 1,
            Ok((PutChannelOutcome::Created | PutChannelOutcome::Updated, _)) => report.migrated += 1,
            Err(chat4all_store::StoreError::Invalid { field, reason }) => {
                report.rejected.push((number, format!("{field}: {reason}")));
            }
            Err(e) => return Err(e).with_context(|| format!("line {number}: storing the channel")),
        }
    }
    Ok(report)
}

/// One legacy (or already migrated) document as a channel.
fn to_channel(document: Value) -> Result<pb::Channel, String> {
    let Value::Object(mut doc) = document else {
        return Err("not a JSON object".to_owned());
    };
    let id = match doc.remove("_id").or_else(|| doc.remove("id")) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        // Mongo's extended JSON: {"$oid": "..."}.
        Some(Value::Object(o)) => match o.get("$oid") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err("_id is an object without $oid".to_owned()),
        },
        Some(other) => other.to_string(),
    };
    let vendor = match (doc.get("vendor"), doc.get("external_channel_id")) {
        (Some(Value::Object(v)), _) => pb::ChannelVendor {
            channel_id: text(v.get("channel_id")).ok_or("vendor.channel_id is missing")?,
            name: text(v.get("name")).ok_or("vendor.name is missing")?,
        },
        (Some(_), _) => return Err("vendor is not an object".to_owned()),
        (None, Some(external)) => pb::ChannelVendor {
            channel_id: text(Some(external)).ok_or("external_channel_id is empty")?,
            name: LEGACY_VENDOR.to_owned(),
        },
        (None, None) => return Err("neither vendor nor external_channel_id".to_owned()),
    };
    let mut metadata = match doc.remove("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("metadata is not an object".to_owned()),
    };
    let field = |doc: &Map<String, Value>, key: &str| {
        doc.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (name, context, kind) = (field(&doc, "name"), field(&doc, "context"), field(&doc, "type"));
    for (key, value) in doc {
        if !MODEL_FIELDS.contains(&key.as_str()) {
            metadata.entry(key).or_insert(value);
        }
    }
    Ok(pb::Channel {
        id,
        vendor: Some(vendor),
        name,
        context,
        r#type: kind,
        metadata: Some(chat4all_domain::json_struct::struct_from_json(metadata)),
        created_at: None,
    })
}

/// A non-empty string or number, as text.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metadata(c: &pb::Channel) -> Map<String, Value> {
        chat4all_domain::json_struct::struct_to_json(c.metadata.as_ref().unwrap())
    }

    #[test]
    fn a_legacy_document_becomes_vendor_and_metadata() {
        let c = to_channel(json!({
            "_id": {"$oid": "64b000000000000000000001"},
            "external_channel_id": "ch-1001",
            "item_name": "Honda Wave 2019",
            "item_price": 12500000,
            "name": "Minh",
            "context": "ad",
            "type": "buyer",
            "members": ["5002", "9000001"]
        }))
        .unwrap();
        assert_eq!(c.id, "64b000000000000000000001");
        assert_eq!(
            c.vendor,
            Some(pb::ChannelVendor {
                channel_id: "ch-1001".into(),
                name: "chotot".into()
            })
        );
        assert_eq!(
            (c.name.as_str(), c.context.as_str(), c.r#type.as_str()),
            ("Minh", "ad", "buyer")
        );
        let m = metadata(&c);
        assert_eq!(m["item_name"], json!("Honda Wave 2019"));
        assert_eq!(m["item_price"].as_f64(), Some(12_500_000.0));
        assert_eq!(m["members"], json!(["5002", "9000001"]));
        assert!(!m.contains_key("external_channel_id"));
    }

    #[test]
    fn the_example_in_docs_migrates_to_the_simulators_channels() {
        let example = include_str!("../../docs/examples/legacy-channels.jsonl");
        let channels: Vec<pb::Channel> = example
            .lines()
            .map(|line| to_channel(serde_json::from_str(line).unwrap()).unwrap())
            .collect();
        let vendors: Vec<(&str, &str)> = channels
            .iter()
            .map(|c| {
                let v = c.vendor.as_ref().unwrap();
                (v.name.as_str(), v.channel_id.as_str())
            })
            .collect();
        // Chotot channels the simulator seeds with our shop as a member, so
        // a message sent to them is taken.
        assert_eq!(
            vendors,
            [
                ("chotot", "ch-1001"),
                ("chotot", "ch-1002"),
                ("telegram", "123456789")
            ]
        );
        assert_eq!(channels[0].id, "64b000000000000000000001");
        assert_eq!(metadata(&channels[0])["item_name"], json!("Honda Vision 2020"));
    }

    #[test]
    fn a_migrated_document_passes_through_and_broken_ones_say_why() {
        let c = to_channel(json!({"id": "c-1", "vendor": {"channel_id": 42, "name": "telegram"}})).unwrap();
        assert_eq!(
            c.vendor.map(|v| (v.channel_id, v.name)),
            Some(("42".into(), "telegram".into()))
        );
        for (doc, why) in [
            (json!([1]), "not a JSON object"),
            (json!({"name": "x"}), "neither vendor nor external_channel_id"),
            (json!({"external_channel_id": ""}), "external_channel_id is empty"),
            (
                json!({"vendor": {"name": "chotot"}}),
                "vendor.channel_id is missing",
            ),
            (
                json!({"external_channel_id": "1", "metadata": 3}),
                "metadata is not an object",
            ),
        ] {
            assert_eq!(to_channel(doc).unwrap_err(), why);
        }
    }
}
