//! The one error type of the store, shared by every backend and the gRPC
//! edge, so a caller handles a remote store exactly as a local one.

/// Why the store could not answer.
///
/// `Clone` because one failed group commit answers every caller in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Worth a retry: the backend or the network is down or busy.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The caller's mistake (a malformed cursor, say).
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The data on disk is not what this version wrote.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
}
