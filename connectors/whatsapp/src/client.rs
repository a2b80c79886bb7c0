//! The WhatsApp Cloud API send call: `POST {base}/{version}/{phone-number-id}/messages`
//! with a Bearer token and the text-message body, our ids in
//! `biz_opaque_callback_data`, and the message's `traceparent` header.
//!
//! A 2xx whose body cannot be read is still a success: WhatsApp took the
//! message, and calling again would send it twice. Its receipts still name
//! our message through the callback data.

use std::time::SystemTime;

use chat4all_adapter::http_client::send_json;
use chat4all_adapter::{HttpClientConfig, Secret, build_http_client, graph};
use chat4all_proto::v1 as pb;
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};

use crate::callback::{self, CallbackData};
use crate::{WhatsAppConfig, WhatsAppError};

/// The body of a text message, field for field as the Cloud API takes it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TextMessage<'a> {
    pub messaging_product: &'static str,
    pub recipient_type: &'static str,
    pub to: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: Text<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
}

/// `text` of a text message.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Text<'a> {
    pub body: &'a str,
    pub preview_url: bool,
}

impl<'a> TextMessage<'a> {
    /// The body for `request`, with our ids (and trace context) as callback
    /// data. WhatsApp wants E.164 digits, so a leading `+` goes.
    pub fn new(request: &'a pb::SendRequest, traceparent: Option<&str>) -> Self {
        let ours = CallbackData {
            message_id: request.message_id.clone(),
            conversation_id: request.conversation_id.clone(),
            traceparent: traceparent.unwrap_or_default().to_owned(),
        };
        let to = request.recipient_id.trim();
        Self {
            messaging_product: "whatsapp",
            recipient_type: "individual",
            to: to.strip_prefix('+').unwrap_or(to),
            kind: "text",
            text: Text {
                body: &request.text,
                preview_url: false,
            },
            biz_opaque_callback_data: ours.encode(callback::MAX_LEN),
        }
    }
}

#[derive(Debug, Deserialize)]
struct SendAnswer {
    #[serde(default)]
    messages: Vec<SentMessage>,
}

#[derive(Debug, Deserialize)]
struct SentMessage {
    id: String,
}

/// Calls the send endpoint of one business phone number.
#[derive(Debug, Clone)]
pub struct WhatsAppClient {
    http: reqwest::Client,
    messages_url: String,
    access_token: Secret,
}

impl WhatsAppClient {
    /// A client for `config`'s number, with its timeout.
    pub fn new(config: &WhatsAppConfig) -> Result<Self, WhatsAppError> {
        let http = build_http_client(&HttpClientConfig::with_request_timeout(
            config.serve.request_timeout,
        ))
        .map_err(WhatsAppError::from)?;
        Ok(Self {
            http,
            messages_url: config.messages_url(),
            access_token: config.access_token.clone(),
        })
    }

    /// Sends one text message; WhatsApp's refusal, or no answer, is the `Err`.
    pub async fn send_text(
        &self,
        request: &pb::SendRequest,
        traceparent: Option<&str>,
    ) -> Result<pb::SendAccepted, pb::PlatformError> {
        let body = TextMessage::new(request, traceparent);
        let call = self
            .http
            .post(&self.messages_url)
            .header(AUTHORIZATION, format!("Bearer {}", self.access_token.expose()));
        let wamid = send_json(call, &body, traceparent, graph::graph_error)
            .await?
            .and_then(|b| serde_json::from_slice::<SendAnswer>(&b).ok())
            .and_then(|a| a.messages.into_iter().next())
            .map(|m| m.id);
        let platform_message_id = wamid.unwrap_or_else(|| {
            tracing::warn!(
                message_id = %request.message_id,
                "whatsapp accepted the message without a readable id"
            );
            String::new()
        });
        Ok(pb::SendAccepted {
            platform_message_id,
            at: Some(SystemTime::now().into()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_cloud_api_text_message() {
        let request = pb::SendRequest {
            message_id: "m-1".into(),
            conversation_id: "c-1".into(),
            recipient_id: "+15551234567".into(),
            text: "Hello \"world\"".into(),
        };
        let body = serde_json::to_value(TextMessage::new(&request, None)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "15551234567",
                "type": "text",
                "text": {"body": "Hello \"world\"", "preview_url": false},
                "biz_opaque_callback_data": r#"{"m":"m-1","c":"c-1"}"#,
            })
        );
    }
}
