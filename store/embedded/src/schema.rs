//! The on-disk layout and how a file reaches it.
//!
//! The schema version is `PRAGMA user_version`: migration `n` (1-based)
//! takes a file from version `n - 1` to `n`, in one transaction, so a crash
//! leaves the file at one version or the next. A file newer than this build
//! is refused rather than half-understood.
//!
//! Every child table points at `messages.seq`, the integer key, rather than
//! the text id: history rows are the most numerous, and an integer key keeps
//! them and their index small.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{EmbeddedOptions, Synchronous};
use crate::db_error::db_error;
use chat4all_store::StoreError;

/// The migrations, in order; never edit one that shipped, append another.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8];

const V1: &str = "
CREATE TABLE messages (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    conversation_id     TEXT    NOT NULL,
    recipient_platform  TEXT    NOT NULL,
    recipient_id        TEXT    NOT NULL,
    text                TEXT    NOT NULL,
    source              TEXT    NOT NULL,
    trace_id            TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    accepted_at         INTEGER,
    routed_at           INTEGER,
    sent_at             INTEGER,
    delivered_at        INTEGER,
    read_at             INTEGER,
    failed_at           INTEGER,
    platform_message_id TEXT,
    failure_code        TEXT,
    failure_reason      TEXT,
    claimed_by          TEXT,
    claimed_at          INTEGER
) STRICT;

CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);

CREATE TABLE idempotency (
    key         TEXT    NOT NULL PRIMARY KEY,
    message_seq INTEGER NOT NULL REFERENCES messages (seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE status_history (
    message_seq INTEGER NOT NULL REFERENCES messages (seq),
    n           INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    hop         TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (message_seq, n)
) STRICT, WITHOUT ROWID;

CREATE TABLE external_ids (
    platform    TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    message_seq INTEGER NOT NULL REFERENCES messages (seq),
    PRIMARY KEY (platform, external_id)
) STRICT, WITHOUT ROWID;
";

/// Stuck-message look-ups scan only messages not yet routed: the partial
/// index holds a handful of rows however large the table grows.
const V2: &str = "
CREATE INDEX messages_accepted_by_age ON messages (created_at) WHERE status = 'ACCEPTED';
";

/// Channels: conversations with platform users, found by their vendor key.
/// `metadata` is a JSON object (the `google.protobuf.Struct` of the API), so
/// an operator can read it with the `sqlite3` shell. The second index serves
/// one vendor's channels in id order.
const V3: &str = "
CREATE TABLE channels (
    id                TEXT    NOT NULL PRIMARY KEY,
    vendor_name       TEXT    NOT NULL,
    vendor_channel_id TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    context           TEXT    NOT NULL,
    type              TEXT    NOT NULL,
    metadata          TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    UNIQUE (vendor_name, vendor_channel_id)
) STRICT;

CREATE INDEX channels_by_vendor ON channels (vendor_name, id);
";

/// Inbound messages: who wrote them, and the keys that tell a platform's
/// redelivery from a new message. A key lives until `expires_at` (micros);
/// the index lets each write purge a few expired keys without a scan, so
/// the table holds about one window's worth of keys however long it runs.
const V4: &str = "
ALTER TABLE messages ADD COLUMN sender_id   TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN sender_name TEXT NOT NULL DEFAULT '';

CREATE TABLE inbound_keys (
    platform          TEXT    NOT NULL,
    vendor_channel_id TEXT    NOT NULL,
    external_id       TEXT    NOT NULL,
    message_seq       INTEGER NOT NULL REFERENCES messages (seq),
    expires_at        INTEGER NOT NULL,
    PRIMARY KEY (platform, vendor_channel_id, external_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX inbound_keys_by_expiry ON inbound_keys (expires_at);
";

/// A conversation lists by the time a message was written, not by arrival:
/// history backfilled from a platform is old when it arrives.
const V5: &str = "
CREATE INDEX messages_by_conversation_time ON messages (conversation_id, created_at, id);
DROP INDEX messages_by_conversation;
";

/// Claims become leases that say what their holder left (a call in
/// flight, the platform's answer), named leases keep one job of a kind
/// running, and a message may ask to be sent again after an ambiguous call.
const V6: &str = "
ALTER TABLE messages ADD COLUMN claim_lease_until INTEGER;
ALTER TABLE messages ADD COLUMN claim_calling     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN answer_id         TEXT;
ALTER TABLE messages ADD COLUMN answered_at       INTEGER;
ALTER TABLE messages ADD COLUMN at_least_once     INTEGER NOT NULL DEFAULT 0;

CREATE TABLE leases (
    name   TEXT    NOT NULL PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
";

/// A platform's watermark receipt finds the messages to one recipient
/// sent before it, and is remembered for those whose SENT comes after it.
const V7: &str = "
CREATE INDEX messages_by_recipient_sent ON messages (recipient_platform, recipient_id, sent_at);

CREATE TABLE watermarks (
    platform     TEXT    NOT NULL,
    recipient_id TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    up_to        INTEGER NOT NULL,
    PRIMARY KEY (platform, recipient_id, status)
) STRICT, WITHOUT ROWID;
";

/// A SENT message on a platform that reports receipts waits on one: the
/// reconciler finds those past a deadline, and marks each overdue once
/// (`receipt_overdue_at`). The partial index holds only those still
/// waiting, not every Telegram message (whose SENT is final); its platform
/// list is `queries::receipt_platforms!`, which a test ties to the domain.
const V8: &str = "
ALTER TABLE messages ADD COLUMN receipt_overdue_at INTEGER;

CREATE INDEX messages_awaiting_receipt_by_age ON messages (created_at)
    WHERE status = 'SENT' AND recipient_platform IN ('whatsapp', 'instagram', 'messenger');
";

/// The one connection that writes: WAL, so readers never wait for it.
pub(super) fn open_writer(path: &Path, options: &EmbeddedOptions) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| open_failed(path, &e))?;
    conn.busy_timeout(options.busy_timeout).map_err(db_error)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "{} cannot use write-ahead logging (journal mode is {mode})",
            path.display()
        )));
    }
    // NORMAL in WAL mode syncs at checkpoints only: a killed process loses
    // nothing, a power cut may lose the last commits. FULL syncs each one.
    let synchronous = match options.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(db_error)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(db_error)?;
    Ok(conn)
}

/// A read-only connection: a bug in a read path cannot write.
pub(super) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_failed(path, &e))?;
    conn.busy_timeout(busy_timeout).map_err(db_error)?;
    Ok(conn)
}

/// The schema version this build writes.
const LATEST: i64 = MIGRATIONS.len() as i64;

/// Brings the file to the latest schema version.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_error)?;
    if !(0..=LATEST).contains(&found) {
        return Err(StoreError::Corrupt(format!(
            "schema version {found} is not one this build understands (0 to {LATEST})"
        )));
    }
    for (version, sql) in (1..).zip(MIGRATIONS) {
        if version <= found {
            continue;
        }
        let tx = conn.transaction().map_err(db_error)?;
        tx.execute_batch(sql).map_err(db_error)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        tracing::info!(version, "store schema migrated");
    }
    Ok(())
}

fn open_failed(path: &Path, error: &rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot open {}: {error}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_a_newer_file() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, LATEST);
        // A second run is a no-op, not a "table exists" error.
        migrate(&mut conn).unwrap();

        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(migrate(&mut conn), Err(StoreError::Corrupt(_))));
    }
}
