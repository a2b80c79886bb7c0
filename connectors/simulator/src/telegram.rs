//! The Telegram Bot API as the simulator serves it: `POST /bot<token>/sendMessage`
//! with its checks and `{"ok":false,"error_code","description"}` errors, and
//! webhook updates carrying the `setWebhook` secret in
//! `X-Telegram-Bot-Api-Secret-Token`.
//!
//! The order of checks follows the real API: the token in the path first
//! (401 "Unauthorized"), then the body (400 "Bad Request: …", "message is
//! too long" past 4096 characters), then the injected failures, then the
//! chat (chat ids on the failing list get 400 "Bad Request: chat not
//! found"); the switches (bursts, `fail_next`, error rate, failing chats,
//! latency, timeouts) are decided by the simulator's one shared decision
//! (`faults`). Every call is recorded before its answer is held back, so a
//! client that timed out still counts as a call the platform received.
//!
//! Message ids are numbered per chat, shared by both directions, as
//! Telegram numbers them; the platform id recorded (and returned by
//! [`inbound_text`]) is `<chat_id>:<message_id>`, the form the adapter
//! uses. There are no receipts: Telegram has none.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::config::InjectedFailure;
use crate::state::{ReceivedSend, Shared, SimulatorError, unix_ms};
use crate::webhooks::SignedWebhook;

pub(crate) const PLATFORM: &str = "telegram";
const MAX_TEXT_CHARS: usize = 4096;
/// The header Telegram echoes the `setWebhook` secret in.
pub(crate) const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    // matchit cannot split `bot<token>` inside a segment: the handler strips
    // the `bot` prefix itself.
    Router::new().route("/{bot_token}/sendMessage", post(send))
}

/// The simulator's numbering: update ids, and message ids per chat.
#[derive(Debug)]
pub(crate) struct Ids {
    next_update: AtomicI64,
    per_chat: Mutex<HashMap<String, i64>>,
}

impl Default for Ids {
    fn default() -> Self {
        Self {
            next_update: AtomicI64::new(800_000_001),
            per_chat: Mutex::new(HashMap::new()),
        }
    }
}

impl Ids {
    fn update_id(&self) -> i64 {
        self.next_update.fetch_add(1, Ordering::Relaxed)
    }

    fn message_id(&self, chat: &str) -> i64 {
        let mut chats = self.per_chat.lock().unwrap_or_else(PoisonError::into_inner);
        let next = chats.entry(chat.to_owned()).or_insert(0);
        *next += 1;
        *next
    }
}

fn unix_seconds_now() -> i64 {
    i64::try_from(unix_ms(SystemTime::now()) / 1000).unwrap_or(0)
}

/// A Telegram id as JSON: a number when it is one, as Telegram writes ids.
fn id_value(id: &str) -> Value {
    id.parse::<i64>().map_or_else(|_| json!(id), |n| json!(n))
}

fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => n.as_i64().map(|n| n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// What the send endpoint decided.
enum Outcome {
    Accepted {
        chat_id: String,
        message_id: i64,
    },
    Refused {
        status: u16,
        description: String,
        retry_after: Option<u64>,
    },
}

fn refused(status: u16, description: &str) -> Outcome {
    Outcome::Refused {
        status,
        description: description.to_owned(),
        retry_after: None,
    }
}

fn injected(failure: &InjectedFailure) -> Outcome {
    let retry_after = failure.retry_after.map(|d| d.as_secs().max(1));
    let description = match (failure.http_status, retry_after) {
        (429, Some(secs)) => format!("Too Many Requests: retry after {secs}"),
        (429, None) => "Too Many Requests".to_owned(),
        (s, _) if s >= 500 => format!("Internal Server Error: {}", failure.message),
        _ => failure.message.clone(),
    };
    Outcome::Refused {
        status: failure.http_status,
        description,
        retry_after,
    }
}

/// The body checks of the real endpoint.
fn check_body(body: &Value) -> Result<(String, &str), Outcome> {
    let chat_id = body
        .get("chat_id")
        .and_then(id_text)
        .ok_or_else(|| refused(400, "Bad Request: chat_id is empty"))?;
    let text = match body.get("text").and_then(Value::as_str) {
        None | Some("") => return Err(refused(400, "Bad Request: message text is empty")),
        Some(text) if text.chars().count() > MAX_TEXT_CHARS => {
            return Err(refused(400, "Bad Request: message is too long"));
        }
        Some(text) => text,
    };
    Ok((chat_id, text))
}

/// Telegram's answer for a chat on the failing list.
fn chat_not_found() -> InjectedFailure {
    InjectedFailure {
        http_status: 400,
        code: 400,
        message: "Bad Request: chat not found".to_owned(),
        retry_after: None,
    }
}

fn answer_error(status: u16, description: &str, retry_after: Option<u64>) -> Response {
    let mut body = json!({"ok": false, "error_code": status, "description": description});
    if let Some(secs) = retry_after {
        body["parameters"] = json!({ "retry_after": secs });
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Path(bot_token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let chat = body.get("chat_id").and_then(id_text).unwrap_or_default();
    // A wrong token or a bad body fails before any switch is consulted, as
    // on the real API.
    let checked = if bot_token.strip_prefix("bot") == Some(shared.telegram.bot_token.as_str()) {
        check_body(&body).map(|_| ())
    } else {
        Err(refused(401, "Unauthorized"))
    };
    let (plan, outcome) = match checked {
        Err(outcome) => (shared.plan_refusal(PLATFORM), outcome),
        Ok(()) => match shared.plan_send(PLATFORM, &chat, chat_not_found()) {
            Ok(plan) => {
                let outcome = match &plan.failure {
                    Some(failure) => injected(failure),
                    None => Outcome::Accepted {
                        message_id: shared.telegram_ids.message_id(&chat),
                        chat_id: chat.clone(),
                    },
                };
                (plan, outcome)
            }
            Err(e) => {
                tracing::error!(error = %e, "simulator state missing");
                return answer_error(500, "Internal Server Error", None);
            }
        },
    };
    let (http_status, platform_message_id) = match &outcome {
        Outcome::Accepted { chat_id, message_id } => (200, Some(format!("{chat_id}:{message_id}"))),
        Outcome::Refused { status, .. } => (*status, None),
    };
    let record = ReceivedSend {
        platform: PLATFORM.to_owned(),
        to: chat,
        text: body
            .get("text")
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
        body: body.clone(),
        received_at_unix_ms: unix_ms(SystemTime::now()),
    };
    let _ = shared.with(PLATFORM, |state| shared.record(state, record));
    tracing::debug!(http_status, "telegram send received");

    let response = match outcome {
        Outcome::Accepted { chat_id, message_id } => Json(json!({
            "ok": true,
            "result": {
                "message_id": message_id,
                "from": {"id": shared.telegram.bot_user_id(), "is_bot": true,
                         "first_name": "Chat4All", "username": "chat4all_bot"},
                "chat": {"id": id_value(&chat_id), "type": "private"},
                "date": unix_seconds_now(),
                "text": body.get("text").cloned().unwrap_or(Value::Null),
            }
        }))
        .into_response(),
        Outcome::Refused {
            status,
            description,
            retry_after,
        } => answer_error(status, &description, retry_after),
    };
    // The platform has acted (the message id is taken); only the answer waits.
    shared.hold_answer(&plan).await;
    response
}

/// `body` with the secret token, for the current webhook target.
pub(crate) fn signed(shared: &Shared, body: Vec<u8>) -> Result<SignedWebhook, SimulatorError> {
    Ok(SignedWebhook {
        url: shared.webhook_url(PLATFORM)?,
        header: SECRET_HEADER,
        signature: shared.telegram.webhook_secret.clone(),
        body,
    })
}

/// A user writes `text` to the bot in a private chat (whose id is the
/// user's): posts the update with a fresh `update_id` and returns
/// `<chat_id>:<message_id>`.
pub(crate) async fn inbound_text(
    shared: &Shared,
    from: &str,
    sender_name: &str,
    text: &str,
) -> Result<String, SimulatorError> {
    let message_id = shared.telegram_ids.message_id(from);
    let first_name = if sender_name.is_empty() {
        "User"
    } else {
        sender_name
    };
    let update = json!({
        "update_id": shared.telegram_ids.update_id(),
        "message": {
            "message_id": message_id,
            "from": {"id": id_value(from), "is_bot": false, "first_name": first_name, "language_code": "vi"},
            "chat": {"id": id_value(from), "first_name": first_name, "type": "private"},
            "date": unix_seconds_now(),
            "text": text,
        }
    });
    let hook = signed(shared, serde_json::to_vec(&update).unwrap_or_default())?;
    shared.deliver(PLATFORM, &hook).await?;
    Ok(format!("{from}:{message_id}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn description(outcome: Result<(String, &str), Outcome>) -> String {
        match outcome {
            Err(Outcome::Refused { description, .. }) => description,
            Err(Outcome::Accepted { .. }) => panic!("accepted"),
            Ok(_) => panic!("passed"),
        }
    }

    #[test]
    fn body_checks_follow_the_api() {
        let ok = json!({"chat_id": 42, "text": "hi"});
        assert_eq!(
            check_body(&ok).ok().map(|(c, t)| (c, t.to_owned())),
            Some(("42".into(), "hi".into()))
        );
        assert!(check_body(&json!({"chat_id": "@news", "text": "é".repeat(4096)})).is_ok());
        assert_eq!(
            description(check_body(&json!({"chat_id": 1, "text": "x".repeat(4097)}))),
            "Bad Request: message is too long"
        );
        assert_eq!(
            description(check_body(&json!({"text": "x"}))),
            "Bad Request: chat_id is empty"
        );
        assert_eq!(
            description(check_body(&json!({"chat_id": 1}))),
            "Bad Request: message text is empty"
        );
    }

    #[test]
    fn injected_rate_limits_say_when() {
        let Outcome::Refused {
            status,
            description,
            retry_after,
        } = injected(&InjectedFailure::rate_limited(std::time::Duration::from_secs(35)))
        else {
            panic!("refused")
        };
        assert_eq!(
            (status, description.as_str(), retry_after),
            (429, "Too Many Requests: retry after 35", Some(35))
        );
    }

    #[test]
    fn message_ids_are_per_chat() {
        let ids = Ids::default();
        assert_eq!(
            (ids.message_id("1"), ids.message_id("1"), ids.message_id("2")),
            (1, 2, 1)
        );
        assert_eq!(ids.update_id() + 1, ids.update_id());
    }
}
