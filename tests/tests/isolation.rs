//! The failure the product exists to contain: WhatsApp answers 429 and then
//! 500 while Instagram, under the same load, keeps delivering; afterwards
//! every WhatsApp message is delivered exactly once, and the WhatsApp
//! breaker has opened and closed again. The outage ends when the test says
//! so, not on a clock, so a slow machine cannot make it pass or fail.
//!
//! Alone in its file, so its process's metrics are its own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat4all_proto::v1::{self as pb, GetMessageRequest};
use chat4all_simulator::InjectedFailure;
use chat4all_tests::{TestSystem, send_and_wait, send_request, wait_for};

const PER_PLATFORM: usize = 60;

fn breaker_state(rendered: &str, platform: &str) -> Option<f64> {
    let prefix = format!("chat4all_breaker_state{{platform=\"{platform}\"}} ");
    rendered
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whatsapp_outage_stays_in_whatsapps_pod() {
    let metrics = chat4all_telemetry::metrics_handle();
    let t = TestSystem::start().await.unwrap();
    let sim = t.system.simulator.clone();
    let mut client = t.client().await.unwrap();

    // Both pipelines warm (consumer groups joined) before the trouble starts.
    for recipient in ["whatsapp:15550000001", "instagram:17841400000000001"] {
        let m = send_and_wait(
            &mut client,
            recipient,
            "warm-up",
            pb::DeliveryStatus::Read,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!(m.status, pb::DeliveryStatus::Read as i32, "{m:?}");
    }

    sim.fail_next(
        "whatsapp",
        u32::MAX,
        InjectedFailure::rate_limited(Duration::from_secs(1)),
    )
    .unwrap();
    // The same load on both, 10 messages a second each; halfway through,
    // WhatsApp's 429s turn into 500s.
    let mut ids: HashMap<&str, Vec<String>> = HashMap::new();
    let mut breaker_opened = false;
    for i in 0..PER_PLATFORM {
        if i == PER_PLATFORM / 2 {
            sim.fail_next("whatsapp", u32::MAX, InjectedFailure::server_error())
                .unwrap();
        }
        for (platform, recipient) in [
            ("whatsapp", "whatsapp:15551110000"),
            ("instagram", "instagram:17841400000000002"),
        ] {
            let req = send_request(
                recipient,
                &format!("{platform} {i:03}"),
                &format!("{platform}-load"),
            );
            ids.entry(platform)
                .or_default()
                .push(client.send_message(req).await.unwrap().into_inner().message_id);
        }
        breaker_opened |= breaker_state(&metrics.render(), "whatsapp") == Some(2.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Instagram kept delivering during the outage: every message READ while
    // WhatsApp still fails (it recovers only after this check, so an
    // Instagram held up behind WhatsApp would never get there).
    for id in &ids["instagram"] {
        let m = wait_for(&mut client, id, pb::DeliveryStatus::Read, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(m.status, pb::DeliveryStatus::Read as i32, "{m:?}");
    }
    assert_ne!(breaker_state(&metrics.render(), "instagram"), Some(2.0));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !breaker_opened && Instant::now() < deadline {
        breaker_opened |= breaker_state(&metrics.render(), "whatsapp") == Some(2.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(breaker_opened, "the whatsapp breaker opened during the outage");
    sim.fail_next("whatsapp", 0, InjectedFailure::server_error())
        .unwrap();

    // Afterwards every WhatsApp message is delivered, each by exactly one
    // accepted platform call.
    for id in &ids["whatsapp"] {
        let m = wait_for(&mut client, id, pb::DeliveryStatus::Read, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(m.status, pb::DeliveryStatus::Read as i32, "{m:?}");
    }
    let accepted: Vec<_> = sim
        .received("whatsapp")
        .into_iter()
        .filter(|r| r.http_status == 200)
        .collect();
    for i in 0..PER_PLATFORM {
        let text = format!("whatsapp {i:03}");
        assert_eq!(
            accepted.iter().filter(|r| r.text == text).count(),
            1,
            "{text} accepted once"
        );
    }
    assert!(
        sim.received_count("whatsapp") > accepted.len(),
        "whatsapp did refuse calls during the outage"
    );
    assert_eq!(
        breaker_state(&metrics.render(), "whatsapp"),
        Some(0.0),
        "the breaker closed again"
    );

    let last = client
        .get_message(GetMessageRequest {
            message_id: ids["whatsapp"][PER_PLATFORM - 1].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert!(
        last.history
            .iter()
            .all(|h| h.status != pb::DeliveryStatus::Failed as i32),
        "{last:?}"
    );
    t.system.stop().await.unwrap();
}
