//! A platform simulator: a real HTTP server speaking the platforms' own
//! APIs (the WhatsApp Business Cloud API for now) and sending their signed
//! webhooks back, so adapters are tested over the wire against the shapes in
//! `platform-apis.md`, rough edges included, on a machine with no internet.
//!
//! # Layout
//! - [`config`]: what it pretends to be and the [`Switches`] of its
//!   misbehaviour.
//! - `state`: the record of calls, the switches and webhook targets, and the
//!   [`SimulatorHandle`] that reads and changes them at run time.
//! - `webhooks` and [`signing`]: posting signed webhooks with retries,
//!   shared by every platform.
//! - `graph`: Meta Graph API answers, shared by the Meta platforms.
//! - `faults`: the switches' mechanics, one decision every platform's send
//!   endpoint takes (fail? how slowly? webhooks in which order, twice?).
//! - `meta_messaging`: the Send API and `messaging` webhooks Messenger and
//!   Instagram share; `messenger` and `instagram` are its two flavours,
//!   told apart by access token on the one path they share.
//! - `telegram` (the Bot API) and `chotot` (chat-api over a seeded
//!   marketplace): the other two platforms, each a module of its own.
//! - `whatsapp`: the WhatsApp endpoints and payloads. Another platform is a
//!   module beside it, a route table entry in [`Simulator::bind`], and an
//!   entry in [`PLATFORMS`].
//!
//! Besides the platform APIs: `GET /health`, `GET /_simulator/received?platform=whatsapp`
//! (the calls received, as JSON), `GET /_simulator/stats` (every platform's
//! exact counts: sends, webhooks and receipts accepted and given up on) and
//! `POST /_simulator/inbound` (a platform user writes a message).

pub mod args;
mod chotot;
pub mod cli;
pub mod config;
mod faults;
mod graph;
mod instagram;
mod messenger;
mod meta_messaging;
pub mod signing;
mod state;
mod telegram;
mod webhooks;
mod whatsapp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{
    BurstCycle, ChototSimConfig, Fraction, InjectedFailure, MetaMessagingSimConfig, SimulatorConfig,
    Switches, TelegramSimConfig, WhatsAppSimConfig,
};
pub use state::{PLATFORMS, PlatformStats, ReceivedSend, SimulatorError, SimulatorHandle};
pub use webhooks::DeliveryError;

/// A simulator whose listener is open, ready to [`run`](Self::run).
#[derive(Debug)]
pub struct Simulator {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    handle: SimulatorHandle,
}

impl Simulator {
    /// Opens the listener and builds every platform's routes.
    pub async fn bind(config: SimulatorConfig) -> anyhow::Result<Simulator> {
        let shared = Arc::new(state::Shared::new(&config)?);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let router = Router::new()
            .merge(whatsapp::routes())
            .merge(meta_messaging::routes())
            .merge(telegram::routes())
            .merge(chotot::routes())
            .route("/health", get(health))
            .route("/_simulator/received", get(received))
            .route("/_simulator/inbound", post(inbound))
            .route("/_simulator/stats", get(stats))
            .with_state(Arc::clone(&shared));
        tracing::info!(%local_addr, platforms = ?PLATFORMS, "simulator listening");
        Ok(Simulator {
            listener,
            local_addr,
            router,
            handle: SimulatorHandle { shared },
        })
    }

    /// Where the platforms' APIs are served.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL of the APIs (`http://127.0.0.1:PORT`), for an adapter's
    /// `api_base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Reads and changes the simulator while it runs.
    pub fn handle(&self) -> SimulatorHandle {
        self.handle.clone()
    }

    /// Serves until `shutdown` fires; pending webhooks are abandoned.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = self.handle.shared.stop.clone();
        let result = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.cancelled().await;
                stop.cancel();
            })
            .await
            .context("the simulator's server failed");
        self.handle.shared.stop.cancel();
        tracing::info!("simulator stopped");
        result
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "healthy"}))
}

async fn received(
    State(shared): State<Arc<state::Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let handle = SimulatorHandle { shared };
    let platforms: Vec<&str> = match query.get("platform") {
        Some(p) if PLATFORMS.contains(&p.as_str()) => vec![p.as_str()],
        Some(p) => {
            let error = SimulatorError::UnknownPlatform {
                name: p.chars().take(64).collect(),
            };
            return (StatusCode::NOT_FOUND, Json(json!({"error": error.to_string()}))).into_response();
        }
        None => PLATFORMS.to_vec(),
    };
    let sends: Vec<ReceivedSend> = platforms.iter().flat_map(|p| handle.received(p)).collect();
    Json(json!({"count": sends.len(), "sends": sends})).into_response()
}

/// Every platform's counts, exact however many sends were recorded.
async fn stats(State(shared): State<Arc<state::Shared>>) -> Json<serde_json::Value> {
    let handle = SimulatorHandle { shared };
    let stats: serde_json::Map<String, serde_json::Value> = PLATFORMS
        .iter()
        .filter_map(|p| Some(((*p).to_owned(), serde_json::to_value(handle.stats(p).ok()?).ok()?)))
        .collect();
    Json(serde_json::Value::Object(stats))
}

#[derive(Debug, Deserialize)]
struct InboundRequest {
    platform: String,
    from: String,
    #[serde(default)]
    name: String,
    text: String,
}

async fn inbound(State(shared): State<Arc<state::Shared>>, Json(request): Json<InboundRequest>) -> Response {
    let handle = SimulatorHandle { shared };
    match handle
        .inbound_text(&request.platform, &request.from, &request.name, &request.text)
        .await
    {
        Ok(id) => Json(json!({"id": id})).into_response(),
        Err(e) => {
            let status = match e {
                SimulatorError::UnknownPlatform { .. } => StatusCode::NOT_FOUND,
                SimulatorError::NoWebhookTarget { .. } => StatusCode::CONFLICT,
                SimulatorError::Webhook { .. } => StatusCode::BAD_GATEWAY,
            };
            (status, Json(json!({"error": e.to_string()}))).into_response()
        }
    }
}
