//! SENT messages whose receipt is overdue: on WhatsApp, Messenger and
//! Instagram a SENT message waits on the platform to say it reached the
//! phone. When that never comes, nothing in our pipeline is owed (so
//! nothing is re-published), but the message must not sit in SENT unseen:
//! each is marked once in its history, logged and counted, and a gauge
//! says how many are overdue now.

use std::collections::BTreeMap;
use std::time::Duration;

use chat4all_domain::convert::timeline_from_proto;
use chat4all_domain::{DeliveryStatus, MessageId, Platform, Timestamp};
use chat4all_proto::v1 as pb;
use chat4all_store::{SharedStore, StoreError};

/// The most overdue messages looked at in a round, oldest first. The gauge
/// counts only these, so it reads "at least" once it reaches this; newer
/// overdue messages are marked once older ones get their receipts.
pub(crate) const BATCH: u32 = 500;

/// What a round found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Overdue {
    /// Overdue now, marked before or not, by platform (capped by [`BATCH`]).
    pub(crate) now: BTreeMap<Platform, u64>,
    /// Marked by this round.
    pub(crate) marked: Vec<(MessageId, Platform)>,
}

/// Marks the receipts overdue `deadline` after SENT, and records them.
pub(crate) async fn round(store: &SharedStore, deadline: Duration) -> Result<Overdue, StoreError> {
    let now = Timestamp::now();
    // Created at or before its SENT: a message SENT before `now - deadline`
    // was created before it too. The store keeps the ones sent later out.
    let before = Timestamp::from_micros(now.as_micros().saturating_sub(micros(deadline)));
    let waiting = store.stuck_messages(DeliveryStatus::Sent, before, BATCH).await?;
    let overdue: Vec<(MessageId, Platform)> = waiting
        .iter()
        .filter(|m| sent_before(m, before))
        .filter_map(id_and_platform)
        .collect();
    let ids: Vec<MessageId> = overdue.iter().map(|(id, _)| *id).collect();
    let newly = store.mark_receipt_overdue(&ids, deadline).await?;
    let found = Overdue {
        now: by_platform(&overdue),
        marked: overdue.into_iter().filter(|(id, _)| newly.contains(id)).collect(),
    };
    record(&found, deadline);
    Ok(found)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Whether the message reached SENT before `before`: the store's answer is
/// by creation, and a message may have been sent long after (retries).
fn sent_before(message: &pb::Message, before: Timestamp) -> bool {
    timeline_from_proto(&message.timeline)
        .get(DeliveryStatus::Sent)
        .is_some_and(|sent| sent <= before)
}

/// A message the store answered with, or nothing (logged) when its id or
/// platform does not parse: one bad row must not stop the others.
fn id_and_platform(message: &pb::Message) -> Option<(MessageId, Platform)> {
    let platform = message.recipient.as_ref().map(|r| r.platform.as_str());
    match (message.id.parse(), platform.map(str::parse)) {
        (Ok(id), Some(Ok(platform))) => Some((id, platform)),
        _ => {
            tracing::warn!(message_id = %message.id, ?platform, "stuck SENT message with a bad id or platform");
            None
        }
    }
}

fn by_platform(overdue: &[(MessageId, Platform)]) -> BTreeMap<Platform, u64> {
    let mut counts: BTreeMap<Platform, u64> = receipt_platforms().map(|p| (p, 0)).collect();
    for (_, platform) in overdue {
        *counts.entry(*platform).or_default() += 1;
    }
    counts
}

/// Logs and counts what the round marked, and sets the gauge of every
/// receipt platform, zeros included, so it falls once receipts come.
fn record(found: &Overdue, deadline: Duration) {
    let deadline = humantime::format_duration(deadline).to_string();
    for (id, platform) in &found.marked {
        tracing::warn!(message_id = %id, %platform, %deadline, "no receipt within the deadline after SENT; marked overdue");
        metrics::counter!("chat4all_receipts_overdue_total", "platform" => platform.as_str()).increment(1);
    }
    for (platform, count) in &found.now {
        #[allow(clippy::cast_precision_loss)] // at most BATCH
        metrics::gauge!("chat4all_messages_awaiting_receipt_overdue", "platform" => platform.as_str())
            .set(*count as f64);
    }
}

/// Every receipt platform's series, at 0, from start-up: an `increase()`
/// alert over a series that first appears at 1 misses that first one.
pub(crate) fn register() {
    for platform in receipt_platforms() {
        metrics::counter!("chat4all_receipts_overdue_total", "platform" => platform.as_str()).increment(0);
    }
    not_mine();
}

fn receipt_platforms() -> impl Iterator<Item = Platform> {
    Platform::ALL.into_iter().filter(|p| p.reports_receipts())
}

/// Another replica reconciles now: its gauge is the one that counts, and
/// this one reads zero, so a sum over replicas counts each message once.
pub(crate) fn not_mine() {
    for platform in receipt_platforms() {
        metrics::gauge!("chat4all_messages_awaiting_receipt_overdue", "platform" => platform.as_str())
            .set(0.0);
    }
}
