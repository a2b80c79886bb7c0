//! Helpers for the end-to-end tests in `tests/`: start the one-machine
//! system on a fresh data directory, talk to it through its public gRPC API,
//! wait for messages to reach a state, ask a port what it serves
//! ([`introspect`]).

pub mod introspect;

use std::time::{Duration, Instant};

use chat4all::{System, SystemConfig};
use chat4all_proto::v1::{
    self as pb, GetMessageRequest, SendMessageRequest, messaging_service_client::MessagingServiceClient,
};
use tonic::transport::Channel;

pub use chat4all;

/// A system on its own data directory, removed when dropped.
pub struct TestSystem {
    pub system: System,
    pub dir: tempfile::TempDir,
}

impl TestSystem {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts with the ephemeral configuration as `adjust` leaves it.
    pub async fn start_with(adjust: impl FnOnce(&mut SystemConfig)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut config = SystemConfig::ephemeral(dir.path());
        adjust(&mut config);
        let system = System::start(config).await?;
        Ok(Self { system, dir })
    }

    pub async fn client(&self) -> anyhow::Result<MessagingServiceClient<Channel>> {
        Ok(MessagingServiceClient::connect(self.system.gateway_url()).await?)
    }
}

pub fn send_request(recipient: &str, text: &str, conversation: &str) -> SendMessageRequest {
    SendMessageRequest {
        recipient: recipient.to_owned(),
        text: text.to_owned(),
        conversation_id: conversation.to_owned(),
        idempotency_key: String::new(),
        at_least_once: false,
    }
}

/// A WatchMessages request for one conversation.
pub fn watch_conversation(conversation: impl Into<String>) -> pb::WatchMessagesRequest {
    pb::WatchMessagesRequest {
        scope: Some(pb::watch_messages_request::Scope::ConversationId(
            conversation.into(),
        )),
    }
}

/// A WatchMessages request for everything exchanged through a channel.
pub fn watch_channel(channel_id: impl Into<String>) -> pb::WatchMessagesRequest {
    pb::WatchMessagesRequest {
        scope: Some(pb::watch_messages_request::Scope::ChannelId(channel_id.into())),
    }
}

/// Polls GetMessage until the message reaches `status` (or beyond, in state
/// order; FAILED only when asked for) or the time is up; returns the
/// message as last seen.
pub async fn wait_for(
    client: &mut MessagingServiceClient<Channel>,
    message_id: &str,
    status: pb::DeliveryStatus,
    within: Duration,
) -> anyhow::Result<pb::Message> {
    let deadline = Instant::now() + within;
    loop {
        let message = client
            .get_message(GetMessageRequest {
                message_id: message_id.to_owned(),
            })
            .await?
            .into_inner()
            .message
            .ok_or_else(|| anyhow::anyhow!("no message in the answer"))?;
        let failed = message.status == pb::DeliveryStatus::Failed as i32;
        // FAILED stands beside the way: reached only when asked for.
        let reached = if status == pb::DeliveryStatus::Failed {
            failed
        } else {
            !failed && message.status >= status as i32
        };
        if reached || Instant::now() > deadline {
            return Ok(message);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Sends `text` to `recipient` (no conversation id) and waits, as
/// [`wait_for`] does, until the message reaches `status`.
pub async fn send_and_wait(
    client: &mut MessagingServiceClient<Channel>,
    recipient: &str,
    text: &str,
    status: pb::DeliveryStatus,
    within: Duration,
) -> anyhow::Result<pb::Message> {
    let id = client
        .send_message(send_request(recipient, text, ""))
        .await?
        .into_inner()
        .message_id;
    wait_for(client, &id, status, within).await
}
