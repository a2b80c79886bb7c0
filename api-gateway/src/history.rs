//! Backfill: before a channel's page is read from our store, what the
//! platform's history holds for the same page and we never saw (a webhook
//! lost while we were down, messages from before the channel was connected)
//! is stored as inbound.
//!
//! Our own lines in the platform's history (`from_us`) are never stored:
//! the ones we sent are in the store already, under their platform id, and
//! ones sent outside Chat4All are dropped like their live echoes. A message
//! is known when a stored message of the conversation carries its platform
//! id, which holds however long ago it arrived; the store's inbound window
//! covers a webhook racing the backfill.
//!
//! A platform that fails or is slow costs the caller the backfill, never the
//! page: the answer is then what we hold, and the failure is logged and
//! counted.

use std::collections::HashSet;
use std::time::Duration;

use chat4all_domain::{ConversationId, MessageId, Platform, Timestamp};
use chat4all_proto::v1 as pb;
use chat4all_store::{InboundOutcome, MessageCursor, NewInbound, SharedStore};
use chat4all_telemetry::TraceContext;
use tonic::Status;

use crate::status;
use crate::vendors::Connectors;

/// Our pages read to learn which platform ids we hold; bounds the cost of a
/// page whose platform history reaches far past our own.
const MAX_KNOWN_PAGES: usize = 20;
const KNOWN_PAGE: u32 = 500;
/// Platform times may be refined within their second on arrival (the
/// adapter kit does so); the known-ids scan reads this far past the oldest.
const TIME_SLACK_MICROS: i64 = 60_000_000;

pub(crate) struct Backfill<'a> {
    pub(crate) store: &'a SharedStore,
    pub(crate) connectors: &'a Connectors,
    pub(crate) dedup_window: Duration,
}

impl Backfill<'_> {
    /// Stores what the platform holds before `before` (at most `limit`) and
    /// we never saw; returns how many were stored.
    pub(crate) async fn page(
        &self,
        conversation: &ConversationId,
        before: Option<Timestamp>,
        limit: u32,
    ) -> Result<u32, Status> {
        let Some((platform, vendor_channel_id)) = self.history_source(conversation).await? else {
            return Ok(0);
        };
        let request = pb::ConnectorListMessagesRequest {
            vendor_channel_id: vendor_channel_id.clone(),
            user_id: String::new(),
            limit,
            before: before.map(Into::into),
        };
        let history = match self.connectors.history(platform, request).await {
            Ok(history) => history,
            Err(status) => {
                failed(platform, "history", &status);
                return Ok(0);
            }
        };
        let theirs: Vec<pb::InboundMessage> = history
            .into_iter()
            .filter(|m| !m.from_us && !m.external_message_id.is_empty())
            .collect();
        let Some(oldest) = theirs.iter().map(at).min() else {
            return Ok(0);
        };
        let known = self.known_platform_ids(conversation, before, oldest).await?;
        let mut stored = 0;
        for message in theirs {
            if known.contains(&message.external_message_id) {
                continue;
            }
            let result = self
                .store
                .put_inbound(NewInbound {
                    id: MessageId::generate(),
                    platform,
                    vendor_channel_id: vendor_channel_id.clone(),
                    at: at(&message),
                    external_message_id: message.external_message_id,
                    sender_id: message.sender_id,
                    sender_name: message.sender_name,
                    text: message.text,
                    trace_id: TraceContext::new_root().trace_id(),
                    dedup_window: self.dedup_window,
                })
                .await
                .map_err(status::store)?;
            if result.outcome == InboundOutcome::Stored {
                stored += 1;
            }
        }
        if stored > 0 {
            metrics::counter!("chat4all_backfilled_messages_total", "platform" => platform.as_str())
                .increment(u64::from(stored));
            tracing::info!(%platform, conversation = %conversation, stored, "history backfilled");
        }
        Ok(stored)
    }

    /// The channel behind the conversation, when its platform keeps history
    /// and its connector is configured.
    async fn history_source(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<(Platform, String)>, Status> {
        let Some(channel) = self
            .store
            .get_channel(conversation.as_str())
            .await
            .map_err(status::store)?
        else {
            return Ok(None);
        };
        let Some(vendor) = channel.vendor else {
            return Ok(None);
        };
        let Ok(platform) = vendor.name.parse::<Platform>() else {
            return Ok(None);
        };
        if !self.connectors.serves(platform) {
            return Ok(None);
        }
        match self.connectors.capabilities(platform).await {
            Ok(capabilities) if capabilities.history => Ok(Some((platform, vendor.channel_id))),
            Ok(_) => Ok(None),
            Err(status) => {
                failed(platform, "describe", &status);
                Ok(None)
            }
        }
    }

    /// The platform ids of what we hold from `before` back to `oldest`.
    async fn known_platform_ids(
        &self,
        conversation: &ConversationId,
        before: Option<Timestamp>,
        oldest: Timestamp,
    ) -> Result<HashSet<String>, Status> {
        let floor = oldest.as_micros().saturating_sub(TIME_SLACK_MICROS);
        let mut cursor = before.map(|at| {
            MessageCursor::older_than(Timestamp::from_micros(
                at.as_micros().saturating_add(TIME_SLACK_MICROS),
            ))
            .encode()
        });
        let mut known = HashSet::new();
        for _ in 0..MAX_KNOWN_PAGES {
            let page = self
                .store
                .list_messages(conversation, cursor.as_deref(), KNOWN_PAGE)
                .await
                .map_err(status::store)?;
            let reached_floor = page
                .messages
                .last()
                .and_then(|m| m.created_at)
                .is_some_and(|t| Timestamp::from(t).as_micros() < floor);
            known.extend(
                page.messages
                    .into_iter()
                    .map(|m| m.platform_message_id)
                    .filter(|id| !id.is_empty()),
            );
            match page.next_cursor {
                Some(next) if !reached_floor => cursor = Some(next),
                _ => break,
            }
        }
        Ok(known)
    }
}

fn at(message: &pb::InboundMessage) -> Timestamp {
    message.at.map_or_else(Timestamp::now, Timestamp::from)
}

fn failed(platform: Platform, call: &'static str, status: &Status) {
    metrics::counter!("chat4all_backfill_failures_total", "platform" => platform.as_str(), "call" => call)
        .increment(1);
    tracing::warn!(%platform, call, code = ?status.code(), reason = status.message(), "history backfill skipped");
}
