//! `chat4all-messenger`: the Messenger adapter as its own process, beside a
//! connector sidecar in the Messenger connector pod.

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    chat4all_messenger::cli::run(clap::Parser::parse()).await
}
