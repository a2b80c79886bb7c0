//! Real engines for tests: third-party servers the production form runs
//! on, fetched from Maven Central and started as child processes.
//!
//! Only what cannot be had in-process lives here. Today that is Apache
//! Cassandra ([`Cassandra`]), the database the store's Scylla backend is
//! tested against: ScyllaDB itself cannot be had on these machines, and
//! the in-process CQL emulator ignores the conditions of lightweight
//! transactions and TTLs, which are exactly what the backend relies on.
//!
//! Nothing here skips: when `java` or `mvn` is missing, or the engine does
//! not come up, the error says which and how to fix it, and the test that
//! asked fails.
//!
//! Every engine runs under a watchdog ([`process`]) so that it never
//! outlives the process that started it, however that process ends.

mod cassandra;
mod error;
mod java;
pub mod maven;
mod process;

pub use cassandra::{Cassandra, RunningCassandra};
pub use error::EngineError;
pub use process::Stopped;
