//! `chat4all-telegram`: the Telegram adapter as its own process, beside a
//! connector sidecar in the Telegram connector pod.

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    chat4all_telegram::cli::run(clap::Parser::parse()).await
}
