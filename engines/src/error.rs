//! What can go wrong getting an engine up.

/// Why an engine is not running. Each message says what to do about it,
/// since the reader is usually someone whose test just failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A program the engine needs is not installed.
    #[error("`{tool}` was not found: {how}")]
    Missing { tool: &'static str, how: String },
    /// The machine refused a file or process operation.
    #[error("{context}: {error}")]
    Io { context: String, error: std::io::Error },
    /// A tool ran and failed, or the engine did not come up; the message
    /// carries the tool's output or the end of the engine's log.
    #[error("{0}")]
    Failed(String),
}

impl EngineError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |error| EngineError::Io { context, error }
    }
}
