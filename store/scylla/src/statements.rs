//! Every CQL statement the backend runs, as text, and their prepared form.
//!
//! The text lives in one table ([`ALL`]) so unit tests can read all of it
//! without a cluster: no statement filters (every `WHERE` names a partition
//! key, so no `ALLOW FILTERING`), conditional writes are exactly the ones
//! declared [`Kind::Lwt`], and keys that must expire carry `USING TTL`.
//!
//! Each statement is prepared once, when the store connects: the driver
//! then sends only its id and values, and, knowing which bound values form
//! the partition key, routes each request to a replica that owns it.
//!
//! Tables are named without their keyspace: the session's keyspace is the
//! configured one (`USE` after migrating), so one text serves any keyspace.

use scylla::client::session::Session;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;

use chat4all_store::StoreError;

/// How a statement is run, which decides how it may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A read at the configured consistency. Idempotent.
    Read,
    /// A read at SERIAL consistency: after losing a transaction, it sees the
    /// winner's write even while that is still being committed. Idempotent.
    SerialRead,
    /// A write whose repetition changes nothing (same key, same values).
    Write,
    /// A lightweight transaction: `IF …`. Not idempotent: a retry after a
    /// timeout could report "not applied" for the very write that applied,
    /// so the driver must not retry it on its own.
    Lwt,
}

/// One statement: its name (the field of [`Statements`]), kind and text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cql {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) text: &'static str,
}

/// The columns of `messages`, in the order [`super::rows::MessageRecord`]
/// declares them.
macro_rules! message_columns {
    () => {
        "id, conversation_id, recipient_platform, recipient_id, body, source, trace_id, sender_id, \
         sender_name, status, created_at, accepted_at, routed_at, sent_at, delivered_at, read_at, \
         failed_at, platform_message_id, failure_code, failure_reason, version"
    };
}

/// The columns of `channels`, in the order [`super::rows::ChannelRecord`]
/// declares them.
macro_rules! channel_columns {
    () => {
        "id, vendor_name, vendor_channel_id, name, context, kind, metadata, created_at"
    };
}

/// Declares the statements once: the [`ALL`] table and the [`Statements`]
/// struct holding each one prepared, so the two cannot drift.
macro_rules! statements {
    ($($(#[doc = $doc:literal])* $field:ident: $kind:ident = $text:expr;)+) => {
        /// Every statement, in declaration order.
        pub(super) const ALL: &[Cql] = &[$(Cql {
            name: stringify!($field),
            kind: Kind::$kind,
            text: $text,
        }),+];

        /// Every statement, prepared.
        pub(super) struct Statements {
            $($(#[doc = $doc])* pub(super) $field: PreparedStatement,)+
        }

        impl Statements {
            /// Prepares every statement; `serial` is the consistency of
            /// [`Kind::SerialRead`] statements.
            pub(super) async fn prepare(session: &Session, serial: Consistency) -> Result<Self, StoreError> {
                let mut all = ALL.iter();
                let mut next = || all.next().ok_or_else(|| {
                    StoreError::Unavailable("statement table shorter than the statements".to_owned())
                });
                Ok(Self {
                    $($field: prepare(session, next()?, serial).await?,)+
                })
            }
        }
    };
}

statements! {
    // Messages.
    /// A new message; not applied when the id is taken.
    insert_message: Lwt = concat!(
        "INSERT INTO messages (", message_columns!(), ") VALUES \
         (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
    );
    message: Read = concat!("SELECT ", message_columns!(), " FROM messages WHERE id = ?");
    /// The message as the last transaction left it.
    message_serial: SerialRead = concat!("SELECT ", message_columns!(), " FROM messages WHERE id = ?");
    message_exists: Read = "SELECT id FROM messages WHERE id = ?";
    /// A transition: the new state, only if nobody changed it since it was
    /// read (`version` counts the changes).
    update_state: Lwt = "UPDATE messages SET status = ?, accepted_at = ?, routed_at = ?, sent_at = ?, \
         delivered_at = ?, read_at = ?, failed_at = ?, failure_code = ?, failure_reason = ?, \
         platform_message_id = ?, version = ? WHERE id = ? IF version = ?";

    // Status history.
    insert_history: Write = "INSERT INTO status_history (message_id, recorded_at, entry, status, at, hop, \
         outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    history: Read = "SELECT recorded_at, status, at, hop, outcome, detail FROM status_history \
         WHERE message_id = ?";

    // A conversation's messages, newest first.
    insert_conversation_message: Write = "INSERT INTO conversation_messages \
         (conversation_id, bucket, created_at, message_id) VALUES (?, ?, ?, ?)";
    insert_conversation_bucket: Write =
        "INSERT INTO conversation_buckets (conversation_id, bucket) VALUES (?, ?)";
    /// The conversation's buckets at or before one, newest first.
    conversation_buckets: Read =
        "SELECT bucket FROM conversation_buckets WHERE conversation_id = ? AND bucket <= ?";
    /// The newest messages of one bucket.
    conversation_page: Read = "SELECT created_at, message_id FROM conversation_messages \
         WHERE conversation_id = ? AND bucket = ? LIMIT ?";
    /// The messages of one bucket older than a position, newest first.
    conversation_page_before: Read = "SELECT created_at, message_id FROM conversation_messages \
         WHERE conversation_id = ? AND bucket = ? AND (created_at, message_id) < (?, ?) LIMIT ?";

    // Messages waiting in ACCEPTED or ROUTED, for the reconciler.
    insert_pending: Write =
        "INSERT INTO pending_messages (status, bucket, created_at, message_id) VALUES (?, ?, ?, ?)";
    delete_pending: Write = "DELETE FROM pending_messages \
         WHERE status = ? AND bucket = ? AND created_at = ? AND message_id = ?";
    /// One bucket's waiting messages created before a time, oldest first.
    pending: Read = "SELECT created_at, message_id FROM pending_messages \
         WHERE status = ? AND bucket = ? AND created_at < ? LIMIT ?";

    // Platform ids.
    /// The first message to carry a platform id keeps it.
    insert_external_id: Lwt = "INSERT INTO external_ids (platform, external_id, message_id) \
         VALUES (?, ?, ?) IF NOT EXISTS";
    external_id: Read = "SELECT message_id FROM external_ids WHERE platform = ? AND external_id = ?";

    // Idempotency keys.
    idempotency_key: Read =
        "SELECT message_id, written_at FROM idempotency_keys WHERE idempotency_key = ?";
    idempotency_key_serial: SerialRead =
        "SELECT message_id, written_at FROM idempotency_keys WHERE idempotency_key = ?";
    insert_idempotency_key: Lwt = "INSERT INTO idempotency_keys (idempotency_key, message_id, written_at) \
         VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?";
    /// Moves a key whose message was never written to a new message.
    take_over_idempotency_key: Lwt = "UPDATE idempotency_keys USING TTL ? SET message_id = ?, \
         written_at = ? WHERE idempotency_key = ? IF message_id = ?";

    // Claims: leases on the one platform call (`send_claims`; the
    // lease-less `claims` of schema version 1 is no longer written).
    insert_send_claim: Lwt = "INSERT INTO send_claims (message_id, claimant, claimed_at, lease_until, \
         calling) VALUES (?, ?, ?, ?, true) IF NOT EXISTS";
    send_claim: Read = "SELECT claimant, lease_until, calling, answer_id, answer_at FROM send_claims \
         WHERE message_id = ?";
    send_claim_serial: SerialRead = "SELECT claimant, lease_until, calling, answer_id, answer_at \
         FROM send_claims WHERE message_id = ?";
    /// An expired claim, to whoever read it last.
    take_over_send_claim: Lwt = "UPDATE send_claims SET claimant = ?, claimed_at = ?, lease_until = ?, \
         calling = true WHERE message_id = ? IF claimant = ? AND lease_until = ?";
    renew_send_claim: Lwt =
        "UPDATE send_claims SET lease_until = ?, calling = ? WHERE message_id = ? IF claimant = ?";
    answer_send_claim: Lwt = "UPDATE send_claims SET answer_id = ?, answer_at = ?, calling = false \
         WHERE message_id = ? IF EXISTS";
    delete_send_claim: Lwt = "DELETE FROM send_claims WHERE message_id = ? IF claimant = ?";

    // Messages awaiting a receipt, by recipient.
    insert_awaiting: Write = "INSERT INTO awaiting_receipts (platform, recipient_id, sent_at, message_id) \
         VALUES (?, ?, ?, ?)";
    delete_awaiting: Write = "DELETE FROM awaiting_receipts WHERE platform = ? AND recipient_id = ? \
         AND sent_at = ? AND message_id = ?";
    awaiting: Read = "SELECT message_id FROM awaiting_receipts WHERE platform = ? AND recipient_id = ? \
         AND sent_at <= ? LIMIT ?";

    insert_watermark: Write =
        "INSERT INTO watermarks (platform, recipient_id, status, up_to) VALUES (?, ?, ?, ?)";
    latest_watermark: Read =
        "SELECT up_to FROM watermarks WHERE platform = ? AND recipient_id = ? AND status = ? LIMIT 1";

    /// Marks a receipt overdue; not applied when it was marked before.
    insert_receipt_overdue: Lwt =
        "INSERT INTO receipts_overdue (message_id, marked_at) VALUES (?, ?) IF NOT EXISTS";

    // Named leases.
    insert_lease: Lwt = "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) IF NOT EXISTS";
    lease_serial: SerialRead = "SELECT holder, until FROM leases WHERE name = ?";
    take_lease: Lwt = "UPDATE leases SET holder = ?, until = ? WHERE name = ? IF holder = ? AND until = ?";

    // Channels.
    /// A new channel; not applied when the id is taken.
    insert_channel: Lwt = concat!(
        "INSERT INTO channels (", channel_columns!(), ") VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
    );
    channel: Read = concat!("SELECT ", channel_columns!(), " FROM channels WHERE id = ?");
    channel_serial: SerialRead = concat!("SELECT ", channel_columns!(), " FROM channels WHERE id = ?");
    /// A channel's mutable fields; conditional because the row was written
    /// by a transaction, and plain writes must not mix with those on the
    /// same cells.
    update_channel: Lwt =
        "UPDATE channels SET name = ?, context = ?, kind = ?, metadata = ? WHERE id = ? IF EXISTS";
    /// Undoes a channel that lost the race for its vendor key.
    delete_channel: Lwt = "DELETE FROM channels WHERE id = ? IF vendor_name = ? AND vendor_channel_id = ?";
    insert_channel_vendor: Lwt = "INSERT INTO channels_by_vendor (vendor_name, vendor_channel_id, \
         channel_id) VALUES (?, ?, ?) IF NOT EXISTS";
    channel_vendor: Read = "SELECT channel_id FROM channels_by_vendor \
         WHERE vendor_name = ? AND vendor_channel_id = ?";
    channel_vendor_serial: SerialRead = "SELECT channel_id FROM channels_by_vendor \
         WHERE vendor_name = ? AND vendor_channel_id = ?";
    insert_channel_listing: Write =
        "INSERT INTO channel_listing (scope, shard, channel_id) VALUES (?, ?, ?)";
    /// One shard of a listing, in id order, after an id.
    channel_listing: Read = "SELECT channel_id FROM channel_listing \
         WHERE scope = ? AND shard = ? AND channel_id > ? LIMIT ?";

    // Inbound de-duplication keys.
    insert_inbound_key: Lwt = "INSERT INTO inbound_keys (platform, vendor_channel_id, external_id, \
         message_id, expires_at, written_at) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?";
    inbound_key_serial: SerialRead = "SELECT message_id, expires_at, written_at FROM inbound_keys \
         WHERE platform = ? AND vendor_channel_id = ? AND external_id = ?";
    /// Moves a key past its window (or whose message was never written)
    /// to a new message.
    take_over_inbound_key: Lwt = "UPDATE inbound_keys USING TTL ? SET message_id = ?, expires_at = ?, \
         written_at = ? WHERE platform = ? AND vendor_channel_id = ? AND external_id = ? \
         IF message_id = ?";
}

pub(super) async fn prepare(
    session: &Session,
    cql: &Cql,
    serial: Consistency,
) -> Result<PreparedStatement, StoreError> {
    let mut prepared = session
        .prepare(cql.text)
        .await
        .map_err(|e| StoreError::Unavailable(format!("preparing {}: {e}", cql.name)))?;
    prepared.set_is_idempotent(cql.kind != Kind::Lwt);
    if cql.kind == Kind::SerialRead {
        prepared.set_consistency(serial);
    }
    Ok(prepared)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn upper(cql: &Cql) -> String {
        cql.text.to_ascii_uppercase()
    }

    #[test]
    fn names_are_unique_and_texts_single_statements() {
        let names: HashSet<_> = ALL.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), ALL.len());
        for cql in ALL {
            assert!(!cql.text.contains(';'), "{}: one statement only", cql.name);
            assert!(!cql.text.contains("  "), "{}: {:?}", cql.name, cql.text);
        }
    }

    #[test]
    fn nothing_filters() {
        for cql in ALL {
            assert!(!upper(cql).contains("ALLOW FILTERING"), "{}", cql.name);
        }
    }

    #[test]
    fn conditional_writes_are_exactly_the_transactions() {
        for cql in ALL {
            let text = upper(cql);
            let conditional = text.contains(" IF ");
            assert_eq!(conditional, cql.kind == Kind::Lwt, "{}: {}", cql.name, cql.text);
            let reads = text.starts_with("SELECT ");
            assert_eq!(
                reads,
                matches!(cql.kind, Kind::Read | Kind::SerialRead),
                "{}",
                cql.name
            );
        }
        let lwt = |name: &str| ALL.iter().find(|c| c.name == name).unwrap();
        for name in [
            "insert_message",
            "update_state",
            "insert_external_id",
            "insert_idempotency_key",
            "insert_send_claim",
            "take_over_send_claim",
            "renew_send_claim",
            "answer_send_claim",
            "delete_send_claim",
            "insert_lease",
            "take_lease",
            "insert_channel",
            "insert_channel_vendor",
            "insert_inbound_key",
            "insert_receipt_overdue",
        ] {
            assert_eq!(lwt(name).kind, Kind::Lwt, "{name}");
        }
        assert!(lwt("update_state").text.ends_with("IF version = ?"));
    }

    #[test]
    fn keys_that_must_expire_carry_a_ttl() {
        let with_ttl: Vec<_> = ALL
            .iter()
            .filter(|c| upper(c).contains("USING TTL ?"))
            .map(|c| c.name)
            .collect();
        assert_eq!(
            with_ttl,
            [
                "insert_idempotency_key",
                "take_over_idempotency_key",
                "insert_inbound_key",
                "take_over_inbound_key"
            ]
        );
        for name in ["insert_idempotency_key", "insert_inbound_key"] {
            let cql = ALL.iter().find(|c| c.name == name).unwrap();
            assert!(
                cql.text.ends_with("IF NOT EXISTS USING TTL ?"),
                "{name}: {}",
                cql.text
            );
        }
    }

    #[test]
    fn every_read_names_its_whole_partition_key() {
        // The partition key of each table, as the schema declares it.
        let keys: &[(&str, &[&str])] = &[
            ("messages", &["id"]),
            ("status_history", &["message_id"]),
            ("conversation_messages", &["conversation_id", "bucket"]),
            ("conversation_buckets", &["conversation_id"]),
            ("pending_messages", &["status", "bucket"]),
            ("external_ids", &["platform", "external_id"]),
            ("idempotency_keys", &["idempotency_key"]),
            ("send_claims", &["message_id"]),
            ("leases", &["name"]),
            ("receipts_overdue", &["message_id"]),
            ("awaiting_receipts", &["platform", "recipient_id"]),
            ("watermarks", &["platform", "recipient_id", "status"]),
            ("channels", &["id"]),
            ("channels_by_vendor", &["vendor_name", "vendor_channel_id"]),
            ("channel_listing", &["scope", "shard"]),
            ("inbound_keys", &["platform", "vendor_channel_id", "external_id"]),
        ];
        for cql in ALL.iter().filter(|c| c.text.contains(" WHERE ")) {
            let table = keys
                .iter()
                .find(|(t, _)| {
                    cql.text.contains(&format!("FROM {t} ")) || cql.text.starts_with(&format!("UPDATE {t} "))
                })
                .unwrap_or_else(|| panic!("{}: unknown table", cql.name));
            let clause = cql.text.split(" WHERE ").nth(1).unwrap();
            for column in table.1 {
                assert!(
                    clause.starts_with(&format!("{column} = ?"))
                        || clause.contains(&format!(" AND {column} = ?")),
                    "{}: {column} missing from WHERE {clause}",
                    cql.name
                );
            }
        }
    }

    #[test]
    fn column_lists_match_their_placeholders() {
        let insert = ALL.iter().find(|c| c.name == "insert_message").unwrap();
        let columns = message_columns!().split(',').count();
        assert_eq!(insert.text.matches('?').count(), columns);
        let channel = ALL.iter().find(|c| c.name == "insert_channel").unwrap();
        assert_eq!(
            channel.text.matches('?').count(),
            channel_columns!().split(',').count()
        );
    }
}
