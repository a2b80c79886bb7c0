//! The webhook HTTP server every adapter exposes to its platform.
//!
//! `POST /webhook` checks the signature on the raw bytes first (missing →
//! 401, wrong → 403), parses second (unparseable → 400), queues the events
//! third (full or stopping → 503, so the platform retries), then waits for
//! the sidecar to ack every event, i.e. for them to be durable in Kafka,
//! and only then answers 200. The wait is bounded by the ack timeout
//! (8 s by default, well within the ~20 s Meta and Telegram give a
//! webhook): past it the answer is 503 and the platform redelivers, which
//! downstream de-duplication makes harmless. Whenever the events were not
//! all acked (refused, timed out, or the platform hung up first) the
//! platform is told to forget them (`webhook_not_queued`), so its own
//! repeat filter does not drop the redelivery. `GET /webhook` answers
//! Meta's `hub.challenge` handshake, and `GET /health` says the process is
//! up.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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

use crate::events::{EventQueue, NotAcked, QueueError};
use crate::signature::{SignatureError, constant_time_eq};
use crate::{PlatformAdapter, WEBHOOK_PATH};

struct WebhookState<A> {
    adapter: Arc<A>,
    events: Arc<EventQueue>,
    ack_timeout: Duration,
    tracer: HopTracer,
}

/// The webhook routes for `adapter`, queueing into `events` and waiting
/// up to `ack_timeout` for their acks.
pub fn router<A: PlatformAdapter>(adapter: Arc<A>, events: Arc<EventQueue>, ack_timeout: Duration) -> Router {
    let platform = adapter.platform();
    let tracer = chat4all_telemetry::spans::tracer(&format!("chat4all-{platform}"));
    // At 0 from start-up: `increase()` over a series that appears at 1
    // misses its first event.
    for outcome in ["accepted", "queue_full", "stopping", "ack_timeout"] {
        metrics::counter!("chat4all_adapter_webhooks_total", "platform" => platform, "outcome" => outcome)
            .increment(0);
    }
    metrics::gauge!("chat4all_adapter_events_unacked", "platform" => platform).set(0.0);
    let state = Arc::new(WebhookState {
        adapter,
        events,
        ack_timeout,
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
    // Until the events are acked, the platform must be able to send the
    // body again and have it taken.
    let mut unanswered = Unanswered {
        adapter: state.adapter.as_ref(),
        body: &body,
        armed: true,
    };
    let pending = match state.events.offer(events) {
        Ok(pending) => pending,
        Err(e) => {
            let outcome = match e {
                QueueError::Full => "queue_full",
                QueueError::Closed => "stopping",
            };
            count(platform, outcome);
            if e == QueueError::Closed {
                tracing::info!(platform, events = n, "adapter stopping, webhook refused");
            } else if n > state.events.capacity() {
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
                    unacked = state.events.unacked(),
                    "event queue full, webhook refused"
                );
            }
            return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
        }
    };
    match pending.wait(state.ack_timeout).await {
        Ok(()) => {
            unanswered.armed = false;
            count(platform, "accepted");
            metrics::counter!("chat4all_adapter_webhook_events_total", "platform" => platform)
                .increment(n as u64);
            tracing::debug!(platform, events = n, "webhook events acked");
            (StatusCode::OK, Json(json!({"status": "accepted", "events": n}))).into_response()
        }
        Err(e) => {
            let outcome = match e {
                NotAcked::TimedOut => "ack_timeout",
                NotAcked::Closed => "stopping",
            };
            count(platform, outcome);
            tracing::warn!(
                platform,
                events = n,
                timeout = ?state.ack_timeout,
                waiting = state.events.len(),
                unacked = state.events.unacked(),
                error = %e,
                "webhook events not acked, platform asked to redeliver"
            );
            refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

/// Tells the platform adapter a body's events were not taken unless
/// disarmed, on every way out of the handler, including the platform
/// hanging up mid-wait (the handler's future is then dropped).
struct Unanswered<'a, A: PlatformAdapter> {
    adapter: &'a A,
    body: &'a [u8],
    armed: bool,
}

impl<A: PlatformAdapter> Drop for Unanswered<'_, A> {
    fn drop(&mut self) {
        if self.armed {
            self.adapter.webhook_not_queued(self.body);
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
