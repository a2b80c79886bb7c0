//! The Bot API send call: `POST {base}/bot<token>/sendMessage` with
//! `{"chat_id","text"}` and the message's `traceparent` header.
//!
//! Telegram numbers messages per chat, so `message_id` alone names nothing:
//! the platform id we hand back is `<chat_id>:<message_id>`, the same form
//! the webhook gives inbound messages, so both sides of a chat share one
//! id space.
//!
//! Refusals come as `{"ok":false,"error_code","description","parameters"}`:
//! 429 is RATE_LIMITED (with `parameters.retry_after`, else `Retry-After`),
//! 5xx and no answer are TRANSIENT, every other 4xx (chat not found, bot
//! blocked, message too long, wrong token) is PERMANENT: asking again gets
//! the same answer. The request URL holds the token, so no error message
//! here ever includes it.

use std::time::{Duration, SystemTime};

use chat4all_adapter::http_client::send_json;
use chat4all_adapter::{HttpClientConfig, Secret, build_http_client, graph};
use chat4all_proto::v1 as pb;
use pb::PlatformErrorKind as Kind;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::webhook::Id;
use crate::{TelegramConfig, TelegramError};

/// `chat_id` as Telegram takes it: the numeric id, or `@channelusername`.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ChatId<'a> {
    Numeric(i64),
    Username(&'a str),
}

impl<'a> ChatId<'a> {
    /// A numeric recipient is sent as a number, as Telegram documents it.
    pub fn parse(recipient: &'a str) -> Self {
        let recipient = recipient.trim();
        recipient.parse().map_or(Self::Username(recipient), Self::Numeric)
    }
}

/// The body of `sendMessage`, field for field.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SendMessage<'a> {
    pub chat_id: ChatId<'a>,
    pub text: &'a str,
}

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    result: Option<SentMessage>,
}

#[derive(Debug, Deserialize)]
struct SentMessage {
    message_id: i64,
    #[serde(default)]
    chat: Option<Chat>,
}

#[derive(Debug, Deserialize)]
struct Chat {
    id: Id,
}

/// `{"ok":false,"error_code":…,"description":…,"parameters":{"retry_after":…}}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

#[derive(Debug, Default, Deserialize)]
struct ResponseParameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// The platform id of a message: `<chat_id>:<message_id>`.
pub fn platform_message_id(chat_id: &str, message_id: i64) -> String {
    format!("{chat_id}:{message_id}")
}

/// Maps a non-2xx Bot API answer to a [`pb::PlatformError`]. A body that is
/// not Telegram's (a proxy's HTML page) still maps, by HTTP status.
pub fn telegram_error(http_status: StatusCode, headers: &HeaderMap, body: &[u8]) -> pb::PlatformError {
    let answer = serde_json::from_slice::<ErrorAnswer>(body).ok();
    let error_code = answer.as_ref().and_then(|a| a.error_code);
    let rate_limited = http_status == StatusCode::TOO_MANY_REQUESTS || error_code == Some(429);
    let kind = if rate_limited {
        Kind::RateLimited
    } else if http_status.is_server_error() || http_status == StatusCode::REQUEST_TIMEOUT {
        Kind::Transient
    } else {
        Kind::Permanent
    };
    let retry_after = answer
        .as_ref()
        .and_then(|a| a.parameters.as_ref())
        .and_then(|p| p.retry_after)
        .map(Duration::from_secs)
        .or_else(|| graph::retry_after(headers))
        .filter(|_| kind == Kind::RateLimited);
    let message = match &answer {
        Some(a) if !a.description.is_empty() => a.description.clone(),
        _ => format!("HTTP {http_status} without a Telegram error body"),
    };
    pb::PlatformError {
        kind: kind as i32,
        code: error_code.map_or_else(|| format!("http_{}", http_status.as_u16()), |c| c.to_string()),
        message,
        retry_after: retry_after.and_then(graph::pb_duration),
        http_status: u32::from(http_status.as_u16()),
    }
}

/// Calls the Bot API as one bot.
#[derive(Debug, Clone)]
pub struct TelegramClient {
    http: reqwest::Client,
    // Holds the token: a Secret so a stray `Debug` cannot print it.
    send_url: Secret,
}

impl TelegramClient {
    /// A client for `config`'s bot, with its timeout.
    pub fn new(config: &TelegramConfig) -> Result<Self, TelegramError> {
        let http = build_http_client(&HttpClientConfig::with_request_timeout(
            config.serve.request_timeout,
        ))
        .map_err(TelegramError::from)?;
        Ok(Self {
            http,
            send_url: Secret::new(config.method_url("sendMessage")),
        })
    }

    /// Sends one text message; Telegram's refusal, or no answer, is the `Err`.
    pub async fn send_text(
        &self,
        request: &pb::SendRequest,
        traceparent: Option<&str>,
    ) -> Result<pb::SendAccepted, pb::PlatformError> {
        let body = SendMessage {
            chat_id: ChatId::parse(&request.recipient_id),
            text: &request.text,
        };
        let call = self.http.post(self.send_url.expose());
        let sent = send_json(call, &body, traceparent, telegram_error)
            .await?
            .and_then(|b| serde_json::from_slice::<Answer>(&b).ok())
            .and_then(|a| a.result);
        // A 2xx is a message Telegram took: an unreadable body must not turn
        // into a retry that sends it twice.
        let platform_message_id = match sent {
            Some(sent) => {
                let chat = sent
                    .chat
                    .map_or_else(|| request.recipient_id.trim().to_owned(), |c| c.id.into_string());
                platform_message_id(&chat, sent.message_id)
            }
            None => {
                tracing::warn!(
                    message_id = %request.message_id,
                    "telegram accepted the message without a readable id"
                );
                String::new()
            }
        };
        Ok(pb::SendAccepted {
            platform_message_id,
            at: Some(SystemTime::now().into()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use reqwest::header::{HeaderValue, RETRY_AFTER};
    use serde_json::json;

    use super::*;

    #[test]
    fn body_sends_numeric_chat_ids_as_numbers() {
        let body = |to: &str| {
            serde_json::to_value(SendMessage {
                chat_id: ChatId::parse(to),
                text: "hi",
            })
            .unwrap()
        };
        assert_eq!(body("-100123"), json!({"chat_id": -100_123, "text": "hi"}));
        assert_eq!(body("@news"), json!({"chat_id": "@news", "text": "hi"}));
    }

    #[test]
    fn refusals_map_by_status_and_carry_the_description() {
        let body = |code: u16, description: &str, retry: Option<u64>| {
            let mut b = json!({"ok": false, "error_code": code, "description": description});
            if let Some(r) = retry {
                b["parameters"] = json!({"retry_after": r});
            }
            serde_json::to_vec(&b).unwrap()
        };
        let e = telegram_error(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            &body(429, "Too Many Requests: retry after 35", Some(35)),
        );
        assert_eq!((e.kind(), e.code.as_str()), (Kind::RateLimited, "429"));
        assert_eq!(
            e.retry_after,
            Some(chat4all_proto::Duration {
                seconds: 35,
                nanos: 0
            })
        );

        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("4"));
        let e = telegram_error(StatusCode::TOO_MANY_REQUESTS, &headers, b"");
        assert_eq!((e.kind(), e.code.as_str()), (Kind::RateLimited, "http_429"));
        assert_eq!(
            e.retry_after,
            Some(chat4all_proto::Duration { seconds: 4, nanos: 0 })
        );

        let e = telegram_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &body(400, "Bad Request: chat not found", None),
        );
        assert_eq!(
            (e.kind(), e.code.as_str(), e.message.as_str(), e.http_status),
            (Kind::Permanent, "400", "Bad Request: chat not found", 400)
        );
        let e = telegram_error(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            &body(403, "Forbidden: bot was blocked by the user", None),
        );
        assert_eq!(e.kind(), Kind::Permanent);
        let e = telegram_error(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"<html>");
        assert_eq!((e.kind(), e.code.as_str()), (Kind::Transient, "http_502"));
        assert_eq!(e.retry_after, None);
    }
}
