//! Fans `message-events` out to WatchMessages streams, by conversation or by
//! channel.
//!
//! One broadcast channel per watched scope, made on the first watcher and
//! removed when the last watcher's stream is dropped, so a scope nobody
//! watches costs nothing: not waiting for an event of that scope to notice,
//! which for a conversation that falls silent never comes. A conversation is
//! the record's key; a channel is the event's recipient, its vendor key, so a
//! reply filed under another conversation still reaches the channel's
//! watchers. While nobody watches a channel, events of unwatched
//! conversations cost one map look-up and are never decoded.
//!
//! Open streams are capped per gateway (`--max-watch-streams`): every stream
//! holds a scope's buffer and a share of the HTTP/2 connection, so without a
//! cap clients decide how much memory the gateway takes.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use chat4all_kafka::{Record, hops};
use chat4all_proto::v1::MessageEvent;
use chat4all_telemetry::HopTracer;
use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::status;

/// Events a watcher may fall behind its scope by before it is told so and
/// its stream ends.
///
/// tokio's broadcast allocates every slot up front (rounded up to a power
/// of two), so each watched scope pays for all of them while it is watched.
/// A slot is a mutex, two counters and an `Arc` (32 bytes): 8 KiB a scope,
/// 80 MiB at the default cap of 10,000 streams each on its own scope, where
/// 1,024 slots each holding a whole `MessageEvent` took about 650 KB a
/// scope. Fewer would still do for a client that stops reading, as HTTP/2's
/// stream window already holds its first 64 KiB (a couple of hundred
/// events); the margin is for the tail task, which hands over every record
/// it has fetched before a watcher woken on its worker gets to run.
const WATCHER_BUFFER: usize = 256;

const WATCHERS_GAUGE: &str = "chat4all_watchers";
const SCOPES_GAUGE: &str = "chat4all_watch_scopes";

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

/// Shared, so an event for a conversation and its channel is one allocation
/// however many watch it.
type Event = Arc<MessageEvent>;
type Senders = HashMap<String, broadcast::Sender<Event>>;

#[derive(Default)]
struct Scopes {
    by_conversation: Senders,
    by_vendor: Senders,
}

impl Scopes {
    fn senders<'a>(&'a mut self, scope: &'a WatchScope) -> (&'a mut Senders, &'a str) {
        match scope {
            WatchScope::Conversation(key) => (&mut self.by_conversation, key),
            WatchScope::Vendor(key) => (&mut self.by_vendor, key),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Watchers {
    scopes: Arc<Mutex<Scopes>>,
    /// A permit per open stream, given back when the stream is dropped.
    streams: Arc<Semaphore>,
    max_streams: u32,
    tracer: HopTracer,
    /// Ends every stream: a graceful shutdown waits for open streams.
    closing: CancellationToken,
}

impl Watchers {
    pub(crate) fn new(tracer: HopTracer, max_streams: u32) -> Self {
        metrics::describe_gauge!(WATCHERS_GAUGE, "Open WatchMessages streams.");
        metrics::describe_gauge!(
            SCOPES_GAUGE,
            "Conversations and channels with at least one open WatchMessages stream."
        );
        Self {
            scopes: Arc::default(),
            streams: Arc::new(Semaphore::new(max_streams as usize)),
            max_streams,
            tracer,
            closing: CancellationToken::new(),
        }
    }

    /// Ends every open stream now and every later one at once.
    pub(crate) fn close(&self) {
        self.closing.cancel();
    }

    /// A stream of the scope's events, or RESOURCE_EXHAUSTED when the
    /// gateway already serves as many streams as it may.
    pub(crate) fn subscribe(
        &self,
        scope: WatchScope,
    ) -> Result<impl Stream<Item = Result<MessageEvent, Status>> + Send + 'static, Status> {
        // The semaphore is never closed, so its only refusal is "no permit".
        let permit = Arc::clone(&self.streams)
            .try_acquire_owned()
            .map_err(|_| status::too_many_watchers(self.max_streams))?;
        let receiver = {
            let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
            let (map, key) = scopes.senders(&scope);
            match map.get(key) {
                Some(sender) => sender.subscribe(),
                None => {
                    let (sender, receiver) = broadcast::channel(WATCHER_BUFFER);
                    map.insert(key.to_owned(), sender);
                    metrics::gauge!(SCOPES_GAUGE).increment(1.0);
                    receiver
                }
            }
        };
        metrics::gauge!(WATCHERS_GAUGE).increment(1.0);
        let watch = Watch {
            events: Some(BroadcastStream::new(receiver)),
            scope,
            scopes: Arc::clone(&self.scopes),
            _permit: permit,
        };
        Ok(watch
            .map(|item| {
                item.map(Arc::unwrap_or_clone)
                    .map_err(|BroadcastStreamRecvError::Lagged(n)| status::watcher_lagged(n))
            })
            // A lagged watcher gets its error and the stream ends.
            .scan(false, |failed, item| {
                if *failed {
                    return futures::future::ready(None);
                }
                *failed = item.is_err();
                futures::future::ready(Some(item))
            })
            .take_until(self.closing.clone().cancelled_owned()))
    }

    /// Hands one `message-events` record to the watchers of its
    /// conversation and of its channel.
    pub(crate) fn dispatch(&self, record: &Record) {
        let scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        let conversation = record
            .key
            .as_deref()
            .and_then(|key| watched(&scopes.by_conversation, key));
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
            .and_then(|r| watched(&scopes.by_vendor, &vendor_key(&r.platform, &r.id)));
        if conversation.is_none() && channel.is_none() {
            return;
        }
        drop(scopes);
        // The last hop of the message's trace: the event reaches its watchers.
        let _hop = hops::process(&self.tracer, record);
        let event = Arc::new(event);
        if let Some(conversation) = conversation {
            let _ = conversation.send(Arc::clone(&event));
        }
        if let Some(channel) = channel {
            let _ = channel.send(event);
        }
    }
}

/// The scope's sender while someone listens. A scope is removed by its last
/// watcher's [`Watch`], not here, so this may briefly see one with nobody.
fn watched(map: &Senders, key: &str) -> Option<broadcast::Sender<Event>> {
    map.get(key).filter(|sender| sender.receiver_count() > 0).cloned()
}

/// One open stream: its receiver, and what its end gives back (its scope,
/// if no other stream watches it, and its permit).
struct Watch {
    /// An `Option` so that drop can let go of it before counting the
    /// scope's remaining receivers.
    events: Option<BroadcastStream<Event>>,
    scope: WatchScope,
    scopes: Arc<Mutex<Scopes>>,
    _permit: OwnedSemaphorePermit,
}

impl Stream for Watch {
    type Item = Result<Event, BroadcastStreamRecvError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.events.as_mut() {
            Some(events) => events.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        drop(self.events.take());
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, key) = scopes.senders(&self.scope);
        // Subscribing takes the same lock, so a new watcher of this scope
        // either holds a receiver already (and the count says so) or makes
        // the scope anew after it is gone.
        if map.get(key).is_some_and(|sender| sender.receiver_count() == 0) {
            map.remove(key);
            metrics::gauge!(SCOPES_GAUGE).decrement(1.0);
        }
        drop(scopes);
        metrics::gauge!(WATCHERS_GAUGE).decrement(1.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chat4all_kafka::RecordHeaders;
    use chat4all_proto::v1::Recipient;
    use futures::FutureExt as _;
    use prost::Message as _;
    use tonic::Code;

    use super::*;

    fn watchers(max_streams: u32) -> Watchers {
        Watchers::new(HopTracer::disabled(), max_streams)
    }

    fn conversation(key: &str) -> WatchScope {
        WatchScope::Conversation(key.to_owned())
    }

    fn scopes(watchers: &Watchers) -> (usize, usize) {
        let scopes = watchers.scopes.lock().unwrap();
        (scopes.by_conversation.len(), scopes.by_vendor.len())
    }

    fn record(conversation: &str, message_id: &str) -> Record {
        let event = MessageEvent {
            message_id: message_id.to_owned(),
            conversation_id: conversation.to_owned(),
            recipient: Some(Recipient {
                platform: "whatsapp".into(),
                id: "15551234567".into(),
            }),
            ..Default::default()
        };
        Record {
            topic: "message-events".into(),
            partition: 0,
            offset: 0,
            key: Some(conversation.to_owned()),
            payload: event.encode_to_vec(),
            headers: RecordHeaders::default(),
        }
    }

    #[test]
    fn a_scope_lives_exactly_as_long_as_its_last_stream() {
        let w = watchers(10);
        let first = w.subscribe(conversation("c1")).unwrap();
        let second = w.subscribe(conversation("c1")).unwrap();
        let channel = w.subscribe(WatchScope::Vendor("whatsapp:1".into())).unwrap();
        assert_eq!(scopes(&w), (1, 1));
        drop(first);
        assert_eq!(scopes(&w), (1, 1), "c1 still has a watcher");
        drop(second);
        assert_eq!(scopes(&w), (0, 1), "nobody watches c1: no event needed to notice");
        drop(channel);
        assert_eq!(scopes(&w), (0, 0));
    }

    #[tokio::test]
    async fn a_scope_made_anew_after_its_last_stream_left_gets_events() {
        let w = watchers(10);
        drop(w.subscribe(conversation("c1")).unwrap());
        let mut again = Box::pin(w.subscribe(conversation("c1")).unwrap());
        w.dispatch(&record("c1", "m1"));
        let event = again.next().await.unwrap().unwrap();
        assert_eq!(event.message_id, "m1");
    }

    #[test]
    fn past_the_cap_a_watch_is_refused_until_one_ends() {
        let w = watchers(2);
        let first = w.subscribe(conversation("c1")).unwrap();
        let _second = w.subscribe(conversation("c2")).unwrap();
        let refused = w.subscribe(conversation("c3")).err().unwrap();
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert!(refused.message().contains("--max-watch-streams"), "{refused:?}");
        assert_eq!(scopes(&w), (2, 0), "a refused watch leaves no scope behind");
        drop(first);
        assert!(w.subscribe(conversation("c3")).is_ok());
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_is_told_and_its_stream_ends() {
        let w = watchers(10);
        let mut slow = Box::pin(w.subscribe(conversation("c1")).unwrap());
        for i in 0..=WATCHER_BUFFER {
            w.dispatch(&record("c1", &format!("m{i}")));
        }
        let told = slow.next().await.unwrap().unwrap_err();
        assert_eq!(told.code(), Code::ResourceExhausted);
        assert!(told.message().contains("1 events behind"), "{told:?}");
        assert!(slow.next().await.is_none());
        drop(slow);
        assert_eq!(scopes(&w), (0, 0));
    }

    #[tokio::test]
    async fn closing_ends_every_stream() {
        let w = watchers(10);
        let mut open = Box::pin(w.subscribe(conversation("c1")).unwrap());
        w.close();
        assert!(open.next().now_or_never().expect("ended at once").is_none());
    }
}
