//! What we sent, per recipient, so that a watermark ("every message to this
//! person at or before this time is delivered/read") becomes one receipt per
//! message of ours, each naming our message id, and so that a duplicate
//! webhook does not report the same message twice.
//!
//! The index is in memory and is lost on restart. That is acceptable for
//! now: a watermark after a restart only fails to advance messages sent
//! before it (they stay SENT, which is late, never wrong), receipts that
//! list their `mids` still name the platform's message (resolved
//! downstream), and Meta's next watermark covers every later message. A
//! persistent index would have to live in the store, shared by every
//! replica, which is a larger change than these receipts are worth today.
//!
//! A send is recorded before the platform call ([`SentIndex::pending`]) so
//! that an echo outrunning the call's answer still finds it, and the time
//! recorded is the call's start: never later than the platform's own stamp
//! of the message, so a watermark at that stamp covers it. The echo then
//! replaces that time with the platform's stamp. Bounded: beyond the
//! capacity the oldest sends are forgotten.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// One message of ours, as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub message_id: String,
    pub conversation_id: String,
    pub traceparent: String,
    /// The platform's id, once the answer or the echo told us.
    pub mid: Option<String>,
    /// When it was sent, in unix milliseconds (the platform's stamp once
    /// the echo arrived).
    pub at_ms: i64,
    delivered: bool,
    read: bool,
}

/// Which receipt is being resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Delivered,
    Read,
}

/// What the index knows of a mid named by a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MidLookup {
    /// Ours, and not reported at this stage yet.
    New(SentMessage),
    /// Ours, and already reported: a duplicate.
    AlreadyReported,
    /// Not in the index (sent before a restart, or by someone else).
    Unknown,
}

#[derive(Debug, Default)]
struct Inner {
    by_recipient: HashMap<String, VecDeque<SentMessage>>,
    /// Insertion order, for eviction; may hold entries already forgotten.
    order: VecDeque<(String, String)>,
    len: usize,
}

/// The bounded index of sends by recipient.
#[derive(Debug)]
pub struct SentIndex {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl SentMessage {
    fn mark(&mut self, progress: Progress) -> bool {
        match progress {
            Progress::Delivered if !self.delivered => {
                self.delivered = true;
                true
            }
            // Read implies delivered: a delivery watermark arriving after
            // the read one must not report an older state.
            Progress::Read if !self.read => {
                self.read = true;
                self.delivered = true;
                true
            }
            _ => false,
        }
    }

    fn unmark(&mut self, progress: Progress) {
        match progress {
            Progress::Delivered if !self.read => self.delivered = false,
            Progress::Delivered => {}
            Progress::Read => self.read = false,
        }
    }
}

impl SentIndex {
    /// An index of at most `capacity` sends (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many sends are remembered.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a send about to be made. A retry of a message already
    /// recorded keeps the first record (its earlier time is the safe one).
    pub fn pending(
        &self,
        recipient: &str,
        message_id: &str,
        conversation_id: &str,
        traceparent: &str,
        at_ms: i64,
    ) {
        let mut inner = self.lock();
        let sends = inner.by_recipient.entry(recipient.to_owned()).or_default();
        if sends.iter().any(|s| s.message_id == message_id) {
            return;
        }
        sends.push_back(SentMessage {
            message_id: message_id.to_owned(),
            conversation_id: conversation_id.to_owned(),
            traceparent: traceparent.to_owned(),
            mid: None,
            at_ms,
            delivered: false,
            read: false,
        });
        inner.len += 1;
        inner
            .order
            .push_back((recipient.to_owned(), message_id.to_owned()));
        while inner.len > self.capacity {
            let Some((recipient, message_id)) = inner.order.pop_front() else {
                break;
            };
            inner.remove(&recipient, |s| s.message_id == message_id);
        }
        // Forgotten entries linger in `order` until evicted; compact so a
        // run of refusals cannot grow it without bound.
        if inner.order.len() > self.capacity.saturating_mul(2) {
            let Inner {
                by_recipient, order, ..
            } = &mut *inner;
            order.retain(|(r, m)| {
                by_recipient
                    .get(r)
                    .is_some_and(|s| s.iter().any(|s| &s.message_id == m))
            });
        }
    }

    /// The platform accepted the send as `mid`.
    pub fn accepted(&self, recipient: &str, message_id: &str, mid: &str) {
        if mid.is_empty() {
            return;
        }
        let mut inner = self.lock();
        if let Some(sent) = inner.find(recipient, |s| s.message_id == message_id) {
            sent.mid = Some(mid.to_owned());
        }
    }

    /// The platform refused the send: it will get no receipts. A record the
    /// echo already confirmed (an earlier attempt did get through) stays.
    pub fn refused(&self, recipient: &str, message_id: &str) {
        self.lock()
            .remove(recipient, |s| s.message_id == message_id && s.mid.is_none());
    }

    /// The echo of our send: its mid and the platform's stamp. Whether the
    /// send was in the index.
    pub fn echoed(&self, recipient: &str, message_id: &str, mid: &str, at_ms: Option<i64>) -> bool {
        let mut inner = self.lock();
        let Some(sent) = inner.find(recipient, |s| s.message_id == message_id) else {
            return false;
        };
        if !mid.is_empty() {
            sent.mid = Some(mid.to_owned());
        }
        if let Some(at_ms) = at_ms {
            sent.at_ms = at_ms;
        }
        true
    }

    /// Every send to `recipient` at or before `watermark_ms` not yet
    /// reported at `progress`, oldest first, now marked reported.
    pub fn watermark(&self, recipient: &str, watermark_ms: i64, progress: Progress) -> Vec<SentMessage> {
        let mut inner = self.lock();
        let Some(sends) = inner.by_recipient.get_mut(recipient) else {
            return Vec::new();
        };
        sends
            .iter_mut()
            .filter(|s| s.at_ms <= watermark_ms)
            .filter_map(|s| s.mark(progress).then(|| s.clone()))
            .collect()
    }

    /// The send the platform calls `mid`, marked reported at `progress`;
    /// looked for under `recipient` when known, else everywhere.
    pub fn mid(&self, recipient: Option<&str>, mid: &str, progress: Progress) -> MidLookup {
        let mut inner = self.lock();
        let is_it = |s: &SentMessage| s.mid.as_deref() == Some(mid);
        let found = match recipient {
            Some(recipient) => inner.find(recipient, is_it),
            None => inner
                .by_recipient
                .values_mut()
                .flat_map(|s| s.iter_mut())
                .find(|s| is_it(s)),
        };
        match found {
            Some(sent) => {
                if sent.mark(progress) {
                    MidLookup::New(sent.clone())
                } else {
                    MidLookup::AlreadyReported
                }
            }
            None => MidLookup::Unknown,
        }
    }
}

impl SentIndex {
    /// Takes back what [`watermark`](Self::watermark) and [`mid`](Self::mid)
    /// marked for a webhook whose events were not queued: the platform
    /// sends it again, and its receipts must come out then. A send that an
    /// earlier webhook had reported is reported once more, which is the
    /// duplicate every consumer of receipts already expects.
    pub fn unmark(
        &self,
        recipient: Option<&str>,
        mids: &[String],
        watermark_ms: Option<i64>,
        progress: Progress,
    ) {
        let mut inner = self.lock();
        for sends in inner
            .by_recipient
            .iter_mut()
            .filter(|(r, _)| recipient.is_none_or(|x| x == *r))
        {
            for sent in sends.1.iter_mut() {
                let by_mid = sent.mid.as_ref().is_some_and(|m| mids.contains(m));
                let by_watermark = recipient.is_some() && watermark_ms.is_some_and(|w| sent.at_ms <= w);
                if by_mid || by_watermark {
                    sent.unmark(progress);
                }
            }
        }
    }
}

impl Inner {
    fn find(&mut self, recipient: &str, f: impl Fn(&SentMessage) -> bool) -> Option<&mut SentMessage> {
        self.by_recipient.get_mut(recipient)?.iter_mut().find(|s| f(s))
    }

    fn remove(&mut self, recipient: &str, f: impl Fn(&SentMessage) -> bool) {
        let Some(sends) = self.by_recipient.get_mut(recipient) else {
            return;
        };
        if let Some(i) = sends.iter().position(f) {
            sends.remove(i);
            self.len -= 1;
        }
        if sends.is_empty() {
            self.by_recipient.remove(recipient);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ids(sent: &[SentMessage]) -> Vec<&str> {
        sent.iter().map(|s| s.message_id.as_str()).collect()
    }

    #[test]
    fn a_watermark_reports_each_earlier_send_once() {
        let index = SentIndex::new(100);
        for (i, at) in [(1, 100), (2, 200), (3, 300)] {
            index.pending("P", &format!("m{i}"), "c", "", at);
            index.accepted("P", &format!("m{i}"), &format!("mid{i}"));
        }
        index.pending("Q", "q1", "c", "", 50);

        assert_eq!(ids(&index.watermark("P", 200, Progress::Delivered)), ["m1", "m2"]);
        assert_eq!(
            ids(&index.watermark("P", 200, Progress::Delivered)),
            Vec::<&str>::new(),
            "duplicate"
        );
        assert_eq!(ids(&index.watermark("P", 300, Progress::Delivered)), ["m3"]);
        // Read implies delivered: a late delivery watermark reports nothing.
        assert_eq!(ids(&index.watermark("Q", 60, Progress::Read)), ["q1"]);
        assert!(index.watermark("Q", 60, Progress::Delivered).is_empty());

        assert!(
            matches!(index.mid(Some("P"), "mid1", Progress::Read), MidLookup::New(s) if s.message_id == "m1")
        );
        assert_eq!(
            index.mid(None, "mid1", Progress::Read),
            MidLookup::AlreadyReported
        );
        assert_eq!(index.mid(None, "mid9", Progress::Read), MidLookup::Unknown);
    }

    #[test]
    fn the_echo_refines_and_refusals_forget() {
        let index = SentIndex::new(100);
        index.pending("P", "m1", "c", "", 1_000);
        // The echo outran the answer: it brings the mid and the platform's stamp.
        assert!(index.echoed("P", "m1", "mid1", Some(1_500)));
        assert!(index.watermark("P", 1_200, Progress::Delivered).is_empty());
        assert_eq!(
            index.watermark("P", 1_500, Progress::Delivered)[0].mid.as_deref(),
            Some("mid1")
        );

        index.pending("P", "m2", "c", "", 2_000);
        index.refused("P", "m2");
        assert_eq!(index.len(), 1);
        // A confirmed send survives a later attempt's refusal.
        index.refused("P", "m1");
        assert_eq!(index.len(), 1);
        assert!(!index.echoed("P", "m2", "mid2", None));
    }

    #[test]
    fn unmarking_reports_again() {
        let index = SentIndex::new(10);
        index.pending("P", "m1", "c", "", 100);
        index.accepted("P", "m1", "mid1");
        assert_eq!(index.watermark("P", 100, Progress::Delivered).len(), 1);
        index.unmark(Some("P"), &[], Some(100), Progress::Delivered);
        assert_eq!(index.watermark("P", 100, Progress::Delivered).len(), 1);
        assert!(matches!(
            index.mid(None, "mid1", Progress::Read),
            MidLookup::New(_)
        ));
        index.unmark(None, &["mid1".to_owned()], None, Progress::Read);
        assert!(matches!(
            index.mid(None, "mid1", Progress::Read),
            MidLookup::New(_)
        ));
    }

    #[test]
    fn the_oldest_sends_are_forgotten_beyond_the_capacity() {
        let index = SentIndex::new(2);
        for i in 0..5 {
            index.pending("P", &format!("r{i}"), "c", "", i);
            index.refused("P", &format!("r{i}"));
        }
        for i in 0..3 {
            index.pending(&format!("P{i}"), &format!("m{i}"), "c", "", i);
        }
        assert_eq!(index.len(), 2);
        assert!(
            index.watermark("P0", 10, Progress::Delivered).is_empty(),
            "evicted"
        );
        assert_eq!(ids(&index.watermark("P2", 10, Progress::Delivered)), ["m2"]);
        assert!(index.lock().order.len() <= 4);
    }
}
