//! Every metric family Chat4All exports, with the help text Prometheus
//! shows for it: one table, so that no family goes out without HELP and an
//! operator reads what each one counts in one place. [`describe`] hands the
//! table to the recorder when it is installed, which every binary and
//! `chat4all dev` do at start-up.
//!
//! The series an operator alerts on are registered at 0 by the code that
//! knows their label values (the sidecar for its platform, the consumers
//! for their topics, the status-consumer for every platform and status),
//! at start-up: `increase()` over a series that appears at 1 misses the
//! first event.
//!
//! A family added without a line here fails `tests/tests/metrics.rs`, which
//! reads every name the workspace records.

/// What a family is, as Prometheus types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// A histogram (`_seconds`: buckets) or a summary (others).
    Histogram,
}

/// A metric family: its name and what it says.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Counter,
        help,
    }
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Gauge,
        help,
    }
}

const fn histogram(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Histogram,
        help,
    }
}

/// Every family, by the service that records it.
pub const FAMILIES: &[Family] = &[
    // api-gateway
    counter(
        "chat4all_messages_accepted_total",
        "Messages SendMessage accepted (stored as ACCEPTED, queued for Kafka), by platform; \
         duplicate=\"true\" when the idempotency key named a message accepted before.",
    ),
    counter(
        "chat4all_messages_rejected_total",
        "SendMessage requests refused before anything was stored, by reason.",
    ),
    histogram(
        "chat4all_accept_duration_seconds",
        "Time SendMessage took to accept a message: checks, the store write and the Kafka enqueue.",
    ),
    histogram(
        "chat4all_accept_stage_duration_seconds",
        "Time of each stage of an accept, by stage (store: the ACCEPTED write; kafka: the enqueue).",
    ),
    counter(
        "chat4all_produce_failures_total",
        "Records a service could not produce to Kafka, by topic; an accepted message left unsent is \
         published again by the gateway's reconciler.",
    ),
    counter(
        "chat4all_reconciled_total",
        "Messages the gateway's reconciler published again because they stayed in a state too long, \
         by topic and the status they were stuck in.",
    ),
    counter(
        "chat4all_watermark_messages_total",
        "Messages a watermark receipt moved on, found in the store whichever replica sent them, by platform.",
    ),
    counter(
        "chat4all_watermark_caught_up_total",
        "Receipts given to a message whose SENT was stored after its recipient's watermark came, by platform.",
    ),
    counter(
        "chat4all_receipts_overdue_total",
        "SENT messages the gateway's reconciler marked overdue (no delivery receipt within \
         --receipt-deadline after SENT), once each, by platform. Platforms without receipts never count.",
    ),
    gauge(
        "chat4all_messages_awaiting_receipt_overdue",
        "SENT messages whose delivery receipt is overdue now, by platform, as the reconciler's last round \
         found them; it looks at 500 at most, so 500 reads \"at least 500\".",
    ),
    counter(
        "chat4all_reconcile_rounds_total",
        "Reconciler rounds, by whether this gateway replica held the reconciler lease and ran it.",
    ),
    counter(
        "chat4all_connector_reads_total",
        "The gateway's reads of a platform through its connector, by platform, call and gRPC code.",
    ),
    counter(
        "chat4all_backfilled_messages_total",
        "Messages of a platform's history stored by a ListMessages backfill, by platform.",
    ),
    counter(
        "chat4all_backfill_failures_total",
        "Platform history reads that failed during a ListMessages backfill, by platform and call.",
    ),
    gauge("chat4all_watchers", "Open WatchMessages streams."),
    gauge(
        "chat4all_watch_scopes",
        "Conversations and channels with at least one open WatchMessages stream.",
    ),
    // router
    counter(
        "chat4all_messages_routed_total",
        "Messages the router passed on, by destination topic.",
    ),
    counter(
        "chat4all_loop_guard_trips_total",
        "Times the loop guard began holding a conversation that bounced messages faster than its \
         sync window allows.",
    ),
    counter(
        "chat4all_loop_guard_held_messages_total",
        "Outbound messages failed because the loop guard held their conversation.",
    ),
    gauge(
        "chat4all_loop_guard_held_conversations",
        "Conversations the loop guard holds now.",
    ),
    counter(
        "chat4all_inbound_stored_total",
        "Inbound messages stored, by platform.",
    ),
    counter(
        "chat4all_inbound_duplicates_total",
        "Inbound messages dropped as duplicates of one stored within the dedup window, by platform.",
    ),
    counter(
        "chat4all_channels_created_total",
        "Channels made on a user's first inbound message, by platform.",
    ),
    // status-consumer
    counter(
        "chat4all_messages_total",
        "Messages that reached a delivery status, by platform and status.",
    ),
    counter(
        "chat4all_transitions_total",
        "Status updates the status-consumer applied, by state-machine outcome and the status the \
         message has after it.",
    ),
    counter(
        "chat4all_status_not_found_total",
        "Status updates for a message the store did not know yet: put back on the topic to try \
         again later (action=retried) or, after the last try, dead-lettered (action=dead_lettered).",
    ),
    histogram(
        "chat4all_accept_to_sent_seconds",
        "Time from accept to SENT (the platform took the message), by platform.",
    ),
    histogram(
        "chat4all_accept_to_delivered_seconds",
        "Time from accept to DELIVERED (the platform's receipt), by platform.",
    ),
    // store
    counter(
        "chat4all_store_transitions_total",
        "Status transitions the store decided, by outcome, whichever backend decided them.",
    ),
    counter(
        "chat4all_store_transition_conflicts_total",
        "Scylla transitions that lost a race with another writer and were decided again.",
    ),
    histogram(
        "chat4all_store_write_batch_size",
        "Writes committed together by one group commit of the embedded store.",
    ),
    histogram(
        "chat4all_store_write_batch_seconds",
        "Time of one group commit of the embedded store.",
    ),
    // kafka, in every consumer and producer
    counter(
        "chat4all_consumed_records_total",
        "Records consumed and handled, by topic.",
    ),
    histogram(
        "chat4all_consumer_batch_records",
        "Records in each batch a consumer handled, by consumer group.",
    ),
    counter(
        "chat4all_consumer_batch_retries_total",
        "Batches whose handling failed and was tried again, by consumer group.",
    ),
    gauge(
        "chat4all_consumer_lag_records",
        "Records not yet consumed on the partitions a group member holds, by group and topic.",
    ),
    counter(
        "chat4all_dead_letters_total",
        "Records set aside on a dead-letter topic, by the topic they were consumed from.",
    ),
    counter(
        "chat4all_kafka_producer_renewals_total",
        "Kafka producers replaced after failing for good.",
    ),
    counter(
        "chat4all_kafka_consumer_renewals_total",
        "Kafka consumers replaced because a partition they hold had no leader while a broker was up, by group.",
    ),
    // connector sidecar
    histogram(
        "chat4all_platform_call_duration_seconds",
        "Time of one Connector.Send, the platform's HTTP call included, by platform.",
    ),
    counter(
        "chat4all_platform_errors_total",
        "Failed platform calls, by platform and the platform's own error code (adapter_* when the \
         adapter itself failed); series appear with their code, for alerts see \
         chat4all_platform_call_failures_total.",
    ),
    counter(
        "chat4all_platform_call_failures_total",
        "Failed platform calls, by platform and kind (permanent, transient, rate_limited, or adapter \
         when the adapter failed or answered nothing); every series exists from start-up.",
    ),
    counter(
        "chat4all_platform_retries_total",
        "Platform calls tried again after a retriable failure, by platform.",
    ),
    counter(
        "chat4all_rate_limit_waits_total",
        "Sends that waited for the connector's rate limit, by platform.",
    ),
    histogram(
        "chat4all_rate_limit_wait_seconds",
        "Time a send waited for the connector's rate limit, by platform.",
    ),
    gauge(
        "chat4all_sidecar_rate_limit_per_second",
        "Sends a second this sidecar allows itself: the platform's rate times the share of its \
         outbound topic's partitions the sidecar owns, by platform.",
    ),
    gauge(
        "chat4all_breaker_state",
        "The circuit breaker in front of a platform: 0 closed, 1 half-open, 2 open; by platform.",
    ),
    counter(
        "chat4all_breaker_transitions_total",
        "Circuit breaker state changes, by platform and the state entered.",
    ),
    counter(
        "chat4all_sidecar_outcomes_total",
        "Messages the sidecar finished with, by platform and the status it published (SENT, FAILED).",
    ),
    counter(
        "chat4all_sidecar_claims_released_total",
        "Claims released at shutdown for messages never sent to the platform, by platform.",
    ),
    counter(
        "chat4all_sidecar_status_republished_total",
        "Statuses published again for redelivered messages this sidecar had already sent, by platform.",
    ),
    counter(
        "chat4all_sidecar_redelivered_total",
        "Redelivered messages another attempt had already claimed, not sent again, by platform.",
    ),
    counter(
        "chat4all_sidecar_answers_recovered_total",
        "Messages whose platform answer a dead sidecar had recorded, announced SENT by another, by platform.",
    ),
    counter(
        "chat4all_ambiguous_sends_total",
        "Platform calls that may have acted without answering, by platform and how they were settled \
         (confirmed or refuted by the echo, at_least_once, unknown).",
    ),
    counter(
        "chat4all_outcome_unknown_total",
        "Messages ended FAILED with reason outcome_unknown: the platform may have taken them, and they \
         were not sent again, by platform.",
    ),
    counter(
        "chat4all_receipts_total",
        "Delivery and read receipts from the platform, by platform.",
    ),
    counter(
        "chat4all_inbound_total",
        "Messages from the platform's users passed on to the inbound topic, by platform.",
    ),
    // adapters
    counter(
        "chat4all_adapter_sends_total",
        "Sends the adapter made to its platform, by platform and outcome (accepted, rate_limited, \
         transient, permanent, unspecified).",
    ),
    histogram(
        "chat4all_adapter_send_duration_seconds",
        "Time of the adapter's send to its platform, by platform.",
    ),
    gauge(
        "chat4all_adapter_event_queue_depth",
        "Webhook events waiting for the sidecar's StreamEvents, by platform.",
    ),
    gauge(
        "chat4all_adapter_events_unacked",
        "Webhook events handed to the sidecar and not yet acked as durable in Kafka, by platform.",
    ),
    gauge(
        "chat4all_adapter_event_subscribers",
        "1 while the pod's sidecar takes the adapter's webhook events, by platform; at 0 they wait in memory.",
    ),
    counter(
        "chat4all_adapter_webhooks_total",
        "Webhook requests, by platform and outcome (accepted, unsigned, bad_signature, malformed, \
         queue_full, stopping, ack_timeout: the sidecar did not ack the events in time).",
    ),
    counter(
        "chat4all_adapter_webhook_events_total",
        "Events taken from accepted webhooks, by platform.",
    ),
    counter(
        "chat4all_adapter_webhook_duplicates_total",
        "Webhook updates dropped as seen before, by platform.",
    ),
    counter(
        "chat4all_adapter_webhook_connections_dropped_total",
        "Webhook connections the adapter cut off: refused over the connection cap, or closed for \
         sending headers or body too slowly or for sitting idle",
    ),
    counter(
        "chat4all_echoes_total",
        "Echoes of messages sent from the business side, by platform; ours=\"true\" when the echo \
         carries our ids, \"false\" when someone else sent it (an agent in the platform's inbox).",
    ),
    counter(
        "chat4all_meta_webhook_skipped_total",
        "Meta webhook entries skipped as nothing Chat4All handles, by platform and reason.",
    ),
    counter(
        "chat4all_whatsapp_webhook_skipped_total",
        "WhatsApp webhook items skipped as nothing Chat4All handles, by reason.",
    ),
    counter(
        "chat4all_telegram_webhook_skipped_total",
        "Telegram updates skipped as nothing Chat4All handles, by reason.",
    ),
    counter(
        "chat4all_chotot_webhook_skipped_total",
        "Chotot webhook events skipped as nothing Chat4All handles, by reason.",
    ),
];

/// Gives every family its help text on the current recorder.
pub fn describe() {
    for family in FAMILIES {
        match family.kind {
            Kind::Counter => metrics::describe_counter!(family.name, family.help),
            Kind::Gauge => metrics::describe_gauge!(family.name, family.help),
            Kind::Histogram => metrics::describe_histogram!(family.name, family.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_follow_prometheus_conventions() {
        let mut seen = HashSet::new();
        for family in FAMILIES {
            assert!(seen.insert(family.name), "{} twice", family.name);
            assert!(family.name.starts_with("chat4all_"), "{}", family.name);
            assert!(!family.help.is_empty(), "{}", family.name);
            let total = family.name.ends_with("_total");
            assert_eq!(
                total,
                family.kind == Kind::Counter,
                "{}: _total is for counters",
                family.name
            );
        }
    }
}
