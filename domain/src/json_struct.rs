//! `google.protobuf.Struct` ⇄ JSON objects, written once for every edge that
//! stores or moves free-form metadata (the store's `channels.metadata`
//! column, the migration of legacy channels).
//!
//! Strings, bools, null, nested objects and lists convert exactly. Numbers
//! become `f64` on the way in, because that is all a `Struct` can hold; a
//! non-finite number (which JSON cannot carry) comes back as null.

use std::collections::BTreeMap;

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde_json::{Map, Number, Value as Json};

/// The `Struct` holding the same fields as a JSON object.
pub fn struct_from_json(object: Map<String, Json>) -> Struct {
    Struct {
        fields: object
            .into_iter()
            .map(|(key, value)| (key, value_from_json(value)))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The JSON object holding the same fields as a `Struct`.
pub fn struct_to_json(s: &Struct) -> Map<String, Json> {
    s.fields
        .iter()
        .map(|(key, value)| (key.clone(), value_to_json(value)))
        .collect()
}

fn value_from_json(value: Json) -> Value {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(b),
        // `as_f64` is None only for arbitrary-precision numbers, which this
        // build does not enable; null is the honest fallback.
        Json::Number(n) => n.as_f64().map_or(Kind::NullValue(0), Kind::NumberValue),
        Json::String(s) => Kind::StringValue(s),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(value_from_json).collect(),
        }),
        Json::Object(object) => Kind::StructValue(struct_from_json(object)),
    };
    Value { kind: Some(kind) }
}

fn value_to_json(value: &Value) -> Json {
    match &value.kind {
        // A Value with no kind set is how proto3 spells "nothing": null.
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NumberValue(n)) => Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::ListValue(list)) => Json::Array(list.values.iter().map(value_to_json).collect()),
        Some(Kind::StructValue(s)) => Json::Object(struct_to_json(s)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(o) => o,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let original = object(json!({
            "item_name": "Honda Wave",
            "item_price": 12500000.0,
            "negative": -1.5,
            "sold": false,
            "nothing": null,
            "tags": ["a", 1.0, true, null, {"deep": ["x"]}],
            "vendor": {"settings": {"auto_reply": true, "empty": {}}, "list": []},
            "unicode": "xe máy cũ ✓",
        }));
        let s = struct_from_json(original.clone());
        assert_eq!(struct_to_json(&s), original);
        assert_eq!(
            s.fields["item_name"].kind,
            Some(Kind::StringValue("Honda Wave".into()))
        );
        assert_eq!(s.fields["nothing"].kind, Some(Kind::NullValue(0)));
    }

    #[test]
    fn numbers_become_doubles() {
        let s = struct_from_json(object(json!({"n": 3, "big": 9007199254740993_u64})));
        assert_eq!(s.fields["n"].kind, Some(Kind::NumberValue(3.0)));
        // Past 2^53 a double cannot hold every integer: it is rounded.
        assert_eq!(s.fields["big"].kind, Some(Kind::NumberValue(9007199254740992.0)));
        assert_eq!(struct_to_json(&s)["n"], json!(3.0));
    }

    #[test]
    fn what_json_cannot_hold_is_null() {
        let s = Struct {
            fields: [
                ("unset".to_owned(), Value { kind: None }),
                (
                    "nan".to_owned(),
                    Value {
                        kind: Some(Kind::NumberValue(f64::NAN)),
                    },
                ),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(struct_to_json(&s), object(json!({"unset": null, "nan": null})));
        assert!(struct_to_json(&Struct::default()).is_empty());
    }
}
