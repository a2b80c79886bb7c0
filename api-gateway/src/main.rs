//! `chat4all-api-gateway`: the public gRPC API alone, against a Kafka
//! cluster and a MessageStore service.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chat4all_api_gateway::cli::run(clap::Parser::parse()).await
}
