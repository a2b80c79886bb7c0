//! The MessagingService handlers.

use std::pin::Pin;
use std::time::Instant;

use chat4all_domain::{ConversationId, DeliveryStatus, MessageId, SOURCE_API, Timestamp};
use chat4all_kafka::{Producer, topics};
use chat4all_proto::v1::{
    self as pb, GetMessageRequest, GetMessageResponse, ListMessagesRequest, ListMessagesResponse,
    MessageEvent, SendMessageRequest, SendMessageResponse, WatchMessagesRequest,
    messaging_service_server::MessagingService, watch_messages_request,
};
use chat4all_store::{MessageCursor, NewMessage, PutOutcome, SharedStore};
use chat4all_telemetry::spans::attributes;
use chat4all_telemetry::{HopKind, HopTracer, TraceContext};
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::channels;
use crate::config::GatewayConfig;
use crate::history::Backfill;
use crate::publish;
use crate::status;
use crate::validation::validate_send;
use crate::vendors::Connectors;
use crate::watchers::{WatchScope, Watchers, vendor_key};

const MESSAGING_SERVICE: &str = "chat4all.v1.MessagingService";
const SEND_MESSAGE: &str = "chat4all.v1.MessagingService/SendMessage";
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

pub(crate) struct Messaging {
    config: GatewayConfig,
    store: SharedStore,
    producer: Producer,
    watchers: Watchers,
    connectors: Connectors,
    tracer: HopTracer,
}

impl Messaging {
    pub(crate) fn new(
        config: GatewayConfig,
        store: SharedStore,
        producer: Producer,
        watchers: Watchers,
        connectors: Connectors,
        tracer: HopTracer,
    ) -> Self {
        register_series(&config);
        Self {
            config,
            store,
            producer,
            watchers,
            connectors,
            tracer,
        }
    }
}

/// What the accept path records, at 0 from start-up for every platform
/// it accepts: `increase()` over a series that appears at 1 misses its
/// first event.
fn register_series(config: &GatewayConfig) {
    for platform in &config.enabled_platforms {
        for duplicate in ["false", "true"] {
            metrics::counter!("chat4all_messages_accepted_total", "platform" => platform.as_str(), "duplicate" => duplicate)
                .increment(0);
        }
    }
    metrics::counter!("chat4all_messages_rejected_total", "reason" => "invalid_argument").increment(0);
    metrics::counter!("chat4all_produce_failures_total", "topic" => topics::MESSAGES).increment(0);
    // A histogram registered without a sample shows its zero buckets.
    let _ = metrics::histogram!("chat4all_accept_duration_seconds");
}

type EventStream = Pin<Box<dyn Stream<Item = Result<MessageEvent, Status>> + Send>>;

#[tonic::async_trait]
impl MessagingService for Messaging {
    #[tracing::instrument(skip_all, fields(message_id, trace_id))]
    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let started = Instant::now();
        // The client's trace is continued; without one, a new trace starts.
        let parent = TraceContext::from_metadata(request.metadata());
        let mut hop = self.tracer.start(SEND_MESSAGE, HopKind::Server, parent.as_ref());
        hop.record(|| attributes::grpc(MESSAGING_SERVICE, "SendMessage").to_vec());
        let trace = hop.context().clone();
        let span = tracing::Span::current();
        span.record("trace_id", trace.trace_id());
        let req = channels::resolve_recipient(&self.store, request.into_inner())
            .await
            .inspect_err(|s| hop.fail(s.message().to_owned()))?;
        let req_at_least_once = req.at_least_once;
        let valid = validate_send(&req, &self.config.enabled_platforms, self.config.max_text_chars).map_err(
            |violations| {
                metrics::counter!("chat4all_messages_rejected_total", "reason" => "invalid_argument")
                    .increment(1);
                hop.fail("invalid argument");
                status::invalid(&violations)
            },
        )?;
        let platform = valid.recipient.platform.as_str();
        let id = MessageId::generate();
        span.record("message_id", tracing::field::display(id));
        hop.record(|| {
            vec![
                attributes::message_id(&id.to_string()),
                attributes::platform(platform),
            ]
        });

        let stored_at = Instant::now();
        let put = self
            .store
            .put_message(NewMessage {
                id,
                conversation_id: valid.conversation_id,
                recipient: valid.recipient.clone(),
                text: req.text,
                source: SOURCE_API.to_owned(),
                trace_id: trace.trace_id(),
                created_at: Timestamp::now(),
                idempotency_key: valid.idempotency_key,
            })
            .await
            .map_err(|e| {
                hop.fail("store failed");
                status::store(e)
            })?;
        metrics::histogram!("chat4all_accept_stage_duration_seconds", "stage" => "store")
            .record(stored_at.elapsed().as_secs_f64());
        let message = put.message;
        let duplicate = match put.outcome {
            PutOutcome::Created => false,
            PutOutcome::Duplicate => true,
            PutOutcome::KeyConflict => {
                return Err(Status::already_exists(format!(
                    "idempotency_key was already used for message {} with a different recipient, \
                     conversation or text",
                    message.id
                )));
            }
        };
        let status = DeliveryStatus::from_proto(message.status).unwrap_or(DeliveryStatus::Accepted);
        // A retry of a request whose produce failed finds the message still
        // ACCEPTED and queues it again; the sidecar's claim keeps the
        // platform call single.
        if !duplicate || status == DeliveryStatus::Accepted {
            // A re-queued message stays in its first request's trace.
            let trace = if duplicate {
                TraceContext::in_trace(&message.trace_id).unwrap_or(trace)
            } else {
                trace
            };
            let queued_at = Instant::now();
            let delivery = publish::enqueue(
                &self.producer,
                &self.tracer,
                &message,
                &trace,
                publish::Queue {
                    announce: !duplicate,
                    at_least_once: req_at_least_once,
                },
            )
            .await
            .map_err(|e| {
                hop.fail("kafka produce failed");
                status::kafka(&e)
            })?;
            publish::watch_ack(delivery, topics::MESSAGES, message.id.clone());
            metrics::histogram!("chat4all_accept_stage_duration_seconds", "stage" => "kafka")
                .record(queued_at.elapsed().as_secs_f64());
        }
        metrics::counter!("chat4all_messages_accepted_total", "platform" => platform, "duplicate" => if duplicate { "true" } else { "false" })
            .increment(1);
        metrics::histogram!("chat4all_accept_duration_seconds").record(started.elapsed().as_secs_f64());
        tracing::info!(platform, duplicate, "message accepted");
        Ok(Response::new(SendMessageResponse {
            message_id: message.id,
            status: status.to_proto().into(),
            duplicate,
            trace_id: message.trace_id,
        }))
    }

    async fn get_message(
        &self,
        request: Request<GetMessageRequest>,
    ) -> Result<Response<GetMessageResponse>, Status> {
        let raw = request.into_inner().message_id;
        let id: MessageId = raw
            .parse()
            .map_err(|e: chat4all_domain::IdError| status::invalid_field("message_id", e.to_string()))?;
        let message = self.store.get_message(id).await.map_err(status::store)?;
        match message {
            Some(message) => Ok(Response::new(GetMessageResponse {
                message: Some(message),
            })),
            None => Err(Status::not_found(format!("no message {id}"))),
        }
    }

    async fn list_messages(
        &self,
        request: Request<ListMessagesRequest>,
    ) -> Result<Response<ListMessagesResponse>, Status> {
        let req = request.into_inner();
        let conversation = req
            .conversation_id
            .parse()
            .map_err(|e: chat4all_domain::IdError| status::invalid_field("conversation_id", e.to_string()))?;
        if req.page_size > MAX_PAGE {
            return Err(status::invalid_field("page_size", format!("at most {MAX_PAGE}")));
        }
        let limit = if req.page_size == 0 {
            DEFAULT_PAGE
        } else {
            req.page_size
        };
        let cursor = match (req.page_token.is_empty(), req.before) {
            (true, None) => None,
            (true, Some(before)) => Some(MessageCursor::older_than(Timestamp::from(before))),
            (false, None) => Some(MessageCursor::decode(&req.page_token).map_err(status::store)?),
            (false, Some(_)) => {
                return Err(status::invalid_field(
                    "before",
                    "give page_token or before, not both: the token already says where the page starts",
                ));
            }
        };
        let backfilled = if req.skip_backfill {
            0
        } else {
            Backfill {
                store: &self.store,
                connectors: &self.connectors,
                dedup_window: self.config.inbound_dedup_window,
            }
            .page(&conversation, cursor.map(|c| c.created_at), limit)
            .await?
        };
        let token = cursor.map(|c| c.encode());
        let page = self
            .store
            .list_messages(&conversation, token.as_deref(), limit)
            .await
            .map_err(status::store)?;
        Ok(Response::new(ListMessagesResponse {
            messages: page.messages,
            next_page_token: page.next_cursor.unwrap_or_default(),
            backfilled,
        }))
    }

    async fn create_channel(
        &self,
        request: Request<pb::CreateChannelRequest>,
    ) -> Result<Response<pb::CreateChannelResponse>, Status> {
        channels::create(&self.store, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_channel(
        &self,
        request: Request<pb::GetChannelRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        channels::get(&self.store, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_channels(
        &self,
        request: Request<pb::ListChannelsRequest>,
    ) -> Result<Response<pb::ListChannelsResponse>, Status> {
        channels::list(&self.store, request.into_inner())
            .await
            .map(Response::new)
    }

    type WatchMessagesStream = EventStream;

    async fn watch_messages(
        &self,
        request: Request<WatchMessagesRequest>,
    ) -> Result<Response<Self::WatchMessagesStream>, Status> {
        let scope = match request.into_inner().scope {
            Some(watch_messages_request::Scope::ConversationId(id)) => {
                let conversation: ConversationId = id.parse().map_err(|e: chat4all_domain::IdError| {
                    status::invalid_field("conversation_id", e.to_string())
                })?;
                WatchScope::Conversation(conversation.as_str().to_owned())
            }
            Some(watch_messages_request::Scope::ChannelId(id)) if !id.trim().is_empty() => {
                let channel = self
                    .store
                    .get_channel(id.trim())
                    .await
                    .map_err(status::store)?
                    .ok_or_else(|| Status::not_found(format!("no channel {id:?}")))?;
                let vendor = channel.vendor.unwrap_or_default();
                WatchScope::Vendor(vendor_key(&vendor.name, &vendor.channel_id))
            }
            _ => {
                return Err(status::invalid_field(
                    "scope",
                    "give conversation_id, or channel_id to watch a whole channel",
                ));
            }
        };
        Ok(Response::new(Box::pin(self.watchers.subscribe(scope)?)))
    }

    async fn get_channel_info(
        &self,
        request: Request<pb::ChannelInfoRequest>,
    ) -> Result<Response<pb::ChannelInfoResponse>, Status> {
        channels::info(&self.store, &self.connectors, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_user_products(
        &self,
        request: Request<pb::UserProductsRequest>,
    ) -> Result<Response<pb::UserProductsResponse>, Status> {
        channels::user_products(&self.connectors, request.into_inner())
            .await
            .map(Response::new)
    }
}
