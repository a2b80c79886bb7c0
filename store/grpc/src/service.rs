//! The `chat4all.v1.MessageStore` server over any [`MessageStore`].
//!
//! Each handler is the same three steps: convert the request (a bad field is
//! the caller's `Invalid`), call the store, convert the answer; errors of
//! any step become a `Status` in one place, [`super::status::to_status`].

use std::sync::Arc;

use chat4all_domain::DeliveryStatus;
use chat4all_domain::convert::timestamp_or_now;
use chat4all_proto::v1 as pb;
use pb::message_store_server::MessageStore as MessageStoreRpc;
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::convert::{self, field};
use super::status::to_status;
use chat4all_store::{MessageStore, StoreError};

/// Serves a store; generic so a concrete backend can be served without the
/// `dyn`, defaulting to the shared handle services hold.
pub struct StoreService<S: ?Sized = dyn MessageStore> {
    store: Arc<S>,
}

impl<S: MessageStore + ?Sized> StoreService<S> {
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }
}

impl<S: ?Sized> Clone for StoreService<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: ?Sized> std::fmt::Debug for StoreService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreService").finish_non_exhaustive()
    }
}

/// Runs a handler body and maps its error, once.
async fn answer<T>(body: impl Future<Output = Result<T, StoreError>>) -> Result<Response<T>, Status> {
    body.await.map(Response::new).map_err(to_status)
}

#[tonic::async_trait]
impl<S: MessageStore + ?Sized> MessageStoreRpc for StoreService<S> {
    #[instrument(skip_all, fields(message_id = tracing::field::Empty))]
    async fn put_message(
        &self,
        request: Request<pb::PutMessageRequest>,
    ) -> Result<Response<pb::PutMessageResponse>, Status> {
        answer(async {
            let message = convert::new_message_from_proto(request.into_inner().message)?;
            tracing::Span::current().record("message_id", tracing::field::display(message.id));
            let result = self.store.put_message(message).await?;
            Ok(convert::put_result_to_proto(result))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn get_message(
        &self,
        request: Request<pb::StoreGetMessageRequest>,
    ) -> Result<Response<pb::StoreGetMessageResponse>, Status> {
        answer(async {
            let id = convert::message_id_from_proto(&request.get_ref().message_id, field::GET_MESSAGE_ID)?;
            let message = self.store.get_message(id).await?;
            Ok(pb::StoreGetMessageResponse { message })
        })
        .await
    }

    #[instrument(skip_all)]
    async fn list_messages(
        &self,
        request: Request<pb::StoreListMessagesRequest>,
    ) -> Result<Response<pb::StoreListMessagesResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            let conversation =
                convert::conversation_id_from_proto(&request.conversation_id, field::CONVERSATION_ID)?;
            let before = Some(request.before.as_str()).filter(|b| !b.is_empty());
            let page = self
                .store
                .list_messages(&conversation, before, request.limit)
                .await?;
            Ok(convert::page_to_proto(page))
        })
        .await
    }

    async fn stuck_messages(
        &self,
        request: Request<pb::StuckMessagesRequest>,
    ) -> Result<Response<pb::StuckMessagesResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            let status = DeliveryStatus::from_proto(request.status).ok_or_else(|| StoreError::Invalid {
                field: field::STUCK_STATUS,
                reason: format!("{} is not a delivery status", request.status),
            })?;
            let before = timestamp_or_now(request.created_before);
            let messages = self.store.stuck_messages(status, before, request.limit).await?;
            Ok(pb::StuckMessagesResponse { messages })
        })
        .await
    }

    #[instrument(skip_all, fields(updates = request.get_ref().updates.len()))]
    async fn apply_transitions(
        &self,
        request: Request<pb::ApplyTransitionsRequest>,
    ) -> Result<Response<pb::ApplyTransitionsResponse>, Status> {
        answer(async {
            let changes = convert::status_changes_from_proto(request.into_inner().updates)?;
            let results = self.store.apply_transitions(changes).await?;
            Ok(pb::ApplyTransitionsResponse {
                results: results
                    .into_iter()
                    .map(convert::transition_result_to_proto)
                    .collect(),
            })
        })
        .await
    }

    #[instrument(skip_all, fields(ids = request.get_ref().message_ids.len()))]
    async fn claim_for_send(
        &self,
        request: Request<pb::ClaimForSendRequest>,
    ) -> Result<Response<pb::ClaimForSendResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            let ids = convert::claim_ids_from_proto(&request.message_ids)?;
            let lease = convert::lease_from_proto(request.lease, convert::field::LEASE)?;
            let outcomes = self.store.claim_for_send(&ids, &request.claimant, lease).await?;
            Ok(convert::claim_results_to_proto(&ids, outcomes))
        })
        .await
    }

    async fn renew_claim(
        &self,
        request: Request<pb::RenewClaimRequest>,
    ) -> Result<Response<pb::RenewClaimResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            let id = convert::message_id_field(&request.message_id, convert::field::GET_MESSAGE_ID)?;
            let lease = convert::lease_from_proto(request.lease, convert::field::LEASE)?;
            let held = self
                .store
                .renew_claim(id, &request.claimant, lease, request.calling)
                .await?;
            Ok(pb::RenewClaimResponse { held })
        })
        .await
    }

    async fn record_answer(
        &self,
        request: Request<pb::RecordAnswerRequest>,
    ) -> Result<Response<pb::RecordAnswerResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            let id = convert::message_id_field(&request.message_id, convert::field::GET_MESSAGE_ID)?;
            let platform_answer = convert::answer_from_proto(&request)?;
            self.store.record_answer(id, &platform_answer).await?;
            Ok(pb::RecordAnswerResponse {})
        })
        .await
    }

    async fn awaiting_receipt(
        &self,
        request: Request<pb::AwaitingReceiptRequest>,
    ) -> Result<Response<pb::AwaitingReceiptResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            let recipient = convert::watermark_recipient(request.recipient.as_ref())?;
            let up_to = convert::required_time(request.sent_up_to, convert::field::SENT_UP_TO)?;
            let short_of = convert::watermark_status(request.short_of, convert::field::SHORT_OF)?;
            let ids = self
                .store
                .awaiting_receipt(&recipient, up_to, short_of, request.limit)
                .await?;
            Ok(pb::AwaitingReceiptResponse {
                message_ids: ids.iter().map(ToString::to_string).collect(),
            })
        })
        .await
    }

    async fn record_watermark(
        &self,
        request: Request<pb::RecordWatermarkRequest>,
    ) -> Result<Response<pb::RecordWatermarkResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            let recipient = convert::watermark_recipient(request.recipient.as_ref())?;
            let status = convert::watermark_status(request.status, convert::field::STUCK_STATUS)?;
            let up_to = convert::required_time(request.up_to, convert::field::SENT_UP_TO)?;
            self.store.record_watermark(&recipient, status, up_to).await?;
            Ok(pb::RecordWatermarkResponse {})
        })
        .await
    }

    async fn get_watermark(
        &self,
        request: Request<pb::GetWatermarkRequest>,
    ) -> Result<Response<pb::GetWatermarkResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            let recipient = convert::watermark_recipient(request.recipient.as_ref())?;
            let status = convert::watermark_status(request.status, convert::field::STUCK_STATUS)?;
            let up_to = self.store.watermark(&recipient, status).await?;
            Ok(pb::GetWatermarkResponse {
                up_to: up_to.map(Into::into),
            })
        })
        .await
    }

    async fn acquire_lease(
        &self,
        request: Request<pb::AcquireLeaseRequest>,
    ) -> Result<Response<pb::AcquireLeaseResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            if request.name.is_empty() {
                return Err(chat4all_store::StoreError::Invalid {
                    field: convert::field::LEASE_NAME,
                    reason: "is required".to_owned(),
                });
            }
            let ttl = convert::lease_from_proto(request.ttl, convert::field::TTL)?;
            let held = self
                .store
                .acquire_lease(&request.name, &request.holder, ttl)
                .await?;
            Ok(pb::AcquireLeaseResponse { held })
        })
        .await
    }

    #[instrument(skip_all, fields(channel_id = tracing::field::Empty))]
    async fn put_channel(
        &self,
        request: Request<pb::StorePutChannelRequest>,
    ) -> Result<Response<pb::StorePutChannelResponse>, Status> {
        answer(async {
            let channel = convert::put_channel_from_proto(request.into_inner())?;
            let put = self.store.put_channel(channel).await?;
            tracing::Span::current().record("channel_id", put.1.id.as_str());
            Ok(convert::put_channel_to_proto(put))
        })
        .await
    }

    async fn get_channel(
        &self,
        request: Request<pb::StoreGetChannelRequest>,
    ) -> Result<Response<pb::StoreGetChannelResponse>, Status> {
        answer(async {
            let channel = self.store.get_channel(&request.get_ref().channel_id).await?;
            Ok(pb::StoreGetChannelResponse { channel })
        })
        .await
    }

    async fn find_channel(
        &self,
        request: Request<pb::StoreFindChannelRequest>,
    ) -> Result<Response<pb::StoreGetChannelResponse>, Status> {
        answer(async {
            let request = request.get_ref();
            let channel = self
                .store
                .find_channel(&request.vendor_name, &request.vendor_channel_id)
                .await?;
            Ok(pb::StoreGetChannelResponse { channel })
        })
        .await
    }

    async fn list_channels(
        &self,
        request: Request<pb::StoreListChannelsRequest>,
    ) -> Result<Response<pb::StoreListChannelsResponse>, Status> {
        answer(async {
            let request = request.get_ref();
            let (vendor_name, after) = convert::list_channels_from_proto(request);
            let page = self
                .store
                .list_channels(vendor_name, after, request.limit)
                .await?;
            Ok(convert::channel_page_to_proto(page))
        })
        .await
    }

    #[instrument(skip_all, fields(message_id = tracing::field::Empty))]
    async fn put_inbound(
        &self,
        request: Request<pb::PutInboundRequest>,
    ) -> Result<Response<pb::PutInboundResponse>, Status> {
        answer(async {
            let inbound = convert::new_inbound_from_proto(request.into_inner())?;
            tracing::Span::current().record("message_id", tracing::field::display(inbound.id));
            let result = self.store.put_inbound(inbound).await?;
            Ok(convert::inbound_result_to_proto(result))
        })
        .await
    }

    async fn release_claims(
        &self,
        request: Request<pb::ReleaseClaimsRequest>,
    ) -> Result<Response<pb::ReleaseClaimsResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            let ids = convert::claim_ids_from_proto(&request.message_ids)?;
            self.store.release_claims(&ids, &request.claimant).await?;
            Ok(pb::ReleaseClaimsResponse {})
        })
        .await
    }

    async fn mark_receipt_overdue(
        &self,
        request: Request<pb::MarkReceiptOverdueRequest>,
    ) -> Result<Response<pb::MarkReceiptOverdueResponse>, Status> {
        answer(async {
            let request = request.into_inner();
            let ids = convert::claim_ids_from_proto(&request.message_ids)?;
            // A deadline of nothing would mark every SENT message at once.
            let deadline = convert::lease_from_proto(request.deadline, convert::field::DEADLINE)?;
            let marked = self.store.mark_receipt_overdue(&ids, deadline).await?;
            Ok(pb::MarkReceiptOverdueResponse {
                message_ids: marked.iter().map(ToString::to_string).collect(),
            })
        })
        .await
    }
}
