//! The `chat4all-store` process: the MessageStore gRPC service over the
//! embedded backend or ScyllaDB/Cassandra, for the services that run as
//! their own processes.
//!
//! The one crate of `store/` that composes backends: the backends do not
//! know the server, and the server (`chat4all-store-grpc`) serves whatever
//! [`chat4all_store::SharedStore`] it is given. `chat4all run store` runs
//! the same [`cli::run`].

pub mod cli;
