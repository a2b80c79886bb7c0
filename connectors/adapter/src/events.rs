//! The queue between the webhook (producer) and `StreamEvents` (consumer).
//!
//! Bounded on purpose: when nobody drains it (the sidecar is down) events
//! wait here up to the capacity, and beyond that the webhook answers 503 so
//! the platform keeps them and retries, rather than the adapter growing
//! without bound. A webhook's events are queued all or nothing, so a retried
//! webhook does not leave half of itself behind twice.
//!
//! One subscriber streams at a time, and the newest wins: a sidecar that
//! reconnects must not wait for the server to notice that its old stream is
//! dead. An event leaves the shared queue only once the subscriber's own
//! one-slot buffer has room, so a subscriber that goes away takes at most the
//! events already handed to the transport with it.

use std::sync::{Arc, Mutex, PoisonError};

use chat4all_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// The queue cannot take a webhook's events now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the event queue is full")]
    Full,
    #[error("the event queue is closed")]
    Closed,
}

/// The stream one subscriber of `StreamEvents` reads.
pub type EventStream = ReceiverStream<Result<pb::PlatformEvent, Status>>;

/// A bounded queue of platform events with one (replaceable) subscriber.
#[derive(Debug)]
pub struct EventQueue {
    platform: &'static str,
    tx: mpsc::Sender<pb::PlatformEvent>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<pb::PlatformEvent>>>,
    current: Mutex<CancellationToken>,
    stop: CancellationToken,
}

impl EventQueue {
    /// A queue holding up to `capacity` events (at least one).
    pub fn new(platform: &'static str, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Self {
            platform,
            tx,
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            current: Mutex::new(CancellationToken::new()),
            stop: CancellationToken::new(),
        }
    }

    /// Queues all of `events` or none of them.
    pub fn offer(&self, events: Vec<pb::PlatformEvent>) -> Result<(), QueueError> {
        if events.is_empty() {
            return Ok(());
        }
        let permits = self.tx.try_reserve_many(events.len()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(()) => QueueError::Full,
            mpsc::error::TrySendError::Closed(()) => QueueError::Closed,
        })?;
        for (permit, event) in permits.zip(events) {
            permit.send(event);
        }
        self.record_depth();
        Ok(())
    }

    /// How many events wait.
    pub fn len(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most events the queue holds.
    pub fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }

    /// Starts streaming to a new subscriber, ending the previous one's stream.
    /// Must be called inside a tokio runtime.
    pub fn subscribe(self: &Arc<Self>) -> EventStream {
        let token = self.stop.child_token();
        let previous = {
            let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *current, token.clone())
        };
        previous.cancel();
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(Arc::clone(self).forward(tx, token));
        ReceiverStream::new(rx)
    }

    /// Ends every stream: the server is shutting down, and a graceful
    /// shutdown waits for open streams to finish.
    pub fn close_streams(&self) {
        self.stop.cancel();
    }

    async fn forward(
        self: Arc<Self>,
        out: mpsc::Sender<Result<pb::PlatformEvent, Status>>,
        token: CancellationToken,
    ) {
        // The previous subscriber lets go of the queue once its token fires.
        let mut queue = tokio::select! {
            () = token.cancelled() => return,
            guard = Arc::clone(&self.rx).lock_owned() => guard,
        };
        tracing::info!(
            platform = self.platform,
            waiting = self.len(),
            "event subscriber connected"
        );
        // Whether a sidecar takes the events: while none does, they wait
        // here, and this adapter's stop would drop them.
        metrics::gauge!("chat4all_adapter_event_subscribers", "platform" => self.platform).set(1.0);
        loop {
            let permit = tokio::select! {
                () = token.cancelled() => break,
                permit = out.reserve() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let event = tokio::select! {
                biased;
                () = token.cancelled() => break,
                () = out.closed() => break,
                event = queue.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
            };
            permit.send(Ok(event));
            self.record_depth();
        }
        metrics::gauge!("chat4all_adapter_event_subscribers", "platform" => self.platform).set(0.0);
        tracing::info!(
            platform = self.platform,
            waiting = self.len(),
            "event subscriber gone"
        );
    }

    fn record_depth(&self) {
        metrics::gauge!("chat4all_adapter_event_queue_depth", "platform" => self.platform)
            .set(self.len() as f64);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use tokio_stream::StreamExt;

    use super::*;

    fn inbound(text: &str) -> pb::PlatformEvent {
        pb::PlatformEvent {
            event: Some(pb::platform_event::Event::Inbound(pb::InboundMessage {
                text: text.to_owned(),
                ..Default::default()
            })),
            traceparent: String::new(),
        }
    }

    fn text_of(event: &pb::PlatformEvent) -> &str {
        match &event.event {
            Some(pb::platform_event::Event::Inbound(m)) => &m.text,
            _ => "",
        }
    }

    async fn next(stream: &mut EventStream) -> Option<pb::PlatformEvent> {
        tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .ok()
            .flatten()
            .map(|r| r.unwrap())
    }

    #[tokio::test]
    async fn queues_all_or_nothing_and_waits_for_a_subscriber() {
        let queue = Arc::new(EventQueue::new("test", 3));
        queue.offer(vec![inbound("a"), inbound("b")]).unwrap();
        assert_eq!(
            queue.offer(vec![inbound("c"), inbound("d")]),
            Err(QueueError::Full)
        );
        assert_eq!(queue.len(), 2);
        queue.offer(vec![inbound("c")]).unwrap();
        assert_eq!(queue.offer(vec![inbound("x"); 4]), Err(QueueError::Full));

        let mut stream = queue.subscribe();
        for want in ["a", "b", "c"] {
            assert_eq!(text_of(&next(&mut stream).await.unwrap()), want);
        }
        queue.offer(vec![inbound("e")]).unwrap();
        assert_eq!(text_of(&next(&mut stream).await.unwrap()), "e");
    }

    #[tokio::test]
    async fn a_new_subscriber_takes_over_and_close_ends_streams() {
        let queue = Arc::new(EventQueue::new("test", 8));
        let mut first = queue.subscribe();
        queue.offer(vec![inbound("1")]).unwrap();
        assert_eq!(text_of(&next(&mut first).await.unwrap()), "1");

        let mut second = queue.subscribe();
        assert!(next(&mut first).await.is_none(), "the old stream ends");
        queue.offer(vec![inbound("2")]).unwrap();
        assert_eq!(text_of(&next(&mut second).await.unwrap()), "2");

        queue.close_streams();
        assert!(next(&mut second).await.is_none());
        // Events still wait in the queue after the streams closed.
        queue.offer(vec![inbound("3")]).unwrap();
        assert_eq!(queue.len(), 1);
    }

    #[tokio::test]
    async fn a_dropped_subscriber_loses_nothing_that_was_not_handed_over() {
        let queue = Arc::new(EventQueue::new("test", 8));
        let stream = queue.subscribe();
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
        queue.offer(vec![inbound("kept")]).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut stream = queue.subscribe();
        assert_eq!(text_of(&next(&mut stream).await.unwrap()), "kept");
    }
}
