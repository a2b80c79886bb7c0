//! The one way adapters build their outbound HTTP client: rustls with the
//! ring provider (reqwest's `rustls-no-provider` keeps aws-lc out of the
//! build), and timeouts from configuration so a platform that stops
//! answering costs a bounded wait, which the sidecar then retries.
//!
//! [`send_json`] is the one send call every adapter makes: JSON body,
//! `traceparent` along, and a refusal told apart from no answer.

use std::time::Duration;

use bytes::Bytes;
use chat4all_proto::v1 as pb;
use chat4all_telemetry::TraceContext;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{RequestBuilder, StatusCode};
use serde::Serialize;

use crate::{AdapterError, graph};

tokio::task_local! {
    /// The platform call's trace context, set by the kit around
    /// `PlatformAdapter::send`: adapters pass on the `traceparent` string,
    /// and this keeps the `tracestate` that came with it.
    pub(crate) static CALL_TRACE: TraceContext;
}

/// Sends `body` as JSON on `call` (the platform's URL and credentials
/// already set), with the message's W3C `traceparent` so the platform call
/// joins its trace. A 2xx gives the answer's body, `None` if it could not
/// be read: the platform took the message, so an unreadable answer must not
/// become a retry that sends it twice. Anything else is the platform's
/// refusal as `refusal` reads it, or no answer as the kit's transport error.
pub async fn send_json<B: Serialize + ?Sized>(
    call: RequestBuilder,
    body: &B,
    traceparent: Option<&str>,
    refusal: impl FnOnce(StatusCode, &HeaderMap, &[u8]) -> pb::PlatformError,
) -> Result<Option<Bytes>, pb::PlatformError> {
    let mut call = call.header(CONTENT_TYPE, "application/json").json(body);
    // Written as every other hop writes it; a malformed one is not passed on.
    // The kit's platform-call span, when it is the one named, brings its
    // tracestate along.
    let current = CALL_TRACE.try_with(Clone::clone).ok();
    let trace = match (traceparent, current) {
        (Some(given), Some(current)) if current.to_string() == given => Some(current),
        (given, _) => given.and_then(TraceContext::parse),
    };
    if let Some(trace) = trace {
        let mut headers = HeaderMap::new();
        trace.inject(&mut headers);
        call = call.headers(headers);
    }
    let response = call.send().await.map_err(|e| graph::transport_error(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(|e| graph::transport_error(&e));
    if !status.is_success() {
        return Err(refusal(status, &headers, bytes.as_deref().unwrap_or_default()));
    }
    Ok(bytes.ok())
}

/// Timeouts and identity of the outbound client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// The whole call, connection included.
    pub request_timeout: Duration,
    /// The TCP and TLS connection alone.
    pub connect_timeout: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            user_agent: concat!("chat4all-adapter/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl HttpClientConfig {
    /// The default with the given request timeout; the connection gets at
    /// most as long.
    pub fn with_request_timeout(request_timeout: Duration) -> Self {
        let default = Self::default();
        Self {
            request_timeout,
            connect_timeout: default.connect_timeout.min(request_timeout),
            ..default
        }
    }
}

/// Installs rustls' ring provider as the process default. Idempotent: a
/// provider installed earlier (by us or by another crate) is kept.
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client with the configured timeouts, on rustls with ring.
pub fn build_http_client(config: &HttpClientConfig) -> Result<reqwest::Client, AdapterError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .user_agent(config.user_agent.clone())
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(AdapterError::HttpClient)
}
