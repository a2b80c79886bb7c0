//! `chat4all-connector-sidecar`: the reliability half of a connector pod.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chat4all_connector_sidecar::cli::run(clap::Parser::parse()).await
}
