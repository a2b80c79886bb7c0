//! The WhatsApp Business Cloud API as the simulator serves it: the send
//! endpoint `POST /{version}/{phone-number-id}/messages` with its checks and
//! Graph errors, the `sent` → `delivered` → `read` status webhooks that
//! follow an accepted send, and inbound-message webhooks on request.
//!
//! The order of checks follows the real API: the token first (401), then
//! the phone number, then the body (Graph code 100), then the shared
//! switches (`faults`: bursts, injected failures, the error rate, the
//! failing recipients). Every call is recorded before the latency switch
//! delays its answer, so a client that timed out still counts as a call the
//! platform received (and acted on: its receipts still come). The receipts
//! go through the shared poster, so out-of-order and duplicate switches
//! apply here as on every platform.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::config::InjectedFailure;
use crate::faults::{SendPlan, post_receipts};
use crate::graph;
use crate::signing::meta_signature;
use crate::state::{ReceivedSend, Shared, SimulatorError, unix_ms};
use crate::webhooks::SignedWebhook;

pub(crate) const PLATFORM: &str = "whatsapp";
const MAX_TEXT_CHARS: usize = 4096;
const MAX_OPAQUE_CHARS: usize = 512;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/{version}/{phone_number_id}/messages", post(send))
}

fn wamid() -> String {
    format!(
        "wamid.{}",
        uuid::Uuid::new_v4().simple().to_string().to_uppercase()
    )
}

fn unix_seconds_now() -> String {
    (unix_ms(SystemTime::now()) / 1000).to_string()
}

/// What the send endpoint decided.
enum Outcome {
    Accepted {
        wamid: String,
        wa_id: String,
    },
    Refused {
        failure: InjectedFailure,
        details: String,
    },
}

fn str_at<'a>(body: &'a Value, pointer: &str) -> Option<&'a str> {
    body.pointer(pointer).and_then(Value::as_str)
}

/// The body checks of the real endpoint, each answering Graph code 100 (or
/// 131051 for a type this simulator does not carry).
fn check_body(body: &Value) -> Result<(), (InjectedFailure, String)> {
    let invalid = |message: &str| Err((graph::invalid_parameter(message), message.to_owned()));
    if !body.is_object() {
        return invalid("The parameter messaging_product is required.");
    }
    if str_at(body, "/messaging_product") != Some("whatsapp") {
        return invalid("The parameter messaging_product is required.");
    }
    if let Some(kind) = body.get("recipient_type")
        && kind.as_str() != Some("individual")
    {
        return invalid("Param recipient_type must be one of {INDIVIDUAL, GROUP}.");
    }
    if str_at(body, "/to").is_none_or(|to| to.trim().is_empty()) {
        return invalid("The parameter to is required.");
    }
    match str_at(body, "/type").unwrap_or("text") {
        "text" => {}
        other => {
            let message = format!("Unsupported message type {other:?}: the simulator carries text only.");
            return Err((
                InjectedFailure {
                    http_status: 400,
                    code: 131_051,
                    message: "Unsupported message type".into(),
                    retry_after: None,
                },
                message,
            ));
        }
    }
    match str_at(body, "/text/body") {
        None | Some("") => return invalid("The parameter text['body'] is required."),
        Some(text) if text.chars().count() > MAX_TEXT_CHARS => {
            return invalid("Param text['body'] must be at most 4096 characters long.");
        }
        Some(_) => {}
    }
    if let Some(opaque) = body.get("biz_opaque_callback_data") {
        match opaque.as_str() {
            Some(s) if s.chars().count() <= MAX_OPAQUE_CHARS => {}
            _ => {
                return invalid("Param biz_opaque_callback_data must be a string of at most 512 characters.");
            }
        }
    }
    Ok(())
}

/// The checks of the real endpoint that come before any switch: token,
/// phone number, body.
fn check(shared: &Shared, phone_number_id: &str, headers: &HeaderMap, body: &Value) -> Option<Outcome> {
    let config = &shared.whatsapp;
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if bearer != Some(config.access_token.as_str()) {
        return Some(Outcome::Refused {
            failure: graph::invalid_token(),
            details: String::new(),
        });
    }
    if phone_number_id != config.phone_number_id {
        let message = format!(
            "Unsupported post request. Object with ID '{}' does not exist, cannot be loaded due to missing \
             permissions, or does not support this operation",
            phone_number_id.chars().take(64).collect::<String>()
        );
        return Some(Outcome::Refused {
            failure: graph::invalid_parameter(&message),
            details: message,
        });
    }
    check_body(body)
        .err()
        .map(|(failure, details)| Outcome::Refused { failure, details })
}

/// What the endpoint answers, and how the switches say to answer it.
fn decide(
    shared: &Shared,
    phone_number_id: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Result<(Outcome, SendPlan), SimulatorError> {
    if let Some(refused) = check(shared, phone_number_id, headers, body) {
        return Ok((refused, shared.plan_refusal(PLATFORM)));
    }
    let to = str_at(body, "/to").unwrap_or_default();
    let plan = shared.plan_send(PLATFORM, to, InjectedFailure::unknown_recipient())?;
    let outcome = match &plan.failure {
        Some(failure) if plan.unknown_recipient => Outcome::Refused {
            failure: failure.clone(),
            details: "Message could not be delivered: the recipient is not a WhatsApp user".to_owned(),
        },
        Some(failure) => Outcome::Refused {
            failure: failure.clone(),
            details: failure.message.clone(),
        },
        None => Outcome::Accepted {
            wamid: wamid(),
            wa_id: to.trim().trim_start_matches('+').to_owned(),
        },
    };
    Ok((outcome, plan))
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (outcome, plan) = match decide(&shared, &phone_number_id, &headers, &body) {
        Ok(decided) => decided,
        Err(e) => {
            tracing::error!(error = %e, "simulator state missing");
            return graph::error(&InjectedFailure::server_error(), "", Some("whatsapp"));
        }
    };
    let to = str_at(&body, "/to").unwrap_or_default().to_owned();
    let opaque = str_at(&body, "/biz_opaque_callback_data").map(str::to_owned);
    let (http_status, wamid) = match &outcome {
        Outcome::Accepted { wamid, .. } => (200, Some(wamid.clone())),
        Outcome::Refused { failure, .. } => (failure.http_status, None),
    };
    let record = ReceivedSend {
        platform: PLATFORM.to_owned(),
        to: to.clone(),
        text: str_at(&body, "/text/body").unwrap_or_default().to_owned(),
        traceparent: headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        tracestate: headers
            .get("tracestate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        opaque: opaque.clone(),
        platform_message_id: wamid,
        http_status,
        body,
        received_at_unix_ms: unix_ms(SystemTime::now()),
    };
    let _ = shared.with(PLATFORM, |state| shared.record(state, record));
    tracing::debug!(
        http_status,
        latency_ms = plan.latency.as_millis() as u64,
        "whatsapp send received"
    );

    let response = match outcome {
        Outcome::Accepted { wamid, wa_id } => {
            if let (true, Some(url)) = (plan.receipts, plan.webhook_url.clone()) {
                let hooks = ["sent", "delivered", "read"]
                    .into_iter()
                    .map(|status| {
                        let body = status_payload(&shared, &wamid, status, &wa_id, opaque.as_deref());
                        SignedWebhook {
                            url: url.clone(),
                            header: "x-hub-signature-256",
                            signature: meta_signature(&shared.whatsapp.app_secret, &body),
                            body,
                        }
                    })
                    .collect();
                tokio::spawn(post_receipts(
                    Arc::clone(&shared),
                    PLATFORM,
                    hooks,
                    plan.latency + shared.whatsapp.receipt_delay,
                    shared.whatsapp.receipt_delay,
                ));
            }
            Json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": wa_id}],
                "messages": [{"id": wamid}],
            }))
            .into_response()
        }
        Outcome::Refused { failure, details } => graph::error(&failure, &details, Some("whatsapp")),
    };
    shared.hold_answer(&plan).await;
    response
}

fn envelope(shared: &Shared, value: Value) -> Vec<u8> {
    let config = &shared.whatsapp;
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({
        "display_phone_number": config.display_phone_number,
        "phone_number_id": config.phone_number_id,
    });
    let envelope = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": config.business_account_id, "changes": [{"field": "messages", "value": value}]}],
    });
    serde_json::to_vec(&envelope).unwrap_or_default()
}

fn status_payload(
    shared: &Shared,
    wamid: &str,
    status: &str,
    recipient: &str,
    opaque: Option<&str>,
) -> Vec<u8> {
    let mut entry = json!({
        "id": wamid,
        "status": status,
        "timestamp": unix_seconds_now(),
        "recipient_id": recipient,
    });
    if let Some(opaque) = opaque {
        entry["biz_opaque_callback_data"] = json!(opaque);
    }
    // Sent and delivered carry conversation and pricing, as the real ones
    // do: an adapter must read past fields it does not use.
    if status != "read" {
        entry["conversation"] = json!({"id": format!("conv-{recipient}"), "origin": {"type": "service"}});
        entry["pricing"] = json!({"billable": true, "pricing_model": "CBP", "category": "service"});
    }
    envelope(shared, json!({ "statuses": [entry] }))
}

fn inbound_payload(shared: &Shared, wamid: &str, from: &str, sender_name: &str, text: &str) -> Vec<u8> {
    envelope(
        shared,
        json!({
            "contacts": [{"profile": {"name": sender_name}, "wa_id": from}],
            "messages": [{
                "from": from,
                "id": wamid,
                "timestamp": unix_seconds_now(),
                "type": "text",
                "text": {"body": text},
            }],
        }),
    )
}

/// `body` signed for the current webhook target.
pub(crate) fn signed(shared: &Shared, body: Vec<u8>) -> Result<SignedWebhook, SimulatorError> {
    Ok(SignedWebhook {
        url: shared.webhook_url(PLATFORM)?,
        header: "x-hub-signature-256",
        signature: meta_signature(&shared.whatsapp.app_secret, &body),
        body,
    })
}

pub(crate) async fn inbound_text(
    shared: &Shared,
    from: &str,
    sender_name: &str,
    text: &str,
) -> Result<String, SimulatorError> {
    let id = wamid();
    let hook = signed(shared, inbound_payload(shared, &id, from, sender_name, text))?;
    shared.deliver(PLATFORM, &hook).await?;
    Ok(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn body(text: &str) -> Value {
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551234567",
               "type": "text", "text": {"body": text, "preview_url": false}})
    }

    #[test]
    fn body_checks_follow_the_api() {
        assert!(check_body(&body("hello")).is_ok());
        assert!(
            check_body(&body(&"é".repeat(4096))).is_ok(),
            "characters, not bytes"
        );
        let code = |b: &Value| check_body(b).err().map(|(f, _)| f.code);
        assert_eq!(code(&body(&"x".repeat(4097))), Some(100));
        assert_eq!(code(&body("")), Some(100));
        assert_eq!(code(&Value::Null), Some(100));
        assert_eq!(
            code(&json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}})),
            Some(100)
        );
        let mut image = body("x");
        image["type"] = json!("image");
        assert_eq!(code(&image), Some(131_051));
        let mut opaque = body("x");
        opaque["biz_opaque_callback_data"] = json!("o".repeat(513));
        assert_eq!(code(&opaque), Some(100));
    }
}
