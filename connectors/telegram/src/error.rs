//! What can go wrong in the Telegram adapter itself. A refusal by Telegram
//! is not here: it is a `PlatformError` value (see [`crate::client`]),
//! because the sidecar, not the adapter, decides whether to retry.

use chat4all_adapter::{AdapterError, InvalidArg};

/// The Telegram adapter's errors.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("invalid Telegram configuration: {field} {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error(transparent)]
    Adapter(#[from] AdapterError),
}

impl From<InvalidArg> for TelegramError {
    fn from(e: InvalidArg) -> Self {
        Self::InvalidConfig {
            field: e.field,
            reason: e.reason.to_owned(),
        }
    }
}
