//! The one place the gateway's failures become gRPC statuses. Bad input is
//! INVALID_ARGUMENT with a `google.rpc.BadRequest` naming each field.

use chat4all_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::validation::Violation;

pub(crate) fn invalid(violations: &[Violation]) -> Status {
    let summary = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for v in violations {
        details.add_bad_request_violation(v.field, v.description.clone());
    }
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {summary}"),
        details,
    )
}

pub(crate) fn invalid_field(field: &'static str, description: impl Into<String>) -> Status {
    invalid(&[Violation {
        field,
        description: description.into(),
    }])
}

pub(crate) fn store(error: StoreError) -> Status {
    match error {
        StoreError::Invalid { field, reason } => invalid_field(field, reason),
        StoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "store unavailable");
            Status::unavailable("the message store is unavailable; retry with the same idempotency key")
        }
        StoreError::Corrupt(reason) => {
            tracing::error!(%reason, "store data corrupt");
            Status::internal("the message store returned unreadable data")
        }
    }
}

pub(crate) fn kafka(error: &chat4all_kafka::KafkaError) -> Status {
    tracing::warn!(%error, "kafka produce failed");
    Status::unavailable(
        "the message was stored but could not be queued for delivery; retry with the same idempotency key",
    )
}

/// The stream ends with this: the watcher re-reads what it missed.
pub(crate) fn watcher_lagged(missed: u64) -> Status {
    Status::resource_exhausted(format!(
        "watcher fell {missed} events behind; re-read the conversation with ListMessages and watch again"
    ))
}

pub(crate) fn too_many_watchers(limit: u32) -> Status {
    Status::resource_exhausted(format!(
        "this gateway already serves {limit} WatchMessages streams, its limit \
         (--max-watch-streams, CHAT4ALL_MAX_WATCH_STREAMS); close one or retry later"
    ))
}
