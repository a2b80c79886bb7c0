//! The one writer: a thread that owns the write connection and commits
//! queued writes in groups.
//!
//! SQLite takes one writer at a time, and a commit is the expensive part of
//! a write. So callers do not write: they queue a job and await its answer.
//! The thread takes whatever is queued (up to `max_batch`), runs each job in
//! a savepoint of one transaction, commits once, and only then answers, so
//! an answer always means "on disk" (as far as `synchronous` promises). A
//! job that fails rolls back its savepoint alone; a commit that fails fails
//! every job of the batch. Being a `std::thread`, it never blocks the async
//! runtime, and the bounded queue pushes back on callers when the disk
//! cannot keep up.
//!
//! It stops when every handle is gone or on [`Writer::close`], after the
//! jobs queued before that.

use std::thread;
use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};

use crate::db_error::db_error;
use chat4all_store::StoreError;

/// A write waiting for the writer thread.
trait Job: Send {
    /// Does the work against the batch's transaction; false when it failed,
    /// so its savepoint is rolled back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Tells the caller, once the batch's fate is known.
    fn answer(self: Box<Self>, batch: Result<(), StoreError>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, batch: Result<(), StoreError>) {
        let result = match batch {
            Ok(()) => self
                .result
                .unwrap_or_else(|| Err(StoreError::Unavailable("write was never run".to_owned()))),
            Err(e) => Err(e),
        };
        // A caller that gave up (a cancelled request) does not undo the write.
        let _ = self.reply.send(result);
    }
}

enum Msg {
    Job(Box<dyn Job>),
    Close,
}

/// The handle on the writer thread.
pub(super) struct Writer {
    queue: mpsc::Sender<Msg>,
    stopped: watch::Receiver<bool>,
}

impl Writer {
    pub(super) fn spawn(conn: Connection, max_batch: usize, queue_depth: usize) -> Result<Self, StoreError> {
        let (queue, jobs) = mpsc::channel(queue_depth.max(1));
        let (stopped_tx, stopped) = watch::channel(false);
        let max_batch = max_batch.max(1);
        thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || {
                let batches = run(conn, jobs, max_batch);
                tracing::debug!(batches, "store writer stopped");
                let _ = stopped_tx.send(true);
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store writer: {e}")))?;
        Ok(Self { queue, stopped })
    }

    /// Queues `work` and waits until it is committed (or failed).
    pub(super) async fn submit<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            result: None,
            reply,
        });
        self.queue
            .send(Msg::Job(job))
            .await
            .map_err(|_| StoreError::Unavailable("embedded store is closed".to_owned()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("embedded store closed before the write was committed".to_owned())
        })?
    }

    /// Lets the writes queued so far commit, refuses later ones, and waits
    /// for the thread to stop.
    pub(super) async fn close(&self) {
        // Fails only when the thread is already gone.
        let _ = self.queue.send(Msg::Close).await;
        let mut stopped = self.stopped.clone();
        // An error means the thread dropped its end: stopped as well.
        let _ = stopped.wait_for(|s| *s).await;
    }
}

/// The writer thread's loop; returns the number of batches it committed.
fn run(mut conn: Connection, mut jobs: mpsc::Receiver<Msg>, max_batch: usize) -> u64 {
    let mut batches = 0;
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    let mut closing = false;
    while !closing {
        match jobs.blocking_recv() {
            Some(Msg::Job(job)) => batch.push(job),
            Some(Msg::Close) | None => break,
        }
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Close) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let size = batch.len();
        let outcome = commit(&mut conn, &mut batch);
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, size, "store batch failed");
        } else {
            batches += 1;
        }
        metrics::histogram!("chat4all_store_write_batch_size").record(size as f64);
        metrics::histogram!("chat4all_store_write_batch_seconds").record(started.elapsed().as_secs_f64());
        for job in batch.drain(..) {
            job.answer(outcome.clone());
        }
    }
    // Jobs still queued are dropped with the receiver: their callers learn
    // the store closed.
    batches
}

/// Runs the batch in one transaction. A job's own failure stays in its
/// savepoint; any other failure fails the whole batch.
fn commit(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    for job in batch.iter_mut() {
        let savepoint = tx.savepoint().map_err(db_error)?;
        if job.run(&savepoint) {
            savepoint.commit().map_err(db_error)?;
        } else {
            // The default drop behaviour rolls back to the savepoint;
            // `finish` reports whether that worked.
            savepoint.finish().map_err(db_error)?;
        }
    }
    tx.commit().map_err(db_error)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    type Reply = oneshot::Receiver<Result<(), StoreError>>;

    fn queue(
        jobs: &mpsc::Sender<Msg>,
        work: impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    ) -> Reply {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            result: None,
            reply,
        });
        jobs.try_send(Msg::Job(job)).map_err(|_| "queue full").unwrap();
        answer
    }

    fn insert(x: i64) -> impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static {
        move |conn| {
            conn.execute("INSERT INTO t (x) VALUES (?1)", [x])
                .map_err(db_error)?;
            Ok(())
        }
    }

    fn rows(path: &std::path::Path) -> Vec<i64> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)").unwrap();
        (dir, path, conn)
    }

    #[test]
    fn queued_writes_commit_together_and_a_failing_one_sinks_alone() {
        let (_dir, path, conn) = setup();
        let (tx, rx) = mpsc::channel(16);
        let first = queue(&tx, insert(1));
        let failing = queue(&tx, |conn| {
            conn.execute("INSERT INTO t (x) VALUES (2)", [])
                .map_err(db_error)?;
            Err(StoreError::Invalid {
                field: "x",
                reason: "refused after writing".into(),
            })
        });
        let third = queue(&tx, insert(3));
        drop(tx);

        // Everything was queued before the loop started: one batch.
        assert_eq!(run(conn, rx, 512), 1);
        assert_eq!(first.blocking_recv().unwrap(), Ok(()));
        assert!(matches!(
            failing.blocking_recv().unwrap(),
            Err(StoreError::Invalid { field: "x", .. })
        ));
        assert_eq!(third.blocking_recv().unwrap(), Ok(()));
        assert_eq!(rows(&path), [1, 3]);
    }

    #[test]
    fn batches_are_bounded() {
        let (_dir, path, conn) = setup();
        let (tx, rx) = mpsc::channel(16);
        let replies: Vec<_> = (1..=5).map(|x| queue(&tx, insert(x))).collect();
        drop(tx);
        assert_eq!(run(conn, rx, 2), 3);
        for reply in replies {
            assert_eq!(reply.blocking_recv().unwrap(), Ok(()));
        }
        assert_eq!(rows(&path), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn close_commits_what_came_before_and_refuses_the_rest() {
        let (_dir, path, conn) = setup();
        let (tx, rx) = mpsc::channel(16);
        let before = queue(&tx, insert(1));
        tx.try_send(Msg::Close).map_err(|_| "queue full").unwrap();
        let after = queue(&tx, insert(2));
        assert_eq!(run(conn, rx, 512), 1);
        assert_eq!(before.blocking_recv().unwrap(), Ok(()));
        // The job was dropped unanswered: its caller sees the store closed.
        assert!(after.blocking_recv().is_err());
        assert_eq!(rows(&path), [1]);
    }
}
