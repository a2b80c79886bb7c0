//! The one implementation of the `Connector` gRPC service, generic over a
//! [`PlatformAdapter`]: every Rust adapter answers the sidecar identically,
//! and a platform crate never touches tonic.
//!
//! Errors become `tonic::Status` here and only here. A malformed request is
//! INVALID_ARGUMENT with `google.rpc.BadRequest` field violations; a text
//! longer than the platform takes is answered as the platform would answer
//! it (a PERMANENT `PlatformError`), without spending a platform call.

use std::sync::Arc;
use std::time::Instant;

use chat4all_proto::v1 as pb;
use chat4all_telemetry::spans::{Attribute, attributes};
use chat4all_telemetry::{HopKind, HopTracer, TraceContext};
use pb::PlatformErrorKind as Kind;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::Instrument;

use crate::PlatformAdapter;
use crate::events::{EventQueue, EventStream};

/// The `Connector` service over one platform.
pub struct ConnectorService<A> {
    adapter: Arc<A>,
    events: Arc<EventQueue>,
    tracer: HopTracer,
}

impl<A: PlatformAdapter> ConnectorService<A> {
    /// Serves `adapter`, streaming the events of `events`.
    pub fn new(adapter: Arc<A>, events: Arc<EventQueue>) -> Self {
        let tracer = chat4all_telemetry::spans::tracer(&format!("chat4all-{}", adapter.platform()));
        register_series(adapter.platform());
        Self {
            adapter,
            events,
            tracer,
        }
    }
}

const CONNECTOR_SEND: &str = "chat4all.v1.Connector/Send";

fn validate(request: &pb::SendRequest) -> Result<(), Status> {
    let mut details = ErrorDetails::new();
    if request.message_id.trim().is_empty() {
        details.add_bad_request_violation("message_id", "is required: receipts name the message by it");
    }
    if request.recipient_id.trim().is_empty() {
        details.add_bad_request_violation("recipient_id", "is required");
    }
    if request.text.trim().is_empty() {
        details.add_bad_request_violation("text", "is required");
    }
    if details.has_bad_request_violations() {
        Err(Status::with_error_details(
            Code::InvalidArgument,
            "invalid send request",
            details,
        ))
    } else {
        Ok(())
    }
}

fn outcome(result: &Result<pb::SendAccepted, pb::PlatformError>) -> &'static str {
    match result {
        Ok(_) => "accepted",
        Err(e) => kind_label(e.kind()),
    }
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::RateLimited => "rate_limited",
        Kind::Transient => "transient",
        Kind::Permanent => "permanent",
        Kind::Ambiguous => "ambiguous",
        Kind::Unspecified => "unspecified",
    }
}

/// Every send outcome, at 0 from start-up: `increase()` over a series
/// that appears at 1 misses its first event.
fn register_series(platform: &'static str) {
    let kinds = [
        Kind::RateLimited,
        Kind::Transient,
        Kind::Permanent,
        Kind::Ambiguous,
        Kind::Unspecified,
    ]
    .map(kind_label);
    for outcome in std::iter::once("accepted").chain(kinds) {
        metrics::counter!("chat4all_adapter_sends_total", "platform" => platform, "outcome" => outcome)
            .increment(0);
    }
    // A histogram registered without a sample shows its zero buckets.
    let _ = metrics::histogram!("chat4all_adapter_send_duration_seconds", "platform" => platform);
}

#[tonic::async_trait]
impl<A: PlatformAdapter> pb::connector_server::Connector for ConnectorService<A> {
    async fn describe(
        &self,
        _request: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        Ok(Response::new(pb::DescribeResponse {
            platform: self.adapter.platform().to_owned(),
            capabilities: Some(self.adapter.capabilities()),
        }))
    }

    async fn send(&self, request: Request<pb::SendRequest>) -> Result<Response<pb::SendResponse>, Status> {
        // Only a well-formed context is passed on: the platform would
        // otherwise carry our callers' garbage into its logs.
        let parent = TraceContext::from_metadata(request.metadata());
        let mut server = self
            .tracer
            .start(CONNECTOR_SEND, HopKind::Server, parent.as_ref());
        let request = request.into_inner();
        let platform = self.adapter.platform();
        server.record(|| {
            let mut a = attributes::grpc("chat4all.v1.Connector", "Send").to_vec();
            a.push(attributes::message_id(&request.message_id));
            a.push(attributes::platform(platform));
            a
        });
        validate(&request).inspect_err(|s| server.fail(s.message().to_owned()))?;
        let span = tracing::info_span!("platform_send", platform, message_id = %request.message_id,
            trace_id = %server.trace_id());

        let max = self.adapter.capabilities().max_text_length;
        if max > 0 && request.text.chars().count() > max as usize {
            let outcome = "permanent";
            metrics::counter!("chat4all_adapter_sends_total", "platform" => platform, "outcome" => outcome)
                .increment(1);
            return Ok(Response::new(pb::SendResponse {
                result: Some(pb::send_response::Result::Error(pb::PlatformError {
                    kind: Kind::Permanent as i32,
                    code: "text_too_long".to_owned(),
                    message: format!("{platform} takes at most {max} characters of text"),
                    retry_after: None,
                    http_status: 0,
                })),
            }));
        }

        // The platform call is a client span of its own; its context is what
        // the platform sees and, where it carries one back, what receipts
        // continue.
        let mut call = self.tracer.start(
            if self.tracer.is_exporting() {
                std::borrow::Cow::Owned(format!("POST {platform}"))
            } else {
                std::borrow::Cow::Borrowed("")
            },
            HopKind::Client,
            Some(server.context()),
        );
        call.record(|| {
            vec![
                Attribute::new("http.request.method", "POST"),
                attributes::platform(platform),
                attributes::message_id(&request.message_id),
            ]
        });
        let traceparent = call.context().to_string();
        let started = Instant::now();
        let result = crate::http_client::CALL_TRACE
            .scope(
                call.context().clone(),
                self.adapter
                    .send(&request, Some(&traceparent))
                    .instrument(span.clone()),
            )
            .await;
        if let Err(error) = &result {
            call.record(|| {
                vec![Attribute::new(
                    "http.response.status_code",
                    i64::from(error.http_status),
                )]
            });
            call.fail(error.code.clone());
        }
        call.end();
        let outcome = outcome(&result);
        metrics::histogram!("chat4all_adapter_send_duration_seconds", "platform" => platform)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("chat4all_adapter_sends_total", "platform" => platform, "outcome" => outcome)
            .increment(1);
        let _entered = span.enter();
        let result = match result {
            Ok(accepted) => {
                tracing::debug!(
                    platform_message_id = %accepted.platform_message_id,
                    "platform accepted the message"
                );
                pb::send_response::Result::Accepted(accepted)
            }
            Err(error) => {
                tracing::info!(
                    outcome,
                    code = %error.code,
                    http_status = error.http_status,
                    "platform refused the message"
                );
                pb::send_response::Result::Error(error)
            }
        };
        Ok(Response::new(pb::SendResponse { result: Some(result) }))
    }

    async fn get_channel_info(
        &self,
        request: Request<pb::GetChannelInfoRequest>,
    ) -> Result<Response<pb::ChannelInfo>, Status> {
        self.adapter
            .get_channel_info(request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_messages(
        &self,
        request: Request<pb::ConnectorListMessagesRequest>,
    ) -> Result<Response<pb::ConnectorListMessagesResponse>, Status> {
        self.adapter
            .list_messages(request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_user_products(
        &self,
        request: Request<pb::ListUserProductsRequest>,
    ) -> Result<Response<pb::ListUserProductsResponse>, Status> {
        self.adapter
            .list_user_products(request.get_ref())
            .await
            .map(Response::new)
    }

    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        request: Request<tonic::Streaming<pb::EventAck>>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        Ok(Response::new(self.events.subscribe(request.into_inner())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_missing_field() {
        let status = validate(&pb::SendRequest::default()).err();
        let Some(status) = status else {
            panic!("an empty request must be refused")
        };
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["message_id", "recipient_id", "text"]);

        let ok = pb::SendRequest {
            message_id: "m".into(),
            conversation_id: String::new(),
            recipient_id: "1".into(),
            text: "hi".into(),
        };
        assert!(validate(&ok).is_ok());
    }
}
