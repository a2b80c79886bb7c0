//! Page cursors and page sizes.
//!
//! A cursor is the `seq` of the last message a page showed, in decimal: the
//! next page is everything older, which stays correct while new messages
//! arrive (an offset would shift). Callers treat it as opaque; it is
//! validated anyway, since it comes back from outside.

use crate::StoreError;
use crate::model::CURSOR_FIELD;

/// A page when the caller asks for none in particular (`limit` 0).
pub(super) const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page served, whatever the caller asks.
pub(super) const MAX_PAGE_SIZE: u32 = 500;

pub(super) fn encode(seq: i64) -> String {
    seq.to_string()
}

pub(super) fn decode(cursor: &str) -> Result<i64, StoreError> {
    let invalid = |reason: &str| StoreError::Invalid {
        field: CURSOR_FIELD,
        reason: reason.to_owned(),
    };
    // `parse` alone would take a sign; a cursor never has one.
    if cursor.is_empty() || !cursor.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("not a cursor from a previous page"));
    }
    match cursor.parse::<i64>() {
        Ok(seq) if seq > 0 => Ok(seq),
        _ => Err(invalid("not a cursor from a previous page")),
    }
}

pub(super) fn page_size(limit: u32) -> u32 {
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
    fn cursors_round_trip() {
        for seq in [1, 42, i64::MAX] {
            assert_eq!(decode(&encode(seq)).unwrap(), seq);
        }
    }

    #[test]
    fn malformed_cursors_blame_the_page_token() {
        for bad in ["", "abc", "-1", "+1", "0", " 1", "1.5", "99999999999999999999"] {
            match decode(bad) {
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
