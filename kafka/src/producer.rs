//! A producer that keeps enqueue order: `enqueue` hands the record to
//! librdkafka at once (so records enqueued one after another keep that order
//! on their partition) and returns a [`Delivery`] to await the broker's ack.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message as _;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use crate::stalls::Stalls;
use crate::{KafkaArgs, RecordHeaders};

#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    stalls: Arc<Stalls>,
}

/// The broker's answer for one enqueued record.
pub struct Delivery {
    future: DeliveryFuture,
    topic: String,
    stalls: Arc<Stalls>,
}

impl Delivery {
    pub async fn acked(self) -> Result<(), KafkaError> {
        match self.future.await {
            Ok(Ok(delivered)) => {
                self.stalls.acked(&self.topic, delivered.partition);
                Ok(())
            }
            Ok(Err((e, record))) => {
                self.stalls.failed(&self.topic, record.partition(), &e);
                Err(e)
            }
            Err(_) => Err(KafkaError::Canceled),
        }
    }
}

impl Producer {
    pub fn new(args: &KafkaArgs, client_id: &str) -> Result<Self, KafkaError> {
        let inner = args
            .client_config(client_id)
            // Retries without reordering or duplicates.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // A short linger batches the many small records of a busy
            // second without adding latency anyone notices.
            .set("linger.ms", "1")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(Self {
            inner,
            stalls: Arc::new(Stalls::new(Duration::from_secs(args.producer_stall_secs))),
        })
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
            match self.inner.send_result(record) {
                Ok(future) => {
                    return Ok(Delivery {
                        future,
                        topic: topic.to_owned(),
                        stalls: Arc::clone(&self.stalls),
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

    /// Why this producer is failed for good, if it is: librdkafka gave up
    /// on it (an idempotent producer whose sequence the broker no longer
    /// accepts, after tansu restarted or came back empty), or a partition
    /// has acked nothing for the stall limit. Either way only a new
    /// producer, i.e. a restarted process, sends again.
    pub fn fatal_error(&self) -> Option<String> {
        self.inner
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{code:?}: {reason}"))
            .or_else(|| self.stalls.stalled())
    }

    /// Waits until every enqueued record is acked (at shutdown).
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let inner = self.inner.clone();
        // rd_kafka_flush blocks: keep it off the runtime's workers.
        tokio::task::spawn_blocking(move || inner.flush(timeout))
            .await
            .map_err(|_| KafkaError::Canceled)?
    }
}
