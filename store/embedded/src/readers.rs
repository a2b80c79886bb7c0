//! A small pool of read-only connections, used from tokio's blocking pool.
//!
//! In WAL mode readers never wait for the writer, so reads need not queue
//! behind writes: each read borrows a connection on a blocking thread. The
//! semaphore bounds how many run at once (and so how many connections
//! exist); connections are opened on first need and kept.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::schema;
use chat4all_store::StoreError;

pub(super) struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(super) fn new(path: PathBuf, size: usize, busy_timeout: Duration) -> Self {
        let size = size.max(1);
        Self {
            path,
            busy_timeout,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    /// Runs `read` on a pooled connection, off the async runtime.
    pub(super) async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("embedded store is closed".to_owned()))?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = match this.take() {
                Some(conn) => conn,
                None => schema::open_reader(&this.path, this.busy_timeout)?,
            };
            let result = read(&mut conn);
            // A connection that just failed may be the problem: not kept.
            if result.is_ok() {
                this.give_back(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    fn give_back(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }
}
