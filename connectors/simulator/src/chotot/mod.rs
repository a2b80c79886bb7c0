//! Chotot's chat-api as the simulator serves it, over a small seeded
//! marketplace (users, their listings, buyer–seller channels with history),
//! so the adapter's reads have something real to page through:
//!
//! - `POST /api/v1/internal/messages` `{"channel_id","sender_id","message","type":"text"}`
//!   → `{"id","channel_id","created_at":<ms>}` (platform-apis.md leaves the
//!   answer open; this is the shape we define);
//! - `GET /api/v1/internal/user_channel/{user_id}/{channel_id}/messages?limit=N&before_ts=<ms>`
//!   → `{"messages":[…]}`, newest first, strictly before `before_ts`;
//! - `GET /api/v1/internal/channels/{channel_id}` → the channel document
//!   (`name`, the legacy `item_name`, `item_price`, `external_channel_id`,
//!   `members`);
//! - `GET /api/v1/internal/users/{user_id}/products?limit=N&page=P` (pages
//!   from 1; our path for the plan's `GetUserProducts`) →
//!   `{"products":[{id,title,price,currency,image_url,url}],"page","limit","total","has_more"}`.
//!
//! Every call needs the `x-project-uuid` and `Service` headers (401
//! otherwise). Errors are `{"error":"<code>","message":"…"}`: 400 for a bad
//! body or query, 403 for a user outside the channel, 404 for an unknown
//! channel or user, 429 with `Retry-After` and 5xx when injected.
//!
//! Like chat-api, which publishes every message on `chat.event.messages`,
//! the simulator posts the event of each accepted send back to the webhook
//! (the echo, which the adapter must recognise as ours), signed with
//! HMAC-SHA256 hex in `X-Chotot-Signature`. It is spawned before the send's
//! answer, so with latency on the echo overtakes the answer, and with the
//! `echo_before_response` switch it is accepted before the answer leaves.
//! The send-side switches are the simulator's one shared decision
//! (`faults`), consulted after the header and body checks. The event's
//! `client_gen_id` is the message id, so events and history name a message
//! the same way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::config::InjectedFailure;
use crate::signing::hmac_sha256_hex;
use crate::state::{ReceivedSend, Shared, SimulatorError, unix_ms};
use crate::webhooks::SignedWebhook;

pub(crate) const PLATFORM: &str = "chotot";
/// The topic (NestJS pattern) message events are published on.
const MESSAGES_PATTERN: &str = "chat.event.messages";
pub(crate) const SIGNATURE_HEADER: &str = "x-chotot-signature";
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;
/// The seeded history starts here (2023-11-14T22:13:20Z), a minute apart.
const SEED_EPOCH_MS: i64 = 1_700_000_000_000;

mod data;

pub(crate) use data::Store;
use data::{Channel, Message, Product};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/internal/messages", post(send))
        .route(
            "/api/v1/internal/user_channel/{user_id}/{channel_id}/messages",
            get(history),
        )
        .route("/api/v1/internal/channels/{channel_id}", get(channel))
        .route("/api/v1/internal/users/{user_id}/products", get(products))
}

/// chat-api's error answer: `{"error":"<code>","message":"…"}`, with
/// `Retry-After` when given.
struct Refusal {
    status: u16,
    code: String,
    message: String,
    retry_after: Option<Duration>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response =
            (status, Json(json!({"error": self.code, "message": self.message}))).into_response();
        if let Some(retry_after) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

fn error(status: u16, code: &str, message: &str, retry_after: Option<Duration>) -> Refusal {
    Refusal {
        status,
        code: code.to_owned(),
        message: message.to_owned(),
        retry_after,
    }
}

fn injected(failure: &InjectedFailure) -> Refusal {
    let code = match failure.http_status {
        429 => "rate_limited",
        400 => "bad_request",
        404 => "not_found",
        s if s >= 500 => "internal_error",
        _ => "error",
    };
    error(failure.http_status, code, &failure.message, failure.retry_after)
}

fn unauthorized(shared: &Shared, headers: &HeaderMap) -> Option<Refusal> {
    let config = &shared.chotot;
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let ok = value("x-project-uuid") == Some(config.project_uuid.as_str())
        && value("service") == Some(config.service.as_str());
    (!ok).then(|| {
        error(
            401,
            "unauthorized",
            "missing or unknown x-project-uuid or Service header",
            None,
        )
    })
}

fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What the send endpoint decided.
enum Outcome {
    Accepted {
        message: Message,
        event: Option<Vec<u8>>,
    },
    Refused(Refusal),
}

/// The checks before any switch is consulted: the headers (401), then the
/// body (400). The channel id, sender and text on success.
fn check(shared: &Shared, headers: &HeaderMap, body: &Value) -> Result<(String, String, String), Refusal> {
    if let Some(refusal) = unauthorized(shared, headers) {
        return Err(refusal);
    }
    let bad = |message: &str| error(400, "bad_request", message, None);
    let channel_id = id_text(body.get("channel_id")).ok_or_else(|| bad("channel_id is required"))?;
    let sender_id = id_text(body.get("sender_id")).ok_or_else(|| bad("sender_id is required"))?;
    let text = match body.get("message").and_then(Value::as_str) {
        Some(text) if !text.trim().is_empty() => text.to_owned(),
        _ => return Err(bad("message is required")),
    };
    if body.get("type").and_then(Value::as_str) != Some("text") {
        return Err(bad("type must be \"text\""));
    }
    Ok((channel_id, sender_id, text))
}

fn channel_not_found(channel_id: &str) -> InjectedFailure {
    InjectedFailure {
        http_status: 404,
        code: 404,
        message: format!(
            "channel {} not found",
            channel_id.chars().take(64).collect::<String>()
        ),
        retry_after: None,
    }
}

/// The send, once the switches let it through: into the channel's history
/// if the channel exists and the sender is in it.
fn accept(shared: &Shared, channel_id: String, sender_id: String, text: String) -> Outcome {
    let mut data = shared.chotot_data.lock();
    let message_id = data.message_id();
    let Some(channel) = data.channels.get_mut(&channel_id) else {
        return Outcome::Refused(injected(&channel_not_found(&channel_id)));
    };
    if !channel.members.contains(&sender_id) {
        return Outcome::Refused(error(
            403,
            "forbidden",
            "the sender is not a member of the channel",
            None,
        ));
    }
    let message = Message {
        id: message_id,
        channel_id,
        sender_id,
        message: text,
        kind: "text",
        created_at: i64::try_from(unix_ms(SystemTime::now())).unwrap_or(i64::MAX),
    };
    channel.messages.push(message.clone());
    let event = shared.chotot.echoes.then(|| event_body(channel, &message, ""));
    Outcome::Accepted { message, event }
}

/// The `chat.event.messages` event of `message`, as chat-api publishes it.
fn event_body(channel: &Channel, message: &Message, sender_name: &str) -> Vec<u8> {
    let receivers: Vec<&String> = channel
        .members
        .iter()
        .filter(|m| **m != message.sender_id)
        .collect();
    let mut metadata = json!({
        "item_id": channel.item_id,
        "item_name": channel.item_name,
        "item_price": channel.item_price,
    });
    if !sender_name.is_empty() {
        metadata["sender_name"] = json!(sender_name);
    }
    let event = json!({
        "pattern": MESSAGES_PATTERN,
        "data": {
            "channel_id": message.channel_id,
            "sender_id": message.sender_id,
            "created_at": message.created_at,
            "type": message.kind,
            "message": message.message,
            "metadata": metadata,
            "receiver_ids": receivers,
            "client_gen_id": message.id,
        }
    });
    serde_json::to_vec(&event).unwrap_or_default()
}

async fn send(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (plan, outcome) = match check(&shared, &headers, &body) {
        Err(refusal) => (shared.plan_refusal(PLATFORM), Outcome::Refused(refusal)),
        Ok((channel_id, sender_id, text)) => {
            match shared.plan_send(PLATFORM, &channel_id, channel_not_found(&channel_id)) {
                Ok(plan) => {
                    let outcome = match &plan.failure {
                        Some(failure) => Outcome::Refused(injected(failure)),
                        None => accept(&shared, channel_id, sender_id, text),
                    };
                    (plan, outcome)
                }
                Err(e) => {
                    tracing::error!(error = %e, "simulator state missing");
                    return error(500, "internal_error", "simulator state missing", None).into_response();
                }
            }
        }
    };
    let (http_status, platform_message_id) = match &outcome {
        Outcome::Accepted { message, .. } => (200, Some(message.id.clone())),
        Outcome::Refused(refusal) => (refusal.status, None),
    };
    let record = ReceivedSend {
        platform: PLATFORM.to_owned(),
        to: id_text(body.get("channel_id")).unwrap_or_default(),
        text: body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        traceparent: headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        tracestate: headers
            .get("tracestate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        opaque: None,
        platform_message_id,
        http_status,
        body,
        received_at_unix_ms: unix_ms(SystemTime::now()),
    };
    let _ = shared.with(PLATFORM, |state| shared.record(state, record));
    tracing::debug!(http_status, "chotot send received");
    let response = match outcome {
        Outcome::Accepted { message, event } => {
            if let (Some(body), Some(url)) = (event, plan.webhook_url.clone()) {
                let hook = signed_for(&shared, url, body);
                if plan.echo_before_response {
                    // The rough edge: the echo is in (and accepted) before
                    // the sender hears its send was.
                    if let Err(e) = shared.deliver(PLATFORM, &hook).await {
                        tracing::warn!(error = %e, "chotot echo not delivered");
                    }
                } else {
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        if let Err(e) = shared.deliver(PLATFORM, &hook).await {
                            tracing::warn!(error = %e, "chotot echo not delivered");
                        }
                    });
                }
            }
            Json(json!({
                "id": message.id,
                "channel_id": message.channel_id,
                "created_at": message.created_at,
            }))
            .into_response()
        }
        Outcome::Refused(refusal) => refusal.into_response(),
    };
    shared.hold_answer(&plan).await;
    response
}

/// A `limit` query parameter: absent is the default, beyond the maximum is
/// the maximum, anything else not a positive number is refused.
fn parse_limit(query: &HashMap<String, String>) -> Result<usize, Refusal> {
    match query.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n.min(MAX_LIMIT)),
            _ => Err(error(
                400,
                "bad_request",
                "limit must be a positive integer",
                None,
            )),
        },
    }
}

async fn history(
    State(shared): State<Arc<Shared>>,
    Path((user_id, channel_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = unauthorized(&shared, &headers) {
        return refusal.into_response();
    }
    let limit = match parse_limit(&query) {
        Ok(limit) => limit,
        Err(refusal) => return refusal.into_response(),
    };
    let before = match query.get("before_ts").map(|v| v.parse::<i64>()) {
        None => i64::MAX,
        Some(Ok(ms)) => ms,
        Some(Err(_)) => {
            return error(400, "bad_request", "before_ts must be unix milliseconds", None).into_response();
        }
    };
    let data = shared.chotot_data.lock();
    let Some(channel) = data.channels.get(&channel_id) else {
        return error(404, "not_found", "channel not found", None).into_response();
    };
    if !channel.members.contains(&user_id) {
        return error(403, "forbidden", "the user is not a member of the channel", None).into_response();
    }
    let mut messages: Vec<&Message> = channel
        .messages
        .iter()
        .filter(|m| m.created_at < before)
        .collect();
    messages.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    messages.truncate(limit);
    Json(json!({ "messages": messages })).into_response()
}

async fn channel(
    State(shared): State<Arc<Shared>>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = unauthorized(&shared, &headers) {
        return refusal.into_response();
    }
    match shared.chotot_data.lock().channels.get(&channel_id) {
        Some(channel) => Json(channel.document()).into_response(),
        None => error(404, "not_found", "channel not found", None).into_response(),
    }
}

async fn products(
    State(shared): State<Arc<Shared>>,
    Path(user_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = unauthorized(&shared, &headers) {
        return refusal.into_response();
    }
    let limit = match parse_limit(&query) {
        Ok(limit) => limit,
        Err(refusal) => return refusal.into_response(),
    };
    let page = match query.get("page").map(|v| v.parse::<usize>()) {
        None => 1,
        Some(Ok(p)) if p > 0 => p,
        _ => return error(400, "bad_request", "page must start at 1", None).into_response(),
    };
    let data = shared.chotot_data.lock();
    let Some(listings) = data.products.get(&user_id) else {
        return error(404, "not_found", "user not found", None).into_response();
    };
    let start = (page - 1).saturating_mul(limit);
    let items: Vec<&Product> = listings.iter().skip(start).take(limit).collect();
    Json(json!({
        "products": items,
        "page": page,
        "limit": limit,
        "total": listings.len(),
        "has_more": start.saturating_add(limit) < listings.len(),
    }))
    .into_response()
}

fn signed_for(shared: &Shared, url: String, body: Vec<u8>) -> SignedWebhook {
    SignedWebhook {
        url,
        header: SIGNATURE_HEADER,
        signature: hmac_sha256_hex(shared.chotot.webhook_secret.as_bytes(), &body),
        body,
    }
}

/// `body` signed for the current webhook target.
pub(crate) fn signed(shared: &Shared, body: Vec<u8>) -> Result<SignedWebhook, SimulatorError> {
    Ok(signed_for(shared, shared.webhook_url(PLATFORM)?, body))
}

/// User `from` writes `text` to our shop: in the first channel the two
/// share (one is opened when they share none), kept in its history, and
/// posted as a signed event. Returns the message id (the event's
/// `client_gen_id`).
pub(crate) async fn inbound_text(
    shared: &Shared,
    from: &str,
    sender_name: &str,
    text: &str,
) -> Result<String, SimulatorError> {
    let url = shared.webhook_url(PLATFORM)?;
    let shop = shared.chotot.bot_user_id.clone();
    let body = {
        let mut data = shared.chotot_data.lock();
        let message_id = data.message_id();
        if !sender_name.is_empty() || !data.users.contains_key(from) {
            data.users.insert(from.to_owned(), sender_name.to_owned());
        }
        let existing = data
            .channels
            .values()
            .find(|c| c.members.iter().any(|m| m == from) && c.members.contains(&shop))
            .map(|c| c.id.clone());
        let now = i64::try_from(unix_ms(SystemTime::now())).unwrap_or(i64::MAX);
        let channel_id = existing.unwrap_or_else(|| format!("ch-dm-{from}"));
        let channel = data
            .channels
            .entry(channel_id.clone())
            .or_insert_with(|| Channel {
                id: channel_id.clone(),
                name: format!("Chat4All Shop - {sender_name}"),
                item_id: String::new(),
                item_name: String::new(),
                item_price: 0,
                members: vec![from.to_owned(), shop],
                created_at: now,
                messages: Vec::new(),
            });
        let message = Message {
            id: message_id,
            channel_id,
            sender_id: from.to_owned(),
            message: text.to_owned(),
            kind: "text",
            created_at: now,
        };
        channel.messages.push(message.clone());
        (event_body(channel, &message, sender_name), message.id)
    };
    let (event, id) = body;
    shared.deliver(PLATFORM, &signed_for(shared, url, event)).await?;
    Ok(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::ChototSimConfig;

    #[test]
    fn the_seed_has_more_than_one_page_and_ordered_history() {
        let store = Store::seeded(&ChototSimConfig::default());
        let data = store.lock();
        let shop = ChototSimConfig::default().bot_user_id;
        assert_eq!(data.products[&shop].len(), 7);
        let ch = &data.channels["ch-1001"];
        assert!(ch.members.contains(&shop));
        assert_eq!(ch.messages.len(), 5);
        assert!(ch.messages.windows(2).all(|w| w[0].created_at < w[1].created_at));
        let ids: std::collections::HashSet<_> = data
            .channels
            .values()
            .flat_map(|c| c.messages.iter().map(|m| m.id.clone()))
            .collect();
        assert_eq!(ids.len(), 8, "message ids are unique");
    }

    #[test]
    fn limits_are_checked() {
        let q = |v: &str| HashMap::from([("limit".to_owned(), v.to_owned())]);
        assert_eq!(parse_limit(&HashMap::new()).ok(), Some(20));
        assert_eq!(parse_limit(&q("500")).ok(), Some(100));
        assert!(parse_limit(&q("0")).is_err());
        assert!(parse_limit(&q("x")).is_err());
    }
}
