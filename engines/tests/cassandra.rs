//! A real Cassandra node: it starts, answers CQL on the port it was given,
//! and is gone, directory and all, once stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use chat4all_engines::{Cassandra, Stopped};

#[test]
fn a_node_starts_answers_cql_and_stops_cleanly() {
    let started = Instant::now();
    let mut node = Cassandra::default()
        .start_temporary()
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "Cassandra {} on {} answered CQL after {:?} ({:?} with the jars' look-up), java {}",
        node.version(),
        node.contact_point(),
        node.started_in(),
        started.elapsed(),
        node.java().display()
    );
    assert!(node.version().starts_with("5.0."), "{}", node.version());
    assert!(node.contact_point().ip().is_loopback());
    assert!(std::net::TcpStream::connect(node.contact_point()).is_ok());
    let log = node.log_tail(400);
    assert!(log.contains("Starting listening for CQL clients"), "{log}");
    let dir = node.dir().to_owned();
    assert!(dir.join("data").is_dir(), "its files are in its directory");

    let stopping = Instant::now();
    let stopped = node.stop();
    eprintln!("stopped ({stopped:?}) in {:?}", stopping.elapsed());
    assert!(matches!(stopped, Stopped::Exited(_)), "{stopped:?}");
    assert!(std::net::TcpStream::connect(node.contact_point()).is_err());
    assert!(!dir.exists(), "a temporary node's directory goes with it");
}
