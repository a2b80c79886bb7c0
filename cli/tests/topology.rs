//! The production topology on one machine, end to end: Apache Kafka as the
//! broker process, every service its own process (`chat4all run <service>`),
//! driven through the gateway's real gRPC API; what reached each platform
//! is read back from the simulator process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chat4all::topology;
use chat4all_proto::v1 as pb;
use support::{PLATFORMS, Stream, TestTopology, assert_each_sent_once, send_one, wait_final, wait_settled};

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
    t.kill(topology::ROUTER).await;
    stream.more(40).await;
    t.get().start_service(topology::ROUTER).await.unwrap();
    stream.more(40).await;

    t.check_stream(stream).await;
    assert_no_deaths(&t);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_loses_nothing_and_sends_nothing_twice() {
    let mut t = TestTopology::start(|_| {}).await;
    let mut stream = Stream::start(t.client().await, "restart", &WHATSAPP_AND_TELEGRAM);

    stream.more(40).await;
    // SIGTERM: Kafka shuts down in order, its log survives.
    t.get().restart_broker().await.unwrap();
    stream.more(40).await;

    t.check_stream(stream).await;
    report_deaths(&t, "the broker restarted");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_stream_loses_nothing_and_sends_nothing_twice() {
    let mut t = TestTopology::start(|_| {}).await;
    let mut stream = Stream::start(t.client().await, "broker-kill", &WHATSAPP_AND_TELEGRAM);

    stream.more(40).await;
    // SIGKILL: no controlled shutdown; what the broker acked was written
    // to its log (the page cache outlives the process), and it recovers
    // the log on start.
    t.kill(topology::BROKER).await;
    // Messages go on being accepted while the broker is down: the store
    // holds them, the reconciler re-publishes what librdkafka gave up on.
    stream.more(20).await;
    t.get().start_service(topology::BROKER).await.unwrap();
    stream.more(40).await;

    t.check_stream(stream).await;
    report_deaths(&t, "the broker was killed");
    t.stop().await;
}

// After the broker comes back empty, every idempotent producer's id is
// unknown to it, the topics are new (at leader epoch 0, which consumers
// that cached a higher one ignore), and the consumers' positions point
// past the end of the new logs. A producer that keeps failing, and a
// consumer whose partitions stay leaderless, are replaced in their process
// after the stall limit (10 s here), keeping what the service holds in
// memory (a platform's answer, a receipt) for the new one; a process
// whose librdkafka crashes instead (librdkafka issue #5280) is started
// again by the supervisor, as Kubernetes would.
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

    t.get().restart_broker_empty().await.unwrap();
    stream.more(40).await;
    t.get().start_service(topology::ROUTER).await.unwrap();
    stream.more(40).await;

    t.check_stream(stream).await;
    report_deaths(&t, "the broker came back empty");
    t.stop().await;
}

/// Which processes did not survive the broker's incident and were
/// started again (information: the assertions are on the messages).
fn report_deaths(t: &TestTopology, incident: &str) {
    let deaths = t.topology.as_ref().unwrap().take_deaths();
    eprintln!("processes that died after {incident} and were started again: {deaths:?}");
}

/// No process died on its own (the supervisor would have hidden it).
fn assert_no_deaths(t: &TestTopology) {
    let deaths = t.topology.as_ref().unwrap().take_deaths();
    assert!(deaths.is_empty(), "processes died: {deaths:?}");
}
