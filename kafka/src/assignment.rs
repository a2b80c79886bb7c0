//! Which share of each topic a group member owns, after every rebalance:
//! for work that must be split among replicas by what each consumes (a
//! platform's rate limit, say), derived from the partitions alone, so it
//! needs no coordination of its own.

use std::collections::BTreeMap;

use tokio::sync::watch;

/// The partitions of one topic a member owns, of how many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share {
    pub owned: usize,
    /// The topic's partition count; 0 when the metadata could not be had.
    pub total: usize,
}

/// Each subscribed topic's [`Share`], by topic name.
pub type Assignment = BTreeMap<String, Share>;

/// Where a consumer reports its assignment; clones share it.
#[derive(Debug, Clone)]
pub struct AssignmentWatch(watch::Sender<Assignment>);

impl Default for AssignmentWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl AssignmentWatch {
    /// Empty until the first assignment.
    pub fn new() -> Self {
        Self(watch::channel(Assignment::new()).0)
    }

    /// Sees every later assignment (and the current one).
    pub fn subscribe(&self) -> watch::Receiver<Assignment> {
        self.0.subscribe()
    }

    pub(crate) fn report(&self, assignment: Assignment) {
        self.0.send_if_modified(|current| {
            let changed = *current != assignment;
            *current = assignment;
            changed
        });
    }
}
