//! The one contract every [`MessageStore`](crate::MessageStore) backend
//! honours, written once.
//!
//! Each check is a `pub async fn` over a [`SharedStore`]; [`run_all`] runs
//! them all, so a backend (the embedded one, the gRPC client in front of
//! it, Scylla) is tested by one line in its own crate's tests. Checks make
//! their own conversations, messages and channels, so they share a store with each
//! other and with whatever data it already holds.
//!
//! This is test code: it panics on any surprise, `unwrap` included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::SharedStore;

mod channels;
mod claims;
mod inbound;
mod messages;
mod receipts;
mod support;
mod transitions;

pub use channels::{
    channel_given_id_is_kept, channel_put_is_keyed_by_vendor, channel_without_vendor_key_is_invalid,
    channels_list_in_pages,
};
pub use claims::{
    claim_first_wins, expired_claims_are_stuck_again, expired_claims_tell_what_their_holder_left,
    named_leases_have_one_holder, released_claims_are_claimable_again, stuck_messages_are_found_oldest_first,
    watermarks_cover_what_was_sent_before_them, watermarks_keep_the_latest,
};
pub use inbound::{
    inbound_channel_without_sender_name_is_named_by_vendor_id, inbound_finds_an_existing_channel,
    inbound_first_message_creates_channel, inbound_key_expires_after_its_window,
    inbound_messages_are_never_stuck, inbound_redelivery_is_duplicate, inbound_without_key_is_invalid,
};
pub use messages::{idempotent_put, list_orders_by_written_time, list_pages_newest_first, put_then_get};
pub use receipts::{
    receipts_overdue_are_marked_once, sent_is_stuck_only_on_platforms_with_receipts,
    sent_leaves_stuck_once_a_receipt_comes,
};
pub use transitions::{
    backward_move_rejected, batch_in_order_with_full_history, concurrent_transitions_converge,
    delivered_supersedes_failed, happy_path, late_receipt_backfilled, receipt_by_platform_id,
    repeat_changes_nothing, unknown_message_not_found,
};

/// One check of the contract.
pub type Check = fn(SharedStore) -> BoxFuture<'static, ()>;

/// `(name, check)` pairs from the function names, so the two cannot drift.
macro_rules! checks {
    ($($check:ident),+ $(,)?) => {
        &[$((stringify!($check), |store| $check(store).boxed())),+]
    };
}

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = checks![
    put_then_get,
    idempotent_put,
    list_pages_newest_first,
    list_orders_by_written_time,
    happy_path,
    repeat_changes_nothing,
    backward_move_rejected,
    late_receipt_backfilled,
    delivered_supersedes_failed,
    receipt_by_platform_id,
    unknown_message_not_found,
    batch_in_order_with_full_history,
    concurrent_transitions_converge,
    claim_first_wins,
    released_claims_are_claimable_again,
    stuck_messages_are_found_oldest_first,
    expired_claims_tell_what_their_holder_left,
    expired_claims_are_stuck_again,
    sent_is_stuck_only_on_platforms_with_receipts,
    sent_leaves_stuck_once_a_receipt_comes,
    receipts_overdue_are_marked_once,
    named_leases_have_one_holder,
    watermarks_cover_what_was_sent_before_them,
    watermarks_keep_the_latest,
    channel_put_is_keyed_by_vendor,
    channel_given_id_is_kept,
    channel_without_vendor_key_is_invalid,
    channels_list_in_pages,
    inbound_first_message_creates_channel,
    inbound_channel_without_sender_name_is_named_by_vendor_id,
    inbound_redelivery_is_duplicate,
    inbound_key_expires_after_its_window,
    inbound_finds_an_existing_channel,
    inbound_without_key_is_invalid,
    inbound_messages_are_never_stuck,
];

/// Runs every check against `store`, in order, naming each on stderr so a
/// failure says which.
pub async fn run_all(store: SharedStore) {
    for (name, check) in CHECKS {
        eprintln!("store contract: {name}");
        check(store.clone()).await;
    }
}
