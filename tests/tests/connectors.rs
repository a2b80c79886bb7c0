//! The connector sidecar's handling of what a platform or a producer gets
//! wrong, end to end through the gRPC API and Kafka.

use std::time::{Duration, Instant};

use chat4all_proto::v1 as pb;
use chat4all_tests::{TestSystem, send_and_wait, send_request, wait_for};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_permanent_refusal_fails_at_once_without_a_retry() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();
    // The simulator refuses recipients starting 999 with 131026 (undeliverable).
    let req = send_request("whatsapp:9990001112", "to nobody", "");
    let id = client.send_message(req).await.unwrap().into_inner().message_id;
    let m = wait_for(
        &mut client,
        &id,
        pb::DeliveryStatus::Failed,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(m.status, pb::DeliveryStatus::Failed as i32, "{m:?}");
    let failure = m.failure.unwrap();
    assert_eq!(failure.code, "131026", "{failure:?}");
    assert!(!failure.reason.is_empty());
    let sent = m
        .timeline
        .iter()
        .find(|s| s.status == pb::DeliveryStatus::Routed as i32)
        .unwrap()
        .at
        .unwrap();
    let failed = m
        .timeline
        .iter()
        .find(|s| s.status == pb::DeliveryStatus::Failed as i32)
        .unwrap()
        .at
        .unwrap();
    assert!(
        failed.seconds - sent.seconds <= 1,
        "failed fast: {sent:?} → {failed:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = t.system.simulator.received("whatsapp");
    assert_eq!(
        calls.iter().filter(|c| c.text == "to nobody").count(),
        1,
        "no retry: {calls:?}"
    );
    t.system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_record_lands_in_the_dead_letter_topic_and_the_consumer_goes_on() {
    let t = TestSystem::start().await.unwrap();
    let bootstrap = t.system.kafka.bootstrap.clone();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to("whatsapp-outbound")
                .key("poison")
                .payload(&b"\xff\xffnot protobuf"[..]),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();

    // The sidecar goes on: a message sent after the poison is delivered.
    let mut client = t.client().await.unwrap();
    let m = send_and_wait(
        &mut client,
        "whatsapp:15551234567",
        "after the poison",
        pb::DeliveryStatus::Read,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(m.status, pb::DeliveryStatus::Read as i32, "{m:?}");

    // The poison is on the dead-letter topic, with the reason.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "dlq-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..8 {
        assignment
            .add_partition_offset("whatsapp-outbound.dlq", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let dead = loop {
        assert!(Instant::now() < deadline, "no dead letter arrived");
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await else {
            continue;
        };
        let reason = m.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == "dlq-reason")
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        });
        break (
            m.key().map(<[u8]>::to_vec),
            m.payload().map(<[u8]>::to_vec),
            reason,
        );
    };
    assert_eq!(dead.0.as_deref(), Some(&b"poison"[..]));
    assert_eq!(dead.1.as_deref(), Some(&b"\xff\xffnot protobuf"[..]));
    assert!(
        dead.2.as_deref().is_some_and(|r| r.contains("OutboundMessage")),
        "{:?}",
        dead.2
    );
    t.system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_platform_takes_its_messages_to_its_own_final_state() {
    let t = TestSystem::start().await.unwrap();
    let mut client = t.client().await.unwrap();
    // Receipts where the platform has them; Telegram and Chotot have none,
    // so their messages end at SENT.
    let cases = [
        ("whatsapp:15551234567", pb::DeliveryStatus::Read),
        ("messenger:24000000000000001", pb::DeliveryStatus::Read),
        ("instagram:17841400000000009", pb::DeliveryStatus::Read),
        ("telegram:123456789", pb::DeliveryStatus::Sent),
        ("chotot:ch-1001", pb::DeliveryStatus::Sent),
    ];
    let mut sent = Vec::new();
    for (recipient, _) in cases {
        let req = send_request(recipient, &format!("hello {recipient}"), "");
        sent.push(client.send_message(req).await.unwrap().into_inner().message_id);
    }
    for ((recipient, final_state), id) in cases.iter().zip(&sent) {
        let m = wait_for(&mut client, id, *final_state, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(m.status, *final_state as i32, "{recipient}: {m:?}");
        assert!(!m.platform_message_id.is_empty(), "{recipient}: {m:?}");
        let platform = recipient.split(':').next().unwrap();
        let calls = t.system.simulator.received(platform);
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.text == format!("hello {recipient}"))
                .count(),
            1,
            "{recipient}"
        );
    }
    // Instagram has read receipts only: no DELIVERED state is ever reported.
    let instagram = wait_for(
        &mut client,
        &sent[2],
        pb::DeliveryStatus::Read,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(
        instagram
            .history
            .iter()
            .all(|h| h.status != pb::DeliveryStatus::Delivered as i32),
        "{instagram:?}"
    );
    // Telegram never moves past SENT, even given time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let telegram = wait_for(
        &mut client,
        &sent[3],
        pb::DeliveryStatus::Sent,
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(telegram.status, pb::DeliveryStatus::Sent as i32);
    t.system.stop().await.unwrap();
}
