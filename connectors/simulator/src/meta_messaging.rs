//! The Send API and `messaging` webhooks Messenger and Instagram share,
//! served once: `POST /{version}/me/messages` answers
//! `{"recipient_id":…,"message_id":"m_…"}`, records the call, then posts
//! the signed webhooks that follow (the echo carrying the sent metadata,
//! then the receipts). What differs between the two is a [`Flavour`]
//! (`messenger.rs`, `instagram.rs`).
//!
//! Both platforms answer on the same path, so the access token (the
//! `access_token` query parameter, or a Bearer header) says which one is
//! called; an unknown token is Graph's 190 and is recorded nowhere. Then
//! the body checks (Graph 100), then the shared switches
//! ([`Shared::plan_send`]); a recipient on the failing list is Messenger's
//! 551 "person unavailable".
//!
//! After an accepted send: the echo (`is_echo`, `app_id`, the metadata),
//! then on Messenger `delivery` (a watermark at the message's time, and
//! `mids` only when the `delivery_mids` switch draws so) and `read` (a
//! watermark); on Instagram `read` naming the mid. Receipts out of order
//! reverse the whole sequence, echo included; echo-before-response posts
//! the echo, and waits for it to be accepted, before the send is answered.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{InjectedFailure, MetaMessagingSimConfig};
use crate::faults::post_receipts;
use crate::graph;
use crate::signing::meta_signature;
use crate::state::{ReceivedSend, Shared, SimulatorError, unix_ms};
use crate::webhooks::SignedWebhook;
use crate::{instagram, messenger};

const MAX_TEXT_CHARS: usize = 2000;
const MAX_METADATA_CHARS: usize = 1000;
const MESSAGING_TYPES: &[&str] = &["RESPONSE", "UPDATE", "MESSAGE_TAG"];

/// What makes a Meta messaging platform itself, in the simulator.
#[derive(Debug)]
pub(crate) struct Flavour {
    pub(crate) platform: &'static str,
    /// The webhook envelope's `object`.
    pub(crate) object: &'static str,
    /// Messenger posts `delivery` watermarks; Instagram has none.
    pub(crate) delivery_receipts: bool,
    /// Instagram's `read` names the mid; Messenger's carries a watermark.
    pub(crate) read_names_mid: bool,
    /// Messenger refuses a send without `messaging_type`.
    pub(crate) requires_messaging_type: bool,
    pub(crate) config: fn(&Shared) -> &MetaMessagingSimConfig,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/{version}/me/messages", post(send))
}

fn flavour(platform: &str) -> Option<&'static Flavour> {
    [&messenger::FLAVOUR, &instagram::FLAVOUR]
        .into_iter()
        .find(|f| f.platform == platform)
}

fn mid() -> String {
    format!("m_{}", uuid::Uuid::new_v4().simple())
}

fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    #[serde(default)]
    access_token: Option<String>,
}

/// Which platform the token belongs to; Messenger wins if both share one.
fn by_token(shared: &Shared, query: &TokenQuery, headers: &HeaderMap) -> Option<&'static Flavour> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = query.access_token.as_deref().or(bearer)?;
    [&messenger::FLAVOUR, &instagram::FLAVOUR]
        .into_iter()
        .find(|f| !token.is_empty() && (f.config)(shared).access_token == token)
}

fn str_at<'a>(body: &'a Value, pointer: &str) -> Option<&'a str> {
    body.pointer(pointer).and_then(Value::as_str)
}

/// The Send API's body checks, each a Graph 100.
fn check_body(flavour: &Flavour, body: &Value) -> Result<(), (InjectedFailure, String)> {
    let invalid = |message: &str| Err((graph::invalid_parameter(message), message.to_owned()));
    if str_at(body, "/recipient/id").is_none_or(|id| id.trim().is_empty()) {
        return invalid("The parameter recipient is required");
    }
    match str_at(body, "/messaging_type") {
        None if flavour.requires_messaging_type => {
            return invalid("The parameter messaging_type is required");
        }
        Some(kind) if !MESSAGING_TYPES.contains(&kind) => {
            return invalid("Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}");
        }
        _ => {}
    }
    match str_at(body, "/message/text") {
        None | Some("") => return invalid("Param message[text] must be a non-empty UTF-8 encoded string"),
        Some(text) if text.chars().count() > MAX_TEXT_CHARS => {
            return invalid("Length of param message[text] must be less than or equal to 2000");
        }
        Some(_) => {}
    }
    if let Some(metadata) = body.pointer("/message/metadata") {
        match metadata.as_str() {
            Some(s) if s.chars().count() <= MAX_METADATA_CHARS => {}
            _ => return invalid("Length of param message[metadata] must be less than or equal to 1000"),
        }
    }
    Ok(())
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(flavour) = by_token(&shared, &query, &headers) else {
        return graph::error(&graph::invalid_token(), "", None);
    };
    let platform = flavour.platform;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let to = str_at(&body, "/recipient/id")
        .unwrap_or_default()
        .trim()
        .to_owned();
    // A malformed body fails before any switch is consulted, as on the
    // real API.
    let (plan, refused) = match check_body(flavour, &body) {
        Err(refusal) => (shared.plan_refusal(platform), Some(refusal)),
        Ok(()) => match shared.plan_send(platform, &to, InjectedFailure::person_unavailable()) {
            Ok(plan) => {
                let refused = plan.failure.clone().map(|f| {
                    let details = f.message.clone();
                    (f, details)
                });
                (plan, refused)
            }
            Err(e) => {
                tracing::error!(error = %e, "simulator state missing");
                return graph::error(&InjectedFailure::server_error(), "", None);
            }
        },
    };
    let accepted = refused.is_none().then(|| (mid(), now_ms()));
    let metadata = str_at(&body, "/message/metadata").map(str::to_owned);
    let record = ReceivedSend {
        platform: platform.to_owned(),
        to: to.clone(),
        text: str_at(&body, "/message/text").unwrap_or_default().to_owned(),
        traceparent: headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        tracestate: headers
            .get("tracestate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        opaque: metadata.clone(),
        platform_message_id: accepted.as_ref().map(|(mid, _)| mid.clone()),
        http_status: refused.as_ref().map_or(200, |(f, _)| f.http_status),
        body: body.clone(),
        received_at_unix_ms: now_ms(),
    };
    let _ = shared.with(platform, |state| shared.record(state, record));

    let response = match (refused, accepted) {
        (Some((failure, details)), _) => graph::error(&failure, &details, None),
        (None, Some((mid, at_ms))) => {
            if let (true, Some(url)) = (plan.receipts, plan.webhook_url.clone()) {
                follow_up(
                    &shared,
                    flavour,
                    &plan,
                    url,
                    &to,
                    &mid,
                    at_ms,
                    body.pointer("/message"),
                )
                .await;
            }
            Json(json!({"recipient_id": to, "message_id": mid})).into_response()
        }
        (None, None) => graph::error(&InjectedFailure::server_error(), "", None),
    };
    tracing::debug!(
        platform,
        http_status = response.status().as_u16(),
        "meta send received"
    );
    shared.hold_answer(&plan).await;
    response
}

/// Posts (or schedules) the echo and receipts of an accepted send.
#[allow(clippy::too_many_arguments)]
async fn follow_up(
    shared: &Arc<Shared>,
    flavour: &'static Flavour,
    plan: &crate::faults::SendPlan,
    url: String,
    to: &str,
    mid: &str,
    at_ms: u64,
    message: Option<&Value>,
) {
    let config = (flavour.config)(shared);
    let account = config.account_id.as_str();
    let mut echo = json!({
        "is_echo": true,
        "app_id": config.app_id,
        "mid": mid,
        "text": message.and_then(|m| m.get("text")).cloned().unwrap_or(Value::Null),
    });
    if let Some(metadata) = message.and_then(|m| m.get("metadata")) {
        echo["metadata"] = metadata.clone();
    }
    let echo =
        json!({"sender": {"id": account}, "recipient": {"id": to}, "timestamp": at_ms, "message": echo});
    let from_person = |event: Value| {
        let mut event = event;
        event["sender"] = json!({"id": to});
        event["recipient"] = json!({"id": account});
        event["timestamp"] = json!(at_ms);
        event
    };
    let mut receipts = Vec::new();
    if flavour.delivery_receipts {
        let mut delivery = json!({"watermark": at_ms});
        if plan.delivery_mids {
            delivery["mids"] = json!([mid]);
        }
        receipts.push(from_person(json!({ "delivery": delivery })));
    }
    let read = if flavour.read_names_mid {
        json!({ "mid": mid })
    } else {
        json!({ "watermark": at_ms })
    };
    receipts.push(from_person(json!({ "read": read })));

    let sign = |event: Value| {
        SignedWebhook {
            url: url.clone(),
            header: "x-hub-signature-256",
            signature: String::new(),
            body: Vec::new(),
        }
        .with_body(envelope(flavour, config, event), &config.app_secret)
    };
    let mut hooks: Vec<SignedWebhook> = Vec::new();
    if plan.echo_before_response {
        if let Err(e) = shared.deliver(flavour.platform, &sign(echo)).await {
            tracing::warn!(platform = flavour.platform, error = %e, "echo not delivered");
        }
    } else {
        hooks.push(sign(echo));
    }
    hooks.extend(receipts.into_iter().map(sign));
    tokio::spawn(post_receipts(
        Arc::clone(shared),
        flavour.platform,
        hooks,
        plan.latency + config.receipt_delay,
        config.receipt_delay,
    ));
}

impl SignedWebhook {
    fn with_body(self, body: Vec<u8>, app_secret: &str) -> Self {
        Self {
            signature: meta_signature(app_secret, &body),
            body,
            ..self
        }
    }
}

fn envelope(flavour: &Flavour, config: &MetaMessagingSimConfig, event: Value) -> Vec<u8> {
    let envelope = json!({
        "object": flavour.object,
        "entry": [{"id": config.account_id, "time": now_ms(), "messaging": [event]}],
    });
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// `body` signed for `platform`'s current webhook target.
pub(crate) fn signed(
    shared: &Shared,
    platform: &'static str,
    body: Vec<u8>,
) -> Result<SignedWebhook, SimulatorError> {
    let flavour = flavour(platform).ok_or_else(|| SimulatorError::UnknownPlatform {
        name: platform.to_owned(),
    })?;
    let config = (flavour.config)(shared);
    Ok(SignedWebhook {
        url: shared.webhook_url(platform)?,
        header: "x-hub-signature-256",
        signature: meta_signature(&config.app_secret, &body),
        body,
    })
}

/// A person writes `text` to the page or account.
pub(crate) async fn inbound_text(
    shared: &Shared,
    platform: &'static str,
    from: &str,
    text: &str,
) -> Result<String, SimulatorError> {
    let flavour = flavour(platform).ok_or_else(|| SimulatorError::UnknownPlatform {
        name: platform.to_owned(),
    })?;
    let config = (flavour.config)(shared);
    let id = mid();
    let event = json!({
        "sender": {"id": from},
        "recipient": {"id": config.account_id},
        "timestamp": now_ms(),
        "message": {"mid": id, "text": text},
    });
    let hook = signed(shared, platform, envelope(flavour, config, event))?;
    shared.deliver(platform, &hook).await?;
    Ok(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn body(text: &str) -> Value {
        json!({"recipient": {"id": "24680"}, "messaging_type": "RESPONSE",
               "message": {"text": text, "metadata": "ours"}})
    }

    #[test]
    fn body_checks_follow_the_send_api() {
        let code = |f: &Flavour, b: &Value| check_body(f, b).err().map(|(f, _)| f.code);
        let m = &messenger::FLAVOUR;
        assert_eq!(code(m, &body("hello")), None);
        assert_eq!(code(m, &body(&"é".repeat(2000))), None, "characters, not bytes");
        assert_eq!(code(m, &body(&"x".repeat(2001))), Some(100));
        assert_eq!(code(m, &body("")), Some(100));
        assert_eq!(code(m, &Value::Null), Some(100));
        let mut no_type = body("x");
        no_type.as_object_mut().unwrap().remove("messaging_type");
        assert_eq!(code(m, &no_type), Some(100));
        assert_eq!(code(&instagram::FLAVOUR, &no_type), None);
        let mut long_metadata = body("x");
        long_metadata["message"]["metadata"] = json!("o".repeat(1001));
        assert_eq!(code(m, &long_metadata), Some(100));
    }
}
