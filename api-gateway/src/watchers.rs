//! Fans `message-events` out to WatchMessages streams, by conversation or by
//! channel.
//!
//! One broadcast channel per watched scope, made on the first watcher and
//! dropped when the last one leaves. A conversation is the record's key; a
//! channel is the event's recipient, its vendor key, so a reply filed under
//! another conversation still reaches the channel's watchers. While nobody
//! watches a channel, events of unwatched conversations cost one map look-up
//! and are never decoded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chat4all_kafka::{Record, hops};
use chat4all_proto::v1::MessageEvent;
use chat4all_telemetry::HopTracer;
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// Events a slow watcher may fall behind by before it is told so.
const WATCHER_BUFFER: usize = 1024;

/// What one stream follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WatchScope {
    Conversation(String),
    /// A channel's vendor key, as [`vendor_key`] writes it.
    Vendor(String),
}

/// `platform:vendor channel id`, the form a recipient takes on the API.
pub(crate) fn vendor_key(platform: &str, vendor_channel_id: &str) -> String {
    format!("{platform}:{vendor_channel_id}")
}

type Senders = HashMap<String, broadcast::Sender<MessageEvent>>;

#[derive(Default)]
struct Scopes {
    by_conversation: Senders,
    by_vendor: Senders,
}

#[derive(Clone)]
pub(crate) struct Watchers {
    scopes: Arc<Mutex<Scopes>>,
    tracer: HopTracer,
    /// Ends every stream: a graceful shutdown waits for open streams.
    closing: CancellationToken,
}

impl Watchers {
    pub(crate) fn new(tracer: HopTracer) -> Self {
        Self {
            scopes: Arc::default(),
            tracer,
            closing: CancellationToken::new(),
        }
    }

    /// Ends every open stream now and every later one at once.
    pub(crate) fn close(&self) {
        self.closing.cancel();
    }

    pub(crate) fn subscribe(
        &self,
        scope: WatchScope,
    ) -> impl Stream<Item = Result<MessageEvent, Status>> + Send + 'static {
        let receiver = {
            let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
            let (map, key) = match scope {
                WatchScope::Conversation(key) => (&mut scopes.by_conversation, key),
                WatchScope::Vendor(key) => (&mut scopes.by_vendor, key),
            };
            map.entry(key)
                .or_insert_with(|| broadcast::channel(WATCHER_BUFFER).0)
                .subscribe()
        };
        metrics::gauge!("chat4all_watchers").increment(1.0);
        BroadcastStream::new(receiver)
            .map(|item| {
                item.map_err(|BroadcastStreamRecvError::Lagged(n)| {
                    Status::resource_exhausted(format!(
                        "watcher fell {n} events behind; re-read the conversation with ListMessages and watch again"
                    ))
                })
            })
            // A lagged watcher gets its error and the stream ends. The state
            // also holds the gauge's guard, so the stream's end counts it out.
            .scan((false, WatcherGauge), |(failed, _gauge), item| {
                if *failed {
                    return futures::future::ready(None);
                }
                *failed = item.is_err();
                futures::future::ready(Some(item))
            })
            .take_until(self.closing.clone().cancelled_owned())
    }

    /// Hands one `message-events` record to the watchers of its
    /// conversation and of its channel.
    pub(crate) fn dispatch(&self, record: &Record) {
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        let conversation = record
            .key
            .as_deref()
            .and_then(|key| live_sender(&mut scopes.by_conversation, key));
        if conversation.is_none() && scopes.by_vendor.is_empty() {
            return;
        }
        let event = match chat4all_kafka::decode::<MessageEvent>(&record.payload) {
            Ok(event) => event,
            Err(reason) => {
                tracing::warn!(%reason, offset = record.offset, "undecodable message event skipped");
                return;
            }
        };
        let channel = event
            .recipient
            .as_ref()
            .and_then(|r| live_sender(&mut scopes.by_vendor, &vendor_key(&r.platform, &r.id)));
        if conversation.is_none() && channel.is_none() {
            return;
        }
        drop(scopes);
        // The last hop of the message's trace: the event reaches its watchers.
        let _hop = hops::process(&self.tracer, record);
        match (conversation, channel) {
            (Some(conversation), Some(channel)) => {
                let _ = conversation.send(event.clone());
                let _ = channel.send(event);
            }
            (Some(only), None) | (None, Some(only)) => {
                let _ = only.send(event);
            }
            (None, None) => {}
        }
    }
}

/// The scope's sender while someone listens; a scope whose last watcher
/// left is dropped here.
fn live_sender(map: &mut Senders, key: &str) -> Option<broadcast::Sender<MessageEvent>> {
    let sender = map.get(key)?;
    if sender.receiver_count() == 0 {
        map.remove(key);
        return None;
    }
    Some(sender.clone())
}

struct WatcherGauge;

impl Drop for WatcherGauge {
    fn drop(&mut self) {
        metrics::gauge!("chat4all_watchers").decrement(1.0);
    }
}
