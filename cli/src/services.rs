//! `chat4all run <service>`: any service from this one binary, with the
//! same flags and environment as its own binary (`chat4all run router …`
//! is `chat4all-router …`). The topology starts every process this way.

use std::process::ExitCode;

/// The services, by the name `chat4all run` takes.
// Parsed once per process and consumed at once: the size is of no matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub enum Service {
    /// The MessageStore gRPC service over the embedded backend.
    Store(chat4all_store_server::cli::Cli),
    /// The public gRPC API.
    ApiGateway(chat4all_api_gateway::cli::Cli),
    /// Routes accepted messages to their platform's topic.
    Router(chat4all_router::cli::Cli),
    /// Applies delivery-status updates to the store.
    StatusConsumer(chat4all_status_consumer::cli::Cli),
    /// The reliability half of a connector pod.
    ConnectorSidecar(chat4all_connector_sidecar::cli::Cli),
    /// The WhatsApp adapter.
    Whatsapp(chat4all_whatsapp::cli::Cli),
    /// The Messenger adapter.
    Messenger(chat4all_messenger::cli::Cli),
    /// The Instagram adapter.
    Instagram(chat4all_instagram::cli::Cli),
    /// The Telegram adapter.
    Telegram(chat4all_telegram::cli::Cli),
    /// The Chotot adapter.
    Chotot(chat4all_chotot::cli::Cli),
    /// The platforms' APIs, for the adapters to call and to receive
    /// webhooks from.
    Simulator(chat4all_simulator::cli::Cli),
}

/// Runs the service until SIGTERM or SIGINT.
pub async fn run(service: Service) -> anyhow::Result<ExitCode> {
    let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    match service {
        Service::Store(cli) => done(chat4all_store_server::cli::run(cli).await),
        Service::ApiGateway(cli) => done(chat4all_api_gateway::cli::run(cli).await),
        Service::Router(cli) => done(chat4all_router::cli::run(cli).await),
        Service::StatusConsumer(cli) => done(chat4all_status_consumer::cli::run(cli).await),
        Service::ConnectorSidecar(cli) => done(chat4all_connector_sidecar::cli::run(cli).await),
        Service::Whatsapp(cli) => chat4all_whatsapp::cli::run(cli).await,
        Service::Messenger(cli) => chat4all_messenger::cli::run(cli).await,
        Service::Instagram(cli) => chat4all_instagram::cli::run(cli).await,
        Service::Telegram(cli) => chat4all_telegram::cli::run(cli).await,
        Service::Chotot(cli) => chat4all_chotot::cli::run(cli).await,
        Service::Simulator(cli) => done(chat4all_simulator::cli::run(cli).await),
    }
}
