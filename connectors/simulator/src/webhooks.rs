//! Posting webhooks to an adapter the way a platform does: signed, one event
//! batch per POST, and retried with backoff when not answered 2xx, a 503
//! included (Meta retries for days; a few attempts, `--webhook-attempts`,
//! stand in for that here).
//! Like Meta and Telegram, it waits ~20 s for an answer: an adapter holds
//! the answer until its events are durable, up to its own ack timeout
//! (8 s by default), and a 503 after that is a retry, not a loss. Shutdown
//! stops the retries.
//!
//! A webhook URL may name several adapters, comma-separated: replicas
//! behind one address, as a Kubernetes Service puts them. Each post goes
//! to the next in turn, so a retry after a failed post reaches another
//! replica, which is what a Service does for a pod that went away.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// One webhook, signed and ready to post.
#[derive(Debug, Clone)]
pub(crate) struct SignedWebhook {
    pub(crate) url: String,
    pub(crate) header: &'static str,
    pub(crate) signature: String,
    pub(crate) body: Vec<u8>,
}

/// Why a webhook did not get through.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the adapter answered HTTP {status}")]
    Refused { status: u16 },
    #[error("cannot reach the adapter")]
    Unreachable(#[source] reqwest::Error),
    #[error("the simulator is shutting down")]
    ShuttingDown,
}

const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(crate) struct WebhookPoster {
    http: reqwest::Client,
    /// Which of several adapters the next post goes to.
    turn: Arc<AtomicUsize>,
    /// Posts of one webhook before giving up on it.
    attempts: u32,
}

impl WebhookPoster {
    pub(crate) fn new(attempts: u32) -> anyhow::Result<Self> {
        // reqwest is built without a default crypto provider (no aws-lc):
        // install ring unless someone installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            // The platforms' patience, longer than the adapter's ack timeout.
            .timeout(ANSWER_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .user_agent("facebookexternalua")
            .build()?;
        Ok(Self {
            http,
            turn: Arc::default(),
            attempts: attempts.max(1),
        })
    }

    /// Where attempt `attempt` (from 0) of a webhook to `url` goes: the
    /// attempts of one webhook go to the replicas one after the other from
    /// where `start` says, whatever other webhooks are posted meanwhile.
    fn target(url: &str, start: usize, attempt: u32) -> &str {
        let replicas = url.split(',').count();
        let turn = start.wrapping_add(attempt as usize) % replicas;
        url.split(',').nth(turn).unwrap_or(url).trim()
    }

    /// Which replica a webhook goes to first: each in turn.
    fn first_turn(&self) -> usize {
        self.turn.fetch_add(1, Ordering::Relaxed)
    }

    /// One attempt; the HTTP status the adapter answered.
    pub(crate) async fn post_once(&self, hook: &SignedWebhook) -> Result<u16, DeliveryError> {
        self.post_to(Self::target(&hook.url, self.first_turn(), 0), hook)
            .await
    }

    async fn post_to(&self, url: &str, hook: &SignedWebhook) -> Result<u16, DeliveryError> {
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(hook.header, &hook.signature)
            .body(hook.body.clone())
            .send()
            .await
            .map_err(DeliveryError::Unreachable)?;
        Ok(response.status().as_u16())
    }

    /// Posts until the adapter answers 2xx, a few times with backoff.
    pub(crate) async fn deliver(
        &self,
        hook: &SignedWebhook,
        stop: &CancellationToken,
    ) -> Result<(), DeliveryError> {
        let mut backoff = FIRST_BACKOFF;
        let mut last = DeliveryError::ShuttingDown;
        let start = self.first_turn();
        for attempt in 1..=self.attempts {
            match self
                .post_to(Self::target(&hook.url, start, attempt - 1), hook)
                .await
            {
                Ok(status) if (200..300).contains(&status) => return Ok(()),
                Ok(status) => last = DeliveryError::Refused { status },
                Err(e) => last = e,
            }
            tracing::debug!(url = %hook.url, attempt, error = %last, "webhook not accepted");
            if attempt < self.attempts {
                tokio::select! {
                    () = stop.cancelled() => return Err(DeliveryError::ShuttingDown),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::WebhookPoster;

    #[test]
    fn the_attempts_of_a_webhook_go_to_each_replica_in_turn() {
        let url = "http://a/webhook, http://b/webhook";
        let targets: Vec<&str> = (0..4)
            .map(|attempt| WebhookPoster::target(url, 1, attempt))
            .collect();
        assert_eq!(
            targets,
            [
                "http://b/webhook",
                "http://a/webhook",
                "http://b/webhook",
                "http://a/webhook"
            ]
        );
        assert_eq!(
            WebhookPoster::target("http://only/webhook", 7, 3),
            "http://only/webhook"
        );
    }

    #[test]
    fn each_webhook_starts_at_the_next_replica() {
        let poster = WebhookPoster::new(6).unwrap();
        let firsts: Vec<usize> = (0..3).map(|_| poster.first_turn()).collect();
        assert_eq!(firsts, [0, 1, 2]);
    }
}
