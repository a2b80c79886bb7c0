//! The W3C trace context (`traceparent`) each message carries through every
//! hop: gRPC metadata, Kafka headers, the platform's HTTP call.
//!
//! The message record keeps the trace id, so a delivery can be found in a
//! tracing dashboard from the message alone.

use std::fmt;

use rand::Rng;

/// The `traceparent` header and gRPC metadata key.
pub const TRACEPARENT: &str = "traceparent";

/// A parsed `traceparent`: version 00, trace id, parent span id, flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
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
        }
    }

    /// The same trace with a new span of ours as parent of the next hop.
    pub fn child(&self) -> Self {
        let mut span_id = [0u8; 8];
        let mut rng = rand::rng();
        while span_id == [0; 8] {
            rng.fill(&mut span_id);
        }
        Self { span_id, ..*self }
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
        })
    }

    /// From gRPC request metadata, when the client sent a valid one.
    pub fn from_metadata(metadata: &tonic::metadata::MetadataMap) -> Option<Self> {
        metadata.get(TRACEPARENT)?.to_str().ok().and_then(Self::parse)
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
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
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_malformed() {
        let t = TraceContext::new_root();
        assert_eq!(TraceContext::parse(&t.to_string()), Some(t));
        let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceContext::parse(given);
        assert_eq!(parsed.map(|p| p.to_string()).as_deref(), Some(given));
        assert_eq!(
            parsed.map(|p| p.trace_id()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let child = parsed.map(|p| p.child());
        assert_eq!(child.map(|c| c.trace_id()), parsed.map(|p| p.trace_id()));
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
