//! A stopping member with a drain bound drops the batch it holds once the
//! bound passes, uncommitted: the next member of the group gets it again.
//! Without the bound it would wait for the handler however long it takes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chat4all_kafka::mock::MockKafka;
use chat4all_kafka::{
    BatchHandler, ConsumerSettings, DeadLetter, HandlerError, Producer, Record, RecordHeaders, consume,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Reports each batch's payloads, then works on it for `takes`.
struct Slow {
    seen: mpsc::UnboundedSender<Vec<Vec<u8>>>,
    takes: Duration,
}

impl BatchHandler for Slow {
    async fn handle(&self, batch: &[Record]) -> Result<Vec<DeadLetter>, HandlerError> {
        let _ = self.seen.send(batch.iter().map(|r| r.payload.clone()).collect());
        tokio::time::sleep(self.takes).await;
        Ok(Vec::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_outlasting_the_drain_is_dropped_uncommitted_and_redone_by_the_next_member() {
    let kafka = MockKafka::start(1).unwrap();
    kafka.create_topics(&["updates".to_owned()], 1).unwrap();
    let args = kafka.args();
    Producer::new(&args, "test")
        .unwrap()
        .enqueue("updates", "k", b"one", &RecordHeaders::default())
        .await
        .unwrap()
        .acked()
        .await
        .unwrap();

    let member = |takes: Duration, shutdown: CancellationToken| {
        let (seen, batches) = mpsc::unbounded_channel();
        let settings = ConsumerSettings::new("appliers", &["updates"]).with_drain(Duration::from_millis(300));
        let args = args.clone();
        let task =
            tokio::spawn(async move { consume(&args, settings, |_| Slow { seen, takes }, shutdown).await });
        (task, batches)
    };
    let first_stop = CancellationToken::new();
    let (first, mut first_batches) = member(Duration::from_secs(3600), first_stop.clone());
    let batch = tokio::time::timeout(Duration::from_secs(30), first_batches.recv())
        .await
        .expect("the first member got the record")
        .unwrap();
    assert_eq!(batch, [b"one".to_vec()]);
    let asked = Instant::now();
    first_stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the member stopped within its drain, not after its handler")
        .unwrap()
        .unwrap();
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "it gave the batch its drain"
    );

    let second_stop = CancellationToken::new();
    let (second, mut second_batches) = member(Duration::ZERO, second_stop.clone());
    let again = tokio::time::timeout(Duration::from_secs(30), second_batches.recv())
        .await
        .expect("the next member got the dropped batch again")
        .unwrap();
    assert_eq!(again, [b"one".to_vec()]);
    second_stop.cancel();
    second.await.unwrap().unwrap();
}
