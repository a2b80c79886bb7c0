//! What can go wrong in the WhatsApp adapter itself. A refusal by WhatsApp
//! is not here: it is a `PlatformError` value (mapped by the kit's shared
//! Graph rules, [`chat4all_adapter::graph`]), because the sidecar, not the
//! adapter, decides whether to retry.
//!
//! WhatsApp's codes, for reference: 130429 (throughput, 80/s per number by
//! default) and 131056 (one user too often) arrive as HTTP 429 and are
//! RATE_LIMITED; 131026 (undeliverable), 131051 (unsupported type), 131047
//! (outside the 24-hour window) and 100 (invalid parameter) are PERMANENT;
//! 5xx, 131000 and 131016 are TRANSIENT.

use chat4all_adapter::{AdapterError, InvalidArg};

/// The WhatsApp adapter's errors.
#[derive(Debug, thiserror::Error)]
pub enum WhatsAppError {
    #[error("invalid WhatsApp configuration: {field} {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error(transparent)]
    Adapter(#[from] AdapterError),
}

impl From<InvalidArg> for WhatsAppError {
    fn from(e: InvalidArg) -> Self {
        Self::InvalidConfig {
            field: e.field,
            reason: e.reason.to_owned(),
        }
    }
}
