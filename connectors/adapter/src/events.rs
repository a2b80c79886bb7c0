//! The queue between the webhook (producer) and `StreamEvents` (consumer),
//! acknowledged end to end.
//!
//! A webhook's events are offered all or nothing and each gets an
//! increasing `event_id`; the webhook then waits on [`PendingAcks`] until
//! the subscriber (the sidecar) acks every one of them, which it does once
//! they are durable in Kafka. Only then is the platform answered 200, so an
//! adapter or sidecar dying in between costs a redelivery, never an event.
//! The wait is bounded by the caller: past it the webhook answers 503, the
//! platform redelivers, and the webhook's events still waiting here are
//! withdrawn (they would only be produced twice). Events already handed out
//! may still be acked later; downstream de-duplication makes that harmless.
//!
//! Bounded on purpose: events waiting and events handed out but unacked
//! together fit in the capacity, beyond which the webhook answers 503 so
//! the platform keeps them, rather than the adapter growing without bound.
//!
//! One subscriber streams at a time, and the newest wins: a sidecar that
//! reconnects must not wait for the server to notice that its old stream is
//! dead. Whatever a subscriber was handed and did not ack goes back to the
//! front of the queue, in order, when its call ends (it went away, it
//! stopped, or a newer one took over); the next subscriber starts only once
//! that is done, so events keep their order across subscribers. Several
//! subscribers at once would give redundancy but would reorder a
//! conversation's events between them, which the newest-wins rule avoids.
//! An ack names event ids, not a subscriber: an old subscriber's late ack
//! still releases its webhook.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chat4all_proto::v1 as pb;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// The queue cannot take a webhook's events now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the event queue is full")]
    Full,
    #[error("the adapter is stopping")]
    Closed,
}

/// Why a webhook's events were not all acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAcked {
    #[error("the events were not acked in time")]
    TimedOut,
    #[error("the adapter stopped before the events were acked")]
    Closed,
}

/// The stream one subscriber of `StreamEvents` reads.
pub type EventStream = ReceiverStream<Result<pb::PlatformEvent, Status>>;

#[derive(Debug)]
struct Queued {
    id: u64,
    batch: u64,
    event: pb::PlatformEvent,
}

#[derive(Debug)]
struct Batch {
    remaining: usize,
    done: oneshot::Sender<()>,
}

#[derive(Debug)]
struct State {
    next_id: u64,
    next_batch: u64,
    /// Not handed out yet, in id order: new events go to the back, a
    /// subscriber's unacked ones (all older) back to the front.
    waiting: VecDeque<Queued>,
    /// Handed to the subscriber of that generation and not acked yet.
    unacked: BTreeMap<u64, (u64, Queued)>,
    /// The webhooks still waiting for acks, by batch.
    batches: HashMap<u64, Batch>,
    accepting: bool,
    generation: u64,
}

/// A bounded queue of platform events with one (replaceable) subscriber
/// that acks what it has made durable.
#[derive(Debug)]
pub struct EventQueue {
    platform: &'static str,
    capacity: usize,
    state: Mutex<State>,
    /// Events were added to `waiting`.
    offered: Notify,
    /// The last webhook waiting for acks got its answer.
    settled: Notify,
    /// Held by the subscriber streaming; the next one waits for it.
    lease: Arc<tokio::sync::Mutex<()>>,
    current: Mutex<CancellationToken>,
    stop: CancellationToken,
}

/// A webhook's events, offered: [`wait`](Self::wait) for their acks.
/// Dropped unanswered (the platform hung up), the events still waiting are
/// withdrawn: the platform redelivers them.
#[derive(Debug)]
#[must_use = "the webhook must wait for its events' acks before answering 200"]
pub struct PendingAcks {
    queue: Option<Arc<EventQueue>>,
    batch: u64,
    done: Option<oneshot::Receiver<()>>,
}

impl PendingAcks {
    /// Waits up to `timeout` for every event to be acked; on error the
    /// events not handed out yet are withdrawn.
    pub async fn wait(mut self, timeout: Duration) -> Result<(), NotAcked> {
        let Some(done) = self.done.take() else {
            return Ok(());
        };
        match tokio::time::timeout(timeout, done).await {
            Ok(Ok(())) => {
                self.queue = None;
                Ok(())
            }
            Ok(Err(_)) => Err(NotAcked::Closed),
            Err(_) => Err(NotAcked::TimedOut),
        }
    }
}

impl Drop for PendingAcks {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            queue.withdraw(self.batch);
        }
    }
}

impl EventQueue {
    /// A queue holding up to `capacity` events (at least one), waiting or
    /// handed out unacked.
    pub fn new(platform: &'static str, capacity: usize) -> Self {
        Self {
            platform,
            capacity: capacity.max(1),
            state: Mutex::new(State {
                next_id: 1,
                next_batch: 0,
                waiting: VecDeque::new(),
                unacked: BTreeMap::new(),
                batches: HashMap::new(),
                accepting: true,
                generation: 0,
            }),
            offered: Notify::new(),
            settled: Notify::new(),
            lease: Arc::new(tokio::sync::Mutex::new(())),
            current: Mutex::new(CancellationToken::new()),
            stop: CancellationToken::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues all of `events` or none of them, numbering each.
    pub fn offer(self: &Arc<Self>, events: Vec<pb::PlatformEvent>) -> Result<PendingAcks, QueueError> {
        let mut state = self.lock();
        if !state.accepting {
            return Err(QueueError::Closed);
        }
        if events.is_empty() {
            return Ok(PendingAcks {
                queue: None,
                batch: 0,
                done: None,
            });
        }
        if state.waiting.len() + state.unacked.len() + events.len() > self.capacity {
            return Err(QueueError::Full);
        }
        let batch = state.next_batch;
        state.next_batch += 1;
        let (done, acked) = oneshot::channel();
        state.batches.insert(
            batch,
            Batch {
                remaining: events.len(),
                done,
            },
        );
        for mut event in events {
            let id = state.next_id;
            state.next_id += 1;
            event.event_id = id;
            state.waiting.push_back(Queued { id, batch, event });
        }
        self.record(&state);
        drop(state);
        self.offered.notify_one();
        Ok(PendingAcks {
            queue: Some(Arc::clone(self)),
            batch,
            done: Some(acked),
        })
    }

    /// The subscriber made these events durable: each webhook whose last
    /// event this is gets its answer. Unknown ids are ignored.
    pub fn ack(&self, ids: &[u64]) {
        let mut state = self.lock();
        for id in ids {
            let queued = match state.unacked.remove(id) {
                Some((_, queued)) => Some(queued),
                // Handed back by a subscriber that went away, then acked
                // late by it.
                None => match state.waiting.binary_search_by_key(id, |q| q.id) {
                    Ok(at) => state.waiting.remove(at),
                    Err(_) => None,
                },
            };
            let Some(queued) = queued else { continue };
            let finished = state.batches.get_mut(&queued.batch).is_some_and(|batch| {
                batch.remaining -= 1;
                batch.remaining == 0
            });
            if finished && let Some(batch) = state.batches.remove(&queued.batch) {
                let _ = batch.done.send(());
            }
        }
        self.record(&state);
        if state.batches.is_empty() {
            self.settled.notify_waiters();
        }
    }

    /// A webhook stopped waiting: its events not handed out yet go; those
    /// handed out are no longer handed back if their subscriber goes away.
    fn withdraw(&self, batch: u64) {
        let mut state = self.lock();
        if state.batches.remove(&batch).is_none() {
            return;
        }
        state.waiting.retain(|q| q.batch != batch);
        self.record(&state);
        if state.batches.is_empty() {
            self.settled.notify_waiters();
        }
    }

    /// How many events wait to be handed out.
    pub fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Whether no event waits to be handed out.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many events were handed out and not acked yet.
    pub fn unacked(&self) -> usize {
        self.lock().unacked.len()
    }

    /// The most events the queue holds, waiting or unacked.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Refuses further webhooks (the adapter is stopping); the ones
    /// waiting keep waiting for their acks.
    pub fn stop_accepting(&self) {
        self.lock().accepting = false;
    }

    /// Returns once no webhook waits for acks.
    pub async fn settled(&self) {
        loop {
            let mut notified = pin!(self.settled.notified());
            notified.as_mut().enable();
            if self.lock().batches.is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// Starts streaming to a new subscriber, whose acks arrive on `acks`,
    /// ending the previous one's stream. The subscription ends when `acks`
    /// ends (the subscriber is done), the stream is dropped, a newer
    /// subscriber comes, or [`close_streams`](Self::close_streams). Must be
    /// called inside a tokio runtime.
    pub fn subscribe<S>(self: &Arc<Self>, acks: S) -> EventStream
    where
        S: Stream<Item = Result<pb::EventAck, Status>> + Send + 'static,
    {
        let token = self.stop.child_token();
        let previous = {
            let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *current, token.clone())
        };
        previous.cancel();
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(Arc::clone(self).read_acks(acks, token.clone()));
        tokio::spawn(Arc::clone(self).forward(tx, token));
        ReceiverStream::new(rx)
    }

    /// Ends every stream and answers every webhook still waiting (with
    /// [`NotAcked::Closed`]): the adapter is stopping, and a graceful gRPC
    /// shutdown waits for open streams to finish.
    pub fn close_streams(&self) {
        self.stop.cancel();
        let mut state = self.lock();
        state.accepting = false;
        state.batches.clear();
        self.settled.notify_waiters();
    }

    async fn read_acks<S>(self: Arc<Self>, acks: S, token: CancellationToken)
    where
        S: Stream<Item = Result<pb::EventAck, Status>> + Send + 'static,
    {
        let mut acks = pin!(acks);
        // Past a takeover too: the old subscriber's late acks still count.
        loop {
            let next = tokio::select! {
                () = self.stop.cancelled() => break,
                next = acks.next() => next,
            };
            match next {
                Some(Ok(ack)) => self.ack(&ack.event_ids),
                Some(Err(status)) => {
                    tracing::debug!(platform = self.platform, %status, "event acks broke off");
                    break;
                }
                None => break,
            }
        }
        // The subscriber is done: what it did not ack goes back.
        token.cancel();
    }

    async fn forward(
        self: Arc<Self>,
        out: mpsc::Sender<Result<pb::PlatformEvent, Status>>,
        token: CancellationToken,
    ) {
        // The previous subscriber lets go once it handed its unacked events
        // back, so they stay ahead of newer ones.
        let _lease = tokio::select! {
            () = token.cancelled() => return,
            lease = Arc::clone(&self.lease).lock_owned() => lease,
        };
        let generation = {
            let mut state = self.lock();
            state.generation += 1;
            state.generation
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
                event = self.next_event(generation) => event,
            };
            permit.send(Ok(event));
        }
        let handed_back = self.hand_back(generation);
        metrics::gauge!("chat4all_adapter_event_subscribers", "platform" => self.platform).set(0.0);
        tracing::info!(
            platform = self.platform,
            handed_back,
            waiting = self.len(),
            "event subscriber gone"
        );
    }

    /// The next waiting event, recorded as handed to `generation`. Cancel
    /// safe: nothing is taken across an await.
    async fn next_event(&self, generation: u64) -> pb::PlatformEvent {
        loop {
            {
                let mut state = self.lock();
                if let Some(queued) = state.waiting.pop_front() {
                    let event = queued.event.clone();
                    state.unacked.insert(queued.id, (generation, queued));
                    self.record(&state);
                    return event;
                }
            }
            // notify_one keeps a permit, so an offer between the check and
            // here is not missed.
            self.offered.notified().await;
        }
    }

    /// Puts what `generation` was handed and did not ack back at the front,
    /// in order, unless its webhook stopped waiting. How many went back.
    fn hand_back(&self, generation: u64) -> usize {
        let mut state = self.lock();
        let ids: Vec<u64> = state
            .unacked
            .iter()
            .filter(|(_, (owner, _))| *owner == generation)
            .map(|(id, _)| *id)
            .collect();
        let mut back = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((_, queued)) = state.unacked.remove(&id)
                && state.batches.contains_key(&queued.batch)
            {
                back.push(queued);
            }
        }
        let n = back.len();
        for queued in back.into_iter().rev() {
            state.waiting.push_front(queued);
        }
        self.record(&state);
        drop(state);
        if n > 0 {
            self.offered.notify_one();
        }
        n
    }

    fn record(&self, state: &State) {
        metrics::gauge!("chat4all_adapter_event_queue_depth", "platform" => self.platform)
            .set(state.waiting.len() as f64);
        metrics::gauge!("chat4all_adapter_events_unacked", "platform" => self.platform)
            .set(state.unacked.len() as f64);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(2);

    fn inbound(text: &str) -> pb::PlatformEvent {
        pb::PlatformEvent {
            event: Some(pb::platform_event::Event::Inbound(pb::InboundMessage {
                text: text.to_owned(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn text_of(event: &pb::PlatformEvent) -> &str {
        match &event.event {
            Some(pb::platform_event::Event::Inbound(m)) => &m.text,
            _ => "",
        }
    }

    /// A subscriber as the sidecar is one: events in, acks out.
    struct Subscriber {
        events: EventStream,
        acks: Option<mpsc::UnboundedSender<Result<pb::EventAck, Status>>>,
    }

    impl Subscriber {
        fn new(queue: &Arc<EventQueue>) -> Self {
            let (acks, rx) = mpsc::unbounded_channel();
            Self {
                events: queue.subscribe(tokio_stream::wrappers::UnboundedReceiverStream::new(rx)),
                acks: Some(acks),
            }
        }

        async fn next(&mut self) -> Option<pb::PlatformEvent> {
            tokio::time::timeout(WAIT, self.events.next())
                .await
                .ok()
                .flatten()
                .map(|r| r.unwrap())
        }

        /// The next events' texts, `n` of them.
        async fn texts(&mut self, n: usize) -> Vec<(u64, String)> {
            let mut got = Vec::new();
            for _ in 0..n {
                let event = self.next().await.expect("an event");
                got.push((event.event_id, text_of(&event).to_owned()));
            }
            got
        }

        fn ack(&self, ids: &[u64]) {
            let ack = pb::EventAck {
                event_ids: ids.to_vec(),
            };
            self.acks.as_ref().unwrap().send(Ok(ack)).unwrap();
        }

        /// Ends its side of the call, as a stopping sidecar does.
        fn finish(&mut self) {
            self.acks = None;
        }
    }

    fn texts(got: &[(u64, String)]) -> Vec<&str> {
        got.iter().map(|(_, t)| t.as_str()).collect()
    }

    async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !check() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn queues_all_or_nothing_and_counts_unacked_against_the_capacity() {
        let queue = Arc::new(EventQueue::new("test", 3));
        let _ab = queue.offer(vec![inbound("a"), inbound("b")]).unwrap();
        assert_eq!(
            queue.offer(vec![inbound("c"), inbound("d")]).err(),
            Some(QueueError::Full)
        );
        assert_eq!(queue.len(), 2);
        let _c = queue.offer(vec![inbound("c")]).unwrap();
        assert_eq!(queue.offer(vec![inbound("x"); 4]).err(), Some(QueueError::Full));

        let mut sub = Subscriber::new(&queue);
        let got = sub.texts(3).await;
        assert_eq!(texts(&got), ["a", "b", "c"]);
        assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 2, 3]);
        // Handed out but unacked: still held, still counted.
        assert_eq!(queue.unacked(), 3);
        assert_eq!(queue.offer(vec![inbound("e")]).err(), Some(QueueError::Full));
        sub.ack(&[1]);
        eventually("the ack frees a place", || queue.unacked() == 2).await;
        let _e = queue.offer(vec![inbound("e")]).unwrap();
        assert_eq!(texts(&sub.texts(1).await), ["e"]);
    }

    #[tokio::test]
    async fn the_last_ack_releases_the_webhook() {
        let queue = Arc::new(EventQueue::new("test", 8));
        let pending = queue.offer(vec![inbound("a"), inbound("b")]).unwrap();
        let waiting = tokio::spawn(pending.wait(Duration::from_secs(30)));
        let mut sub = Subscriber::new(&queue);
        let got = sub.texts(2).await;
        sub.ack(&[got[1].0]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "one event is still unacked");
        sub.ack(&[got[0].0, 999]);
        let answer = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
        assert_eq!(answer, Ok(()));
        assert_eq!(queue.unacked(), 0);
        tokio::time::timeout(WAIT, queue.settled()).await.unwrap();

        // A webhook with nothing in it has nothing to wait for.
        assert_eq!(queue.offer(Vec::new()).unwrap().wait(WAIT).await, Ok(()));
    }

    #[tokio::test]
    async fn a_webhook_not_acked_in_time_is_refused_and_withdrawn() {
        let queue = Arc::new(EventQueue::new("test", 8));
        let pending = queue.offer(vec![inbound("late")]).unwrap();
        assert_eq!(
            pending.wait(Duration::from_millis(50)).await,
            Err(NotAcked::TimedOut)
        );
        assert_eq!(queue.len(), 0, "the platform redelivers it: not kept twice");
        tokio::time::timeout(WAIT, queue.settled()).await.unwrap();

        // One handed out but unacked when its webhook gave up is not
        // handed back to the next subscriber.
        let pending = queue.offer(vec![inbound("given")]).unwrap();
        let mut first = Subscriber::new(&queue);
        assert_eq!(texts(&first.texts(1).await), ["given"]);
        assert_eq!(
            pending.wait(Duration::from_millis(50)).await,
            Err(NotAcked::TimedOut)
        );
        first.finish();
        eventually("the subscriber lets go", || queue.unacked() == 0).await;
        let _next = queue.offer(vec![inbound("next")]).unwrap();
        let mut second = Subscriber::new(&queue);
        assert_eq!(texts(&second.texts(1).await), ["next"]);
    }

    #[tokio::test]
    async fn a_dropped_subscribers_unacked_events_go_to_the_next_in_order() {
        let queue = Arc::new(EventQueue::new("test", 16));
        let first_hook = queue
            .offer(vec![inbound("1"), inbound("2"), inbound("3")])
            .unwrap();
        let second_hook = queue.offer(vec![inbound("4"), inbound("5")]).unwrap();
        let first_hook = tokio::spawn(first_hook.wait(Duration::from_secs(30)));
        let second_hook = tokio::spawn(second_hook.wait(Duration::from_secs(30)));

        let mut dying = Subscriber::new(&queue);
        let got = dying.texts(4).await;
        assert_eq!(texts(&got), ["1", "2", "3", "4"]);
        dying.ack(&[got[1].0]);
        eventually("the ack arrives", || queue.len() + queue.unacked() == 4).await;
        drop(dying);

        // 1, 3 and 4 go back ahead of 5, and keep their ids.
        let mut next = Subscriber::new(&queue);
        let got = next.texts(4).await;
        assert_eq!(texts(&got), ["1", "3", "4", "5"]);
        assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 3, 4, 5]);
        next.ack(&[1, 3, 4, 5]);
        let answers = tokio::time::timeout(WAIT, async {
            (first_hook.await.unwrap(), second_hook.await.unwrap())
        })
        .await
        .unwrap();
        assert_eq!(answers, (Ok(()), Ok(())));
    }

    #[tokio::test]
    async fn a_new_subscriber_takes_over_and_an_old_late_ack_still_counts() {
        let queue = Arc::new(EventQueue::new("test", 8));
        let hook = queue.offer(vec![inbound("1")]).unwrap();
        let hook = tokio::spawn(hook.wait(Duration::from_secs(30)));
        let mut first = Subscriber::new(&queue);
        assert_eq!(texts(&first.texts(1).await), ["1"]);

        let mut second = Subscriber::new(&queue);
        assert!(first.next().await.is_none(), "the old stream ends");
        // Handed back to the newer subscriber...
        assert_eq!(texts(&second.texts(1).await), ["1"]);
        // ...and acked by the old one, which had produced it meanwhile.
        first.ack(&[1]);
        assert_eq!(tokio::time::timeout(WAIT, hook).await.unwrap().unwrap(), Ok(()));
        eventually("nothing held", || queue.unacked() == 0).await;
    }

    #[tokio::test]
    async fn a_subscriber_that_finishes_hands_back_what_it_did_not_ack() {
        let queue = Arc::new(EventQueue::new("test", 8));
        let _hook = queue.offer(vec![inbound("a"), inbound("b")]).unwrap();
        let mut stopping = Subscriber::new(&queue);
        let got = stopping.texts(2).await;
        stopping.ack(&[got[0].0]);
        stopping.finish();
        assert!(stopping.next().await.is_none(), "the adapter ends the stream");
        assert_eq!(queue.len(), 1);
        let mut next = Subscriber::new(&queue);
        assert_eq!(texts(&next.texts(1).await), ["b"]);
    }

    #[tokio::test]
    async fn stopping_refuses_webhooks_and_closing_answers_the_waiting_ones() {
        let queue = Arc::new(EventQueue::new("test", 8));
        let hook = queue.offer(vec![inbound("a")]).unwrap();
        let hook = tokio::spawn(hook.wait(Duration::from_secs(30)));
        let mut sub = Subscriber::new(&queue);
        assert_eq!(texts(&sub.texts(1).await), ["a"]);
        queue.stop_accepting();
        assert_eq!(queue.offer(vec![inbound("b")]).err(), Some(QueueError::Closed));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!hook.is_finished(), "a webhook in flight keeps waiting");

        queue.close_streams();
        assert_eq!(
            tokio::time::timeout(WAIT, hook).await.unwrap().unwrap(),
            Err(NotAcked::Closed)
        );
        assert!(sub.next().await.is_none(), "the stream ends");
        tokio::time::timeout(WAIT, queue.settled()).await.unwrap();
    }
}
