//! The router's loop guard holds with N replicas only if partition *i* of
//! `messages` and of `inbound` belong to the same member. Two members of
//! one group, configured as every service's are, subscribed to two topics
//! of equal partition count, against librdkafka's mock cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chat4all_kafka::consumer::group_member_config;
use chat4all_kafka::mock::MockKafka;
use rdkafka::consumer::{BaseConsumer, Consumer};

const PARTITIONS: i32 = 6;

fn partitions_of(consumer: &BaseConsumer, topic: &str) -> BTreeSet<i32> {
    consumer
        .assignment()
        .unwrap()
        .elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect()
}

#[test]
fn each_member_owns_the_same_partitions_of_both_topics() {
    let kafka = MockKafka::start(1).unwrap();
    let topics = ["messages".to_owned(), "inbound".to_owned()];
    kafka.create_topics(&topics, PARTITIONS).unwrap();
    let args = kafka.args();
    let members: Vec<BaseConsumer> = (0..2)
        .map(|_| {
            let c: BaseConsumer = group_member_config(&args, "router").create().unwrap();
            c.subscribe(&["messages", "inbound"]).unwrap();
            c
        })
        .collect();

    // Until the group settled: every partition of both topics owned once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for member in &members {
            let _ = member.poll(Duration::from_millis(50));
        }
        let owned: usize = members
            .iter()
            .map(|m| partitions_of(m, "messages").len() + partitions_of(m, "inbound").len())
            .sum();
        let both_have_some = members.iter().all(|m| !partitions_of(m, "messages").is_empty());
        if owned == 2 * PARTITIONS as usize && both_have_some {
            break;
        }
        assert!(Instant::now() < deadline, "the group did not settle");
    }
    for member in &members {
        let (messages, inbound) = (
            partitions_of(member, "messages"),
            partitions_of(member, "inbound"),
        );
        assert_eq!(messages, inbound, "partition i of both topics goes to one member");
        assert_eq!(messages.len(), PARTITIONS as usize / 2, "shared evenly");
    }
}
