//! `chat4all-simulator`: the platforms' APIs on one machine, for the
//! adapters to call and to receive webhooks from.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chat4all_simulator::cli::run(clap::Parser::parse()).await
}
