//! Kafka plumbing shared by every service, written once: topic names, the
//! record headers (`traceparent`, `message-id`, `content-type`), a producer
//! that keeps enqueue order, the batch consumer loop (commit only after the
//! effect is durable, malformed records to `<topic>.dlq`), topic creation,
//! whether every consumer has its partitions ([`ready`]), and librdkafka's
//! in-process mock cluster for the one-machine mode.

pub mod admin;
mod announce;
pub mod assignment;
mod config;
pub mod consumer;
mod headers;
pub mod hops;
mod lag;
mod leaders;
pub mod mock;
mod producer;
pub mod ready;
mod stalls;
pub mod tail;
pub mod topics;

pub use announce::Announcements;
pub use assignment::{Assignment, AssignmentWatch, Share};
pub use config::KafkaArgs;
pub use consumer::{BatchHandler, ConsumerSettings, DeadLetter, HandlerError, Record, consume};
pub use headers::RecordHeaders;
pub use producer::{Delivery, Producer};
pub use rdkafka::error::KafkaError;
pub use ready::{Readiness, ReadyFlag};

/// Decodes a protobuf payload, or says why it is not one (the DLQ reason).
pub fn decode<T: prost::Message + Default>(payload: &[u8]) -> Result<T, String> {
    T::decode(payload).map_err(|e| format!("payload is not a {}: {e}", std::any::type_name::<T>()))
}
