//! What the topology tests share: a topology on a fresh directory whose
//! logs are printed if the test fails, a stream of messages through the
//! real gRPC API, waiting for final states, and counting what the
//! simulator (a separate process) received.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat4all::{Topology, TopologyConfig};
use chat4all_proto::v1::{
    self as pb, GetMessageRequest, SendMessageRequest, messaging_service_client::MessagingServiceClient,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// Generous: CI runs these beside everything else on two cores. Nothing
/// here asserts a speed; this only bounds a hang.
pub(crate) const WITHIN: Duration = Duration::from_secs(120);

/// The pause between two messages of a [`Stream`].
const PACE: Duration = Duration::from_millis(40);

/// A topology on its own directory. If the test panics, the end of every
/// process's log is printed before the directory goes.
pub(crate) struct TestTopology {
    pub(crate) topology: Option<Topology>,
    pub(crate) dir: tempfile::TempDir,
    /// Held to the end (declared last, dropped last): one topology at a time.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// A topology is a broker and some fifteen processes: two cores run one at
/// a time well, four at once starve each other's consumers past the tests'
/// patience.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl TestTopology {
    /// The test configuration: ports picked at run time, a reconciler that
    /// re-publishes after two seconds rather than a minute, and producers
    /// replaced after ten seconds of failing rather than a minute.
    pub(crate) fn config(dir: &tempfile::TempDir) -> TopologyConfig {
        TopologyConfig {
            reconcile: chat4all_api_gateway::ReconcileArgs {
                after: Duration::from_secs(2),
                routed_after: Duration::from_secs(20),
                every: Duration::from_millis(500),
                ..Default::default()
            },
            stall_secs: 10,
            stop_timeout: Duration::from_secs(15),
            // For a closer look at a failing run, e.g. `info,chat4all_kafka=debug`.
            log_filter: std::env::var("CHAT4ALL_TEST_LOG_FILTER").unwrap_or_else(|_| "info".to_owned()),
            ..TopologyConfig::ephemeral(dir.path(), env!("CARGO_BIN_EXE_chat4all"))
        }
    }

    pub(crate) async fn start(configure: impl FnOnce(&mut TopologyConfig)) -> Self {
        let turn = ONE_AT_A_TIME.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = Self::config(&dir);
        configure(&mut config);
        let mut t = Self {
            topology: None,
            dir,
            _turn: turn,
        };
        t.topology = Some(Topology::start(config).await.unwrap());
        t
    }

    pub(crate) fn get(&mut self) -> &mut Topology {
        self.topology.as_mut().unwrap()
    }

    pub(crate) async fn client(&self) -> MessagingServiceClient<Channel> {
        let url = self.topology.as_ref().unwrap().gateway_url();
        MessagingServiceClient::connect(url).await.unwrap()
    }

    /// A client that spreads its calls over every gateway replica, as one
    /// behind a Kubernetes Service would: a replica that went away fails
    /// the calls it held, which the client sends again.
    pub(crate) fn balanced_client(&self) -> MessagingServiceClient<Channel> {
        let endpoints = self
            .topology
            .as_ref()
            .unwrap()
            .gateway_urls()
            .into_iter()
            .map(|url| Channel::from_shared(url).unwrap());
        MessagingServiceClient::new(Channel::balance_list(endpoints))
    }

    /// Stops every process in order; each must stop cleanly.
    /// Ends `stream` and checks what every fault test promises: each of
    /// its messages at its final state, each sent to its platform once.
    pub(crate) async fn check_stream(&mut self, stream: Stream) -> Vec<Sent> {
        let sent = stream.finish().await;
        let mut client = self.client().await;
        wait_final(&mut client, &sent).await;
        assert_each_sent_once(&self.get().simulator_url(), &sent).await;
        sent
    }

    /// SIGKILLs a process, which must not exit cleanly.
    pub(crate) async fn kill(&mut self, name: &str) {
        let killed = self.get().kill(name).await.unwrap();
        assert!(
            matches!(killed, chat4all::topology::Stopped::Exited(status) if !status.success()),
            "{name}: {killed:?}"
        );
    }

    pub(crate) async fn stop(&mut self) {
        self.topology.take().unwrap().stop().await.unwrap();
    }
}

impl Drop for TestTopology {
    fn drop(&mut self) {
        // For a look at a passing run too: every process's whole log.
        if let Some(keep) = std::env::var_os("CHAT4ALL_TEST_LOGS_DIR") {
            let to = std::path::Path::new(&keep).join(self.dir.path().file_name().unwrap_or_default());
            let _ = std::fs::create_dir_all(&to);
            for entry in std::fs::read_dir(self.dir.path().join("logs"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Err(error) = std::fs::copy(entry.path(), to.join(entry.file_name())) {
                    eprintln!("could not keep {}: {error}", entry.path().display());
                }
            }
        }
        if !std::thread::panicking() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("logs")) else {
            return;
        };
        let mut logs: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        logs.sort();
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("===== {} (last 30 lines)", log.display());
            for line in &lines[lines.len().saturating_sub(30)..] {
                eprintln!("{line}");
            }
        }
    }
}

/// One message the test sent, and the state it must end in.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub(crate) id: String,
    pub(crate) platform: &'static str,
    pub(crate) text: String,
    pub(crate) final_state: pb::DeliveryStatus,
}

/// Recipients whose final state the simulator makes certain: receipts
/// where the platform has them (WhatsApp, Messenger, Instagram end READ),
/// none on Telegram and Chotot (SENT).
pub(crate) const PLATFORMS: [(&str, &str, pb::DeliveryStatus); 5] = [
    ("whatsapp", "whatsapp:1555000", pb::DeliveryStatus::Read),
    ("messenger", "messenger:2400000000000", pb::DeliveryStatus::Read),
    ("instagram", "instagram:1784140000000", pb::DeliveryStatus::Read),
    ("telegram", "telegram:12345", pb::DeliveryStatus::Sent),
    ("chotot", "chotot:ch-100", pb::DeliveryStatus::Sent),
];

/// Sends message `n` of a stream: the platforms in turn, over a few
/// conversations each, with a text no other message has.
pub(crate) async fn send_one(
    client: &mut MessagingServiceClient<Channel>,
    label: &str,
    n: usize,
    platforms: &[(&'static str, &'static str, pb::DeliveryStatus)],
) -> Sent {
    let (platform, prefix, final_state) = platforms[n % platforms.len()];
    // Our Chotot shop is a member of the seeded channels ch-1001 and
    // ch-1002 only.
    let recipient = format!("{prefix}{}", 1 + (n / platforms.len()) % 2);
    let text = format!("{label}-{n:04}");
    // A client whose call failed on the way sends again under the same
    // idempotency key, as the API asks: the gateway may be restarting.
    let request = SendMessageRequest {
        recipient,
        text: text.clone(),
        conversation_id: String::new(),
        idempotency_key: text.clone(),
        at_least_once: false,
    };
    let id = send_until_accepted(client, &request).await;
    Sent {
        id,
        platform,
        text,
        final_state,
    }
}

/// Sends `request` until a gateway accepts it, as a client must when its
/// call failed on the way (a gateway restarting, or a store it waits on):
/// again under the same idempotency key. The message id.
pub(crate) async fn send_until_accepted(
    client: &mut MessagingServiceClient<Channel>,
    request: &SendMessageRequest,
) -> String {
    let deadline = Instant::now() + WITHIN;
    loop {
        match client.send_message(request.clone()).await {
            Ok(answer) => return answer.into_inner().message_id,
            Err(status) if retryable(&status) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("sending {}: {status}", request.text),
        }
    }
}

/// Messages sent one after another by a task until [`finish`](Self::finish),
/// counting as it goes: a test acts on the topology mid-stream, when the
/// count says so, not after a sleep.
pub(crate) struct Stream {
    task: tokio::task::JoinHandle<()>,
    log: Arc<tokio::sync::Mutex<Vec<Sent>>>,
    progress: watch::Receiver<usize>,
    stop: CancellationToken,
}

impl Stream {
    pub(crate) fn start(
        mut client: MessagingServiceClient<Channel>,
        label: &'static str,
        platforms: &'static [(&'static str, &'static str, pb::DeliveryStatus)],
    ) -> Self {
        let (progress, watcher) = watch::channel(0);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let log = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let sent = log.clone();
        let task = tokio::spawn(async move {
            let mut n = 0;
            while !stopped.is_cancelled() {
                let one = send_one(&mut client, label, n, platforms).await;
                sent.lock().await.push(one);
                n += 1;
                progress.send_replace(n);
                // A steady trickle, not a flood: the fault lands on a
                // pipeline in motion, whose backlog stays small on two
                // cores and a slow broker storage.
                tokio::time::sleep(PACE).await;
            }
        });
        Self {
            task,
            log,
            progress: watcher,
            stop,
        }
    }

    /// How many were sent so far.
    pub(crate) fn sent(&self) -> usize {
        *self.progress.borrow()
    }

    /// Waits until `more` were sent after the ones sent so far.
    pub(crate) async fn more(&mut self, more: usize) {
        let target = self.sent() + more;
        tokio::time::timeout(WITHIN, self.progress.wait_for(|&sent| sent >= target))
            .await
            .expect("the stream stalled")
            .expect("the stream ended early");
    }

    /// The first `n` messages sent (waits for them to be recorded).
    pub(crate) async fn snapshot(&self, n: usize) -> Vec<Sent> {
        let mut sent = self.log.lock().await.clone();
        sent.truncate(n);
        sent
    }

    /// Stops sending; every message sent.
    pub(crate) async fn finish(self) -> Vec<Sent> {
        self.stop.cancel();
        self.task.await.unwrap();
        self.log.lock().await.clone()
    }
}

/// Polls GetMessage until every message is in its final state (or past it,
/// for one held to less than READ); fails at once on FAILED, and after
/// [`WITHIN`] with the ones still on their way.
pub(crate) async fn wait_final(client: &mut MessagingServiceClient<Channel>, sent: &[Sent]) {
    let deadline = Instant::now() + WITHIN;
    let mut pending: Vec<&Sent> = sent.iter().collect();
    let mut last_seen: HashMap<&str, i32> = HashMap::new();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for s in pending {
            let answer = client
                .get_message(GetMessageRequest {
                    message_id: s.id.clone(),
                })
                .await;
            let message = match answer {
                Ok(answer) => answer.into_inner().message.unwrap(),
                // The gateway is restarting: ask again next round.
                Err(status) if retryable(&status) => {
                    still.push(s);
                    continue;
                }
                Err(status) => panic!("reading {}: {status}", s.text),
            };
            assert_ne!(
                message.status,
                pb::DeliveryStatus::Failed as i32,
                "{} ({}) failed: {message:?}",
                s.text,
                s.id
            );
            // At least: a message held to SENT may go on to DELIVERED.
            if message.status < s.final_state as i32 {
                last_seen.insert(&s.id, message.status);
                still.push(s);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} messages short of their final state: {:?}",
            pending.len(),
            pending
                .iter()
                .take(10)
                .map(|s| (
                    &s.text,
                    last_seen
                        .get(s.id.as_str())
                        .and_then(|&status| pb::DeliveryStatus::try_from(status).ok())
                ))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until no message is between ACCEPTED and its final state (each
/// is either still ACCEPTED or done).
pub(crate) async fn wait_settled(client: &mut MessagingServiceClient<Channel>, sent: &[Sent]) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut moving = 0;
        for s in sent {
            let answer = client
                .get_message(GetMessageRequest {
                    message_id: s.id.clone(),
                })
                .await;
            let status = match answer {
                Ok(answer) => answer.into_inner().message.unwrap().status,
                Err(status) if retryable(&status) => pb::DeliveryStatus::Routed as i32,
                Err(status) => panic!("reading {}: {status}", s.text),
            };
            if status != pb::DeliveryStatus::Accepted as i32 && status != s.final_state as i32 {
                moving += 1;
            }
        }
        if moving == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{moving} messages still on their way");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many platform calls the simulator received for each text, on every
/// platform, through its read-only `GET /_simulator/received`.
pub(crate) async fn platform_calls(simulator_url: &str) -> HashMap<String, usize> {
    chat4all_adapter::install_crypto_provider();
    let answer: serde_json::Value = reqwest::get(format!("{simulator_url}/_simulator/received"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut calls = HashMap::new();
    for send in answer["sends"].as_array().unwrap() {
        let text = send["text"].as_str().unwrap_or_default().to_owned();
        *calls.entry(text).or_insert(0) += 1;
    }
    calls
}

/// Polls the simulator until every message reached its platform.
pub(crate) async fn wait_delivered(simulator_url: &str, sent: &[Sent]) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let calls = platform_calls(simulator_url).await;
        let missing: Vec<&str> = sent
            .iter()
            .filter(|s| !calls.contains_key(&s.text))
            .map(|s| s.text.as_str())
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} messages never reached their platform: {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every message reached its platform exactly once: none lost, none sent
/// twice.
pub(crate) async fn assert_each_sent_once(simulator_url: &str, sent: &[Sent]) {
    let calls = platform_calls(simulator_url).await;
    let wrong: BTreeMap<&str, usize> = sent
        .iter()
        .map(|s| (s.text.as_str(), calls.get(&s.text).copied().unwrap_or(0)))
        .filter(|(_, count)| *count != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "platform calls per message, where not 1: {wrong:?}"
    );
}

/// A call that failed because the gateway was not there (restarting).
fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::Cancelled
            | tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
    )
}
