//! Fans `message-events` out to WatchMessages streams, by conversation.
//!
//! One broadcast channel per watched conversation, made on the first watcher
//! and dropped when the last one leaves; events of unwatched conversations
//! cost one map look-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chat4all_domain::ConversationId;
use chat4all_kafka::Record;
use chat4all_proto::v1::MessageEvent;
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// Events a slow watcher may fall behind by before it is told so.
const WATCHER_BUFFER: usize = 1024;

#[derive(Clone, Default)]
pub(crate) struct Watchers {
    by_conversation: Arc<Mutex<HashMap<String, broadcast::Sender<MessageEvent>>>>,
    /// Ends every stream: a graceful shutdown waits for open streams.
    closing: CancellationToken,
}

impl Watchers {
    /// Ends every open stream now and every later one at once.
    pub(crate) fn close(&self) {
        self.closing.cancel();
    }

    pub(crate) fn subscribe(
        &self,
        conversation: ConversationId,
    ) -> impl Stream<Item = Result<MessageEvent, Status>> + Send + 'static {
        let receiver = {
            let mut map = self
                .by_conversation
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            map.entry(conversation.as_str().to_owned())
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

    /// Hands one `message-events` record to the conversation's watchers.
    pub(crate) fn dispatch(&self, record: &Record) {
        let Some(key) = record.key.as_deref() else { return };
        let mut map = self
            .by_conversation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = map.get(key) else { return };
        if sender.receiver_count() == 0 {
            map.remove(key);
            return;
        }
        match chat4all_kafka::decode::<MessageEvent>(&record.payload) {
            Ok(event) => {
                let _ = sender.send(event);
            }
            Err(reason) => {
                tracing::warn!(%reason, offset = record.offset, "undecodable message event skipped")
            }
        }
    }
}

struct WatcherGauge;

impl Drop for WatcherGauge {
    fn drop(&mut self) {
        metrics::gauge!("chat4all_watchers").decrement(1.0);
    }
}
