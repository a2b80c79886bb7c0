//! The simulator over the wire: a real client calling its WhatsApp send
//! endpoint, and a real HTTP receiver standing in for an adapter's webhook.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chat4all_simulator::signing::hmac_sha256_hex;
use chat4all_simulator::{InjectedFailure, Simulator, SimulatorConfig, SimulatorHandle, WhatsAppSimConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-token";
const SECRET: &str = "test-secret";
const PHONE: &str = "106540352242922";

#[derive(Default)]
struct Receiver {
    hooks: Mutex<Vec<(HeaderMap, Bytes)>>,
    /// Statuses to answer before answering 200.
    refuse: Mutex<VecDeque<u16>>,
}

async fn receive(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Some(status) = receiver.refuse.lock().unwrap().pop_front() {
        return StatusCode::from_u16(status).unwrap();
    }
    receiver.hooks.lock().unwrap().push((headers, body));
    StatusCode::OK
}

struct Setup {
    base: String,
    handle: SimulatorHandle,
    receiver: Arc<Receiver>,
    http: reqwest::Client,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn setup() -> Setup {
    setup_with(SimulatorConfig::default().max_recorded).await
}

async fn setup_with(max_recorded: usize) -> Setup {
    let shutdown = CancellationToken::new();
    let receiver = Arc::new(Receiver::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/webhook", post(receive))
        .with_state(Arc::clone(&receiver));
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
    });

    let config = SimulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        whatsapp: WhatsAppSimConfig {
            access_token: TOKEN.into(),
            app_secret: SECRET.into(),
            phone_number_id: PHONE.into(),
            webhook_url: Some(hook_url),
            receipt_delay: Duration::from_millis(2),
            ..WhatsAppSimConfig::default()
        },
        max_recorded,
        ..SimulatorConfig::default()
    };
    let simulator = Simulator::bind(config).await.unwrap();
    let base = simulator.base_url();
    let handle = simulator.handle();
    tokio::spawn(simulator.run(shutdown.clone()));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    Setup {
        base,
        handle,
        receiver,
        http,
        _shutdown: shutdown.drop_guard(),
    }
}

fn text_body(to: &str, text: &str) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text",
           "text": {"body": text, "preview_url": false}, "biz_opaque_callback_data": "ours-1"})
}

impl Setup {
    async fn send(&self, token: &str, body: &Value) -> (u16, HeaderMap, Value) {
        let response = self
            .http
            .post(format!("{}/v21.0/{PHONE}/messages", self.base))
            .bearer_auth(token)
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap_or(Value::Null))
    }

    async fn hooks(&self, n: usize) -> Vec<(HeaderMap, Value)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let hooks = self.receiver.hooks.lock().unwrap().clone();
            if hooks.len() >= n || Instant::now() > deadline {
                return hooks
                    .into_iter()
                    .map(|(h, b)| (h, serde_json::from_slice(&b).unwrap()))
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The simulator counts a webhook once the adapter's answer is back,
    /// which can be a moment after the receiver recorded its body.
    async fn posted(&self, expected: (usize, usize)) -> (usize, usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let posted = self.handle.webhooks_posted("whatsapp");
            if posted == expected || Instant::now() > deadline {
                return posted;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test]
async fn accepts_a_text_and_posts_signed_receipts_in_order() {
    let s = setup().await;
    let (status, _, answer) = s.send(TOKEN, &text_body("+15551234567", "hello")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["messaging_product"], "whatsapp");
    assert_eq!(
        answer["contacts"][0],
        json!({"input": "+15551234567", "wa_id": "15551234567"})
    );
    let wamid = answer["messages"][0]["id"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid."), "{wamid}");

    let received = s.handle.received("whatsapp");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, "+15551234567");
    assert_eq!(received[0].text, "hello");
    assert_eq!(received[0].opaque.as_deref(), Some("ours-1"));
    assert_eq!(
        received[0].traceparent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(received[0].platform_message_id.as_deref(), Some(wamid.as_str()));

    // Read the raw bytes to check the signature over exactly what was sent.
    let hooks = s.hooks(3).await;
    assert_eq!(hooks.len(), 3);
    let raw = s.receiver.hooks.lock().unwrap().clone();
    for (headers, body) in &raw {
        let signature = headers["x-hub-signature-256"].to_str().unwrap();
        assert_eq!(
            signature,
            format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), body))
        );
    }
    let statuses: Vec<&str> = hooks
        .iter()
        .map(|(_, b)| {
            b["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(statuses, ["sent", "delivered", "read"]);
    for (_, body) in &hooks {
        assert_eq!(body["object"], "whatsapp_business_account");
        let value = &body["entry"][0]["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], PHONE);
        let status = &value["statuses"][0];
        assert_eq!(status["id"], wamid.as_str());
        assert_eq!(status["recipient_id"], "15551234567");
        assert_eq!(status["biz_opaque_callback_data"], "ours-1");
        let ts: u64 = status["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(ts > 1_700_000_000, "unix seconds: {ts}");
    }
    assert_eq!(s.posted((3, 0)).await, (3, 0));
}

#[tokio::test]
async fn refuses_like_the_graph_api() {
    let s = setup().await;
    let (status, _, answer) = s.send("wrong", &text_body("15551234567", "x")).await;
    assert_eq!((status, answer["error"]["code"].as_i64()), (401, Some(190)));
    assert_eq!(answer["error"]["type"], "OAuthException");
    assert!(answer["error"]["fbtrace_id"].is_string());

    let (status, _, answer) = s.send(TOKEN, &text_body("15551234567", &"x".repeat(4097))).await;
    assert_eq!((status, answer["error"]["code"].as_i64()), (400, Some(100)));
    assert!(answer["error"]["message"].as_str().unwrap().starts_with("(#100)"));
    let (status, _, answer) = s.send(TOKEN, &text_body("15551234567", &"x".repeat(4096))).await;
    assert_eq!(status, 200, "{answer}");

    let wrong_phone = s
        .http
        .post(format!("{}/v21.0/1/messages", s.base))
        .bearer_auth(TOKEN)
        .json(&text_body("15551234567", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_phone.status().as_u16(), 400);

    let (status, _, answer) = s.send(TOKEN, &text_body("9995550000", "x")).await;
    assert_eq!((status, answer["error"]["code"].as_i64()), (400, Some(131_026)));
    assert!(answer["error"]["error_data"]["details"].is_string());

    // Every call is recorded with what it was answered.
    let statuses: Vec<u16> = s
        .handle
        .received("whatsapp")
        .iter()
        .map(|r| r.http_status)
        .collect();
    assert_eq!(statuses, [401, 400, 200, 400, 400]);
}

#[tokio::test]
async fn switches_inject_failures_latency_and_silence() {
    let s = setup().await;
    s.handle
        .fail_next(
            "whatsapp",
            2,
            InjectedFailure::rate_limited(Duration::from_secs(7)),
        )
        .unwrap();
    for _ in 0..2 {
        let (status, headers, answer) = s.send(TOKEN, &text_body("15551234567", "x")).await;
        assert_eq!((status, answer["error"]["code"].as_i64()), (429, Some(130_429)));
        assert_eq!(headers["retry-after"], "7");
    }
    s.handle
        .fail_next("whatsapp", 1, InjectedFailure::server_error())
        .unwrap();
    assert_eq!(s.send(TOKEN, &text_body("15551234567", "x")).await.0, 500);
    assert_eq!(s.send(TOKEN, &text_body("15551234567", "x")).await.0, 200);

    s.handle
        .set_failing_recipients("whatsapp", vec!["1555".into()])
        .unwrap();
    assert_eq!(s.send(TOKEN, &text_body("15551234567", "x")).await.0, 400);
    assert_eq!(s.send(TOKEN, &text_body("9995550000", "x")).await.0, 200);
    assert_eq!(s.handle.received_count("whatsapp"), 6);

    s.handle
        .set_latency("whatsapp", Duration::from_millis(200))
        .unwrap();
    let started = Instant::now();
    assert_eq!(s.send(TOKEN, &text_body("4470000000", "slow")).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));

    assert!(
        s.handle.set_receipts("nope", false).is_err(),
        "unknown platforms are refused"
    );
}

#[tokio::test]
async fn receipts_off_means_no_webhooks() {
    let s = setup().await;
    s.handle.set_receipts("whatsapp", false).unwrap();
    assert_eq!(s.send(TOKEN, &text_body("15551234567", "quiet")).await.0, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(s.receiver.hooks.lock().unwrap().is_empty());
    assert_eq!(s.handle.webhooks_posted("whatsapp"), (0, 0));
}

#[tokio::test]
async fn webhooks_are_retried_until_accepted() {
    let s = setup().await;
    s.receiver.refuse.lock().unwrap().extend([503, 500]);
    let id = s
        .handle
        .inbound_text("whatsapp", "16315551234", "Kerry", "hi there")
        .await
        .unwrap();
    let hooks = s.hooks(1).await;
    assert_eq!(hooks.len(), 1);
    let value = &hooks[0].1["entry"][0]["changes"][0]["value"];
    assert_eq!(
        value["contacts"][0],
        json!({"profile": {"name": "Kerry"}, "wa_id": "16315551234"})
    );
    let message = &value["messages"][0];
    assert_eq!(
        (message["id"].as_str(), message["type"].as_str()),
        (Some(id.as_str()), Some("text"))
    );
    assert_eq!(
        (message["from"].as_str(), message["text"]["body"].as_str()),
        (Some("16315551234"), Some("hi there"))
    );
    assert_eq!(s.posted((1, 0)).await, (1, 0));

    // A single raw post is not retried and reports what the adapter said.
    s.receiver.refuse.lock().unwrap().push_back(403);
    assert_eq!(
        s.handle.post_webhook("whatsapp", b"{}".to_vec()).await.unwrap(),
        403
    );
}

#[tokio::test]
async fn http_endpoints_report_health_and_received_sends() {
    let s = setup().await;
    s.handle.set_receipts("whatsapp", false).unwrap();
    s.send(TOKEN, &text_body("15551234567", "one")).await;
    let health: Value = s
        .http
        .get(format!("{}/health", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "healthy"}));
    let received: Value = s
        .http
        .get(format!("{}/_simulator/received?platform=whatsapp", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(received["count"], 1);
    assert_eq!(received["sends"][0]["text"], "one");
    assert_eq!(received["sends"][0]["body"]["type"], "text");
    let unknown = s
        .http
        .get(format!("{}/_simulator/received?platform=fax", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);

    let inbound = s
        .http
        .post(format!("{}/_simulator/inbound", s.base))
        .json(&json!({"platform": "whatsapp", "from": "15550001111", "name": "A", "text": "hey"}))
        .send()
        .await
        .unwrap();
    assert_eq!(inbound.status().as_u16(), 200);
    assert_eq!(s.hooks(1).await.len(), 1);
}

#[tokio::test]
async fn the_record_is_bounded_but_the_count_exact() {
    let s = setup_with(2).await;
    s.handle.set_receipts("whatsapp", false).unwrap();
    for text in ["1", "2", "3"] {
        assert_eq!(s.send(TOKEN, &text_body("15551234567", text)).await.0, 200);
    }
    assert_eq!(s.handle.received_count("whatsapp"), 3);
    let kept: Vec<String> = s
        .handle
        .received("whatsapp")
        .into_iter()
        .map(|r| r.text)
        .collect();
    assert_eq!(kept, ["2", "3"]);
    s.handle.clear_received("whatsapp");
    assert_eq!(s.handle.received_count("whatsapp"), 0);
}
