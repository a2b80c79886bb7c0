//! The Send API call Messenger and Instagram share:
//! `POST {base}/{version}/me/messages?access_token=…` with
//! `{"recipient":{"id":…},"messaging_type":"RESPONSE","message":{"text":…,"metadata":…}}`,
//! answered `{"recipient_id":…,"message_id":"m_…"}`.
//!
//! A 2xx whose body cannot be read is still a success: the platform took
//! the message, and calling again would send it twice. Refusals go through
//! the kit's Graph mapping ([`crate::graph`]); the URL, which carries the
//! token, never reaches an error message.

use chat4all_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::http_client::send_json;
use crate::{HttpClientConfig, Secret, build_http_client, graph};

use super::{MetaError, MetaSettings};

/// The request body, field for field as the Send API takes it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SendBody<'a> {
    pub recipient: Recipient<'a>,
    /// `RESPONSE`: a reply inside the platform's messaging window, which is
    /// what a conversation gateway sends.
    pub messaging_type: &'static str,
    pub message: OutgoingMessage<'a>,
}

/// `recipient`: the page- or account-scoped id of the person.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Recipient<'a> {
    pub id: &'a str,
}

/// `message` of a text send.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct OutgoingMessage<'a> {
    pub text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

impl<'a> SendBody<'a> {
    /// A text reply to `recipient` carrying `metadata`.
    pub fn text(recipient: &'a str, text: &'a str, metadata: Option<String>) -> Self {
        Self {
            recipient: Recipient { id: recipient },
            messaging_type: "RESPONSE",
            message: OutgoingMessage { text, metadata },
        }
    }
}

#[derive(Debug, Deserialize)]
struct SendAnswer {
    #[serde(default)]
    message_id: String,
}

/// Calls one page's or account's Send API.
#[derive(Debug, Clone)]
pub struct SendApiClient {
    http: reqwest::Client,
    messages_url: reqwest::Url,
    access_token: Secret,
}

impl SendApiClient {
    /// A client for `settings`, with its timeout.
    pub fn new(settings: &MetaSettings) -> Result<Self, MetaError> {
        let http = build_http_client(&HttpClientConfig::with_request_timeout(settings.request_timeout))?;
        let messages_url =
            reqwest::Url::parse(&settings.messages_url()).map_err(|e| MetaError::InvalidConfig {
                platform: "meta",
                field: "api_base_url",
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            messages_url,
            access_token: settings.access_token.clone(),
        })
    }

    /// Sends `body`; the platform's message id (`m_…`, empty when the
    /// answer could not be read), or its refusal.
    pub async fn send(
        &self,
        body: &SendBody<'_>,
        traceparent: Option<&str>,
    ) -> Result<String, pb::PlatformError> {
        let mut url = self.messages_url.clone();
        url.query_pairs_mut()
            .append_pair("access_token", self.access_token.expose());
        let answer = send_json(self.http.post(url), body, traceparent, graph::graph_error).await?;
        Ok(answer
            .and_then(|b| serde_json::from_slice::<SendAnswer>(b.as_ref()).ok())
            .map(|a| a.message_id)
            .unwrap_or_default())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_send_api_text_message() {
        let body = SendBody::text("24680", "Hi \"there\"", Some(r#"{"m":"m-1"}"#.into()));
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "recipient": {"id": "24680"},
                "messaging_type": "RESPONSE",
                "message": {"text": "Hi \"there\"", "metadata": "{\"m\":\"m-1\"}"},
            })
        );
        let bare = serde_json::to_value(SendBody::text("1", "x", None)).unwrap();
        assert_eq!(bare["message"], serde_json::json!({"text": "x"}));
    }
}
