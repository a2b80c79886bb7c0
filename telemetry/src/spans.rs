//! One span per hop of a message, exported over OTLP/gRPC when the standard
//! variables ask for it.
//!
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! turns export on; `OTEL_SERVICE_NAME` names the service (else each
//! service names itself, `chat4all-router`, ...); `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG` pick the sampler, as the OpenTelemetry SDK reads
//! them; `OTEL_SDK_DISABLED=true` turns it all off. Unset, a hop is the
//! [`TraceContext`] alone: the trace id still travels and is stored with
//! the message, a new span id is drawn per hop, and nothing else happens.
//!
//! A hop's span is a child of the context that came with the message (gRPC
//! metadata, a Kafka header, a webhook's carried `traceparent`), and the
//! context passed on is the span's own, so every hop of a delivery is one
//! trace with its parent links in order. Spans are built with the
//! OpenTelemetry API directly: the hop code decides the parent, which the
//! `tracing` span stack of a batch consumer could not.
//!
//! One process may host every service (the one-machine mode): each service
//! gets its own provider, so each keeps its own `service.name`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span};

use crate::TraceContext;

/// Where spans go, once configured.
static EXPORT: RwLock<Option<String>> = RwLock::new(None);
/// One provider per service name, made on first use.
static PROVIDERS: Mutex<Option<HashMap<String, SdkTracerProvider>>> = Mutex::new(None);

/// The endpoint the standard variables name, unless the SDK is disabled.
pub fn endpoint_from_env() -> Option<String> {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if disabled {
        return None;
    }
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .filter_map(|name| std::env::var(name).ok())
    .map(|v| v.trim().to_owned())
    .find(|v| !v.is_empty())
}

/// Sends spans to `endpoint` (OTLP/gRPC), or nowhere. Services that asked
/// for their tracer before keep what they had.
pub fn export_to(endpoint: Option<String>) {
    *EXPORT.write().unwrap_or_else(PoisonError::into_inner) = endpoint;
}

/// A service's tracer: a real one when export is configured, else one that
/// only carries the context along.
#[derive(Clone, Debug)]
pub struct HopTracer {
    tracer: Option<SdkTracer>,
}

/// The tracer of `service` (its default `service.name`). Call it inside the
/// Tokio runtime that will live as long as the service: the exporter's gRPC
/// channel runs on it.
pub fn tracer(service: &str) -> HopTracer {
    let Some(endpoint) = EXPORT.read().unwrap_or_else(PoisonError::into_inner).clone() else {
        return HopTracer::disabled();
    };
    let mut providers = PROVIDERS.lock().unwrap_or_else(PoisonError::into_inner);
    let providers = providers.get_or_insert_with(HashMap::new);
    let provider = match providers.get(service) {
        Some(provider) => provider.clone(),
        None => match build_provider(service, &endpoint) {
            Ok(provider) => {
                providers.insert(service.to_owned(), provider.clone());
                provider
            }
            Err(error) => {
                tracing::warn!(%error, service, %endpoint, "span export not set up; spans are dropped");
                return HopTracer::disabled();
            }
        },
    };
    HopTracer {
        tracer: Some(provider.tracer("chat4all")),
    }
}

fn build_provider(service: &str, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    // OTEL_SERVICE_NAME, when set, wins: the env detector of the default
    // builder has read it.
    let resource = if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty()) {
        Resource::builder().build()
    } else {
        Resource::builder().with_service_name(service.to_owned()).build()
    };
    // The default config reads OTEL_TRACES_SAMPLER; the batch processor
    // runs on its own thread, off the request path.
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

/// Exports what every provider holds; blocks, so off the runtime.
pub async fn flush() {
    let providers = current_providers();
    let _ = tokio::task::spawn_blocking(move || {
        for provider in providers {
            if let Err(error) = provider.force_flush() {
                tracing::warn!(%error, "span flush failed");
            }
        }
    })
    .await;
}

/// Flushes and closes every provider: the last thing a process does.
pub async fn shutdown() {
    let providers: Vec<SdkTracerProvider> = PROVIDERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .map(|m| m.into_values().collect())
        .unwrap_or_default();
    let _ = tokio::task::spawn_blocking(move || {
        for provider in providers {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "span exporter shutdown failed");
            }
        }
    })
    .await;
}

fn current_providers() -> Vec<SdkTracerProvider> {
    PROVIDERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default()
}

impl HopTracer {
    pub fn disabled() -> Self {
        Self { tracer: None }
    }

    pub fn is_exporting(&self) -> bool {
        self.tracer.is_some()
    }

    /// Starts a hop as a child of `parent`, or of nothing (a new trace).
    pub fn start(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: Option<&TraceContext>,
    ) -> Hop {
        let Some(tracer) = &self.tracer else {
            let context = parent.map_or_else(TraceContext::new_root, TraceContext::child);
            return Hop { span: None, context };
        };
        let parent_cx = match parent {
            Some(parent) => Context::new().with_remote_span_context(span_context(parent)),
            None => Context::new(),
        };
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .start_with_context(tracer, &parent_cx);
        let own = span.span_context();
        let context = TraceContext::from_parts(
            own.trace_id().to_bytes(),
            own.span_id().to_bytes(),
            own.trace_flags().to_u8(),
            parent.and_then(TraceContext::state),
        )
        // An invalid span (a sampler that drops it outright) still passes
        // the trace on.
        .unwrap_or_else(|| parent.map_or_else(TraceContext::new_root, TraceContext::child));
        Hop {
            span: Some(span),
            context,
        }
    }
}

fn span_context(parent: &TraceContext) -> SpanContext {
    let state = parent
        .state()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    SpanContext::new(
        TraceId::from_bytes(parent.trace_id_bytes()),
        SpanId::from_bytes(parent.span_id_bytes()),
        TraceFlags::new(parent.flags()),
        true,
        state,
    )
}

/// One hop of one message: its span (when exporting) and the context the
/// next hop continues. The span ends when the hop is dropped.
pub struct Hop {
    span: Option<Span>,
    context: TraceContext,
}

impl Hop {
    /// What to pass on: this hop's own span as the parent of the next.
    pub fn context(&self) -> &TraceContext {
        &self.context
    }

    pub fn trace_id(&self) -> String {
        self.context.trace_id()
    }

    pub fn is_recording(&self) -> bool {
        self.span.as_ref().is_some_and(|s| s.is_recording())
    }

    /// Sets attributes; `attributes` runs only when the span records, so a
    /// process without export pays nothing for them.
    pub fn record(&mut self, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if let Some(span) = self.span.as_mut().filter(|s| s.is_recording()) {
            span.set_attributes(attributes());
        }
    }

    /// Marks the hop failed, with why.
    pub fn fail(&mut self, description: impl Into<Cow<'static, str>>) {
        if let Some(span) = self.span.as_mut() {
            span.set_status(Status::error(description));
        }
    }

    /// A log span for what happens within the hop: every line under it
    /// carries the trace id and the message id.
    pub fn logs(&self, message_id: &str) -> tracing::Span {
        tracing::info_span!("hop", trace_id = %self.context.trace_id(), message_id)
    }

    /// Ends the span now rather than when the hop is dropped.
    pub fn end(mut self) {
        if let Some(mut span) = self.span.take() {
            span.end();
        }
    }
}

/// OpenTelemetry semantic-convention attributes, spelled once.
pub mod attributes {
    use opentelemetry::KeyValue;

    pub fn grpc(service: &'static str, method: &'static str) -> [KeyValue; 3] {
        [
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service),
            KeyValue::new("rpc.method", method),
        ]
    }

    /// `operation` is `send` (publish) or `process`.
    pub fn kafka(topic: &str, operation: &'static str) -> [KeyValue; 4] {
        let kind = if operation == "send" { "publish" } else { operation };
        [
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.destination.name", topic.to_owned()),
            KeyValue::new("messaging.operation.name", operation),
            KeyValue::new("messaging.operation.type", kind),
        ]
    }

    pub fn message_id(id: &str) -> KeyValue {
        KeyValue::new("chat4all.message_id", id.to_owned())
    }

    pub fn platform(platform: &str) -> KeyValue {
        KeyValue::new("chat4all.platform", platform.to_owned())
    }

    pub fn status(status: &str) -> KeyValue {
        KeyValue::new("chat4all.status", status.to_owned())
    }
}

pub use opentelemetry::KeyValue as Attribute;
pub use opentelemetry::trace::SpanKind as HopKind;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn without_export_a_hop_only_carries_the_context_on() {
        let tracer = HopTracer::disabled();
        let root = tracer.start("send messages", SpanKind::Producer, None);
        assert!(!root.is_recording());
        let parent = root.context().clone().with_state(Some("k=v"));
        let mut next = tracer.start("process messages", SpanKind::Consumer, Some(&parent));
        let mut called = false;
        next.record(|| {
            called = true;
            Vec::new()
        });
        assert!(!called, "attributes are not even built");
        assert_eq!(next.trace_id(), parent.trace_id());
        assert_ne!(next.context().span_id_bytes(), parent.span_id_bytes());
        assert_eq!(next.context().state(), Some("k=v"));
    }
}
