//! Posting webhooks to an adapter the way a platform does: signed, one event
//! batch per POST, and retried with backoff when not answered 2xx (Meta
//! retries for days; a few attempts stand in for that here). Shutdown stops
//! the retries.

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

const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(crate) struct WebhookPoster {
    http: reqwest::Client,
}

impl WebhookPoster {
    pub(crate) fn new() -> anyhow::Result<Self> {
        // reqwest is built without a default crypto provider (no aws-lc):
        // install ring unless someone installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .user_agent("facebookexternalua")
            .build()?;
        Ok(Self { http })
    }

    /// One attempt; the HTTP status the adapter answered.
    pub(crate) async fn post_once(&self, hook: &SignedWebhook) -> Result<u16, DeliveryError> {
        let response = self
            .http
            .post(&hook.url)
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
        for attempt in 1..=ATTEMPTS {
            match self.post_once(hook).await {
                Ok(status) if (200..300).contains(&status) => return Ok(()),
                Ok(status) => last = DeliveryError::Refused { status },
                Err(e) => last = e,
            }
            tracing::debug!(url = %hook.url, attempt, error = %last, "webhook not accepted");
            if attempt < ATTEMPTS {
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
