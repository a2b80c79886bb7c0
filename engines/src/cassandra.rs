//! Apache Cassandra: one node on loopback, for tests of the store's
//! Scylla backend against a database that runs lightweight transactions
//! (Paxos) and TTLs for real.
//!
//! The node runs from Maven Central's `cassandra-all` jars (the pom in
//! `tests/engines/cassandra/`), with `CassandraDaemon` in the foreground,
//! a cassandra.yaml of our own (only what a one-node test cluster needs;
//! everything else is Cassandra's default) and the JVM options Cassandra's
//! own `conf/jvm17-server.options` gives for Java 17. Its ports are picked
//! at run time, its files live in one directory, and it counts as started
//! when it answers a CQL OPTIONS request.
//!
//! Start-up takes about 6 s on two cores; most of the options below are
//! there to keep it that short (see [`jvm_options`]).

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::EngineError;
use crate::java::{self, Java};
use crate::maven::{self, Jars};
use crate::process::{Stopped, Supervised, log_tail};

/// The server's jars, as the pom names them.
const JARS: Jars<'static> = Jars {
    name: "cassandra",
    pom: include_str!("../../tests/engines/cassandra/pom.xml"),
    main_jar: "cassandra-all-",
};

/// The Java releases Cassandra 5.0 runs on (it fails at start on 21+).
const SUPPORTED_JAVA: &[u32] = &[11, 17];

/// Names the `java` to run Cassandra with (else JAVA_HOME, else PATH).
pub(crate) const JAVA_VAR: &str = "CHAT4ALL_CASSANDRA_JAVA";
/// Names a directory of Cassandra's jars to use instead of fetching them.
pub(crate) const LIBS_VAR: &str = "CHAT4ALL_CASSANDRA_LIBS";

/// How many times a start is tried again when a port picked for it was
/// taken by someone else before the node bound it.
const PORT_RETRIES: u32 = 3;

/// How to start a node. `Cassandra::default()` is right for tests.
#[derive(Debug, Clone)]
pub struct Cassandra {
    java: Option<PathBuf>,
    libs: Option<PathBuf>,
    heap: String,
    start_timeout: Duration,
    stop_grace: Duration,
}

impl Default for Cassandra {
    fn default() -> Self {
        Self {
            java: std::env::var_os(JAVA_VAR).map(PathBuf::from),
            libs: std::env::var_os(LIBS_VAR).map(PathBuf::from),
            heap: "768m".to_owned(),
            // Generous: a busy two-core CI machine takes several times the
            // usual six seconds.
            start_timeout: Duration::from_secs(120),
            stop_grace: Duration::from_secs(10),
        }
    }
}

impl Cassandra {
    /// The `java` to run the node with.
    pub fn java(mut self, java: impl Into<PathBuf>) -> Self {
        self.java = Some(java.into());
        self
    }

    /// A directory holding Cassandra's jars (and their dependencies), used
    /// as it is instead of fetching them with Maven.
    pub fn libs(mut self, libs: impl Into<PathBuf>) -> Self {
        self.libs = Some(libs.into());
        self
    }

    /// The JVM's largest heap, as `-Xmx` takes it (`768m`).
    pub fn heap(mut self, heap: impl Into<String>) -> Self {
        self.heap = heap.into();
        self
    }

    /// How long the node may take to answer CQL before the start fails.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How long a stopping node may take to shut down cleanly before it
    /// is killed.
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Starts a node whose files (config, data, log) go in `dir`, which is
    /// kept after it stops. Blocking: it returns once the node answers CQL.
    pub fn start(&self, dir: &Path) -> Result<RunningCassandra, EngineError> {
        let install = self.install()?;
        std::fs::create_dir_all(dir).map_err(EngineError::io(format!("creating {}", dir.display())))?;
        self.start_in(&install, dir.to_owned(), false)
    }

    /// Starts a node in a directory of its own under the system's temporary
    /// directory, deleted once the node has ended (also when this process
    /// ends without stopping it). Blocking, as [`start`](Self::start).
    pub fn start_temporary(&self) -> Result<RunningCassandra, EngineError> {
        // First, so that a missing java or mvn leaves no directory behind.
        let install = self.install()?;
        let dir = tempfile::Builder::new()
            .prefix("chat4all-cassandra-")
            .tempdir()
            .map_err(EngineError::io("creating a directory for Cassandra"))?
            // Deleted by us once the node has stopped, or by its watchdog
            // if we end first (see `process`).
            .keep();
        self.start_in(&install, dir, true)
    }

    /// The `java` and the jars to run, fetched first if need be.
    fn install(&self) -> Result<Install, EngineError> {
        let java = java::find(self.java.as_deref(), SUPPORTED_JAVA, "Cassandra 5.0", JAVA_VAR)?;
        let libs = match &self.libs {
            Some(libs) => {
                if maven::find_jar(libs, JARS.main_jar).is_none() {
                    return Err(EngineError::Failed(format!(
                        "no cassandra-all-*.jar in {} (named by {LIBS_VAR} or Cassandra::libs)",
                        libs.display()
                    )));
                }
                libs.clone()
            }
            None => JARS.locate()?,
        };
        let version = maven::find_jar(&libs, JARS.main_jar)
            .and_then(|jar| {
                jar.strip_prefix(JARS.main_jar)
                    .and_then(|v| v.strip_suffix(".jar"))
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        Ok(Install { java, libs, version })
    }

    fn start_in(
        &self,
        install: &Install,
        dir: PathBuf,
        temporary: bool,
    ) -> Result<RunningCassandra, EngineError> {
        let Install { java, libs, version } = install;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_start(java, libs, &dir, temporary, version) {
                Ok(node) => return Ok(node),
                Err(Failure::PortTaken(_)) if attempt < PORT_RETRIES => {
                    // A fresh start: nothing of the failed one is worth keeping.
                    if temporary {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                }
                Err(Failure::PortTaken(why) | Failure::Other(why)) => {
                    if temporary {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    return Err(why);
                }
            }
        }
    }

    fn try_start(
        &self,
        java: &Java,
        libs: &Path,
        dir: &Path,
        temporary: bool,
        version: &str,
    ) -> Result<RunningCassandra, Failure> {
        let files = NodeFiles::new(dir);
        files.create().map_err(Failure::Other)?;
        let ports = free_ports().map_err(|e| Failure::Other(EngineError::io("picking free ports")(e)))?;
        files.write_config(ports).map_err(Failure::Other)?;

        let mut args = jvm_options(&self.heap, &files);
        args.push("-cp".to_owned());
        args.push(format!("{}/*", libs.display()));
        args.push("org.apache.cassandra.service.CassandraDaemon".to_owned());
        let started = Instant::now();
        let remove = temporary.then_some(dir);
        let mut process =
            Supervised::spawn(&java.path, &args, &files.log(), remove).map_err(Failure::Other)?;
        let cql = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.native));
        let deadline = started + self.start_timeout;
        loop {
            if answers_cql(cql) {
                return Ok(RunningCassandra {
                    process,
                    contact_point: cql,
                    dir: dir.to_owned(),
                    temporary,
                    version: version.to_owned(),
                    java: java.clone(),
                    started_in: started.elapsed(),
                    stop_grace: self.stop_grace,
                });
            }
            if let Some(status) = process.exited() {
                let tail = log_tail(&files.log(), 40);
                let why = EngineError::Failed(format!(
                    "Cassandra {version} ({}) exited ({status}) before it answered CQL on {cql}; \
                     the end of {}:\n{tail}",
                    java.path.display(),
                    files.log().display()
                ));
                return Err(if tail.contains("Address already in use") {
                    Failure::PortTaken(why)
                } else {
                    Failure::Other(why)
                });
            }
            if Instant::now() >= deadline {
                let tail = log_tail(&files.log(), 40);
                process.stop(Duration::ZERO);
                return Err(Failure::Other(EngineError::Failed(format!(
                    "Cassandra {version} ({}) did not answer CQL on {cql} within {:?}; the end of {}:\n{tail}",
                    java.path.display(),
                    self.start_timeout,
                    files.log().display(),
                ))));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// What runs a node.
struct Install {
    java: Java,
    libs: PathBuf,
    /// Cassandra's version, from its jar's name.
    version: String,
}

/// Why one start failed: a port race is worth another try, nothing else is.
enum Failure {
    PortTaken(EngineError),
    Other(EngineError),
}

/// A node that answers CQL. Dropping it stops it (see
/// [`stop`](Self::stop)); if it is never dropped (a static), it is killed
/// when this process ends.
#[derive(Debug)]
pub struct RunningCassandra {
    process: Supervised,
    contact_point: SocketAddr,
    dir: PathBuf,
    /// Deleted once the node has stopped.
    temporary: bool,
    version: String,
    java: Java,
    started_in: Duration,
    stop_grace: Duration,
}

impl RunningCassandra {
    /// Where CQL clients connect: `127.0.0.1:<port>`.
    pub fn contact_point(&self) -> SocketAddr {
        self.contact_point
    }

    /// Cassandra's version, from its jar (`5.0.9`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The `java` running the node.
    pub fn java(&self) -> &Path {
        &self.java.path
    }

    /// How long the node took to answer CQL.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The node's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's log (stdout and stderr).
    pub fn log(&self) -> &Path {
        self.process.log()
    }

    /// The last `lines` lines of the node's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(self.process.log(), lines)
    }

    /// Asks the node to shut down (SIGTERM: it drains, which takes a few
    /// seconds) and kills it if it has not within the grace period. Returns
    /// once it is gone (and a temporary directory deleted).
    pub fn stop(&mut self) -> Stopped {
        self.stop_within(self.stop_grace)
    }

    /// Kills the node at once, for when nothing it holds is worth a clean
    /// shutdown.
    pub fn kill(&mut self) -> Stopped {
        self.stop_within(Duration::ZERO)
    }

    fn stop_within(&mut self, grace: Duration) -> Stopped {
        let stopped = self.process.stop(grace);
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        stopped
    }
}

impl Drop for RunningCassandra {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The ports a node listens on.
#[derive(Debug, Clone, Copy)]
struct Ports {
    /// CQL clients.
    native: u16,
    /// Other nodes (gossip): bound even by a node alone.
    storage: u16,
}

/// Two ports nothing listens on now. Held until both are chosen, so they
/// differ; released for the node to bind (a race with another process is
/// possible, and retried by the caller).
fn free_ports() -> std::io::Result<Ports> {
    let native = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let storage = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(Ports {
        native: native.local_addr()?.port(),
        storage: storage.local_addr()?.port(),
    })
}

/// Whether a CQL server answers at `addr`: an OPTIONS request (protocol
/// v4, which Cassandra 3 and later and every Scylla speak) gets SUPPORTED.
/// The port alone opens a moment before the server reads requests.
fn answers_cql(addr: SocketAddr) -> bool {
    // version 4 request, no flags, stream 1, opcode OPTIONS (5), no body.
    const OPTIONS: [u8; 9] = [0x04, 0, 0, 1, 0x05, 0, 0, 0, 0];
    const SUPPORTED: u8 = 0x06;
    let exchange = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(&OPTIONS)?;
        let mut header = [0_u8; 9];
        stream.read_exact(&mut header)?;
        // A response has the direction bit set in its version byte.
        Ok(header[0] & 0x80 != 0 && header[4] == SUPPORTED)
    };
    exchange().unwrap_or(false)
}

/// The files of one node, all in its directory.
struct NodeFiles {
    dir: PathBuf,
}

impl NodeFiles {
    fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    fn config(&self) -> PathBuf {
        self.dir.join("cassandra.yaml")
    }

    fn logback(&self) -> PathBuf {
        self.dir.join("logback.xml")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    fn data(&self, what: &str) -> PathBuf {
        self.dir.join(what)
    }

    /// The JVM's temporary files (native libraries Netty and JNA unpack):
    /// in the node's directory, so a killed node leaves none in /tmp.
    fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn create(&self) -> Result<(), EngineError> {
        let tmp = self.tmp();
        std::fs::create_dir_all(&tmp).map_err(EngineError::io(format!("creating {}", tmp.display())))
    }

    fn write_config(&self, ports: Ports) -> Result<(), EngineError> {
        let path = |what: &str| yaml_string(&self.data(what));
        let yaml = format!(
            "# Written by chat4all-engines: a one-node test cluster on loopback.\n\
             cluster_name: chat4all-test\n\
             # One node owns the whole ring; one token is enough.\n\
             num_tokens: 1\n\
             partitioner: org.apache.cassandra.dht.Murmur3Partitioner\n\
             # Its datacenter is `datacenter1`, what clients expect by default.\n\
             endpoint_snitch: SimpleSnitch\n\
             seed_provider:\n  \
               - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n    \
                 parameters:\n      \
                   - seeds: \"127.0.0.1:{storage}\"\n\
             listen_address: 127.0.0.1\n\
             rpc_address: 127.0.0.1\n\
             storage_port: {storage}\n\
             native_transport_port: {native}\n\
             start_native_transport: true\n\
             commitlog_sync: periodic\n\
             commitlog_sync_period: 10000ms\n\
             data_file_directories:\n  - {data}\n\
             commitlog_directory: {commitlog}\n\
             saved_caches_directory: {saved_caches}\n\
             hints_directory: {hints}\n\
             cdc_raw_directory: {cdc_raw}\n\
             # Tests drop their keyspaces: a snapshot of each is wasted disk.\n\
             auto_snapshot: false\n",
            storage = ports.storage,
            native = ports.native,
            data = path("data"),
            commitlog = path("commitlog"),
            saved_caches = path("saved_caches"),
            hints = path("hints"),
            cdc_raw = path("cdc_raw"),
        );
        std::fs::write(self.config(), yaml).map_err(EngineError::io("writing cassandra.yaml"))?;
        // INFO, not logback's default DEBUG: a third of the lines, and the
        // ones that say why a node did not start.
        let logback = "<configuration>\n  \
             <appender name=\"STDOUT\" class=\"ch.qos.logback.core.ConsoleAppender\">\n    \
               <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{0} %msg%n</pattern></encoder>\n  \
             </appender>\n  \
             <root level=\"INFO\"><appender-ref ref=\"STDOUT\"/></root>\n\
             </configuration>\n";
        std::fs::write(self.logback(), logback).map_err(EngineError::io("writing logback.xml"))?;
        Ok(())
    }
}

/// A path as a YAML double-quoted string.
fn yaml_string(path: &Path) -> String {
    let text = path.display().to_string();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A path as a `file://` URL, as `-Dcassandra.config` takes it.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.display().to_string().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// The JVM's options.
///
/// - Heap: `-Xms` small on purpose: Cassandra `mlockall`s the process at
///   start, which touches every committed page; a 768 MiB initial heap
///   costs four seconds there.
/// - Serial GC and C1 only: two cores shared with builds; start-up matters
///   more than peak throughput for a test node.
/// - `--add-exports`/`--add-opens`: those of Cassandra's own
///   `conf/jvm17-server.options`, without which it cannot reach the JDK
///   internals it uses on Java 17.
/// - `cassandra.*` properties: the ones Cassandra's own test suite uses to
///   start fast (`memtable_row_overhead_computation_step`, `unsafesystem`,
///   `skip_sync`: no measuring loop at start, no flush of the system tables
///   at every schema change, no fsync: nothing here must survive a crash),
///   no wait for gossip to settle on a node that has no peers, and the
///   default role created at once instead of ten seconds into the tests.
fn jvm_options(heap: &str, files: &NodeFiles) -> Vec<String> {
    let mut options: Vec<String> = [
        "-Xms128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-XX:+ExitOnOutOfMemoryError",
        // No /tmp/hsperfdata file left behind by a killed node.
        "-XX:+PerfDisableSharedMem",
        "-Djava.awt.headless=true",
        "-Djdk.attach.allowAttachSelf=true",
        "-Dio.netty.tryReflectionSetAccessible=true",
        "-Dcassandra-foreground=yes",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.memtable_row_overhead_computation_step=100",
        "-Dcassandra.unsafesystem=true",
        "-Dcassandra.skip_sync=true",
        "-Dcassandra.superuser_setup_delay_ms=0",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    options.extend(
        JDK_EXPORTS
            .iter()
            .map(|m| format!("--add-exports={m}=ALL-UNNAMED")),
    );
    options.extend(JDK_OPENS.iter().map(|m| format!("--add-opens={m}=ALL-UNNAMED")));
    options.extend([
        format!("-Xmx{heap}"),
        format!("-Djava.io.tmpdir={}", files.tmp().display()),
        format!("-Dcassandra.storagedir={}", files.dir.display()),
        format!("-Dcassandra.config={}", file_url(&files.config())),
        format!("-Dlogback.configurationFile={}", files.logback().display()),
    ]);
    options
}

/// Packages Cassandra 5.0 uses from outside the JDK's exported API.
const JDK_EXPORTS: &[&str] = &[
    "java.base/jdk.internal.misc",
    "java.management.rmi/com.sun.jmx.remote.internal.rmi",
    "java.rmi/sun.rmi.registry",
    "java.rmi/sun.rmi.server",
    "java.sql/java.sql",
    "java.base/java.lang.ref",
    "jdk.unsupported/sun.misc",
    "jdk.compiler/com.sun.tools.javac.file",
    "jdk.attach/sun.tools.attach",
];

/// Packages Cassandra 5.0 reflects into.
const JDK_OPENS: &[&str] = &[
    "java.base/java.lang.module",
    "java.base/jdk.internal.loader",
    "java.base/jdk.internal.ref",
    "java.base/jdk.internal.reflect",
    "java.base/jdk.internal.math",
    "java.base/jdk.internal.module",
    "java.base/jdk.internal.util.jar",
    "jdk.management/com.sun.management.internal",
    "java.base/sun.nio.ch",
    "java.base/java.io",
    "java.base/java.lang.reflect",
    "jdk.compiler/com.sun.tools.javac",
    "java.base/java.lang",
    "java.base/java.util",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_yaml_and_escaped_for_urls() {
        assert_eq!(yaml_string(Path::new("/tmp/a b/\"c\"")), r#""/tmp/a b/\"c\"""#);
        assert_eq!(
            file_url(Path::new("/tmp/x y/cassandra.yaml")),
            "file:///tmp/x%20y/cassandra.yaml"
        );
    }

    #[test]
    fn the_config_names_the_ports_and_keeps_every_file_in_the_node_s_directory() {
        let dir = tempfile::tempdir().unwrap();
        let files = NodeFiles::new(dir.path());
        files
            .write_config(Ports {
                native: 19042,
                storage: 17000,
            })
            .unwrap();
        let yaml = std::fs::read_to_string(files.config()).unwrap();
        assert!(yaml.contains("native_transport_port: 19042\n"), "{yaml}");
        assert!(yaml.contains("seeds: \"127.0.0.1:17000\""), "{yaml}");
        for key in [
            "commitlog_directory",
            "saved_caches_directory",
            "hints_directory",
            "cdc_raw_directory",
        ] {
            let line = yaml.lines().find(|l| l.starts_with(key)).unwrap();
            assert!(line.contains(&*dir.path().display().to_string()), "{line}");
        }
        let options = jvm_options("512m", &files);
        assert!(options.contains(&"-Xmx512m".to_owned()));
        assert!(
            options
                .iter()
                .any(|o| o.starts_with("-Dcassandra.config=file:///"))
        );
        assert!(
            options
                .iter()
                .any(|o| o == "--add-opens=java.base/java.lang=ALL-UNNAMED")
        );
    }

    #[test]
    fn nothing_answers_cql_on_a_closed_port() {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(!answers_cql(port));
    }
}
