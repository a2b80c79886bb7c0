//! The simulator's shared misbehaviour switches and its Meta messaging
//! endpoint, over the wire: a real client calling the send endpoints and a
//! real HTTP receiver standing in for the adapters' webhooks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chat4all_simulator::{
    BurstCycle, InjectedFailure, MetaMessagingSimConfig, Simulator, SimulatorConfig, SimulatorHandle,
    WhatsAppSimConfig,
};
use serde_json::{Value, json};
use tokio_util::sync::{CancellationToken, DropGuard};

const WA_TOKEN: &str = "chat4all-dev-access-token";
const PAGE_TOKEN: &str = "chat4all-dev-page-access-token";
const IG_TOKEN: &str = "chat4all-dev-instagram-access-token";

type Hooks = Arc<Mutex<Vec<(Instant, Value)>>>;

async fn receive(State(hooks): State<Hooks>, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    hooks.lock().unwrap().push((Instant::now(), body));
    StatusCode::OK
}

struct Setup {
    base: String,
    sim: SimulatorHandle,
    hooks: Hooks,
    http: reqwest::Client,
    _shutdown: DropGuard,
}

async fn setup(receipt_delay: Duration) -> Setup {
    let shutdown = CancellationToken::new();
    let hooks = Hooks::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/webhook", post(receive))
        .with_state(Arc::clone(&hooks));
    tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future(),
    );
    let simulator = Simulator::bind(SimulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        whatsapp: WhatsAppSimConfig {
            webhook_url: Some(url.clone()),
            receipt_delay,
            ..WhatsAppSimConfig::default()
        },
        messenger: MetaMessagingSimConfig {
            webhook_url: Some(url.clone()),
            receipt_delay,
            ..MetaMessagingSimConfig::messenger()
        },
        instagram: MetaMessagingSimConfig {
            webhook_url: Some(url),
            receipt_delay,
            ..MetaMessagingSimConfig::instagram()
        },
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let base = simulator.base_url();
    let sim = simulator.handle();
    tokio::spawn(simulator.run(shutdown.clone()));
    let _ = rustls::crypto::ring::default_provider().install_default();
    Setup {
        base,
        sim,
        hooks,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
        _shutdown: shutdown.drop_guard(),
    }
}

impl Setup {
    async fn whatsapp(&self, to: &str) -> (u16, Option<String>) {
        let body = json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "x"}});
        let response = self
            .http
            .post(format!("{}/v21.0/100000000000001/messages", self.base))
            .bearer_auth(WA_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status().as_u16(), retry_after)
    }

    async fn meta(&self, token: &str, to: &str) -> (u16, Value) {
        let body = json!({"recipient": {"id": to}, "messaging_type": "RESPONSE",
                          "message": {"text": "hi", "metadata": "{\"m\":\"ours\"}"}});
        let response = self
            .http
            .post(format!("{}/v21.0/me/messages?access_token={token}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn hooks(&self, n: usize) -> Vec<(Instant, Value)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let hooks = self.hooks.lock().unwrap().clone();
            if hooks.len() >= n || Instant::now() > deadline {
                return hooks;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn wa_status(hook: &Value) -> &str {
    hook["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]
        .as_str()
        .unwrap_or("")
}

fn event(hook: &Value) -> &Value {
    &hook["entry"][0]["messaging"][0]
}

#[tokio::test]
async fn an_error_rate_of_one_fails_every_send_and_a_seed_repeats_a_fraction() {
    let s = setup(Duration::from_millis(1)).await;
    s.sim.set_receipts("whatsapp", false).unwrap();
    s.sim
        .set_error_rate("whatsapp", 1.0, InjectedFailure::server_error())
        .unwrap();
    for _ in 0..5 {
        assert_eq!(s.whatsapp("15551234567").await.0, 500);
    }
    let mut runs = Vec::new();
    for _ in 0..2 {
        s.sim.seed("whatsapp", 42).unwrap();
        s.sim
            .set_error_rate("whatsapp", 0.5, InjectedFailure::server_error())
            .unwrap();
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(s.whatsapp("15551234567").await.0);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1], "the same seed, the same failures");
    let failed = runs[0].iter().filter(|s| **s == 500).count();
    assert!((3..=17).contains(&failed), "about half fail: {failed}");
    s.sim
        .set_error_rate("whatsapp", 0.0, InjectedFailure::server_error())
        .unwrap();
    assert_eq!(s.whatsapp("15551234567").await.0, 200);
}

#[tokio::test]
async fn a_burst_answers_429_until_its_window_ends() {
    let s = setup(Duration::from_millis(1)).await;
    s.sim.set_receipts("whatsapp", false).unwrap();
    s.sim
        .burst(
            "whatsapp",
            Duration::from_millis(300),
            InjectedFailure::rate_limited(Duration::from_secs(2)),
        )
        .unwrap();
    for _ in 0..3 {
        assert_eq!(s.whatsapp("15551234567").await, (429, Some("2".to_owned())));
    }
    // The burst comes before the failing-recipient check too.
    assert_eq!(s.whatsapp("9990000").await.0, 429);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(s.whatsapp("15551234567").await, (200, None));
    assert_eq!(s.sim.received_count("whatsapp"), 5, "every call is recorded");
}

#[tokio::test]
async fn duplicate_webhooks_come_twice_the_second_after_the_delay() {
    let s = setup(Duration::from_millis(1)).await;
    s.sim
        .set_duplicate_webhooks("messenger", Some(Duration::from_millis(150)))
        .unwrap();
    let started = Instant::now();
    s.sim
        .inbound_text("messenger", "24680", "", "twice")
        .await
        .unwrap();
    let hooks = s.hooks(2).await;
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0].1, hooks[1].1, "the same event");
    assert!(hooks[1].0.duration_since(started) >= Duration::from_millis(150));
    assert_eq!(event(&hooks[0].1)["message"]["text"], "twice");
}

#[tokio::test]
async fn out_of_order_receipts_come_newest_first() {
    let s = setup(Duration::from_millis(2)).await;
    s.sim.set_out_of_order("whatsapp", true).unwrap();
    assert_eq!(s.whatsapp("15551234567").await.0, 200);
    let hooks = s.hooks(3).await;
    let statuses: Vec<&str> = hooks.iter().map(|(_, h)| wa_status(h)).collect();
    assert_eq!(statuses, ["read", "delivered", "sent"]);
}

#[tokio::test]
async fn the_echo_can_come_before_the_answer() {
    let s = setup(Duration::from_millis(300)).await;
    // Normally the answer comes first: the webhooks wait for the delay.
    assert_eq!(s.meta(PAGE_TOKEN, "24680").await.0, 200);
    assert!(s.hooks.lock().unwrap().is_empty(), "nothing before the answer");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    s.hooks.lock().unwrap().clear();

    s.sim.set_echo_before_response("messenger", true).unwrap();
    let (status, answer) = s.meta(PAGE_TOKEN, "24680").await;
    assert_eq!(status, 200);
    let hooks = s.hooks.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1, "the echo was accepted before the answer");
    let echo = event(&hooks[0].1);
    assert_eq!(echo["message"]["is_echo"], true);
    assert_eq!(echo["message"]["mid"], answer["message_id"]);
}

#[tokio::test]
async fn a_held_answer_comes_late_but_the_platform_acted_at_once() {
    let s = setup(Duration::from_millis(1)).await;
    s.sim
        .set_timeout("instagram", Some(Duration::from_millis(300)))
        .unwrap();
    let started = Instant::now();
    assert_eq!(s.meta(IG_TOKEN, "13579").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let hooks = s.hooks(2).await;
    assert!(
        hooks[0].0.duration_since(started) < Duration::from_millis(300),
        "webhooks did not wait"
    );
}

#[tokio::test]
async fn a_timeout_rate_acts_on_the_send_and_never_answers_it() {
    let s = setup(Duration::from_millis(1)).await;
    s.sim.set_timeout_rate("whatsapp", 1.0).unwrap();
    let call = tokio::time::timeout(Duration::from_millis(500), s.whatsapp("15551234567")).await;
    assert!(call.is_err(), "answered: {call:?}");
    // The platform acted: the send is recorded and its receipts come.
    let hooks = s.hooks(3).await;
    let statuses: Vec<&str> = hooks.iter().map(|(_, h)| wa_status(h)).collect();
    assert_eq!(statuses, ["sent", "delivered", "read"]);
    let stats = s.sim.stats("whatsapp").unwrap();
    assert_eq!(
        (stats.sends, stats.receipts_delivered, stats.receipts_failed),
        (1, 3, 0)
    );
    s.sim.set_timeout_rate("whatsapp", 0.0).unwrap();
    assert_eq!(s.whatsapp("15551234567").await.0, 200);
}

#[tokio::test]
async fn a_burst_cycle_answers_429_for_its_length_out_of_every_period() {
    let cycle = BurstCycle {
        every: Duration::from_secs(10),
        length: Duration::from_secs(1),
    };
    assert!(cycle.bursting(Duration::from_millis(500)));
    assert!(!cycle.bursting(Duration::from_millis(1500)));
    assert!(cycle.bursting(Duration::from_millis(20_200)));
    assert!(
        !BurstCycle {
            every: Duration::ZERO,
            ..cycle
        }
        .bursting(Duration::ZERO)
    );

    let s = setup(Duration::from_millis(1)).await;
    s.sim.set_receipts("whatsapp", false).unwrap();
    // From the simulator's start, so a long cycle's first burst is now.
    s.sim.set_burst_cycle("whatsapp", Some(cycle)).unwrap();
    assert_eq!(s.whatsapp("15551234567").await, (429, Some("1".to_owned())));
    s.sim.set_burst_cycle("whatsapp", None).unwrap();
    assert_eq!(s.whatsapp("15551234567").await.0, 200);
}

#[tokio::test]
async fn messenger_and_instagram_share_the_path_and_differ_in_webhooks() {
    let s = setup(Duration::from_millis(2)).await;
    s.sim.set_delivery_mids("messenger", 1.0).unwrap();
    let (status, answer) = s.meta("wrong", "24680").await;
    assert_eq!((status, answer["error"]["code"].as_i64()), (401, Some(190)));

    let (status, answer) = s.meta(PAGE_TOKEN, "24680").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["recipient_id"], "24680");
    let mid = answer["message_id"].as_str().unwrap().to_owned();
    assert!(mid.starts_with("m_"));
    let hooks = s.hooks(3).await;
    assert_eq!(hooks.len(), 3);
    assert!(hooks.iter().all(|(_, h)| h["object"] == "page"));
    let echo = event(&hooks[0].1);
    assert_eq!(
        (echo["sender"]["id"].as_str(), echo["recipient"]["id"].as_str()),
        (Some("100000000000010"), Some("24680"))
    );
    assert_eq!(echo["message"]["metadata"], "{\"m\":\"ours\"}");
    let delivery = &event(&hooks[1].1)["delivery"];
    assert_eq!(delivery["mids"], json!([mid]));
    assert_eq!(delivery["watermark"], echo["timestamp"]);
    assert_eq!(event(&hooks[2].1)["read"]["watermark"], echo["timestamp"]);
    assert_eq!(
        s.sim.received("messenger")[0].opaque.as_deref(),
        Some("{\"m\":\"ours\"}")
    );

    s.hooks.lock().unwrap().clear();
    let (status, answer) = s.meta(IG_TOKEN, "13579").await;
    assert_eq!(status, 200);
    let hooks = s.hooks(2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.hooks.lock().unwrap().len(), 2, "echo and read, no delivery");
    assert!(hooks.iter().all(|(_, h)| h["object"] == "instagram"));
    assert_eq!(event(&hooks[1].1)["read"], json!({"mid": answer["message_id"]}));
    assert_eq!(
        (
            s.sim.received_count("messenger"),
            s.sim.received_count("instagram")
        ),
        (1, 1)
    );

    let (status, answer) = s.meta(PAGE_TOKEN, "9991234").await;
    assert_eq!((status, answer["error"]["code"].as_i64()), (400, Some(551)));
}
