//! The headers every record carries: `traceparent` and `tracestate` (the
//! message's trace), `message-id`, `content-type`; on dead letters,
//! `dlq-reason`; and on a record a consumer put back on its topic to try
//! again later, `retry-attempt` and `retry-not-before` (Unix milliseconds),
//! so the retry survives a crash and any replica can pick it up.

use chat4all_telemetry::TraceContext;
use chat4all_telemetry::trace_context::{Carrier, TRACEPARENT, TRACESTATE};
use rdkafka::message::{Header, Headers, OwnedHeaders};

const MESSAGE_ID: &str = "message-id";
const CONTENT_TYPE: &str = "content-type";
const DLQ_REASON: &str = "dlq-reason";
const RETRY_ATTEMPT: &str = "retry-attempt";
const RETRY_NOT_BEFORE: &str = "retry-not-before";
const PROTOBUF: &str = "application/x-protobuf";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordHeaders {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
    pub message_id: Option<String>,
    pub dlq_reason: Option<String>,
    /// How many times a consumer has put this record back (1 for the first
    /// retry); absent on a record as first produced.
    pub retry_attempt: Option<u32>,
    /// When a put-back record is due again, in Unix milliseconds.
    pub retry_not_before: Option<i64>,
}

impl RecordHeaders {
    pub fn new(traceparent: Option<String>, message_id: Option<String>) -> Self {
        Self {
            traceparent,
            tracestate: None,
            message_id,
            dlq_reason: None,
            retry_attempt: None,
            retry_not_before: None,
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
        let attempt = self.retry_attempt.map(|a| a.to_string());
        let not_before = self.retry_not_before.map(|t| t.to_string());
        for (key, value) in [
            (TRACEPARENT, &self.traceparent),
            (TRACESTATE, &self.tracestate),
            (MESSAGE_ID, &self.message_id),
            (DLQ_REASON, &self.dlq_reason),
            (RETRY_ATTEMPT, &attempt),
            (RETRY_NOT_BEFORE, &not_before),
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
                RETRY_ATTEMPT => out.retry_attempt = value.parse().ok(),
                RETRY_NOT_BEFORE => out.retry_not_before = value.parse().ok(),
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
            retry_attempt: None,
            retry_not_before: None,
        };
        let kafka = h.to_kafka();
        assert_eq!(RecordHeaders::from_kafka(Some(&kafka)), h);
        assert_eq!(kafka.count(), 4);
        let retried = RecordHeaders {
            retry_attempt: Some(2),
            retry_not_before: Some(1_700_000_000_123),
            ..h.clone()
        };
        assert_eq!(RecordHeaders::from_kafka(Some(&retried.to_kafka())), retried);
        let trace = h.trace().expect("a valid traceparent");
        assert_eq!(trace.state(), Some("vendor=1"));
        assert_eq!(RecordHeaders::traced(&trace, Some("m-1".into())), h);
        assert_eq!(
            RecordHeaders::from_kafka::<OwnedHeaders>(None),
            RecordHeaders::default()
        );
    }
}
