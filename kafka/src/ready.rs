//! Whether a process's Kafka consumers are in place. A group member takes
//! no record before the group coordinator has assigned it partitions, and
//! the first join is slow (the mock cluster's coordinator holds it for its
//! 3 s initial rebalance delay; a real broker for
//! `group.initial.rebalance.delay.ms`), so a message sent meanwhile waits
//! for the join. A process that says it is ready before then lies by
//! seconds.
//!
//! Each consumer holds a [`ReadyFlag`], set by the consumer context on its
//! first assignment (an empty one too: the member is in the group, and
//! takes partitions when another leaves). [`Readiness`] is the set of
//! flags a process waits on, lists, or reports as gRPC health. A flag is
//! never cleared: a rebalance later on is the group at work, not a process
//! that is not ready.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The gRPC health service that says whether every consumer of the
/// process has its partitions. The process's own health (`""`) does not
/// wait for it: a liveness probe must not restart a pod whose broker is
/// slow to form the group.
pub const HEALTH_SERVICE: &str = "chat4all.kafka.consumers";

#[derive(Debug, Clone)]
struct Part {
    name: String,
    ready: bool,
}

/// The consumers a process waits for. Clones share the set.
#[derive(Debug, Clone)]
pub struct Readiness {
    parts: Arc<watch::Sender<Vec<Part>>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    pub fn new() -> Self {
        Self {
            parts: Arc::new(watch::channel(Vec::new()).0),
        }
    }

    /// A consumer to wait for, not ready until its flag is set. Register
    /// every part before waiting: a part added later is not waited for by a
    /// wait that already ended.
    pub fn part(&self, name: impl Into<String>) -> ReadyFlag {
        let mut index = 0;
        self.parts.send_modify(|parts| {
            index = parts.len();
            parts.push(Part {
                name: name.into(),
                ready: false,
            });
        });
        ReadyFlag {
            parts: Some(self.parts.clone()),
            index,
        }
    }

    /// Whether every part registered so far is ready.
    pub fn is_ready(&self) -> bool {
        self.parts.borrow().iter().all(|p| p.ready)
    }

    /// The parts that are not ready yet, by name.
    pub fn pending(&self) -> Vec<String> {
        self.parts
            .borrow()
            .iter()
            .filter(|p| !p.ready)
            .map(|p| p.name.clone())
            .collect()
    }

    /// Every part, by name, in the order registered.
    pub fn parts(&self) -> Vec<String> {
        self.parts.borrow().iter().map(|p| p.name.clone()).collect()
    }

    /// Returns once every part registered is ready.
    pub async fn wait(&self) {
        let mut changes = self.parts.subscribe();
        // The sender lives as long as `self`: the wait cannot be cut short.
        let _ = changes.wait_for(|parts| parts.iter().all(|p| p.ready)).await;
    }

    /// Reports [`HEALTH_SERVICE`] on `health`: NOT_SERVING until every part
    /// is ready, SERVING from then on; returns early on `shutdown`.
    pub async fn report_health(self, health: HealthReporter, shutdown: CancellationToken) {
        health
            .set_service_status(HEALTH_SERVICE, ServingStatus::NotServing)
            .await;
        tokio::select! {
            () = self.wait() => {
                health.set_service_status(HEALTH_SERVICE, ServingStatus::Serving).await;
            }
            () = shutdown.cancelled() => {}
        }
    }
}

/// The readiness of a process that runs one consumer, `name`, reported on
/// `health` when the process serves it.
pub fn single(name: &str, health: Option<&HealthReporter>, shutdown: &CancellationToken) -> ReadyFlag {
    let readiness = Readiness::new();
    let flag = readiness.part(name);
    if let Some(health) = health {
        tokio::spawn(readiness.report_health(health.clone(), shutdown.clone()));
    }
    flag
}

/// One consumer's part of a [`Readiness`].
#[derive(Debug, Clone)]
pub struct ReadyFlag {
    parts: Option<Arc<watch::Sender<Vec<Part>>>>,
    index: usize,
}

impl ReadyFlag {
    /// A flag that belongs to no set: for a consumer nobody waits on.
    pub fn unwatched() -> Self {
        Self {
            parts: None,
            index: 0,
        }
    }

    /// Marks the part ready; waiters see it at once.
    pub fn set(&self) {
        let Some(parts) = &self.parts else {
            return;
        };
        parts.send_if_modified(|parts| match parts.get_mut(self.index) {
            Some(part) if !part.ready => {
                part.ready = true;
                true
            }
            _ => false,
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waits_for_every_part_and_names_the_missing_ones() {
        let readiness = Readiness::new();
        let router = readiness.part("router");
        let sidecar = readiness.part("whatsapp-sidecar");
        assert!(!readiness.is_ready());
        assert_eq!(readiness.pending(), ["router", "whatsapp-sidecar"]);

        let waiter = tokio::spawn({
            let readiness = readiness.clone();
            async move { readiness.wait().await }
        });
        router.set();
        // A second set changes nothing and wakes nobody needlessly.
        router.set();
        assert_eq!(readiness.pending(), ["whatsapp-sidecar"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());

        sidecar.clone().set();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the wait ends once every part is set")
            .unwrap();
        assert!(readiness.is_ready());
        assert_eq!(readiness.parts(), ["router", "whatsapp-sidecar"]);
    }

    #[tokio::test]
    async fn nothing_to_wait_for_is_ready_and_an_unwatched_flag_is_harmless() {
        let readiness = Readiness::new();
        tokio::time::timeout(Duration::from_secs(1), readiness.wait())
            .await
            .unwrap();
        ReadyFlag::unwatched().set();
        assert!(readiness.is_ready());
    }

    #[tokio::test]
    async fn health_turns_serving_once_ready() {
        let (health, _service) = tonic_health::server::health_reporter();
        let readiness = Readiness::new();
        let flag = readiness.part("status-consumer");
        let report = tokio::spawn(readiness.clone().report_health(health, CancellationToken::new()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!report.is_finished());
        flag.set();
        tokio::time::timeout(Duration::from_secs(1), report)
            .await
            .unwrap()
            .unwrap();
    }
}
