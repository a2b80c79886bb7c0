//! How the Scylla backend reaches its cluster and shapes its keyspace: the
//! `--scylla-*` flags (and their `CHAT4ALL_SCYLLA_*` variables), checked
//! before anything connects, and the driver settings built from them.
//!
//! The keyspace and datacenter names end up inside CQL text (a keyspace
//! cannot be a bind marker), so they are checked against what CQL allows
//! rather than quoted.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use scylla::client::execution_profile::{ExecutionProfile, ExecutionProfileHandle};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::statement::{Consistency, SerialConsistency};

use chat4all_store::StoreError;

/// Where the cluster is and how the store uses it.
#[derive(Clone, clap::Args)]
pub struct ScyllaConfig {
    /// Contact points, `host:port`, comma-separated; the driver discovers
    /// the rest of the cluster from them.
    #[arg(
        long = "scylla-nodes",
        env = "CHAT4ALL_SCYLLA_NODES",
        value_delimiter = ',',
        default_value = "127.0.0.1:9042"
    )]
    pub nodes: Vec<String>,
    /// The keyspace holding every table of the store (created if absent).
    #[arg(
        long = "scylla-keyspace",
        env = "CHAT4ALL_SCYLLA_KEYSPACE",
        default_value = "chat4all"
    )]
    pub keyspace: String,
    /// The replication strategy of a keyspace the store creates.
    #[arg(
        long = "scylla-replication",
        env = "CHAT4ALL_SCYLLA_REPLICATION",
        value_enum,
        default_value_t = Replication::Simple
    )]
    pub replication: Replication,
    /// Copies of every row, in a keyspace the store creates (per
    /// datacenter with network-topology).
    #[arg(
        long = "scylla-replication-factor",
        env = "CHAT4ALL_SCYLLA_REPLICATION_FACTOR",
        default_value_t = 1
    )]
    pub replication_factor: u16,
    /// This store's datacenter: requests go to its nodes first, LOCAL_*
    /// consistencies count its replicas, and network-topology replication
    /// places copies there.
    #[arg(long = "scylla-datacenter", env = "CHAT4ALL_SCYLLA_DATACENTER")]
    pub datacenter: Option<String>,
    /// Consistency of reads and plain writes.
    #[arg(
        long = "scylla-consistency",
        env = "CHAT4ALL_SCYLLA_CONSISTENCY",
        value_enum,
        default_value_t = ConsistencyLevel::LocalQuorum
    )]
    pub consistency: ConsistencyLevel,
    /// Consistency of the Paxos round of lightweight transactions.
    #[arg(
        long = "scylla-serial-consistency",
        env = "CHAT4ALL_SCYLLA_SERIAL_CONSISTENCY",
        value_enum,
        default_value_t = SerialLevel::LocalSerial
    )]
    pub serial_consistency: SerialLevel,
    /// User name, when the cluster requires authentication.
    #[arg(long = "scylla-user", env = "CHAT4ALL_SCYLLA_USER", requires = "password")]
    pub user: Option<String>,
    /// Password of `--scylla-user`.
    #[arg(
        long = "scylla-password",
        env = "CHAT4ALL_SCYLLA_PASSWORD",
        hide_env_values = true,
        requires = "user"
    )]
    pub password: Option<String>,
    /// How long a request may take, retries included, before it fails as
    /// unavailable.
    #[arg(
        long = "scylla-request-timeout",
        env = "CHAT4ALL_SCYLLA_REQUEST_TIMEOUT",
        value_parser = humantime::parse_duration,
        default_value = "10s"
    )]
    pub request_timeout: Duration,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:9042".to_owned()],
            keyspace: "chat4all".to_owned(),
            replication: Replication::Simple,
            replication_factor: 1,
            datacenter: None,
            consistency: ConsistencyLevel::LocalQuorum,
            serial_consistency: SerialLevel::LocalSerial,
            user: None,
            password: None,
            request_timeout: Duration::from_secs(10),
        }
    }
}

// By hand, so the password never reaches a log line.
impl fmt::Debug for ScyllaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaConfig")
            .field("nodes", &self.nodes)
            .field("keyspace", &self.keyspace)
            .field("replication", &self.replication)
            .field("replication_factor", &self.replication_factor)
            .field("datacenter", &self.datacenter)
            .field("consistency", &self.consistency)
            .field("serial_consistency", &self.serial_consistency)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// How the store uses its keyspace, beside where it is ([`ScyllaConfig`],
/// all that `chat4all migrate schema` needs).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ScyllaStoreOptions {
    /// How long an idempotency key is remembered (a retry after that is a
    /// new message).
    #[arg(
        long = "scylla-idempotency-ttl",
        env = "CHAT4ALL_SCYLLA_IDEMPOTENCY_TTL",
        value_parser = humantime::parse_duration,
        default_value = "24h"
    )]
    pub idempotency_ttl: Duration,
    /// How far before its deadline the reconciliation look-up searches for
    /// stuck messages; older ones are no longer re-published.
    #[arg(
        long = "scylla-stuck-lookback",
        env = "CHAT4ALL_SCYLLA_STUCK_LOOKBACK",
        value_parser = humantime::parse_duration,
        default_value = "24h"
    )]
    pub stuck_lookback: Duration,
    /// Do not migrate the schema at start-up (`chat4all migrate schema`
    /// does it); refuse to start unless it is already current.
    #[arg(long = "scylla-skip-migrations", env = "CHAT4ALL_SCYLLA_SKIP_MIGRATIONS")]
    pub skip_migrations: bool,
}

impl Default for ScyllaStoreOptions {
    fn default() -> Self {
        Self {
            idempotency_ttl: Duration::from_secs(24 * 3600),
            stuck_lookback: Duration::from_secs(24 * 3600),
            skip_migrations: false,
        }
    }
}

impl ScyllaStoreOptions {
    pub fn validate(&self) -> Result<(), StoreError> {
        for (field, span) in [
            ("scylla-idempotency-ttl", self.idempotency_ttl),
            ("scylla-stuck-lookback", self.stuck_lookback),
        ] {
            if span.is_zero() {
                return Err(StoreError::Invalid {
                    field,
                    reason: "must be longer than zero".to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// How a keyspace the store creates is replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Replication {
    /// `SimpleStrategy`: one datacenter (or a development node).
    Simple,
    /// `NetworkTopologyStrategy` in `--scylla-datacenter`: what production
    /// clusters use, and the only strategy that can grow to more datacenters.
    NetworkTopology,
}

/// The consistency levels that make sense for this store's reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsistencyLevel {
    One,
    LocalOne,
    Quorum,
    LocalQuorum,
    EachQuorum,
    All,
}

impl ConsistencyLevel {
    pub(super) fn to_driver(self) -> Consistency {
        match self {
            ConsistencyLevel::One => Consistency::One,
            ConsistencyLevel::LocalOne => Consistency::LocalOne,
            ConsistencyLevel::Quorum => Consistency::Quorum,
            ConsistencyLevel::LocalQuorum => Consistency::LocalQuorum,
            ConsistencyLevel::EachQuorum => Consistency::EachQuorum,
            ConsistencyLevel::All => Consistency::All,
        }
    }
}

/// The consistency of a lightweight transaction's Paxos round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SerialLevel {
    Serial,
    LocalSerial,
}

impl SerialLevel {
    pub(super) fn to_driver(self) -> SerialConsistency {
        match self {
            SerialLevel::Serial => SerialConsistency::Serial,
            SerialLevel::LocalSerial => SerialConsistency::LocalSerial,
        }
    }

    /// The same level for a plain read that must see every committed
    /// transaction (a read at SERIAL consistency).
    pub(super) fn as_read_consistency(self) -> Consistency {
        match self {
            SerialLevel::Serial => Consistency::Serial,
            SerialLevel::LocalSerial => Consistency::LocalSerial,
        }
    }
}

/// The longest keyspace name Scylla and Cassandra accept.
const MAX_KEYSPACE_LEN: usize = 48;

impl ScyllaConfig {
    /// Refuses what would fail later, or worse, end up in CQL text.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |field, reason: String| Err(StoreError::Invalid { field, reason });
        if self.nodes.iter().all(|n| n.trim().is_empty()) {
            return invalid(
                "scylla-nodes",
                "at least one contact point is required".to_owned(),
            );
        }
        if !is_keyspace_name(&self.keyspace) {
            return invalid(
                "scylla-keyspace",
                format!(
                    "{:?} is not a keyspace name (1 to {MAX_KEYSPACE_LEN} letters, digits or _, \
                     not starting with a digit or _)",
                    self.keyspace
                ),
            );
        }
        if self.replication_factor == 0 {
            return invalid("scylla-replication-factor", "must be at least 1".to_owned());
        }
        match (&self.datacenter, self.replication) {
            (Some(dc), _) if !is_datacenter_name(dc) => {
                return invalid(
                    "scylla-datacenter",
                    format!("{dc:?} is not a datacenter name (letters, digits, _ - .)"),
                );
            }
            (None, Replication::NetworkTopology) => {
                return invalid(
                    "scylla-datacenter",
                    "is required with network-topology replication".to_owned(),
                );
            }
            _ => {}
        }
        if self.request_timeout.is_zero() {
            return invalid("scylla-request-timeout", "must be longer than zero".to_owned());
        }
        Ok(())
    }

    /// The contact points, trimmed, without empty entries (`a:9042,` is
    /// one node, not two).
    pub(super) fn contact_points(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// The `replication` map of `CREATE KEYSPACE`. Only called on a
    /// validated config, so the datacenter is present when needed.
    pub(super) fn replication_map(&self) -> String {
        let factor = self.replication_factor;
        match (self.replication, &self.datacenter) {
            (Replication::NetworkTopology, Some(dc)) => {
                format!("{{'class': 'NetworkTopologyStrategy', '{dc}': {factor}}}")
            }
            _ => format!("{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}"),
        }
    }

    /// The driver's settings for every request: consistency, the Paxos
    /// consistency of transactions, token-aware routing (a request goes
    /// straight to a replica of its partition) within the local datacenter
    /// when one is named.
    pub(super) fn execution_profile(&self) -> ExecutionProfileHandle {
        let mut policy = DefaultPolicy::builder().token_aware(true);
        if let Some(dc) = &self.datacenter {
            // LOCAL_* consistency counts the coordinator's datacenter: a
            // coordinator elsewhere would count the wrong replicas.
            policy = policy.prefer_datacenter(dc.clone()).permit_dc_failover(false);
        }
        let policy: Arc<dyn scylla::policies::load_balancing::LoadBalancingPolicy> = policy.build();
        ExecutionProfile::builder()
            .consistency(self.consistency.to_driver())
            .serial_consistency(Some(self.serial_consistency.to_driver()))
            .load_balancing_policy(policy)
            .request_timeout(Some(self.request_timeout))
            .build()
            .into_handle()
    }
}

/// What CQL takes as an unquoted keyspace name; unquoted names are
/// case-insensitive, so upper case is refused rather than folded silently.
fn is_keyspace_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= MAX_KEYSPACE_LEN
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

fn is_datacenter_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        scylla: ScyllaConfig,
        #[command(flatten)]
        options: ScyllaStoreOptions,
    }

    fn parse_all(args: &[&str]) -> Cli {
        let argv = std::iter::once("test").chain(args.iter().copied());
        Cli::try_parse_from(argv).unwrap()
    }

    fn parse(args: &[&str]) -> ScyllaConfig {
        parse_all(args).scylla
    }

    fn field_of(config: &ScyllaConfig) -> &'static str {
        match config.validate() {
            Err(StoreError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn flags_parse_into_a_valid_config() {
        let config = parse(&[
            "--scylla-nodes",
            "a:9042, b:9042,",
            "--scylla-keyspace",
            "chat4all_test",
            "--scylla-replication",
            "network-topology",
            "--scylla-replication-factor",
            "3",
            "--scylla-datacenter",
            "eu-west.1",
            "--scylla-consistency",
            "quorum",
            "--scylla-serial-consistency",
            "serial",
        ]);
        config.validate().unwrap();
        assert_eq!(config.contact_points(), ["a:9042", "b:9042"]);
        assert_eq!(config.consistency.to_driver(), Consistency::Quorum);
        assert_eq!(config.serial_consistency.to_driver(), SerialConsistency::Serial);
        assert_eq!(
            config.replication_map(),
            "{'class': 'NetworkTopologyStrategy', 'eu-west.1': 3}"
        );
    }

    #[test]
    fn defaults_run_against_one_local_node() {
        let config = parse(&[]);
        config.validate().unwrap();
        assert_eq!(config.contact_points(), ["127.0.0.1:9042"]);
        assert_eq!(config.consistency, ConsistencyLevel::LocalQuorum);
        assert_eq!(config.serial_consistency, SerialLevel::LocalSerial);
        assert_eq!(
            config.replication_map(),
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
        let default = ScyllaConfig::default();
        assert_eq!(format!("{default:?}"), format!("{config:?}"));
        assert_eq!(parse_all(&[]).options, ScyllaStoreOptions::default());
    }

    #[test]
    fn store_options_take_human_durations() {
        let options = parse_all(&[
            "--scylla-idempotency-ttl",
            "2h",
            "--scylla-stuck-lookback",
            "3days",
            "--scylla-skip-migrations",
        ])
        .options;
        options.validate().unwrap();
        assert_eq!(options.idempotency_ttl, Duration::from_secs(7200));
        assert_eq!(options.stuck_lookback, Duration::from_secs(3 * 24 * 3600));
        assert!(options.skip_migrations);
        let zero = ScyllaStoreOptions {
            idempotency_ttl: Duration::ZERO,
            ..Default::default()
        };
        assert!(matches!(
            zero.validate(),
            Err(StoreError::Invalid {
                field: "scylla-idempotency-ttl",
                ..
            })
        ));
    }

    #[test]
    fn what_would_reach_cql_text_is_checked() {
        for bad in ["", "Chat4All", "1abc", "_x", "a-b", "a;DROP", &"k".repeat(49)] {
            let config = ScyllaConfig {
                keyspace: bad.to_owned(),
                ..Default::default()
            };
            assert_eq!(field_of(&config), "scylla-keyspace", "{bad:?}");
        }
        let no_dc = ScyllaConfig {
            replication: Replication::NetworkTopology,
            ..Default::default()
        };
        assert_eq!(field_of(&no_dc), "scylla-datacenter");
        let quoted_dc = ScyllaConfig {
            datacenter: Some("dc1': 9, 'x".to_owned()),
            ..Default::default()
        };
        assert_eq!(field_of(&quoted_dc), "scylla-datacenter");
        let no_nodes = ScyllaConfig {
            nodes: vec![" ".to_owned()],
            ..Default::default()
        };
        assert_eq!(field_of(&no_nodes), "scylla-nodes");
        let zero = ScyllaConfig {
            replication_factor: 0,
            ..Default::default()
        };
        assert_eq!(field_of(&zero), "scylla-replication-factor");
    }

    #[test]
    fn the_password_never_reaches_a_log() {
        let config = ScyllaConfig {
            user: Some("chat4all".to_owned()),
            password: Some("hunter2".to_owned()),
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
