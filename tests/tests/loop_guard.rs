//! The storm the loop guard exists to stop: for 30 seconds the platform
//! echoes everything we send back as a fresh user message (new ids, so no
//! de-duplication can see it), and a bot of ours answers every user
//! message. Without the guard that is an endless ping-pong; with it the
//! count stays bounded, the guard trips, and other conversations carry on.
//!
//! Alone in its file, so its process's metrics are its own.

use std::time::{Duration, Instant};

use chat4all_proto::v1::{self as pb, CreateChannelRequest};
use chat4all_tests::{TestSystem, send_request, wait_for};

const STORM: Duration = Duration::from_secs(30);
const CHAT: &str = "555000";

fn metric(rendered: &str, name: &str) -> f64 {
    rendered
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_echo_storm_is_held_by_the_loop_guard_and_other_channels_carry_on() {
    let metrics = chat4all_telemetry::metrics_handle();
    let t = TestSystem::start().await.unwrap();
    let sim = t.system.simulator.clone();
    let mut client = t.client().await.unwrap();
    let channel = client
        .create_channel(CreateChannelRequest {
            channel: Some(pb::Channel {
                vendor: Some(pb::ChannelVendor {
                    name: "telegram".into(),
                    channel_id: CHAT.into(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .channel
        .unwrap();
    let started = Instant::now();

    // The adversarial platform: every message we send to the chat comes
    // back as a new user message.
    let mirror = tokio::spawn({
        let sim = sim.clone();
        async move {
            let mut echoed = 0;
            while started.elapsed() < STORM {
                let sent: Vec<_> = sim
                    .received("telegram")
                    .into_iter()
                    .filter(|r| r.to == CHAT && r.http_status == 200)
                    .collect();
                for send in sent.iter().skip(echoed) {
                    let _ = sim.inbound_text("telegram", CHAT, "Echo", &send.text).await;
                }
                echoed = sent.len();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    // Our bot: answers every user message of the channel.
    let bot = tokio::spawn({
        let mut client = t.client().await.unwrap();
        let conversation = channel.id.clone();
        async move {
            let mut events = client
                .watch_messages(chat4all_tests::watch_conversation(conversation.clone()))
                .await
                .unwrap()
                .into_inner();
            let mut replies = 0;
            while let Ok(Ok(Some(event))) = tokio::time::timeout(STORM, events.message()).await {
                let Some(message) = event.message.filter(|m| m.source == "vendor:telegram") else {
                    continue;
                };
                if started.elapsed() >= STORM {
                    break;
                }
                let reply = send_request(&conversation, &format!("re: {}", message.text), "");
                if client.send_message(reply).await.is_ok() {
                    replies += 1;
                }
            }
            replies
        }
    });

    sim.inbound_text("telegram", CHAT, "Ann", "hello bot")
        .await
        .unwrap();

    // Meanwhile another conversation is served as usual.
    let mut tripped = false;
    let mut other = Vec::new();
    while started.elapsed() < STORM {
        let req = send_request(
            "whatsapp:15559990000",
            &format!("business as usual {}", other.len()),
            "",
        );
        other.push(client.send_message(req).await.unwrap().into_inner().message_id);
        tripped |= metric(&metrics.render(), "chat4all_loop_guard_held_conversations") >= 1.0;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    mirror.await.unwrap();
    let replies = bot.await.unwrap();

    let sends = sim
        .received("telegram")
        .into_iter()
        .filter(|r| r.to == CHAT && r.http_status == 200)
        .count();
    // The guard allows 20 bounces per 10 s window, about half of them our
    // sends; after it trips, nothing more goes out for a minute.
    assert!(sends <= 20, "{sends} sends reached the platform in the storm");
    assert!(sends >= 3, "the ping-pong did start ({sends} sends)");
    assert!(
        replies > sends,
        "replies after the trip were held, not sent ({replies} replies, {sends} sent)"
    );
    assert!(tripped, "the held-conversations gauge showed the guard holding");
    assert!(metric(&metrics.render(), "chat4all_loop_guard_trips_total") >= 1.0);

    for id in &other {
        let m = wait_for(&mut client, id, pb::DeliveryStatus::Read, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(
            m.status,
            pb::DeliveryStatus::Read as i32,
            "the other conversation was delivered: {m:?}"
        );
    }
    t.system.stop().await.unwrap();
}
