//! The connector sidecar: the same binary in every connector pod, doing the
//! reliability work once so a platform adapter only knows its platform.
//!
//! - [`outbound`]: consume `<platform>-outbound`, claim each message in the
//!   store (a redelivered record never calls the platform twice), call the
//!   adapter's `Connector.Send` over gRPC with retries ([`retry`]), publish
//!   SENT or FAILED to `status-updates`; offsets are stored only after the
//!   statuses are acked.
//! - [`events`]: follow the adapter's `StreamEvents` and publish receipts to
//!   `status-updates` and user messages to `inbound`, acking each event back
//!   to the adapter once the broker acked it (the adapter answers the
//!   platform's webhook only then); an event not acked is the adapter's to
//!   stream again, so the sidecar holds none of its own.

pub mod breaker;
pub mod cli;
pub mod config;
mod events;
mod limiter;
mod outbound;
pub mod retry;
mod settle;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chat4all_domain::{DeliveryStatus, Platform};
use chat4all_kafka::{AssignmentWatch, ConsumerSettings, KafkaArgs, Producer, ReadyFlag};
use chat4all_proto::v1::{self as pb, connector_client::ConnectorClient};
use chat4all_store::SharedStore;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::breaker::{Breaker, BreakerConfig, BreakerState};

pub use config::SidecarConfig;

/// Runs the sidecar until `shutdown`: finishes the batch in hand, commits,
/// flushes. With `health`, the breaker's state is reported as the service
/// `chat4all.sidecar.<platform>.breaker` (NOT_SERVING while open); the
/// pod's own health stays SERVING, since restarting it would not bring the
/// platform back. `ready` is set once the adapter answered and the
/// sidecar has its partitions.
pub async fn run(
    config: &SidecarConfig,
    kafka: &KafkaArgs,
    store: SharedStore,
    health: Option<HealthReporter>,
    ready: ReadyFlag,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let platform = config.platform;
    register_series(platform);
    let channel: Channel = Endpoint::from_shared(config.connector_addr.clone())
        .context("connector address")?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    let mut connector = ConnectorClient::new(channel);
    let Some(described) = describe(&mut connector, &shutdown).await else {
        return Ok(());
    };
    anyhow::ensure!(
        described.platform == platform.as_str(),
        "the adapter at {} serves {:?}, not {platform}",
        config.connector_addr,
        described.platform
    );
    let documented = described.capabilities.map_or(0.0, |c| c.default_rate_per_second);
    let echoes = described.capabilities.is_some_and(|c| c.send_echoes);
    let rate = config.rate_per_second.unwrap_or(documented);
    let rate = if rate > 0.0 { rate } else { 1.0 };
    let burst = config
        .rate_burst
        .unwrap_or_else(|| (rate / 10.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32);
    tracing::info!(%platform, rate, burst, "sending at most this many a second");
    let limiter = Arc::new(limiter::Limiter::new(platform.as_str(), rate, burst));
    let follower = limiter.clone();
    let breaker = Arc::new(Breaker::new(
        platform.as_str(),
        BreakerConfig {
            failure_threshold: config.breaker_failures.max(1),
            open_for: config.breaker_open,
        },
    ));
    let reporter =
        health.map(|h| tokio::spawn(report_breaker(h, breaker.clone(), platform, shutdown.clone())));

    let topic = platform.outbound_topic();
    let group = config
        .group
        .clone()
        .unwrap_or_else(|| format!("{platform}-sidecar"));
    let mut pump = None;
    let tracer = chat4all_telemetry::spans::tracer(outbound::SERVICE);
    let make = |producer: Producer| {
        let events = events::pump(
            connector.clone(),
            producer.clone(),
            platform,
            tracer.clone(),
            shutdown.clone(),
        );
        pump = Some(tokio::spawn(events));
        outbound::Sender::new(
            config,
            connector.clone(),
            store,
            producer,
            limiter,
            breaker,
            echoes,
            shutdown.clone(),
        )
    };
    let assignment = AssignmentWatch::new();
    let share = tokio::spawn(limiter::follow(
        follower,
        assignment.subscribe(),
        topic.clone(),
        shutdown.clone(),
    ));
    let settings = ConsumerSettings::new(group, &[topic.as_str()])
        .with_ready(ready)
        .with_assignment(assignment);
    let consumed = chat4all_kafka::consume(kafka, settings, make, shutdown.clone())
        .await
        .with_context(|| format!("consuming {topic}"));
    for task in [pump, reporter, Some(share)].into_iter().flatten() {
        let _ = task.await;
    }
    consumed?;
    tracing::info!(%platform, "sidecar stopped");
    Ok(())
}

/// The series an operator alerts on, at 0 before the adapter answers or
/// the first message comes: `increase()` over a series that appears at 1
/// misses its first event.
fn register_series(platform: Platform) {
    let platform = platform.as_str();
    for kind in outbound::FailureKind::ALL {
        metrics::counter!("chat4all_platform_call_failures_total", "platform" => platform, "kind" => kind.as_str())
            .increment(0);
    }
    metrics::counter!("chat4all_platform_retries_total", "platform" => platform).increment(0);
    metrics::counter!("chat4all_rate_limit_waits_total", "platform" => platform).increment(0);
    for to in BreakerState::ALL {
        metrics::counter!("chat4all_breaker_transitions_total", "platform" => platform, "to" => to.as_str())
            .increment(0);
    }
    for status in [DeliveryStatus::Sent, DeliveryStatus::Failed] {
        metrics::counter!("chat4all_sidecar_outcomes_total", "platform" => platform, "status" => status.as_str())
            .increment(0);
    }
    // A histogram registered without a sample shows its zero buckets.
    let _ = metrics::histogram!("chat4all_platform_call_duration_seconds", "platform" => platform);
    let _ = metrics::histogram!("chat4all_rate_limit_wait_seconds", "platform" => platform);
}

/// Asks the adapter what it serves, until it answers or `shutdown`: in a
/// pod the adapter container may start after the sidecar.
async fn describe(
    connector: &mut ConnectorClient<Channel>,
    shutdown: &CancellationToken,
) -> Option<pb::DescribeResponse> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match connector.describe(pb::DescribeRequest {}).await {
            Ok(answer) => return Some(answer.into_inner()),
            Err(status) => tracing::info!(%status, "adapter not answering yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn report_breaker(
    health: HealthReporter,
    breaker: Arc<Breaker>,
    platform: Platform,
    shutdown: CancellationToken,
) {
    let service = format!("chat4all.sidecar.{platform}.breaker");
    let mut last = None;
    loop {
        let state = breaker.state();
        if last != Some(state) {
            let status = if state == BreakerState::Open {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            health.set_service_status(&service, status).await;
            last = Some(state);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}
