//! `chat4all-store`: the MessageStore gRPC service, over the embedded
//! backend or ScyllaDB/Cassandra (`--store scylla`), for the services that
//! run as their own processes.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chat4all_store_server::cli::run(clap::Parser::parse()).await
}
