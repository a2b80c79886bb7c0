use rdkafka::ClientConfig;

/// How to reach Kafka; shared by every service's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, `host:port,...`.
    #[arg(
        long = "kafka-bootstrap",
        env = "CHAT4ALL_KAFKA_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
}

impl KafkaArgs {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
        }
    }

    pub(crate) fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", client_id)
            // librdkafka's default logs go to stderr as plain text; ours are
            // JSON through tracing, errors surface through the API.
            .set("log_level", "3");
        config
    }
}
