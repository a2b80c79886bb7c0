//! The webhook HTTP server every adapter exposes to its platform.
//!
//! `POST /webhook` checks the signature on the raw bytes first (missing →
//! 401, wrong → 403), parses second (unparseable → 400), queues the events
//! third (full → 503, so the platform retries) and answers at once: Meta
//! retries any webhook not answered 200 quickly, so nothing slow happens on
//! this path. `GET /webhook` answers Meta's `hub.challenge` handshake, and
//! `GET /health` says the process is up.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use chat4all_proto::v1 as pb;
use chat4all_telemetry::spans::{Attribute, attributes};
use chat4all_telemetry::{HopKind, HopTracer, TraceContext};

use crate::events::EventQueue;
use crate::signature::{SignatureError, constant_time_eq};
use crate::{PlatformAdapter, WEBHOOK_PATH};

struct WebhookState<A> {
    adapter: Arc<A>,
    events: Arc<EventQueue>,
    tracer: HopTracer,
}

/// The webhook routes for `adapter`, queueing into `events`.
pub fn router<A: PlatformAdapter>(adapter: Arc<A>, events: Arc<EventQueue>) -> Router {
    let tracer = chat4all_telemetry::spans::tracer(&format!("chat4all-{}", adapter.platform()));
    let state = Arc::new(WebhookState {
        adapter,
        events,
        tracer,
    });
    Router::new()
        .route(WEBHOOK_PATH, get(verify::<A>).post(receive::<A>))
        .route("/health", get(health))
        .with_state(state)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "healthy"}))
}

fn count(platform: &'static str, outcome: &'static str) {
    metrics::counter!("chat4all_adapter_webhooks_total", "platform" => platform, "outcome" => outcome)
        .increment(1);
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({"error": error}))).into_response()
}

async fn receive<A: PlatformAdapter>(
    State(state): State<Arc<WebhookState<A>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let platform = state.adapter.platform();
    if let Err(e) = state.adapter.webhook_signature().verify(&headers, &body) {
        let (status, outcome) = match e {
            SignatureError::Missing => (StatusCode::UNAUTHORIZED, "unsigned"),
            SignatureError::Malformed | SignatureError::Mismatch => (StatusCode::FORBIDDEN, "bad_signature"),
        };
        count(platform, outcome);
        tracing::warn!(platform, error = %e, "webhook refused");
        return refuse(status, &e.to_string());
    }
    let mut events = match state.adapter.parse_webhook(&body) {
        Ok(events) => events,
        Err(e) => {
            count(platform, "malformed");
            tracing::warn!(platform, error = %e, bytes = body.len(), "webhook not understood");
            return refuse(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    for event in &mut events {
        trace_event(&state.tracer, platform, event);
    }
    let n = events.len();
    match state.events.offer(events) {
        Ok(()) => {
            count(platform, "accepted");
            metrics::counter!("chat4all_adapter_webhook_events_total", "platform" => platform)
                .increment(n as u64);
            tracing::debug!(platform, events = n, "webhook queued");
            (StatusCode::OK, Json(json!({"status": "accepted", "events": n}))).into_response()
        }
        Err(e) => {
            count(platform, "queue_full");
            state.adapter.webhook_not_queued(&body);
            if n > state.events.capacity() {
                // It can never fit: raising the capacity is the only cure.
                tracing::error!(
                    platform,
                    events = n,
                    capacity = state.events.capacity(),
                    "webhook larger than the event queue"
                );
            } else {
                tracing::warn!(
                    platform,
                    events = n,
                    waiting = state.events.len(),
                    "event queue full, webhook refused"
                );
            }
            refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

/// The webhook's hop: a receipt continues the trace its platform carried
/// back (the send's platform call), a user's message starts one; the event
/// then carries the hop's own context on to the sidecar.
fn trace_event(tracer: &HopTracer, platform: &str, event: &mut pb::PlatformEvent) {
    let parent = TraceContext::parse(&event.traceparent);
    let (what, message_id) = match &event.event {
        Some(pb::platform_event::Event::Receipt(r)) => ("receipt", r.message_id.as_str()),
        Some(pb::platform_event::Event::Inbound(_)) => ("message", ""),
        None => return,
    };
    let name = if tracer.is_exporting() {
        Cow::Owned(format!("webhook {platform} {what}"))
    } else {
        Cow::Borrowed("")
    };
    let mut hop = tracer.start(name, HopKind::Server, parent.as_ref());
    hop.record(|| {
        let mut a = vec![
            Attribute::new("http.request.method", "POST"),
            Attribute::new("http.route", WEBHOOK_PATH),
            attributes::platform(platform),
        ];
        if !message_id.is_empty() {
            a.push(attributes::message_id(message_id));
        }
        if let Some(pb::platform_event::Event::Receipt(r)) = &event.event {
            let status = pb::DeliveryStatus::try_from(r.status).map_or("unknown", |s| s.as_str_name());
            a.push(attributes::status(status));
        }
        a
    });
    event.traceparent = hop.context().to_string();
}

/// Meta's subscription handshake: echo `hub.challenge` when the token
/// matches, refuse otherwise.
async fn verify<A: PlatformAdapter>(
    State(state): State<Arc<WebhookState<A>>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let platform = state.adapter.platform();
    let token = query.get("hub.verify_token").map(String::as_str).unwrap_or("");
    let matches = state
        .adapter
        .webhook_verify_token()
        .filter(|expected| !expected.is_empty())
        .is_some_and(|expected| constant_time_eq(token.as_bytes(), expected.expose().as_bytes()));
    let subscribe = query.get("hub.mode").map(String::as_str) == Some("subscribe");
    match query.get("hub.challenge") {
        Some(challenge) if subscribe && matches => {
            tracing::info!(platform, "webhook subscription verified");
            (StatusCode::OK, challenge.clone()).into_response()
        }
        _ => {
            tracing::warn!(platform, "webhook verification refused");
            refuse(StatusCode::FORBIDDEN, "verification refused")
        }
    }
}
