//! The W3C trace context (`traceparent`, and `tracestate` beside it) each
//! message carries through every hop: gRPC metadata, Kafka headers, the
//! platform's HTTP call. [`TraceContext::extract`] and
//! [`TraceContext::inject`] are the one reading and writing of it, over any
//! [`Carrier`].
//!
//! The message record keeps the trace id, so a delivery can be found in a
//! tracing dashboard from the message alone.

use std::fmt;
use std::sync::Arc;

use rand::Rng;

/// The `traceparent` header and gRPC metadata key.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header and gRPC metadata key: vendors' data, passed on
/// untouched.
pub const TRACESTATE: &str = "tracestate";

/// Where a trace context travels: gRPC metadata, HTTP headers, Kafka
/// record headers.
pub trait Carrier {
    fn get(&self, key: &str) -> Option<&str>;
    fn set(&mut self, key: &'static str, value: String);
}

impl Carrier for tonic::metadata::MetadataMap {
    fn get(&self, key: &str) -> Option<&str> {
        self.get(key)?.to_str().ok()
    }

    fn set(&mut self, key: &'static str, value: String) {
        if let Ok(value) = value.parse() {
            self.insert(key, value);
        }
    }
}

impl Carrier for http::HeaderMap {
    fn get(&self, key: &str) -> Option<&str> {
        self.get(key)?.to_str().ok()
    }

    fn set(&mut self, key: &'static str, value: String) {
        if let Ok(value) = http::HeaderValue::try_from(value) {
            self.insert(key, value);
        }
    }
}

/// A parsed `traceparent` (version 00, trace id, parent span id, flags) with
/// the `tracestate` that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    state: Option<Arc<str>>,
}

impl TraceContext {
    /// A new trace, sampled.
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        // All-zero ids are invalid in W3C: retry on the (vanishing) chance.
        while trace_id == [0; 16] {
            rng.fill(&mut trace_id);
        }
        while span_id == [0; 8] {
            rng.fill(&mut span_id);
        }
        Self {
            trace_id,
            span_id,
            flags: 1,
            state: None,
        }
    }

    /// The same trace with a new span of ours as parent of the next hop.
    pub fn child(&self) -> Self {
        let mut span_id = [0u8; 8];
        let mut rng = rand::rng();
        while span_id == [0; 8] {
            rng.fill(&mut span_id);
        }
        Self {
            span_id,
            ..self.clone()
        }
    }

    /// A new span in the trace whose id is given (32 hex digits), e.g. the
    /// trace a stored message belongs to.
    pub fn in_trace(trace_id: &str) -> Option<Self> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(trace_id, &mut id).ok()?;
        (id != [0; 16]).then(|| {
            Self {
                trace_id: id,
                span_id: [0; 8],
                flags: 1,
                state: None,
            }
            .child()
        })
    }

    /// Parses a `traceparent` value; None if it is not a valid version-00 one.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || version != "00"
            || trace.len() != 32
            || span.len() != 16
            || flags.len() != 2
        {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        hex::decode_to_slice(trace, &mut trace_id).ok()?;
        hex::decode_to_slice(span, &mut span_id).ok()?;
        let mut flag = [0u8; 1];
        hex::decode_to_slice(flags, &mut flag).ok()?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags: flag[0],
            state: None,
        })
    }

    /// The context a carrier holds, when its `traceparent` is valid; its
    /// `tracestate` comes along.
    pub fn extract(carrier: &impl Carrier) -> Option<Self> {
        let parsed = Self::parse(carrier.get(TRACEPARENT)?)?;
        Some(parsed.with_state(carrier.get(TRACESTATE)))
    }

    /// Writes `traceparent`, and `tracestate` when there is one.
    pub fn inject(&self, carrier: &mut impl Carrier) {
        carrier.set(TRACEPARENT, self.to_string());
        if let Some(state) = &self.state {
            carrier.set(TRACESTATE, state.to_string());
        }
    }

    /// From gRPC request metadata, when the client sent a valid one.
    pub fn from_metadata(metadata: &tonic::metadata::MetadataMap) -> Option<Self> {
        Self::extract(metadata)
    }

    /// The same context with this `tracestate` (an empty one is none).
    pub fn with_state(mut self, state: Option<&str>) -> Self {
        self.state = state.map(str::trim).filter(|s| !s.is_empty()).map(Arc::from);
        self
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub fn trace_id_bytes(&self) -> [u8; 16] {
        self.trace_id
    }

    pub fn span_id_bytes(&self) -> [u8; 8] {
        self.span_id
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }

    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// A context from its parts (a span's, say); None for the all-zero ids
    /// W3C calls invalid.
    pub fn from_parts(trace_id: [u8; 16], span_id: [u8; 8], flags: u8, state: Option<&str>) -> Option<Self> {
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(
            Self {
                trace_id,
                span_id,
                flags,
                state: None,
            }
            .with_state(state),
        )
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn travels_through_grpc_metadata_and_http_headers_with_its_state() {
        let given = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap()
            .with_state(Some("vendor=abc,other=1"));
        let mut metadata = tonic::metadata::MetadataMap::new();
        given.inject(&mut metadata);
        assert_eq!(TraceContext::extract(&metadata), Some(given.clone()));
        let mut headers = http::HeaderMap::new();
        given.inject(&mut headers);
        assert_eq!(
            headers.get(TRACESTATE).unwrap().to_str().unwrap(),
            "vendor=abc,other=1"
        );
        assert_eq!(TraceContext::extract(&headers), Some(given.clone()));
        // A child keeps the trace and the state, with a span of its own.
        let child = given.child();
        assert_eq!(
            (child.trace_id(), child.state()),
            (given.trace_id(), given.state())
        );
        assert_ne!(child.span_id_bytes(), given.span_id_bytes());
        // No state: no header.
        let mut bare = http::HeaderMap::new();
        TraceContext::new_root().inject(&mut bare);
        assert!(bare.get(TRACESTATE).is_none());
        assert!(TraceContext::extract(&http::HeaderMap::new()).is_none());
    }

    #[test]
    fn round_trips_and_rejects_malformed() {
        let t = TraceContext::new_root();
        assert_eq!(TraceContext::parse(&t.to_string()), Some(t));
        let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceContext::parse(given);
        assert_eq!(parsed.as_ref().map(|p| p.to_string()).as_deref(), Some(given));
        assert_eq!(
            parsed.as_ref().map(|p| p.trace_id()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let child = parsed.as_ref().map(|p| p.child());
        assert_eq!(
            child.as_ref().map(|c| c.trace_id()),
            parsed.as_ref().map(|p| p.trace_id())
        );
        assert_ne!(child, parsed);
        let again = TraceContext::in_trace("4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            again.map(|t| t.trace_id()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(TraceContext::in_trace("nope"), None);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }
}
