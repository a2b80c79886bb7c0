//! The contract between the kit and one platform: what a platform crate
//! implements, and nothing it does not need to.
//!
//! `send` answers with the platform's refusal as a value
//! ([`pb::PlatformError`]), not an error of the adapter, because the sidecar
//! decides what a refusal means (retry, wait, give up). Webhook
//! authentication is declared, not implemented, by each platform
//! ([`PlatformAdapter::webhook_signature`]) so the kit can guarantee that it
//! runs on the raw bytes before [`PlatformAdapter::parse_webhook`]. The
//! optional calls default to a clear "not supported" answer naming the
//! platform and why.

use std::fmt;

use async_trait::async_trait;
use chat4all_proto::v1 as pb;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{Secret, SignatureScheme};

/// One of the optional `Connector` calls a platform may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ChannelInfo,
    History,
    UserProducts,
}

impl Operation {
    /// How the operation is named in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChannelInfo => "channel info",
            Self::History => "message history",
            Self::UserProducts => "user products",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook body that passed its signature check but is not what the
/// platform sends. The kit answers 400 and counts it.
#[derive(Debug, thiserror::Error)]
pub enum WebhookParseError {
    #[error("the webhook body is not the expected JSON")]
    Json(#[from] serde_json::Error),
    #[error("unexpected webhook payload: {0}")]
    Unexpected(String),
}

/// What a platform crate implements; the kit does the rest (gRPC server,
/// webhook server, event queue, health).
#[async_trait]
pub trait PlatformAdapter: Send + Sync + 'static {
    /// The platform's name as in recipients, topics and metrics: `whatsapp`.
    fn platform(&self) -> &'static str;

    /// What the platform offers, for `Describe`.
    fn capabilities(&self) -> pb::Capabilities;

    /// One platform call. `traceparent` is the W3C context of the message,
    /// to be sent along as the `traceparent` HTTP header. A refusal by the
    /// platform (or no answer) is an `Err` the sidecar classifies by kind.
    async fn send(
        &self,
        request: &pb::SendRequest,
        traceparent: Option<&str>,
    ) -> Result<pb::SendAccepted, pb::PlatformError>;

    /// How the platform signs its webhooks. Checked by the kit before
    /// [`parse_webhook`](Self::parse_webhook) sees the body.
    fn webhook_signature(&self) -> &SignatureScheme;

    /// The token of Meta's `GET ?hub.mode=subscribe&hub.verify_token=…`
    /// handshake; `None` refuses every such request.
    fn webhook_verify_token(&self) -> Option<&Secret> {
        None
    }

    /// Turns an authenticated webhook body into events, in order. An empty
    /// list is fine (a notification we do not care about).
    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<pb::PlatformEvent>, WebhookParseError>;

    /// The events [`parse_webhook`](Self::parse_webhook) made of `body` were
    /// not queued (the queue was full, the platform gets 503 and sends the
    /// body again). A platform that drops repeats (Telegram's `update_id`)
    /// forgets this one here, or its retry would be dropped as a repeat and
    /// the message lost.
    fn webhook_not_queued(&self, _body: &[u8]) {}

    /// Why the platform lacks `operation`, for the "not supported" answer.
    fn unsupported_reason(&self, _operation: Operation) -> &'static str {
        "its API offers no such call"
    }

    async fn get_channel_info(
        &self,
        _request: &pb::GetChannelInfoRequest,
    ) -> Result<pb::ChannelInfo, Status> {
        Err(unsupported(
            self.platform(),
            Operation::ChannelInfo,
            self.unsupported_reason(Operation::ChannelInfo),
        ))
    }

    async fn list_messages(
        &self,
        _request: &pb::ConnectorListMessagesRequest,
    ) -> Result<pb::ConnectorListMessagesResponse, Status> {
        Err(unsupported(
            self.platform(),
            Operation::History,
            self.unsupported_reason(Operation::History),
        ))
    }

    async fn list_user_products(
        &self,
        _request: &pb::ListUserProductsRequest,
    ) -> Result<pb::ListUserProductsResponse, Status> {
        Err(unsupported(
            self.platform(),
            Operation::UserProducts,
            self.unsupported_reason(Operation::UserProducts),
        ))
    }
}

/// `UNIMPLEMENTED: platform X does not support Y: reason`, with a
/// `google.rpc.ErrorInfo` (reason `UNSUPPORTED_BY_PLATFORM`) so a client can
/// tell it from a missing method without reading the text.
pub fn unsupported(platform: &str, operation: Operation, reason: &str) -> Status {
    let details = ErrorDetails::with_error_info(
        "UNSUPPORTED_BY_PLATFORM",
        "chat4all",
        [
            ("platform".to_owned(), platform.to_owned()),
            ("operation".to_owned(), operation.to_string()),
        ],
    );
    Status::with_error_details(
        Code::Unimplemented,
        format!("platform {platform} does not support {operation}: {reason}"),
        details,
    )
}
