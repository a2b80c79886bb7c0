//! [`StoreClient`]: the [`MessageStore`] trait over gRPC, so a service
//! given a remote store holds the same `Arc<dyn MessageStore>` as one given
//! the embedded store.

use std::time::Duration;

use async_trait::async_trait;
use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, Recipient, Timestamp};
use chat4all_proto::v1 as pb;
use pb::message_store_client::MessageStoreClient;
use tonic::transport::{Channel, Endpoint};

use super::convert;
use super::status::from_status;
use chat4all_store::{
    ChannelPage, ClaimOutcome, InboundResult, MessageStore, NewInbound, NewMessage, Page, PlatformAnswer,
    PutChannelOutcome, PutResult, StatusChange, StoreError, TransitionResult,
};

/// How long a connection attempt may take before the call fails as
/// unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A remote store. Cheap to clone: clones share one HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct StoreClient {
    inner: MessageStoreClient<Channel>,
}

impl StoreClient {
    /// A client of the store served at `addr` (`http://host:port`, or
    /// `host:port`). The connection is made on first use, so services may
    /// start before the store; call within a tokio runtime.
    pub fn connect(addr: &str) -> Result<Self, StoreError> {
        let uri = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| StoreError::Invalid {
                field: "addr",
                reason: format!("{addr:?}: {e}"),
            })?
            .connect_timeout(CONNECT_TIMEOUT);
        Ok(Self::new(endpoint.connect_lazy()))
    }

    /// A client over a channel configured by the caller (TLS, timeouts).
    pub fn new(channel: Channel) -> Self {
        Self {
            inner: MessageStoreClient::new(channel),
        }
    }

    /// The generated client for one call; tonic's calls take `&mut self`.
    fn rpc(&self) -> MessageStoreClient<Channel> {
        self.inner.clone()
    }
}

#[async_trait]
impl MessageStore for StoreClient {
    async fn put_message(&self, message: NewMessage) -> Result<PutResult, StoreError> {
        let request = pb::PutMessageRequest {
            message: Some(convert::new_message_to_proto(message)),
        };
        let response = self
            .rpc()
            .put_message(request)
            .await
            .map_err(|s| from_status(&s))?;
        convert::put_result_from_proto(response.into_inner())
    }

    async fn get_message(&self, id: MessageId) -> Result<Option<pb::Message>, StoreError> {
        let request = pb::StoreGetMessageRequest {
            message_id: id.to_string(),
        };
        let response = self
            .rpc()
            .get_message(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(response.into_inner().message)
    }

    async fn list_messages(
        &self,
        conversation: &ConversationId,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let request = pb::StoreListMessagesRequest {
            conversation_id: conversation.to_string(),
            limit,
            before: before.unwrap_or_default().to_owned(),
        };
        let response = self
            .rpc()
            .list_messages(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(convert::page_from_proto(response.into_inner()))
    }

    async fn stuck_messages(
        &self,
        status: DeliveryStatus,
        created_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<pb::Message>, StoreError> {
        let request = pb::StuckMessagesRequest {
            status: status.to_proto().into(),
            created_before: Some(created_before.into()),
            limit,
        };
        let response = self
            .rpc()
            .stuck_messages(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(response.into_inner().messages)
    }

    async fn apply_transitions(
        &self,
        changes: Vec<StatusChange>,
    ) -> Result<Vec<TransitionResult>, StoreError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let asked = changes.len();
        let request = pb::ApplyTransitionsRequest {
            updates: changes.into_iter().map(pb::StatusUpdate::from).collect(),
        };
        let response = self
            .rpc()
            .apply_transitions(request)
            .await
            .map_err(|s| from_status(&s))?;
        convert::transition_results_from_proto(response.into_inner(), asked)
    }

    async fn claim_for_send(
        &self,
        ids: &[MessageId],
        claimant: &str,
        lease: Duration,
    ) -> Result<Vec<ClaimOutcome>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let request = pb::ClaimForSendRequest {
            message_ids: ids.iter().map(ToString::to_string).collect(),
            claimant: claimant.to_owned(),
            lease: Some(convert::lease_to_proto(lease, convert::field::LEASE)?),
        };
        let response = self
            .rpc()
            .claim_for_send(request)
            .await
            .map_err(|s| from_status(&s))?;
        convert::claim_results_from_proto(response.into_inner(), ids)
    }

    async fn put_channel(
        &self,
        channel: pb::Channel,
    ) -> Result<(PutChannelOutcome, pb::Channel), StoreError> {
        let request = pb::StorePutChannelRequest {
            channel: Some(channel),
        };
        let response = self
            .rpc()
            .put_channel(request)
            .await
            .map_err(|s| from_status(&s))?;
        convert::put_channel_from_response(response.into_inner())
    }

    async fn get_channel(&self, id: &str) -> Result<Option<pb::Channel>, StoreError> {
        let request = pb::StoreGetChannelRequest {
            channel_id: id.to_owned(),
        };
        let response = self
            .rpc()
            .get_channel(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(response.into_inner().channel)
    }

    async fn find_channel(
        &self,
        vendor_name: &str,
        vendor_channel_id: &str,
    ) -> Result<Option<pb::Channel>, StoreError> {
        let request = pb::StoreFindChannelRequest {
            vendor_name: vendor_name.to_owned(),
            vendor_channel_id: vendor_channel_id.to_owned(),
        };
        let response = self
            .rpc()
            .find_channel(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(response.into_inner().channel)
    }

    async fn list_channels(
        &self,
        vendor_name: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<ChannelPage, StoreError> {
        let request = convert::list_channels_request(vendor_name, after, limit);
        let response = self
            .rpc()
            .list_channels(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(convert::channel_page_from_proto(response.into_inner()))
    }

    async fn put_inbound(&self, inbound: NewInbound) -> Result<InboundResult, StoreError> {
        // Refused here as the embedded store refuses it: no round trip for
        // a request that cannot succeed, and the same error either way.
        chat4all_store::backend_rules::check_inbound_key(&inbound)?;
        let request = convert::new_inbound_to_proto(inbound)?;
        let response = self
            .rpc()
            .put_inbound(request)
            .await
            .map_err(|s| from_status(&s))?;
        convert::inbound_result_from_proto(response.into_inner())
    }

    async fn renew_claim(
        &self,
        id: MessageId,
        claimant: &str,
        lease: Duration,
        calling: bool,
    ) -> Result<bool, StoreError> {
        let request = pb::RenewClaimRequest {
            message_id: id.to_string(),
            claimant: claimant.to_owned(),
            lease: Some(convert::lease_to_proto(lease, convert::field::LEASE)?),
            calling,
        };
        let response = self
            .rpc()
            .renew_claim(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(response.into_inner().held)
    }

    async fn record_answer(&self, id: MessageId, answer: &PlatformAnswer) -> Result<(), StoreError> {
        let request = pb::RecordAnswerRequest {
            message_id: id.to_string(),
            platform_message_id: answer.platform_message_id.clone(),
            answered_at: Some(answer.at.into()),
        };
        self.rpc()
            .record_answer(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(())
    }

    async fn awaiting_receipt(
        &self,
        recipient: &Recipient,
        sent_up_to: Timestamp,
        short_of: DeliveryStatus,
        limit: u32,
    ) -> Result<Vec<MessageId>, StoreError> {
        let request = pb::AwaitingReceiptRequest {
            recipient: Some(pb::Recipient::from(recipient)),
            sent_up_to: Some(sent_up_to.into()),
            short_of: short_of.to_proto().into(),
            limit,
        };
        let response = self
            .rpc()
            .awaiting_receipt(request)
            .await
            .map_err(|s| from_status(&s))?;
        convert::claim_ids_from_proto(&response.into_inner().message_ids)
            .map_err(|e| StoreError::Corrupt(format!("awaiting-receipt answer: {e}")))
    }

    async fn record_watermark(
        &self,
        recipient: &Recipient,
        status: DeliveryStatus,
        up_to: Timestamp,
    ) -> Result<(), StoreError> {
        let request = pb::RecordWatermarkRequest {
            recipient: Some(pb::Recipient::from(recipient)),
            status: status.to_proto().into(),
            up_to: Some(up_to.into()),
        };
        self.rpc()
            .record_watermark(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(())
    }

    async fn watermark(
        &self,
        recipient: &Recipient,
        status: DeliveryStatus,
    ) -> Result<Option<Timestamp>, StoreError> {
        let request = pb::GetWatermarkRequest {
            recipient: Some(pb::Recipient::from(recipient)),
            status: status.to_proto().into(),
        };
        let response = self
            .rpc()
            .get_watermark(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(response.into_inner().up_to.map(Timestamp::from))
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let request = pb::AcquireLeaseRequest {
            name: name.to_owned(),
            holder: holder.to_owned(),
            ttl: Some(convert::lease_to_proto(ttl, convert::field::TTL)?),
        };
        let response = self
            .rpc()
            .acquire_lease(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(response.into_inner().held)
    }

    async fn release_claims(&self, ids: &[MessageId], claimant: &str) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let request = pb::ReleaseClaimsRequest {
            message_ids: ids.iter().map(ToString::to_string).collect(),
            claimant: claimant.to_owned(),
        };
        self.rpc()
            .release_claims(request)
            .await
            .map_err(|s| from_status(&s))?;
        Ok(())
    }

    async fn mark_receipt_overdue(
        &self,
        ids: &[MessageId],
        deadline: Duration,
    ) -> Result<Vec<MessageId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let request = pb::MarkReceiptOverdueRequest {
            message_ids: ids.iter().map(ToString::to_string).collect(),
            deadline: Some(convert::lease_to_proto(deadline, convert::field::DEADLINE)?),
        };
        let response = self
            .rpc()
            .mark_receipt_overdue(request)
            .await
            .map_err(|s| from_status(&s))?;
        convert::claim_ids_from_proto(&response.into_inner().message_ids)
            .map_err(|e| StoreError::Corrupt(format!("receipt-overdue answer: {e}")))
    }
}

/// The flag of every service that reaches the store over gRPC.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The MessageStore service.
    #[arg(
        long = "store-addr",
        env = "CHAT4ALL_STORE_ADDR",
        default_value = "http://127.0.0.1:50052"
    )]
    pub addr: String,
}

impl StoreArgs {
    /// A shared handle on the remote store (connects lazily).
    pub fn connect(&self) -> Result<chat4all_store::SharedStore, StoreError> {
        Ok(std::sync::Arc::new(StoreClient::connect(&self.addr)?))
    }
}
