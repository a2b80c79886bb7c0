//! The spans of the Kafka hops, written once: producing a record (`send
//! <topic>`, a PRODUCER span whose context the record's headers carry) and
//! processing one (`process <topic>`, a CONSUMER span, child of the
//! producer's), so a message's records chain into one trace.

use std::borrow::Cow;

use chat4all_telemetry::spans::{Attribute, attributes};
use chat4all_telemetry::{Hop, HopKind, HopTracer, TraceContext};

use crate::{Record, RecordHeaders};

/// The hop of producing to `topic`, child of `parent`; the record carries
/// its [`headers`].
pub fn send(tracer: &HopTracer, topic: &str, parent: Option<&TraceContext>, message_id: &str) -> Hop {
    let mut hop = tracer.start(name(tracer, "send", topic), HopKind::Producer, parent);
    hop.record(|| {
        let mut a = attributes::kafka(topic, "send").to_vec();
        // An inbound record has no id of ours yet.
        if !message_id.is_empty() {
            a.push(attributes::message_id(message_id));
        }
        a
    });
    hop
}

/// The headers of a record produced in `hop`.
pub fn headers(hop: &Hop, message_id: &str) -> RecordHeaders {
    RecordHeaders::traced(hop.context(), Some(message_id.to_owned()))
}

/// The hop of processing `record`, child of the hop that produced it.
pub fn process(tracer: &HopTracer, record: &Record) -> Hop {
    let parent = record.headers.trace();
    let mut hop = tracer.start(
        name(tracer, "process", &record.topic),
        HopKind::Consumer,
        parent.as_ref(),
    );
    hop.record(|| {
        let mut a = attributes::kafka(&record.topic, "process").to_vec();
        a.push(Attribute::new(
            "messaging.destination.partition.id",
            record.partition.to_string(),
        ));
        a.push(Attribute::new("messaging.kafka.offset", record.offset));
        if let Some(key) = &record.key {
            a.push(Attribute::new("messaging.kafka.message.key", key.clone()));
        }
        if let Some(id) = &record.headers.message_id {
            a.push(attributes::message_id(id));
        }
        a
    });
    hop
}

/// Semantic conventions name a messaging span `{operation} {destination}`;
/// built only when it will be exported.
fn name(tracer: &HopTracer, operation: &str, topic: &str) -> Cow<'static, str> {
    if tracer.is_exporting() {
        Cow::Owned(format!("{operation} {topic}"))
    } else {
        Cow::Borrowed("")
    }
}
