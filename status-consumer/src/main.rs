//! `chat4all-status-consumer`: applies delivery-status updates to the store.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chat4all_status_consumer::cli::run(clap::Parser::parse()).await
}
