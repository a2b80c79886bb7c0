//! The kit's own failures: listeners that cannot bind, servers that stop, a
//! client that cannot be built. A platform's refusal of a call is not here:
//! it is a `PlatformError` value the sidecar acts on.

use std::net::SocketAddr;

/// What went wrong while setting up or running an adapter.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("cannot listen for {listener} on {addr}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the gRPC server failed")]
    Grpc(#[source] tonic::transport::Error),
    #[error("cannot build the outbound HTTP client")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot build the gRPC reflection service")]
    Reflection(#[source] tonic_reflection::server::Error),
}
