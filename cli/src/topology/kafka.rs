//! The broker: Apache Kafka in KRaft mode, broker and controller in one
//! JVM, the engine users run in production.
//!
//! Its jars come from Maven Central through the pom in
//! `tests/engines/kafka/`, copied on first use into `target/engines/` and
//! reused after. The broker's directory holds its `server.properties`, a
//! log4j2 config and the log itself; the storage is formatted once, before
//! the first start, and again after [`wipe`](BrokerFiles::wipe) (a broker
//! whose disk was lost).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use super::process::Launch;

/// The broker's jars, named by the pom in the source tree.
const JARS: chat4all_engines::maven::Jars<'static> = chat4all_engines::maven::Jars {
    name: "kafka",
    pom: include_str!("../../../tests/engines/kafka/pom.xml"),
    main_jar: "kafka_2.13-",
};

/// The directory of the broker's jars: `explicit` if given, else the
/// default one under `target/engines/kafka`, filled by Maven first if it
/// is missing or was filled from another pom. Blocking (Maven may run):
/// call it off the async runtime.
pub fn locate_libs(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        anyhow::ensure!(
            has_broker(dir),
            "no Kafka broker jar (kafka_2.13-*.jar) in {}",
            dir.display()
        );
        return Ok(dir.to_owned());
    }
    Ok(JARS.locate()?)
}

fn has_broker(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(JARS.main_jar) && name.ends_with(".jar")
        })
}

/// The `java` to run the broker with: `explicit`, else `$JAVA_HOME/bin/java`,
/// else the one on the PATH.
pub fn java(explicit: Option<&Path>) -> PathBuf {
    if let Some(java) = explicit {
        return java.to_owned();
    }
    std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin/java"))
        .filter(|java| java.is_file())
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// A broker's directory and command line.
#[derive(Debug, Clone)]
pub(crate) struct BrokerFiles {
    java: PathBuf,
    libs: PathBuf,
    heap: String,
    dir: PathBuf,
}

impl BrokerFiles {
    /// Writes the broker's config into `dir`: clients on `kafka`, the
    /// controller quorum (of this one node) on `controller`.
    pub(crate) fn write(
        java: PathBuf,
        libs: PathBuf,
        heap: String,
        dir: &Path,
        kafka: SocketAddr,
        controller: SocketAddr,
        partitions: i32,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = Self {
            java,
            libs,
            heap,
            dir: dir.to_owned(),
        };
        let properties = format!(
            "# Written by chat4all topology: one node, broker and controller.\n\
             process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.bootstrap.servers={controller}\n\
             listeners=PLAINTEXT://{kafka},CONTROLLER://{controller}\n\
             advertised.listeners=PLAINTEXT://{kafka}\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             inter.broker.listener.name=PLAINTEXT\n\
             log.dirs={data}\n\
             num.partitions={partitions}\n\
             # One node: every internal topic has one replica.\n\
             offsets.topic.replication.factor=1\n\
             offsets.topic.num.partitions={partitions}\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             # A group's first member starts at once rather than after 3 s.\n\
             group.initial.rebalance.delay.ms=0\n",
            data = files.data().display(),
        );
        std::fs::write(files.properties(), properties).context("writing server.properties")?;
        // Warnings only: the broker's INFO lines would bury the services'.
        let log4j = "Configuration:\n  Appenders:\n    Console:\n      name: STDOUT\n      \
                     PatternLayout:\n        pattern: \"[%d] %p %m (%c)%n\"\n  Loggers:\n    \
                     Root:\n      level: WARN\n      AppenderRef:\n        - ref: STDOUT\n";
        std::fs::write(files.log4j(), log4j).context("writing the broker's log4j2.yaml")?;
        Ok(files)
    }

    fn properties(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    fn log4j(&self) -> PathBuf {
        self.dir.join("log4j2.yaml")
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn classpath(&self) -> String {
        format!("{}/*", self.libs.display())
    }

    /// Formats the storage unless it was (KRaft refuses to start on an
    /// unformatted log directory). Blocking: call it off the runtime.
    pub(crate) fn format_if_new(&self) -> anyhow::Result<()> {
        if self.data().join("meta.properties").is_file() {
            return Ok(());
        }
        run(Command::new(&self.java)
            .args(self.jvm_options())
            .arg("-cp")
            .arg(self.classpath())
            .args([
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "--ignore-formatted",
            ])
            .arg("--cluster-id")
            .arg(CLUSTER_ID)
            .arg("--config")
            .arg(self.properties()))
        .with_context(|| {
            format!(
                "formatting the Kafka storage in {} (needs Java 17+)",
                self.data().display()
            )
        })
    }

    /// Deletes the log, as a broker whose disk was lost comes back: every
    /// topic, record and committed offset gone. Blocking.
    pub(crate) fn wipe(&self) -> anyhow::Result<()> {
        match std::fs::remove_dir_all(self.data()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("deleting {}", self.data().display())),
        }
        self.format_if_new()
    }

    /// Small and quick to start: a fixed small heap, the serial collector,
    /// and only the first JIT tier (two cores run fifteen processes).
    fn jvm_options(&self) -> Vec<String> {
        vec![
            format!("-Xmx{}", self.heap),
            format!("-Xms{}", self.heap),
            "-XX:+UseSerialGC".to_owned(),
            "-XX:TieredStopAtLevel=1".to_owned(),
            "-Djava.awt.headless=true".to_owned(),
            format!("-Dlog4j2.configurationFile={}", self.log4j().display()),
        ]
    }

    pub(crate) fn launch(&self, log: PathBuf) -> Launch {
        let mut args: Vec<std::ffi::OsString> = self.jvm_options().into_iter().map(Into::into).collect();
        args.push("-cp".into());
        args.push(self.classpath().into());
        args.push("kafka.Kafka".into());
        args.push(self.properties().into_os_string());
        Launch {
            program: self.java.clone(),
            args,
            env: Vec::new(),
            log,
        }
    }
}

/// Any fixed id does: a topology is one cluster, and a wiped broker comes
/// back as the same cluster with an empty log.
const CLUSTER_ID: &str = "Y2hhdDRhbGwtY2x1c3Rlcg";

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
