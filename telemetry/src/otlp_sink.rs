//! A real OTLP/gRPC trace receiver (the collector's `TraceService` from the
//! opentelemetry-proto definitions) that keeps what it is sent: the end-to-end
//! tests assert on the spans of a delivery, and the benchmark measures what
//! exporting costs against it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

/// One span as received, flattened for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    pub service: String,
    pub name: String,
    /// The OTLP `SpanKind` number (2 server, 3 client, 4 producer, 5 consumer).
    pub kind: i32,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root.
    pub parent_span_id: String,
    pub trace_state: String,
    pub start_unix_nanos: u64,
    pub attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Sink {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    /// Counts without keeping: what a benchmark needs, at a collector's
    /// cost rather than a test's.
    counting_only: bool,
    counted: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        if self.counting_only {
            let n: usize = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            self.counted.fetch_add(n, Ordering::Relaxed);
            return Ok(tonic::Response::new(ExportTraceServiceResponse::default()));
        }
        let mut received = Vec::new();
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| text(v.value.as_ref()))
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    trace_state: span.trace_state,
                    start_unix_nanos: span.start_time_unix_nano,
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|kv| (kv.key, text(kv.value.and_then(|v| v.value).as_ref())))
                        .collect(),
                });
            }
        }
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// A receiver serving on a port of its own until dropped.
pub struct OtlpSink {
    addr: SocketAddr,
    sink: Sink,
    stop: CancellationToken,
}

impl OtlpSink {
    /// Serves on 127.0.0.1, on a free port, keeping every span.
    pub async fn start() -> anyhow::Result<Self> {
        Self::serve(Sink::default()).await
    }

    /// Serves on 127.0.0.1, on a free port, counting spans only.
    pub async fn start_counting() -> anyhow::Result<Self> {
        Self::serve(Sink {
            counting_only: true,
            ..Sink::default()
        })
        .await
    }

    async fn serve(sink: Sink) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let service = TraceServiceServer::new(sink.clone());
        let cancelled = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), cancelled)
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "OTLP sink stopped");
            }
        });
        Ok(Self { addr, sink, stop })
    }

    /// The `OTEL_EXPORTER_OTLP_ENDPOINT` that reaches it.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.sink
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn count(&self) -> usize {
        let kept = self
            .sink
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        kept + self.sink.counted.load(Ordering::Relaxed)
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
