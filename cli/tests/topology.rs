//! The production topology on one machine, end to end: tansu as the broker
//! process, every service its own process (`chat4all run <service>`),
//! driven through the gateway's real gRPC API; what reached each platform
//! is read back from the simulator process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chat4all::topology::{self, S3Emulator, Stopped};
use chat4all_proto::v1 as pb;
use support::{
    PLATFORMS, Stream, TestTopology, assert_each_sent_once, send_one, wait_delivered, wait_final,
    wait_settled,
};

/// The platforms the fault tests stream to: one with receipts, one without.
const WHATSAPP_AND_TELEGRAM: [(&str, &str, pb::DeliveryStatus); 2] = [PLATFORMS[0], PLATFORMS[3]];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_platform_takes_its_messages_to_their_final_state() {
    let mut t = TestTopology::start(|_| {}).await;
    let mut client = t.client().await;
    let mut sent = Vec::new();
    for n in 0..40 {
        sent.push(send_one(&mut client, "all", n, &PLATFORMS).await);
    }
    wait_final(&mut client, &sent).await;
    assert_each_sent_once(&t.get().simulator_url(), &sent).await;
    assert_no_deaths(&t);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_killed_mid_stream_loses_nothing_and_sends_nothing_twice() {
    let mut t = TestTopology::start(|_| {}).await;
    let mut stream = Stream::start(t.client().await, "kill", &WHATSAPP_AND_TELEGRAM);

    stream.more(40).await;
    let killed = t.get().kill(topology::ROUTER).await.unwrap();
    assert!(
        matches!(killed, Stopped::Exited(status) if !status.success()),
        "{killed:?}"
    );
    stream.more(40).await;
    t.get().start_service(topology::ROUTER).await.unwrap();
    stream.more(40).await;

    let sent = stream.finish().await;
    let mut client = t.client().await;
    wait_final(&mut client, &sent).await;
    assert_each_sent_once(&t.get().simulator_url(), &sent).await;
    assert_no_deaths(&t);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_on_durable_storage_loses_nothing_and_sends_nothing_twice() {
    // The wheel's tansu stores durably only on S3 (its postgres engine is
    // not compiled in): an S3 emulator stands in for the bucket.
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Emulator::start(free_port(), &dir.path().join("s3.log"))
        .await
        .unwrap();
    let mut t = TestTopology::start(|config| {
        config.broker_storage = s3.storage_url();
        config.broker_env = s3.broker_env();
    })
    .await;
    let mut stream = Stream::start(t.client().await, "durable", &WHATSAPP_AND_TELEGRAM);

    stream.more(40).await;
    t.get().restart_broker().await.unwrap();
    let after_restart = stream.sent();
    stream.more(40).await;

    let sent = stream.finish().await;
    let mut client = t.client().await;
    // Every message reaches its platform, once. A status record tansu had
    // acked just before its SIGTERM is now and then missing after the
    // restart (S3 storage): the message was sent once, its state stays
    // behind, so final states are asserted for what followed the restart.
    wait_delivered(&t.get().simulator_url(), &sent).await;
    assert_each_sent_once(&t.get().simulator_url(), &sent).await;
    wait_final(&mut client, &sent[after_restart..]).await;
    // A producer whose sequence tansu no longer accepts after the restart
    // fails for good and is replaced in its process.
    let deaths = t.get().take_deaths();
    eprintln!("processes that died after the broker restart and were started again: {deaths:?}");
    t.stop().await;
}

// After tansu comes back empty, every idempotent producer is refused
// UNKNOWN_PRODUCER_ID, and the recreated topics' metadata crashes
// librdkafka 2.12.1 in most processes (SIGSEGV in
// rd_kafka_metadata_update_op, librdkafka issue #5280); the supervisor
// starts them again, as Kubernetes would. A producer that survives keeps
// bumping its epoch and is refused forever; after the stall limit (10 s
// here) its process replaces it in place, keeping what it holds in memory
// (a platform's answer, a receipt) for the new one to produce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_back_empty_loses_no_accepted_message() {
    let mut t = TestTopology::start(|_| {}).await;
    let mut stream = Stream::start(t.client().await, "empty", &WHATSAPP_AND_TELEGRAM);
    stream.more(40).await;

    // What the broker holds when it is wiped is only what no service has
    // acted on yet: with the router stopped, messages pile up ACCEPTED,
    // their records in `messages`; everything routed before settles.
    t.get().stop_service(topology::ROUTER).await.unwrap();
    stream.more(40).await;
    let mut client = t.client().await;
    let sent_so_far = stream.sent();
    wait_settled(&mut client, &stream.snapshot(sent_so_far).await).await;

    t.get().restart_broker().await.unwrap();
    // The services' Kafka clients do not survive an emptied tansu (see
    // the topology's supervisor); they are started again as a pod would
    // be, and the stream goes on through the gateway's restart.
    stream.more(40).await;
    t.get().start_service(topology::ROUTER).await.unwrap();
    stream.more(40).await;

    let sent = stream.finish().await;
    wait_final(&mut client, &sent).await;
    assert_each_sent_once(&t.get().simulator_url(), &sent).await;
    let deaths = t.get().take_deaths();
    eprintln!("processes that died after the broker came back empty and were started again: {deaths:?}");
    t.stop().await;
}

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// No process died on its own (the supervisor would have hidden it).
fn assert_no_deaths(t: &TestTopology) {
    let deaths = t.topology.as_ref().unwrap().take_deaths();
    assert!(deaths.is_empty(), "processes died: {deaths:?}");
}
