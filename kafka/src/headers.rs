//! The headers every record carries: `traceparent` and `tracestate` (the
//! message's trace), `message-id`, `content-type`; and, on dead letters,
//! `dlq-reason`.

use chat4all_telemetry::TraceContext;
use chat4all_telemetry::trace_context::{Carrier, TRACEPARENT, TRACESTATE};
use rdkafka::message::{Header, Headers, OwnedHeaders};

const MESSAGE_ID: &str = "message-id";
const CONTENT_TYPE: &str = "content-type";
const DLQ_REASON: &str = "dlq-reason";
const PROTOBUF: &str = "application/x-protobuf";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordHeaders {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
    pub message_id: Option<String>,
    pub dlq_reason: Option<String>,
}

impl RecordHeaders {
    pub fn new(traceparent: Option<String>, message_id: Option<String>) -> Self {
        Self {
            traceparent,
            tracestate: None,
            message_id,
            dlq_reason: None,
        }
    }

    /// Headers carrying `trace` (a hop's own context) and the message id.
    pub fn traced(trace: &TraceContext, message_id: Option<String>) -> Self {
        let mut headers = Self::new(None, message_id);
        trace.inject(&mut headers);
        headers
    }

    /// The trace the record belongs to, when it carries a valid one.
    pub fn trace(&self) -> Option<TraceContext> {
        TraceContext::extract(self)
    }

    pub(crate) fn to_kafka(&self) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new_with_capacity(4).insert(Header {
            key: CONTENT_TYPE,
            value: Some(PROTOBUF),
        });
        for (key, value) in [
            (TRACEPARENT, &self.traceparent),
            (TRACESTATE, &self.tracestate),
            (MESSAGE_ID, &self.message_id),
            (DLQ_REASON, &self.dlq_reason),
        ] {
            if let Some(value) = value {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_str()),
                });
            }
        }
        headers
    }

    pub(crate) fn from_kafka<H: Headers>(headers: Option<&H>) -> Self {
        let mut out = Self::default();
        let Some(headers) = headers else { return out };
        for header in headers.iter() {
            let Some(value) = header.value.and_then(|v| std::str::from_utf8(v).ok()) else {
                continue;
            };
            match header.key {
                TRACEPARENT => out.traceparent = Some(value.to_owned()),
                TRACESTATE => out.tracestate = Some(value.to_owned()),
                MESSAGE_ID => out.message_id = Some(value.to_owned()),
                DLQ_REASON => out.dlq_reason = Some(value.to_owned()),
                _ => {}
            }
        }
        out
    }
}

impl Carrier for RecordHeaders {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent.as_deref(),
            TRACESTATE => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn set(&mut self, key: &'static str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE => self.tracestate = Some(value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_kafka_headers() {
        let h = RecordHeaders {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("vendor=1".into()),
            message_id: Some("m-1".into()),
            dlq_reason: None,
        };
        let kafka = h.to_kafka();
        assert_eq!(RecordHeaders::from_kafka(Some(&kafka)), h);
        assert_eq!(kafka.count(), 4);
        let trace = h.trace().expect("a valid traceparent");
        assert_eq!(trace.state(), Some("vendor=1"));
        assert_eq!(RecordHeaders::traced(&trace, Some("m-1".into())), h);
        assert_eq!(
            RecordHeaders::from_kafka::<OwnedHeaders>(None),
            RecordHeaders::default()
        );
    }
}
