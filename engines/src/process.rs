//! An engine process that never outlives the process that started it.
//!
//! A test binary keeps its engine in a static, and statics are never
//! dropped; a test may also panic, time out or be killed. So the engine
//! does not rely on our Drop to stop: it runs under a small `sh` watchdog
//! that holds the read end of a pipe whose write end only we hold. When we
//! exit, however we exit, the kernel closes it; the watchdog reads EOF,
//! kills the engine at once (SIGKILL: the process that wanted it is gone,
//! and its data with it) and deletes its directory if asked to (nobody
//! else is left to).
//!
//! A deliberate [`Supervised::stop`] is gentler: SIGTERM to the watchdog,
//! which passes it on to the engine (letting it shut down cleanly), then
//! closing the pipe after the grace period, which kills it. The watchdog,
//! the engine and anything the engine starts share a process group of
//! their own, so a Ctrl-C at the terminal reaches them only through us, and
//! a last-resort SIGKILL reaches all of them.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

use crate::error::EngineError;

/// The watchdog. `$1` is a directory to delete if the engine is killed
/// because we are gone (empty: none), the rest the engine's command line.
/// It exits with the engine's status.
///
/// - fd 3 keeps our pipe; the engine and the watcher get /dev/null as
///   stdin, so only the watcher reads the pipe.
/// - The watcher blocks on the pipe: EOF (or anything written) kills the
///   engine, after leaving a mark in the directory. Only a marked directory
///   is deleted here: otherwise the engine ended some other way, we are
///   alive, may still want the log in it, and delete it ourselves. (The
///   mark, not the watcher's exit status: the watcher may not have exited
///   yet when the engine's death wakes this shell.)
/// - A SIGTERM to the watchdog is passed to the engine: trapped from the
///   start, so it never kills the watchdog alone, and remembered, so one
///   that comes before the engine's pid is known is passed on after.
///   `wait` returns early after a trapped signal, hence the loop.
const WATCHDOG: &str = r#"dir=$1
shift
engine=
asked=
trap 'asked=1; if [ -n "$engine" ]; then kill -TERM "$engine" 2>/dev/null; fi' TERM
exec 3<&0 </dev/null
"$@" &
engine=$!
if [ -n "$asked" ]; then kill -TERM "$engine" 2>/dev/null; fi
{
    read -r _ <&3
    if [ -n "$dir" ]; then : >"$dir/.orphaned"; fi 2>/dev/null
    kill -KILL "$engine" 2>/dev/null
} &
watcher=$!
exec 3<&-
while :; do
    wait "$engine"
    status=$?
    kill -0 "$engine" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null
if [ -n "$dir" ] && [ -e "$dir/.orphaned" ]; then rm -rf -- "$dir"; fi
exit "$status"
"#;

/// How a process ended when asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited within the grace period (or had already).
    Exited(ExitStatus),
    /// It outlived the grace period and was killed.
    Killed,
}

/// A running engine under its watchdog.
#[derive(Debug)]
pub(crate) struct Supervised {
    /// The watchdog: our child, and the leader of the engine's group.
    child: Child,
    /// Closing it kills the engine (see the module's doc).
    pipe: Option<ChildStdin>,
    group: Option<Pid>,
    log: PathBuf,
    stopped: Option<Stopped>,
}

impl Supervised {
    /// Starts `program args` under the watchdog, its output (appended) in
    /// `log`; `remove` is deleted by the watchdog if it kills the engine
    /// because we are gone.
    pub(crate) fn spawn(
        program: &Path,
        args: &[impl AsRef<OsStr>],
        log: &Path,
        remove: Option<&Path>,
    ) -> Result<Self, EngineError> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(EngineError::io(format!("opening {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(EngineError::io(format!("opening {}", log.display())))?;
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("chat4all-engine-watchdog")
            .arg(remove.map(Path::as_os_str).unwrap_or_default())
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let mut child = command.spawn().map_err(EngineError::io(format!(
            "starting {} under /bin/sh",
            program.display()
        )))?;
        let group = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
        let pipe = child.stdin.take();
        Ok(Self {
            child,
            pipe,
            group,
            log: log.to_owned(),
            stopped: None,
        })
    }

    /// The engine's exit status, if it has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// SIGTERM, then SIGKILL if the engine has not ended within `grace`;
    /// returns once the watchdog has cleaned up. Stopping twice reports
    /// the first stop.
    pub(crate) fn stop(&mut self, grace: Duration) -> Stopped {
        if let Some(stopped) = self.stopped {
            return stopped;
        }
        let stopped = self.terminate(grace);
        self.stopped = Some(stopped);
        stopped
    }

    fn terminate(&mut self, grace: Duration) -> Stopped {
        if let Some(status) = self.exited() {
            return Stopped::Exited(status);
        }
        if let Some(watchdog) = self.group {
            // Only the watchdog: it passes the signal on to the engine.
            let _ = kill_process(watchdog, Signal::TERM);
        }
        if let Some(status) = self.wait_for(grace) {
            return Stopped::Exited(status);
        }
        // The watchdog kills the engine when the pipe closes.
        drop(self.pipe.take());
        if self.wait_for(Duration::from_secs(5)).is_some() {
            return Stopped::Killed;
        }
        // The watchdog itself is stuck: kill everything in the group.
        if let Some(group) = self.group {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = self.child.wait();
        Stopped::Killed
    }

    fn wait_for(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The last `lines` lines of a log, to say why an engine failed.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return format!("({} cannot be read)", path.display());
    };
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path, remove: Option<&Path>) -> Supervised {
        Supervised::spawn(
            Path::new("/bin/sh"),
            &[
                "-c",
                "trap 'echo bye; exit 7' TERM; echo started; while :; do sleep 0.1; done",
            ],
            &dir.join("log"),
            remove,
        )
        .unwrap()
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_stopped_engine_gets_sigterm_and_its_exit_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = sleeper(dir.path(), None);
        wait_until("the engine to start", || {
            std::fs::read_to_string(dir.path().join("log")).is_ok_and(|l| l.contains("started"))
        });
        let stopped = engine.stop(Duration::from_secs(10));
        assert!(
            matches!(stopped, Stopped::Exited(s) if s.code() == Some(7)),
            "{stopped:?}"
        );
        assert!(log_tail(engine.log(), 1).contains("bye"));
        assert_eq!(
            engine.stop(Duration::ZERO),
            stopped,
            "stopping twice is stopping once"
        );
    }

    #[test]
    fn an_engine_that_ignores_sigterm_is_killed_after_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Supervised::spawn(
            Path::new("/bin/sh"),
            &["-c", "trap '' TERM; echo started; while :; do sleep 0.1; done"],
            &dir.path().join("log"),
            None,
        )
        .unwrap();
        wait_until("the engine to start", || {
            std::fs::read_to_string(dir.path().join("log")).is_ok_and(|l| l.contains("started"))
        });
        let started = Instant::now();
        assert_eq!(engine.stop(Duration::from_millis(300)), Stopped::Killed);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_engine_dies_and_its_directory_goes_when_the_pipe_closes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("node");
        std::fs::create_dir(&data).unwrap();
        let mut engine = sleeper(dir.path(), Some(&data));
        wait_until("the engine to start", || {
            std::fs::read_to_string(dir.path().join("log")).is_ok_and(|l| l.contains("started"))
        });
        // What our exit does: the pipe's write end closes, nothing else.
        drop(engine.pipe.take());
        wait_until("the watchdog to exit", || engine.exited().is_some());
        let group = engine.group.unwrap();
        wait_until("the whole group to be gone", || {
            rustix::process::test_kill_process_group(group).is_err()
        });
        assert!(!data.exists(), "the engine's directory is deleted");
        assert!(!log_tail(engine.log(), 5).contains("bye"), "killed, not asked");
    }

    #[test]
    fn an_engine_that_ends_on_its_own_leaves_its_directory_to_us() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("node");
        std::fs::create_dir(&data).unwrap();
        let mut engine = Supervised::spawn(
            Path::new("/bin/sh"),
            &["-c", "echo cannot start; exit 3"],
            &dir.path().join("log"),
            Some(&data),
        )
        .unwrap();
        wait_until("the engine to exit", || engine.exited().is_some());
        assert_eq!(engine.exited().unwrap().code(), Some(3));
        assert!(data.exists(), "kept for its log");
        assert_eq!(log_tail(engine.log(), 1), "cannot start");
    }

    #[test]
    fn a_log_tail_is_its_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(&log, "a\nb\nc\n").unwrap();
        assert_eq!(log_tail(&log, 2), "b\nc");
        assert_eq!(log_tail(&log, 10), "a\nb\nc");
        assert!(log_tail(&dir.path().join("none"), 2).contains("cannot be read"));
    }
}
