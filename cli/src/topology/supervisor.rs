//! What Kubernetes does for a Deployment, on one machine: a process that
//! dies on its own is started again, after a pause that doubles while it
//! keeps dying (up to a few seconds) and resets once it has stayed up.
//!
//! A process killed or stopped through the [`Topology`](super::Topology)
//! is not supervised until it is started again through it, so a test that
//! kills the router decides when the router comes back.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::plan::{FIRST_BACKOFF, Service};

const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Up this long, a process's next death is a first one again.
const STABLE_AFTER: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_millis(100);

/// A supervised process that died on its own.
#[derive(Debug, Clone)]
pub struct Death {
    pub name: String,
    pub status: ExitStatus,
}

/// Watches `services` until `stop`, starting dead ones again; records each
/// death in `deaths`.
pub(crate) async fn supervise(
    services: Arc<Mutex<Vec<Service>>>,
    deaths: Arc<Mutex<Vec<Death>>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        let now = Instant::now();
        let mut services = services.lock().unwrap_or_else(PoisonError::into_inner);
        for service in services.iter_mut().filter(|s| s.supervised) {
            if let Some(status) = service.running.as_mut().and_then(|r| r.exited()) {
                service.running = None;
                if service.started_at.elapsed() >= STABLE_AFTER {
                    service.backoff = FIRST_BACKOFF;
                }
                note(
                    service,
                    &format!("exited ({status}); starting it again in {:?}", service.backoff),
                );
                service.restart_at = Some(now + service.backoff);
                service.backoff = (service.backoff * 2).min(MAX_BACKOFF);
                deaths.lock().unwrap_or_else(PoisonError::into_inner).push(Death {
                    name: service.name.clone(),
                    status,
                });
            }
            if service.running.is_none()
                && service.restart_at.is_some_and(|at| at <= now)
                && let Err(error) = service.spawn()
            {
                note(service, &format!("could not start again: {error:#}"));
                service.restart_at = Some(now + service.backoff);
            }
        }
    }
}

/// A line in the process's own log, where its operator looks.
fn note(service: &Service, what: &str) {
    if let Ok(mut log) = OpenOptions::new().append(true).open(&service.launch.log) {
        let _ = writeln!(log, "=== supervisor: {} {what}", service.name);
    }
}
