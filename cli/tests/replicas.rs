//! The production form on one machine: Apache Kafka and Apache Cassandra
//! as their own JVM processes, the store on Cassandra, and two replicas of
//! the gateway, the router, the status-consumer and every platform's
//! sidecar+adapter pair, driven through both gateways by a client that
//! spreads its calls as one behind a Kubernetes Service does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use chat4all::topology::{self, StoreEngine, replica};
use chat4all_domain::Platform;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use support::{PLATFORMS, Stream, TestTopology, WITHIN, wait_final};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_each_service_on_kafka_and_cassandra_lose_nothing_and_send_nothing_twice() {
    let mut t = TestTopology::start(|config| {
        config.store = StoreEngine::Cassandra;
        config.replicas = 2;
    })
    .await;
    let mut stream = Stream::start(t.balanced_client(), "replicas", &PLATFORMS);

    // Every platform's first messages reach their final state, through
    // replicas that share each consumer group's partitions.
    stream.more(50).await;
    let mut client = t.client().await;
    wait_final(&mut client, &stream.snapshot(50).await).await;
    let bootstrap = t.get().kafka.bootstrap.clone();
    let mut groups = vec!["router".to_owned(), "status-consumer".to_owned()];
    groups.extend(Platform::ALL.iter().map(|p| topology::sidecar(*p)));
    for group in &groups {
        assert_shared(&bootstrap, group).await;
    }

    // One replica of each stateless service is SIGKILLed mid-stream: what
    // it held is Kafka's to redeliver (an uncommitted record) or the
    // other gateway's reconciler's to re-publish (an accepted message
    // whose record was never produced).
    for (name, index) in [
        (topology::GATEWAY, 1),
        (topology::ROUTER, 0),
        (topology::STATUS_CONSUMER, 1),
    ] {
        let victim = replica(name, index);
        t.kill(&victim).await;
        stream.more(25).await;
        t.get().start_service(&victim).await.unwrap();
        stream.more(10).await;
    }
    // Each platform's pod, one replica in turn, has its containers
    // restarted one after the other with SIGTERM, as a rolling update of
    // each does it, and each must stop cleanly within its grace period.
    // The sidecar first: it drains its calls through its adapter and gives
    // back the claims it never used. Then the adapter, which finishes the
    // calls in flight and hands its waiting webhook events to its sidecar
    // as it goes; webhooks reaching it while it is down go to the other
    // replica, and its sidecar's calls meanwhile are retried. (In the
    // other order nothing is lost either: a webhook is answered only once
    // its events are in Kafka, so one the stopping adapter could not hand
    // over gets a 503 and is posted again; and a sidecar killed holding
    // claims lets go when their leases run out. That takes a minute and
    // the reconciler's five, so this test keeps the quick order.)
    for (n, platform) in Platform::ALL.into_iter().enumerate() {
        let index = n % 2;
        let adapter = replica(&topology::adapter(platform), index);
        for process in [replica(&topology::sidecar(platform), index), adapter.clone()] {
            if process == adapter {
                // What reached the adapter while its sidecar was away is
                // taken by the sidecar back, before the adapter stops.
                events_taken(&t, &adapter).await;
            }
            let stopped = t.get().stop_service(&process).await.unwrap();
            assert!(stopped.is_clean(), "{process}: {stopped}");
            stream.more(8).await;
            t.get().start_service(&process).await.unwrap();
        }
        stream.more(4).await;
    }

    t.check_stream(stream).await;
    assert!(t.get().take_deaths().is_empty(), "no process may die on its own");
    t.stop().await;
}

/// Waits until `adapter`'s sidecar takes its events and none waits, from
/// the adapter's own gauges.
async fn events_taken(t: &TestTopology, adapter: &str) {
    chat4all_adapter::install_crypto_provider();
    let metrics = t
        .topology
        .as_ref()
        .unwrap()
        .listen_addr(adapter, "metrics")
        .unwrap();
    let deadline = Instant::now() + WITHIN;
    loop {
        let text = reqwest::get(format!("http://{metrics}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let gauge = |name: &str| {
            text.lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        };
        let subscribed = gauge("chat4all_adapter_event_subscribers") == Some(1.0);
        let waiting = gauge("chat4all_adapter_event_queue_depth").unwrap_or(0.0);
        if subscribed && waiting == 0.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{adapter}: subscribed {subscribed}, {waiting} events waiting"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Both replicas of `group` are members, each with partitions of its own.
async fn assert_shared(bootstrap: &str, group: &str) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let members = group_assignments(bootstrap, group).await;
        let with_partitions = members.iter().filter(|&&partitions| partitions > 0).count();
        if with_partitions >= 2 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group}: partitions per member {members:?}, expected two members holding some"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How many partitions each member of `group` holds, from the broker's
/// own description of the group.
async fn group_assignments(bootstrap: &str, group: &str) -> Vec<usize> {
    let (bootstrap, group) = (bootstrap.to_owned(), group.to_owned());
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
        let list = client
            .fetch_group_list(Some(&group), Duration::from_secs(10))
            .unwrap();
        list.groups()
            .iter()
            .flat_map(|g| g.members())
            .map(|m| m.assignment().map_or(0, assigned_partitions))
            .collect()
    })
    .await
    .unwrap()
}

/// The partitions in a classic consumer group's member assignment
/// (Kafka's ConsumerProtocolAssignment: a version, then per topic its name
/// and its partitions).
fn assigned_partitions(bytes: &[u8]) -> usize {
    let mut at = 2; // version
    let read_i32 = |at: &mut usize| -> Option<i32> {
        let v = i32::from_be_bytes(bytes.get(*at..*at + 4)?.try_into().ok()?);
        *at += 4;
        Some(v)
    };
    let Some(topics) = read_i32(&mut at) else {
        return 0;
    };
    let mut partitions = 0;
    for _ in 0..topics.max(0) {
        let Some(name) = bytes.get(at..at + 2) else {
            return partitions;
        };
        at += 2 + usize::from(u16::from_be_bytes([name[0], name[1]]));
        let Some(count) = read_i32(&mut at) else {
            return partitions;
        };
        let count = usize::try_from(count).unwrap_or(0);
        partitions += count;
        at += 4 * count;
    }
    partitions
}
