//! What every Meta messaging adapter is configured with, whatever its flags
//! are called. Each platform crate keeps its own clap struct (its flags and
//! environment carry its name) and converts to [`MetaSettings`], so the
//! checks and the endpoint are written once.

use std::time::Duration;

use crate::Secret;
use crate::meta::{MetaError, MetaPlatform};

/// How to reach one Meta messaging platform and check its webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaSettings {
    /// The Graph API's base URL (the simulator on one machine).
    pub api_base_url: String,
    /// The Graph API version in the path: `v21.0`.
    pub api_version: String,
    /// The page (Messenger) or account (Instagram) access token, sent as
    /// the `access_token` query parameter.
    pub access_token: Secret,
    /// The app secret webhooks are signed with (`X-Hub-Signature-256`).
    pub app_secret: Secret,
    /// The token of the webhook subscription handshake.
    pub verify_token: Secret,
    /// How long one Send API call may take.
    pub request_timeout: Duration,
    /// How many sends the watermark index remembers (see [`crate::meta::sent`]).
    pub sent_index_capacity: usize,
}

impl MetaSettings {
    /// Refuses settings that could not work, before any port is bound.
    pub fn validate(&self, platform: &MetaPlatform) -> Result<(), MetaError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(MetaError::InvalidConfig {
                platform: platform.name,
                field,
                reason: reason.to_owned(),
            })
        };
        match reqwest::Url::parse(&self.api_base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => return invalid("api_base_url", "must be an http(s) URL"),
        }
        if self.api_version.is_empty() || self.api_version.contains(['/', '?', '#']) {
            return invalid("api_version", "must be a version such as v21.0");
        }
        if self.access_token.is_empty() {
            return invalid("access_token", "is required");
        }
        if self.app_secret.is_empty() {
            return invalid(
                "app_secret",
                "is required: webhooks cannot be verified without it",
            );
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be more than zero");
        }
        if self.sent_index_capacity == 0 {
            return invalid(
                "sent_index_capacity",
                "must be at least 1: watermarks are resolved through it",
            );
        }
        Ok(())
    }

    /// The Send API endpoint: `{base}/{version}/me/messages`.
    pub fn messages_url(&self) -> String {
        format!(
            "{}/{}/me/messages",
            self.api_base_url.trim_end_matches('/'),
            self.api_version
        )
    }
}
