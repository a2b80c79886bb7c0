//! What can go wrong in the Chotot adapter, and the one place those errors
//! become `tonic::Status` (for the read calls: channel info, history,
//! products). A refused send is not here: it is a `PlatformError` value
//! (see [`crate::client`]), because the sidecar decides whether to retry.
//!
//! The mapping keeps the caller's mistake apart from ours and from the
//! platform's: a missing field is INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` naming it; an unknown channel or user is
//! NOT_FOUND; chat-api refusing our credentials is FAILED_PRECONDITION (the
//! adapter is misconfigured, the caller cannot fix it); 429 is
//! RESOURCE_EXHAUSTED with `google.rpc.RetryInfo`; 5xx and no answer are
//! UNAVAILABLE, which a caller may retry.

use std::time::Duration;

use chat4all_adapter::{AdapterError, InvalidArg};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The Chotot adapter's errors.
#[derive(Debug, thiserror::Error)]
pub enum ChototError {
    #[error("invalid Chotot configuration: {field} {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error("invalid request: {field} {reason}")]
    InvalidRequest {
        field: &'static str,
        reason: &'static str,
    },
    #[error("chat-api refused {operation} with HTTP {http_status} ({code}): {message}")]
    Refused {
        operation: &'static str,
        http_status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("chat-api did not answer {operation}")]
    Unreachable {
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("chat-api's answer to {operation} is not the expected JSON")]
    Unreadable {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl From<InvalidArg> for ChototError {
    fn from(e: InvalidArg) -> Self {
        Self::InvalidConfig {
            field: e.field,
            reason: e.reason.to_owned(),
        }
    }
}

impl From<ChototError> for Status {
    fn from(error: ChototError) -> Self {
        let message = error.to_string();
        match error {
            ChototError::InvalidRequest { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            ChototError::Refused {
                http_status,
                retry_after,
                ..
            } => match http_status {
                400 | 422 => Status::invalid_argument(message),
                401 => Status::failed_precondition(message),
                403 => Status::permission_denied(message),
                404 => Status::not_found(message),
                429 => Status::with_error_details(
                    Code::ResourceExhausted,
                    message,
                    ErrorDetails::with_retry_info(retry_after),
                ),
                408 | 500..=599 => Status::unavailable(message),
                _ => Status::unknown(message),
            },
            ChototError::Unreachable { ref source, .. } => {
                // The URL is left out of the message: walk the causes.
                let mut message = message.clone();
                let mut cause = std::error::Error::source(source);
                while let Some(c) = cause {
                    message.push_str(": ");
                    message.push_str(&c.to_string());
                    cause = c.source();
                }
                if source.is_timeout() {
                    Status::deadline_exceeded(message)
                } else {
                    Status::unavailable(message)
                }
            }
            ChototError::Unreadable { .. } | ChototError::InvalidConfig { .. } | ChototError::Adapter(_) => {
                Status::internal(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(http_status: u16) -> ChototError {
        ChototError::Refused {
            operation: "channel info",
            http_status,
            code: "x".into(),
            message: "no".into(),
            retry_after: Some(Duration::from_secs(3)),
        }
    }

    #[test]
    fn statuses_say_whose_problem_it_is() {
        let code = |e: ChototError| Status::from(e).code();
        assert_eq!(code(refused(404)), Code::NotFound);
        assert_eq!(code(refused(400)), Code::InvalidArgument);
        assert_eq!(code(refused(401)), Code::FailedPrecondition);
        assert_eq!(code(refused(503)), Code::Unavailable);
        let limited = Status::from(refused(429));
        assert_eq!(limited.code(), Code::ResourceExhausted);
        assert_eq!(
            limited
                .get_error_details()
                .retry_info()
                .and_then(|r| r.retry_delay),
            Some(Duration::from_secs(3))
        );
        let missing = Status::from(ChototError::InvalidRequest {
            field: "vendor_channel_id",
            reason: "is required",
        });
        assert_eq!(missing.code(), Code::InvalidArgument);
        let fields: Vec<String> = missing
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["vendor_channel_id"]);
    }
}
