//! `chat4all`: the command line of Chat4All, and the one-machine system.
//!
//! [`system`] composes every service in one process (librdkafka's mock
//! cluster as Kafka, the embedded store, the platform simulator): what
//! `chat4all dev`, the end-to-end tests and the benchmark run. [`client`]
//! holds the `send`, `status` and `watch` commands; [`bench`] the benchmark,
//! [`store_bench`] the store's backends measured side by side.
//! [`services`] runs any one service (`chat4all run <service>`), and
//! [`topology`] runs each service as its own process on a real broker
//! (`chat4all topology`).

pub mod bench;
pub mod client;
pub mod migrate;
pub mod services;
pub mod store_bench;
pub mod system;
pub mod topology;

pub use system::{Ready, System, SystemConfig, Webhook};
pub use topology::{Topology, TopologyConfig};
