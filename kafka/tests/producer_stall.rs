//! A producer that a partition stops acking for the stall limit counts as
//! failed for good, against librdkafka's mock broker refusing its writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_kafka::{KafkaArgs, Producer, RecordHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

#[tokio::test(flavor = "current_thread")]
async fn a_partition_acking_nothing_for_the_stall_limit_fails_the_producer() {
    // The cluster handle is not Send: it stays on this one thread.
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("events", 2, 1).unwrap();
    let args = KafkaArgs {
        producer_stall_secs: 1,
        ..KafkaArgs::new(cluster.bootstrap_servers())
    };
    let producer = Producer::new(&args, "stall-test").unwrap();
    let headers = RecordHeaders::default();
    producer.send("events", "k", b"first", &headers).await.unwrap();

    // The next two produces refused with an error librdkafka gives up on
    // at once (the record, not the producer).
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE; 2],
    );
    producer
        .send("events", "k", b"refused", &headers)
        .await
        .unwrap_err();
    assert_eq!(producer.fatal_error(), None, "one failure is not a stall");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        producer
            .send("events", "k", b"refused again", &headers)
            .await
            .is_err()
    );
    let fatal = producer
        .fatal_error()
        .expect("a stalled partition fails the producer");
    assert!(fatal.starts_with("events/"), "{fatal}");
    assert!(fatal.contains("acked no record for 1s"), "{fatal}");

    // The broker takes writes again: one ack clears the partition.
    producer.send("events", "k", b"accepted", &headers).await.unwrap();
    assert_eq!(producer.fatal_error(), None);
}
