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
    /// How long a consumer's fetch may wait for data on the broker. A real
    /// broker answers as soon as data arrives, so this only bounds idle
    /// polling; librdkafka's mock broker always waits it out, so the
    /// one-machine mode sets it to 1 ms.
    #[arg(
        long = "kafka-fetch-wait-ms",
        env = "CHAT4ALL_KAFKA_FETCH_WAIT_MS",
        default_value_t = 100
    )]
    pub fetch_wait_ms: u32,
    /// How long a librdkafka client may be stuck before it is replaced: a
    /// producer whose partition fails every record, with none acked, or a
    /// consumer whose assigned partition has no leader while a broker is
    /// up. librdkafka stays in some states forever (an idempotent producer
    /// whose id a broker that came back empty no longer knows; a consumer
    /// that ignores a recreated topic's lower leader epoch); only a new
    /// client gets out of them.
    #[arg(
        long = "kafka-stall-secs",
        env = "CHAT4ALL_KAFKA_STALL_SECS",
        default_value_t = 60
    )]
    pub stall_secs: u64,
}

impl KafkaArgs {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            fetch_wait_ms: 100,
            stall_secs: 60,
        }
    }

    /// The settings of every consumer.
    pub(crate) fn consumer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = self.client_config(client_id);
        config.set("fetch.wait.max.ms", self.fetch_wait_ms.to_string());
        config
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
