//! What every backend stores, as plain column values, and the one mapping
//! between those and the messages, history entries and channels the API
//! shows: one file per table, since each backend reads and writes all three.
//!
//! Reading is two steps in every backend: its driver copies a row into one
//! of the `*Columns` structs here (strings and i64 micros, as SQLite and CQL
//! both hold them), then the conversions here parse them into domain types.
//! The second step is pure and shared, so what counts as corrupt is the
//! same whichever backend read the row, and is unit-tested without a
//! database. Statuses and outcomes are stored by name, not number, so an
//! operator with `sqlite3` or `cqlsh` reads them as they are.

mod channels;
mod history;
mod messages;

use chat4all_domain::DeliveryStatus;

pub use channels::{ChannelColumns, metadata_to_json};
pub use history::{HistoryColumns, HistoryEntry};
pub use messages::{DeliveryState, MessageColumns, StoredMessage};

fn status_from_name(name: &str) -> Option<DeliveryStatus> {
    DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == name)
}

/// Enough of a bad value to recognise it in a log, not a whole text.
fn truncated(value: &str) -> String {
    value.chars().take(64).collect()
}
