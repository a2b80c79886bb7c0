//! Topic names. Keys are the conversation id, so one conversation's
//! records stay in order on one partition; except `messages` and `inbound`,
//! keyed by the platform conversation (`platform:id`, which is the
//! recipient), so both directions of it meet in one router replica. Every
//! topic has the same partition count, which that meeting relies on.

use chat4all_domain::Platform;

/// api-gateway → router: accepted messages.
pub const MESSAGES: &str = "messages";
/// router, sidecars → status-consumer.
pub const STATUS_UPDATES: &str = "status-updates";
/// status-consumer → status-consumer: updates for a message the store did
/// not know yet, each due after its backoff. A lane of their own, so that
/// waiting for one never holds up the updates behind it on
/// `status-updates`.
pub const STATUS_RETRY: &str = "status-updates.retry";
/// sidecars → router: what users wrote on the platforms.
pub const INBOUND: &str = "inbound";
/// api-gateway, status-consumer → api-gateway's WatchMessages.
pub const MESSAGE_EVENTS: &str = "message-events";

/// Where the records a consumer of `topic` could not use go, with the reason.
pub fn dead_letter(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Every topic the system uses, for creation.
pub fn all() -> Vec<String> {
    let mut topics: Vec<String> = [MESSAGES, STATUS_UPDATES, STATUS_RETRY, INBOUND, MESSAGE_EVENTS]
        .into_iter()
        .map(str::to_owned)
        .collect();
    topics.extend(Platform::ALL.map(Platform::outbound_topic));
    let dlqs: Vec<String> = topics.iter().map(|t| dead_letter(t)).collect();
    topics.extend(dlqs);
    topics
}
