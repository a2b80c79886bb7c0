//! `chat4all-router`: routes accepted messages to their platform's topic.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chat4all_router::cli::run(clap::Parser::parse()).await
}
