//! A producer that a partition stops acking for the stall limit counts as
//! failed for good, and is replaced in place; against librdkafka's mock
//! broker refusing its writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_kafka::{KafkaArgs, Producer, RecordHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

#[tokio::test(flavor = "current_thread")]
async fn a_partition_acking_nothing_for_the_stall_limit_gets_the_producer_replaced() {
    // The cluster handle is not Send: it stays on this one thread.
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("events", 2, 1).unwrap();
    let args = KafkaArgs {
        stall_secs: 1,
        ..KafkaArgs::new(cluster.bootstrap_servers())
    };
    let producer = Producer::new(&args, "stall-test").unwrap();
    let headers = RecordHeaders::default();
    producer.send("events", "k", b"first", &headers).await.unwrap();
    assert_eq!(
        producer.renew_if_failed().unwrap(),
        None,
        "a healthy producer is kept"
    );

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
    assert_eq!(producer.failed(), None, "one failure is not a stall");
    assert_eq!(producer.renew_if_failed().unwrap(), None);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        producer
            .send("events", "k", b"refused again", &headers)
            .await
            .is_err()
    );
    let failed = producer.failed().expect("a stalled partition fails the producer");
    assert!(failed.starts_with("events/"), "{failed}");
    assert!(failed.contains("acked no record for 1s"), "{failed}");

    // Replaced: the new producer starts with a clean slate and sends, and
    // every clone of the handle uses it.
    let clone = producer.clone();
    assert_eq!(
        producer.renew_if_failed().unwrap().as_deref(),
        Some(failed.as_str())
    );
    assert_eq!(producer.failed(), None);
    clone.send("events", "k", b"accepted", &headers).await.unwrap();
    assert_eq!(producer.renew_if_failed().unwrap(), None, "renewed once only");
}
