//! One service process: how to start it again, and the running child.
//!
//! Children sit in process groups of their own, so a Ctrl-C at the terminal
//! reaches only `chat4all topology`, which then stops them in order (the
//! broker last) instead of all at once. Dropping a child kills it, so a
//! failed start or a panicking test leaves nothing behind.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};

/// Everything needed to start the process, again after a kill.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    /// stdout and stderr, appended across restarts.
    pub(crate) log: PathBuf,
}

impl Launch {
    pub(crate) fn spawn(&self) -> anyhow::Result<Running> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        // Restarts append to the same file: mark where each run begins.
        writeln!(
            log,
            "=== {} {}",
            self.program.display(),
            self.args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        )?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        Ok(Running { child })
    }
}

/// A started child.
#[derive(Debug)]
pub(crate) struct Running {
    child: Child,
}

/// How a process ended when asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited on its own after SIGTERM (or before it).
    Exited(ExitStatus),
    /// It outlived the grace period and was killed.
    Killed,
}

impl Stopped {
    /// Exited with status 0.
    pub fn is_clean(&self) -> bool {
        matches!(self, Stopped::Exited(status) if status.success())
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Exited(status) => write!(f, "{status}"),
            Stopped::Killed => f.write_str("killed after the grace period"),
        }
    }
}

impl Running {
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The exit status, if the process has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn signal(&self, signal: Signal) -> std::io::Result<()> {
        let pid = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw);
        match pid {
            Some(pid) => kill_process(pid, signal).map_err(std::io::Error::from),
            // Already reaped: nothing to signal.
            None => Ok(()),
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub(crate) async fn terminate(mut self, grace: Duration) -> Stopped {
        if self.signal(Signal::TERM).is_err() {
            return self.kill().await;
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Stopped::Exited(status),
            _ => {
                self.kill().await;
                Stopped::Killed
            }
        }
    }

    /// SIGKILL, and waits until it is gone.
    pub(crate) async fn kill(mut self) -> Stopped {
        // start_kill fails only if the child was reaped already.
        let _ = self.child.start_kill();
        match self.child.wait().await {
            Ok(status) => Stopped::Exited(status),
            Err(_) => Stopped::Killed,
        }
    }
}

/// The last `lines` lines of a log, to say why a process failed.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
