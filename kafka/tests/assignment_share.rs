//! Each member of a group learns its share of the topic's partitions after
//! every rebalance (what a sidecar scales its rate limit by): alone, all of
//! them; with a second member, about half each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat4all_kafka::mock::MockKafka;
use chat4all_kafka::{
    AssignmentWatch, BatchHandler, ConsumerSettings, DeadLetter, HandlerError, Record, Share, consume,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

struct Idle;

impl BatchHandler for Idle {
    async fn handle(&self, _batch: &[Record]) -> Result<Vec<DeadLetter>, HandlerError> {
        Ok(Vec::new())
    }
}

async fn share_becomes(
    shares: &mut watch::Receiver<chat4all_kafka::Assignment>,
    wanted: Share,
) -> Result<(), tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(30), async {
        let _ = shares.wait_for(|a| a.get("outbound") == Some(&wanted)).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_get_half_the_partitions_each() {
    let kafka = MockKafka::start(1).unwrap();
    kafka.create_topics(&["outbound".to_owned()], 4).unwrap();
    let args = kafka.args();
    let shutdown = CancellationToken::new();
    let member = |watch: AssignmentWatch| {
        let settings = ConsumerSettings::new("sidecars", &["outbound"]).with_assignment(watch);
        let (args, shutdown) = (args.clone(), shutdown.clone());
        tokio::spawn(async move { consume(&args, settings, |_| Idle, shutdown).await })
    };
    let (first, second) = (AssignmentWatch::new(), AssignmentWatch::new());
    let mut first_shares = first.subscribe();
    let one = member(first);
    share_becomes(&mut first_shares, Share { owned: 4, total: 4 })
        .await
        .expect("alone, a member owns every partition");

    let mut second_shares = second.subscribe();
    let two = member(second);
    let half = Share { owned: 2, total: 4 };
    share_becomes(&mut second_shares, half)
        .await
        .expect("the newcomer owns half");
    share_becomes(&mut first_shares, half)
        .await
        .expect("the first gave up half");

    shutdown.cancel();
    one.await.unwrap().unwrap();
    two.await.unwrap().unwrap();
}
