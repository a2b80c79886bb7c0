//! A producer that keeps enqueue order: `enqueue` hands the record to
//! librdkafka at once (so records enqueued one after another keep that order
//! on their partition) and returns a [`Delivery`] to await the broker's ack.
//!
//! A librdkafka producer can fail for good: librdkafka says so (an
//! idempotent producer whose sequence the broker no longer accepts), or it
//! retries forever without saying so (refused `UNKNOWN_PRODUCER_ID` by a
//! broker that came back empty), which [`Stalls`] notices. Either way only
//! a new librdkafka producer sends again. [`Producer::renew_if_failed`]
//! makes one in place, so the service keeps what it holds in memory (a
//! platform's answer not yet reported, a receipt not yet produced) and its
//! retries go out on the new one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use crate::stalls::Stalls;
use crate::{KafkaArgs, RecordHeaders};

#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
}

struct Shared {
    config: ClientConfig,
    current: RwLock<FutureProducer>,
    /// Which producer is current; a delivery of an older one says nothing
    /// about the current one.
    generation: AtomicU64,
    stalls: Stalls,
    /// Taken while one caller renews, so that callers failing together
    /// renew once.
    renewing: Mutex<()>,
}

/// The broker's answer for one enqueued record.
pub struct Delivery {
    future: DeliveryFuture,
    topic: String,
    generation: u64,
    shared: Arc<Shared>,
}

impl Delivery {
    pub async fn acked(self) -> Result<(), KafkaError> {
        let current = self.generation == self.shared.generation.load(Ordering::Acquire);
        match self.future.await {
            Ok(Ok(delivered)) => {
                if current {
                    self.shared.stalls.acked(&self.topic, delivered.partition);
                }
                Ok(())
            }
            Ok(Err((e, record))) => {
                if current {
                    self.shared.stalls.failed(&self.topic, record.partition(), &e);
                }
                Err(e)
            }
            Err(_) => Err(KafkaError::Canceled),
        }
    }
}

impl Producer {
    pub fn new(args: &KafkaArgs, client_id: &str) -> Result<Self, KafkaError> {
        let mut config = args.client_config(client_id);
        config
            // Retries without reordering or duplicates.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // A short linger batches the many small records of a busy
            // second without adding latency anyone notices.
            .set("linger.ms", "1")
            .set("message.timeout.ms", "30000");
        let current = config.create()?;
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                current: RwLock::new(current),
                generation: AtomicU64::new(0),
                stalls: Stalls::new(Duration::from_secs(args.stall_secs)),
                renewing: Mutex::new(()),
            }),
        })
    }

    fn current(&self) -> (FutureProducer, u64) {
        let current = self.shared.current.read().unwrap_or_else(PoisonError::into_inner);
        (current.clone(), self.shared.generation.load(Ordering::Acquire))
    }

    /// Hands one record to librdkafka now; await the result for the ack.
    pub async fn enqueue(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: &RecordHeaders,
    ) -> Result<Delivery, KafkaError> {
        loop {
            let record = FutureRecord::to(topic)
                .key(key)
                .payload(payload)
                .headers(headers.to_kafka());
            let (producer, generation) = self.current();
            match producer.send_result(record) {
                Ok(future) => {
                    return Ok(Delivery {
                        future,
                        topic: topic.to_owned(),
                        generation,
                        shared: Arc::clone(&self.shared),
                    });
                }
                // librdkafka's queue is full: back off until it drains.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Enqueues one record and waits for its ack.
    pub async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: &RecordHeaders,
    ) -> Result<(), KafkaError> {
        self.enqueue(topic, key, payload, headers).await?.acked().await
    }

    /// Why the current librdkafka producer is failed for good, if it is:
    /// librdkafka gave up on it, or a partition has acked nothing for the
    /// stall limit and is still failing.
    pub fn failed(&self) -> Option<String> {
        let (producer, _) = self.current();
        producer
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{code:?}: {reason}"))
            .or_else(|| self.shared.stalls.stalled())
    }

    /// Replaces the librdkafka producer if it is [`failed`](Self::failed),
    /// and says why; callers then retry what failed. Records still queued
    /// on the old one fail (they were purged), so their callers retry too.
    pub fn renew_if_failed(&self) -> Result<Option<String>, KafkaError> {
        let _one = self
            .shared
            .renewing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(why) = self.failed() else {
            return Ok(None);
        };
        let fresh: FutureProducer = self.shared.config.create()?;
        let old = {
            let mut current = self
                .shared
                .current
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            self.shared.generation.fetch_add(1, Ordering::AcqRel);
            std::mem::replace(&mut *current, fresh)
        };
        self.shared.stalls.clear();
        // Dropping a librdkafka producer purges its queue and joins its
        // thread: not on the runtime's workers.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || drop(old))),
            Err(_) => drop(old),
        }
        metrics::counter!("chat4all_kafka_producer_renewals_total").increment(1);
        tracing::warn!(reason = %why, "replaced the Kafka producer, which had failed for good");
        Ok(Some(why))
    }

    /// Waits until every enqueued record is acked (at shutdown).
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let (inner, _) = self.current();
        // rd_kafka_flush blocks: keep it off the runtime's workers.
        tokio::task::spawn_blocking(move || inner.flush(timeout))
            .await
            .map_err(|_| KafkaError::Canceled)?
    }
}
