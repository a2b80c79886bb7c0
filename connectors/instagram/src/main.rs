//! `chat4all-instagram`: the Instagram adapter as its own process, beside a
//! connector sidecar in the Instagram connector pod.

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    chat4all_instagram::cli::run(clap::Parser::parse()).await
}
