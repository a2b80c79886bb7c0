//! `chat4all-chotot`: the Chotot adapter as its own process, beside a
//! connector sidecar in the Chotot connector pod.

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    chat4all_chotot::cli::run(clap::Parser::parse()).await
}
