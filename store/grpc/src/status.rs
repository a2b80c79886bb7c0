//! `StoreError` ⇄ `tonic::Status`, the only place either is turned into the
//! other, so a server's answer means the same thing to every client.
//!
//! A bad request travels as INVALID_ARGUMENT with a `google.rpc.BadRequest`
//! field violation, so the client gets the field back as data, not by
//! parsing a message.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::convert::field;
use chat4all_store::StoreError;

/// What a field violation names when this build does not know the field
/// (a newer server).
const UNKNOWN_FIELD: &str = "request";

pub(super) fn to_status(error: StoreError) -> Status {
    match error {
        StoreError::Unavailable(message) => Status::unavailable(message),
        StoreError::Invalid { field, reason } => Status::with_error_details(
            Code::InvalidArgument,
            format!("invalid {field}: {reason}"),
            ErrorDetails::with_bad_request_violation(field, reason),
        ),
        StoreError::Corrupt(message) => Status::internal(format!("store data corrupt: {message}")),
    }
}

pub(super) fn from_status(status: &Status) -> StoreError {
    match status.code() {
        Code::InvalidArgument => {
            let violation = status
                .get_details_bad_request()
                .and_then(|bad| bad.field_violations.into_iter().next());
            match violation {
                Some(v) => StoreError::Invalid {
                    field: known_field(&v.field),
                    reason: v.description,
                },
                None => StoreError::Invalid {
                    field: UNKNOWN_FIELD,
                    reason: status.message().to_owned(),
                },
            }
        }
        Code::Internal | Code::DataLoss => StoreError::Corrupt(status.message().to_owned()),
        // Everything else, the transport's failures included, is worth a
        // retry or at least not the caller's fault.
        code => StoreError::Unavailable(format!("{code:?}: {}", status.message())),
    }
}

fn known_field(name: &str) -> &'static str {
    field::ALL
        .iter()
        .copied()
        .find(|f| *f == name)
        .unwrap_or(UNKNOWN_FIELD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_survives_the_wire() {
        let errors = [
            StoreError::Unavailable("disk busy".into()),
            StoreError::Invalid {
                field: field::PAGE_TOKEN,
                reason: "not a cursor".into(),
            },
            StoreError::Invalid {
                field: field::UPDATE_STATUS,
                reason: "update 3: 9".into(),
            },
            StoreError::Corrupt("bad status".into()),
        ];
        for error in errors {
            let status = to_status(error.clone());
            let back = from_status(&status);
            match (&error, &back) {
                (StoreError::Invalid { .. }, _) => {
                    assert_eq!(status.code(), Code::InvalidArgument);
                    assert_eq!(back, error);
                }
                (StoreError::Unavailable(m), StoreError::Unavailable(n)) => {
                    assert_eq!(status.code(), Code::Unavailable);
                    assert!(n.contains(m.as_str()), "{n}");
                }
                (StoreError::Corrupt(m), StoreError::Corrupt(n)) => {
                    assert_eq!(status.code(), Code::Internal);
                    assert!(n.contains(m.as_str()), "{n}");
                }
                _ => panic!("{error:?} came back as {back:?}"),
            }
        }
    }

    #[test]
    fn a_field_this_build_does_not_know_is_still_a_bad_request() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "invalid",
            ErrorDetails::with_bad_request_violation("brand_new_field", "nope"),
        );
        assert_eq!(
            from_status(&status),
            StoreError::Invalid {
                field: UNKNOWN_FIELD,
                reason: "nope".into()
            }
        );
        assert!(matches!(
            from_status(&Status::deadline_exceeded("slow")),
            StoreError::Unavailable(_)
        ));
    }
}
