//! `chat4all-whatsapp`: the WhatsApp adapter as its own process, beside a
//! connector sidecar in the WhatsApp connector pod.

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    chat4all_whatsapp::cli::run(clap::Parser::parse()).await
}
