//! Page sizes and channel-page cursors, one rule for every backend, so a
//! caller gets the same page from any of them.
//!
//! A conversation page's cursor is [`crate::MessageCursor`]. A channel
//! page's cursor is the last channel's id, hex-encoded: ids are free text (a
//! migrated channel keeps its legacy id), and the encoding keeps the cursor
//! opaque and lets a hand-made one be refused.

use crate::StoreError;
use crate::backend_rules::CURSOR_FIELD;

/// A page when the caller asks for none in particular (`limit` 0).
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page served, whatever the caller asks.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The cursor after a page whose last key is `key`.
pub fn encode_key(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_key(cursor: &str) -> Result<String, StoreError> {
    let invalid = || StoreError::Invalid {
        field: CURSOR_FIELD,
        reason: "not a cursor from a previous page".to_owned(),
    };
    // Lower-case only, as `encode_key` writes: one cursor per key.
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let bytes = cursor.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let key = bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(key).map_err(|_| invalid())
}

pub fn page_size(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn key_cursors_round_trip_and_refuse_what_was_not_made_here() {
        for key in ["0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "legacy:42", "ü ✓", "a"] {
            assert_eq!(decode_key(&encode_key(key)).unwrap(), key);
        }
        for bad in ["", "abc", "zz", "6G", "6A", "ff", "c3"] {
            match decode_key(bad) {
                Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "page_token", "{bad:?}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(0), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(3), 3);
        assert_eq!(page_size(u32::MAX), MAX_PAGE_SIZE);
    }
}
