//! The outbound half: a batch of `<platform>-outbound` records becomes one
//! claim call, one platform call per claimed message (conversations in
//! parallel, each conversation in order), and one status record each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chat4all_domain::{DeliveryStatus, MessageId, Platform, Timestamp};
use chat4all_kafka::{
    BatchHandler, DeadLetter, Delivery, HandlerError, KafkaError, Producer, Record, RecordHeaders, decode,
    hops, topics,
};
use chat4all_proto::v1::{self as pb, connector_client::ConnectorClient, send_response};
use chat4all_store::{ClaimOutcome, PlatformAnswer, SharedStore, StoreError};
use chat4all_telemetry::spans::attributes;
use chat4all_telemetry::{HopKind, HopTracer, TraceContext};
use prost::Message as _;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tracing::Instrument as _;

use crate::SidecarConfig;
use crate::breaker::Breaker;
use crate::limiter::Limiter;
use crate::retry::Backoff;
use crate::settle::{Settled, Settler};

const HOP: &str = "sidecar";
pub(crate) const SERVICE: &str = "chat4all-connector-sidecar";
const CONNECTOR_SEND: &str = "chat4all.v1.Connector/Send";

pub(crate) struct Sender {
    platform: Platform,
    instance: String,
    connector: ConnectorClient<Channel>,
    store: SharedStore,
    producer: Producer,
    backoff: Backoff,
    max_attempts: u32,
    send_timeout: Duration,
    /// How long a claim holds without renewal.
    lease: Duration,
    settler: Settler,
    in_flight: Arc<Semaphore>,
    unconfirmed: Mutex<HashMap<MessageId, Unconfirmed>>,
    limiter: Arc<Limiter>,
    breaker: Arc<Breaker>,
    shutdown: CancellationToken,
    tracer: HopTracer,
}

/// How one message's platform calls ended.
enum Outcome {
    Sent(pb::SendAccepted),
    Failed {
        failure: pb::Failure,
        exhausted: bool,
    },
    /// Shutdown came first. `claimed`: the message is ours in the store;
    /// `in_doubt`: a call may have acted, so the claim must stay for the
    /// next holder to settle.
    Interrupted {
        claimed: bool,
        in_doubt: bool,
    },
    /// Another sidecar's (a live lease), or ours lost: a redelivered record.
    NotOurs,
    NotFound,
    /// The store did not answer: the batch is retried.
    StoreDown(StoreError),
}

impl Sender {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: &SidecarConfig,
        connector: ConnectorClient<Channel>,
        store: SharedStore,
        producer: Producer,
        limiter: Arc<Limiter>,
        breaker: Arc<Breaker>,
        echoes: bool,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            tracer: chat4all_telemetry::spans::tracer(SERVICE),
            limiter,
            breaker,
            settler: Settler {
                platform: config.platform.as_str(),
                store: store.clone(),
                echoes,
                echo_window: config.echo_window,
                shutdown: shutdown.clone(),
            },
            shutdown,
            platform: config.platform,
            instance: config.instance.clone(),
            connector,
            store,
            producer,
            backoff: Backoff {
                base: config.retry_base,
                max: config.retry_max,
            },
            max_attempts: config.max_attempts.max(1),
            send_timeout: config.send_timeout,
            // Covers a call, the echo window after an ambiguous one, and
            // the store round trips around them.
            lease: config
                .claim_lease
                .max(config.send_timeout + config.echo_window + Duration::from_secs(5)),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            unconfirmed: Mutex::default(),
        }
    }

    /// Takes the claim just before the first call, or renews it before a
    /// later one; None when the message may be called, else how it ended.
    async fn hold(
        &self,
        id: MessageId,
        message: &pb::OutboundMessage,
        claimed: &mut bool,
    ) -> Option<Outcome> {
        if *claimed {
            return match self.store.renew_claim(id, &self.instance, self.lease, true).await {
                Ok(true) => None,
                Ok(false) => {
                    tracing::warn!(message_id = %id, "the claim expired and moved on; not calling again");
                    Some(Outcome::NotOurs)
                }
                Err(error) => Some(Outcome::StoreDown(error)),
            };
        }
        let claim = match self.store.claim_for_send(&[id], &self.instance, self.lease).await {
            Ok(mut claims) if claims.len() == 1 => claims.swap_remove(0),
            Ok(claims) => {
                return Some(Outcome::StoreDown(StoreError::Corrupt(format!(
                    "{} claim results for one message",
                    claims.len()
                ))));
            }
            Err(error) => return Some(Outcome::StoreDown(error)),
        };
        match claim {
            ClaimOutcome::Claimed => {
                *claimed = true;
                None
            }
            ClaimOutcome::Answered(answer) => {
                // Its holder died between the platform's answer and SENT.
                metrics::counter!("chat4all_sidecar_answers_recovered_total", "platform" => self.platform.as_str())
                    .increment(1);
                Some(Outcome::Sent(pb::SendAccepted {
                    platform_message_id: answer.platform_message_id,
                    at: Some(answer.at.into()),
                }))
            }
            ClaimOutcome::Uncertain => {
                *claimed = true;
                settled_outcome(
                    self.settler
                        .settle(
                            id,
                            message,
                            "its previous sidecar stopped during the platform call",
                        )
                        .await,
                )
            }
            ClaimOutcome::AlreadyClaimed => Some(Outcome::NotOurs),
            ClaimOutcome::NotFound => Some(Outcome::NotFound),
        }
    }

    /// Keeps the platform's answer with the claim before SENT is announced,
    /// so another sidecar finishes the message if this one dies now. Not
    /// being able to keep it costs only that; the announcement goes on.
    async fn keep_answer(&self, id: MessageId, accepted: &pb::SendAccepted) {
        let answer = PlatformAnswer {
            platform_message_id: accepted.platform_message_id.clone(),
            at: accepted.at.map_or_else(Timestamp::now, Timestamp::from),
        };
        if let Err(error) = self.store.record_answer(id, &answer).await {
            tracing::warn!(message_id = %id, %error, "the platform's answer is not recorded; announcing SENT anyway");
        }
    }

    /// Calls the platform through the adapter until it answers for good:
    /// each call waits for a rate-limit token and the breaker's leave, and
    /// holds the message's claim.
    async fn deliver(&self, id: MessageId, message: &pb::OutboundMessage, trace: &TraceContext) -> Outcome {
        let platform = self.platform.as_str();
        let mut attempt = 0;
        let mut claimed = false;
        loop {
            attempt += 1;
            let mut request = tonic::Request::new(pb::SendRequest {
                message_id: message.message_id.clone(),
                conversation_id: message.conversation_id.clone(),
                recipient_id: message
                    .recipient
                    .as_ref()
                    .map(|r| r.id.clone())
                    .unwrap_or_default(),
                text: message.text.clone(),
            });
            request.set_timeout(self.send_timeout);
            let permit = tokio::select! {
                () = self.shutdown.cancelled() => return Outcome::Interrupted { claimed, in_doubt: false },
                permit = async {
                    self.limiter.ready().await;
                    self.breaker.acquire().await
                } => permit,
            };
            if let Some(outcome) = self.hold(id, message, &mut claimed).await {
                // An unused permit tells the breaker nothing.
                drop(permit);
                return outcome;
            }
            // Each attempt is its own client span; the adapter continues it.
            let mut call = self.tracer.start(CONNECTOR_SEND, HopKind::Client, Some(trace));
            call.record(|| {
                let mut a = attributes::grpc("chat4all.v1.Connector", "Send").to_vec();
                a.push(attributes::platform(platform));
                a.push(chat4all_telemetry::spans::Attribute::new(
                    "chat4all.attempt",
                    i64::from(attempt),
                ));
                a
            });
            call.context().inject(request.metadata_mut());
            let started = Instant::now();
            let answer = classify(self.connector.clone().send(request).await);
            metrics::histogram!("chat4all_platform_call_duration_seconds", "platform" => platform)
                .record(started.elapsed().as_secs_f64());
            match &answer {
                Answer::Sent(_) => {}
                Answer::Refused(failure) | Answer::Retry { failure, .. } | Answer::Ambiguous(failure) => {
                    call.fail(failure.code.clone());
                }
            }
            call.end();
            let (failure, retry_after) = match answer {
                Answer::Sent(accepted) => {
                    permit.success();
                    self.keep_answer(id, &accepted).await;
                    return Outcome::Sent(accepted);
                }
                Answer::Refused(failure) => {
                    // The platform is up and said no: not the breaker's business.
                    permit.success();
                    count_failure(platform, FailureKind::Permanent, &failure.code);
                    tracing::warn!(message_id = %message.message_id, code = %failure.code, "platform refused the message");
                    return Outcome::Failed {
                        failure,
                        exhausted: false,
                    };
                }
                Answer::Ambiguous(failure) => {
                    permit.failure(None);
                    count_failure(platform, FailureKind::Ambiguous, &failure.code);
                    let why = format!("{}: {}", failure.code, failure.reason);
                    match settled_outcome(self.settler.settle(id, message, &why).await) {
                        None => (failure, None),
                        Some(outcome) => return outcome,
                    }
                }
                Answer::Retry {
                    failure,
                    retry_after,
                    kind,
                } => {
                    if permit.is_probe() {
                        // The probe tests the platform: its failure costs
                        // the message that carried it no attempt.
                        attempt -= 1;
                    }
                    permit.failure(retry_after);
                    count_failure(platform, kind, &failure.code);
                    (failure, retry_after)
                }
            };
            if attempt >= self.max_attempts {
                let reason = format!(
                    "{attempt} attempts failed; last: {} {}",
                    failure.code, failure.reason
                );
                let failure = pb::Failure {
                    code: "retries_exhausted".into(),
                    reason,
                };
                return Outcome::Failed {
                    failure,
                    exhausted: true,
                };
            }
            metrics::counter!("chat4all_platform_retries_total", "platform" => platform).increment(1);
            let delay = self.backoff.delay(attempt, retry_after);
            // No call in flight while waiting: a holder that dies now left
            // nothing in doubt. The lease covers the wait.
            let wait = delay.saturating_add(self.lease);
            if let Err(error) = self.store.renew_claim(id, &self.instance, wait, false).await {
                tracing::warn!(message_id = %id, %error, "could not mark the claim idle between attempts");
            }
            tracing::info!(message_id = %message.message_id, attempt, code = %failure.code,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "platform call failed, retrying");
            tokio::select! {
                () = self.shutdown.cancelled() => return Outcome::Interrupted { claimed, in_doubt: false },
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Delivers one conversation's messages in order. Every outcome is
    /// kept as unconfirmed and its status record enqueued; returns the
    /// enqueued records to await, and what else the batch must do.
    async fn deliver_conversation(
        &self,
        items: Vec<(usize, &Record, MessageId, pb::OutboundMessage)>,
    ) -> Delivered {
        let mut done = Delivered::default();
        for (index, record, id, message) in items {
            if done.store_down.is_some() {
                // Later messages of the conversation wait for the batch's retry.
                done.interrupted.push(Interrupted { id, release: false });
                continue;
            }
            let mut hop = hops::process(&self.tracer, record);
            hop.record(|| vec![attributes::platform(self.platform.as_str())]);
            let outcome = tokio::select! {
                () = self.shutdown.cancelled() => Outcome::Interrupted { claimed: false, in_doubt: false },
                // The semaphore is never closed: a permit always comes.
                _permit = self.in_flight.acquire() => {
                    self.deliver(id, &message, hop.context())
                        .instrument(hop.logs(&message.message_id))
                        .await
                }
            };
            let mut update = pb::StatusUpdate {
                message_id: message.message_id.clone(),
                conversation_id: message.conversation_id.clone(),
                status: 0,
                at: None,
                hop: HOP.to_owned(),
                platform: self.platform.as_str().to_owned(),
                platform_message_id: String::new(),
                failure: None,
                ..Default::default()
            };
            let mut dead_letter = None;
            match outcome {
                Outcome::Sent(accepted) => {
                    update.status = DeliveryStatus::Sent.to_proto().into();
                    update.at = Some(accepted.at.unwrap_or_else(|| Timestamp::now().into()));
                    update.platform_message_id = accepted.platform_message_id;
                }
                Outcome::Failed { failure, exhausted } => {
                    dead_letter = exhausted.then(|| failure.reason.clone());
                    update.status = DeliveryStatus::Failed.to_proto().into();
                    update.at = Some(Timestamp::now().into());
                    update.failure = Some(failure);
                }
                Outcome::Interrupted { claimed, in_doubt } => {
                    if in_doubt {
                        tracing::warn!(message_id = %id, "stopped while a platform call's outcome was in doubt; \
                            the claim stays for the next sidecar to settle");
                    }
                    done.interrupted.push(Interrupted {
                        id,
                        release: claimed && !in_doubt,
                    });
                    continue;
                }
                Outcome::NotOurs => {
                    match self.unconfirmed(&id) {
                        // Called by us, its status lost on the way: publish again.
                        Some(outcome) => {
                            metrics::counter!("chat4all_sidecar_status_republished_total", "platform" => self.platform.as_str())
                                .increment(1);
                            done.enqueued.push((id, self.publish(id, outcome).await));
                        }
                        // A redelivered record: the platform was called already.
                        None => {
                            metrics::counter!("chat4all_sidecar_redelivered_total", "platform" => self.platform.as_str())
                                .increment(1);
                            tracing::info!(message_id = %id, "already claimed, not sent again");
                        }
                    }
                    continue;
                }
                Outcome::NotFound => {
                    done.dead.push(DeadLetter {
                        index,
                        reason: format!("message {id} is not in the store"),
                    });
                    continue;
                }
                Outcome::StoreDown(error) => {
                    tracing::warn!(message_id = %id, %error, "store unavailable; the batch is retried");
                    done.interrupted.push(Interrupted { id, release: false });
                    done.store_down = Some(error);
                    continue;
                }
            }
            metrics::counter!("chat4all_sidecar_outcomes_total", "platform" => self.platform.as_str(),
                "status" => DeliveryStatus::from_proto(update.status).map_or("unknown", DeliveryStatus::as_str))
            .increment(1);
            let status = hops::send(
                &self.tracer,
                topics::STATUS_UPDATES,
                Some(hop.context()),
                &message.message_id,
            );
            let outcome = Unconfirmed {
                headers: hops::headers(&status, &update.message_id),
                update,
                dead_letter,
            };
            done.enqueued.push((id, self.publish(id, outcome).await));
        }
        done
    }

    /// Shutdown interrupted these: claims of messages not in doubt go back
    /// to the store so the redelivered records send them at once; a message
    /// whose call may have reached the platform keeps its claim, which its
    /// next holder settles when the lease runs out.
    async fn hand_back(&self, interrupted: &[Interrupted]) -> Result<(), HandlerError> {
        let release: Vec<MessageId> = interrupted.iter().filter(|i| i.release).map(|i| i.id).collect();
        self.store
            .release_claims(&release, &self.instance)
            .await
            .map_err(HandlerError::new)?;
        metrics::counter!("chat4all_sidecar_claims_released_total", "platform" => self.platform.as_str())
            .increment(release.len() as u64);
        Ok(())
    }
    /// Keeps the outcome until its status record is acked, and enqueues it.
    async fn publish(&self, id: MessageId, outcome: Unconfirmed) -> Result<Delivery, KafkaError> {
        let enqueued = self
            .producer
            .enqueue(
                topics::STATUS_UPDATES,
                &outcome.update.conversation_id,
                &outcome.update.encode_to_vec(),
                &outcome.headers,
            )
            .await;
        self.unconfirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, outcome);
        enqueued
    }

    /// The outcome of a platform call made earlier by this process whose
    /// status record was never acked.
    fn unconfirmed(&self, id: &MessageId) -> Option<Unconfirmed> {
        self.unconfirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn confirmed(&self, id: &MessageId) {
        self.unconfirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// What a conversation's deliveries left to do.
#[derive(Default)]
struct Delivered {
    enqueued: Vec<(MessageId, Result<Delivery, KafkaError>)>,
    interrupted: Vec<Interrupted>,
    dead: Vec<DeadLetter>,
    store_down: Option<StoreError>,
}

/// A message the batch did not finish; `release`: its claim goes back.
struct Interrupted {
    id: MessageId,
    release: bool,
}

/// How a settled message ends; None: call the platform again.
fn settled_outcome(settled: Settled) -> Option<Outcome> {
    match settled {
        Settled::Sent(accepted) => Some(Outcome::Sent(accepted)),
        Settled::Unknown(failure) => Some(Outcome::Failed {
            failure,
            exhausted: false,
        }),
        Settled::Interrupted => Some(Outcome::Interrupted {
            claimed: true,
            in_doubt: true,
        }),
        Settled::CallAgain => None,
    }
}

/// What one Connector.Send answer means for the message.
#[derive(Debug, PartialEq)]
enum Answer {
    Sent(pb::SendAccepted),
    /// Never worth a retry.
    Refused(pb::Failure),
    /// The request may have reached the platform and no answer came back:
    /// settled before any retry (see `settle`).
    Ambiguous(pb::Failure),
    /// Worth another try, not before `retry_after` if given.
    Retry {
        failure: pb::Failure,
        retry_after: Option<Duration>,
        kind: FailureKind,
    },
}

/// Why a platform call failed, in as few values as an alert needs: the
/// platform's own codes are many, and appear only once seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    Permanent,
    Transient,
    RateLimited,
    /// The adapter failed, or answered nothing.
    Adapter,
    /// No answer after the request left: the platform may have acted.
    Ambiguous,
}

impl FailureKind {
    pub(crate) const ALL: [FailureKind; 5] = [
        FailureKind::Permanent,
        FailureKind::Transient,
        FailureKind::RateLimited,
        FailureKind::Adapter,
        FailureKind::Ambiguous,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailureKind::Permanent => "permanent",
            FailureKind::Transient => "transient",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::Adapter => "adapter",
            FailureKind::Ambiguous => "ambiguous",
        }
    }
}

/// Counts a failed platform call by the platform's code, and by kind,
/// whose series exist from start-up (see `register_series`).
fn count_failure(platform: &'static str, kind: FailureKind, code: &str) {
    metrics::counter!("chat4all_platform_errors_total", "platform" => platform, "code" => code.to_owned())
        .increment(1);
    metrics::counter!("chat4all_platform_call_failures_total", "platform" => platform, "kind" => kind.as_str())
        .increment(1);
}

fn classify(answer: Result<tonic::Response<pb::SendResponse>, tonic::Status>) -> Answer {
    match answer.map(|r| r.into_inner().result) {
        Ok(Some(send_response::Result::Accepted(accepted))) => Answer::Sent(accepted),
        Ok(Some(send_response::Result::Error(error))) => {
            let failure = pb::Failure {
                code: error.code,
                reason: error.message,
            };
            let retry_after = error.retry_after.and_then(|d| Duration::try_from(d).ok());
            match pb::PlatformErrorKind::try_from(error.kind) {
                Ok(pb::PlatformErrorKind::Permanent) => Answer::Refused(failure),
                Ok(pb::PlatformErrorKind::Ambiguous) => Answer::Ambiguous(failure),
                Ok(pb::PlatformErrorKind::RateLimited) => Answer::Retry {
                    failure,
                    retry_after,
                    kind: FailureKind::RateLimited,
                },
                _ => Answer::Retry {
                    failure,
                    retry_after,
                    kind: FailureKind::Transient,
                },
            }
        }
        Ok(None) => Answer::Retry {
            failure: pb::Failure {
                code: "empty_answer".into(),
                reason: "the adapter answered nothing".into(),
            },
            retry_after: None,
            kind: FailureKind::Adapter,
        },
        Err(status) => {
            let failure = pb::Failure {
                code: format!("adapter_{:?}", status.code()).to_lowercase(),
                reason: status.message().to_owned(),
            };
            if never_reached_the_adapter(&status) {
                // Down, or refused our request: as transient as a 5xx.
                Answer::Retry {
                    failure,
                    retry_after: None,
                    kind: FailureKind::Adapter,
                }
            } else {
                // Timed out or cut mid-call: the adapter may have called
                // the platform.
                Answer::Ambiguous(failure)
            }
        }
    }
}

/// Whether a failed Connector.Send certainly did not reach the adapter's
/// handler: no connection could be made, or the adapter refused the
/// request itself. tonic reports a connection that could not be made as
/// UNAVAILABLE with the connector's error in the message, and one cut
/// mid-call as UNAVAILABLE or UNKNOWN with the transport's.
fn never_reached_the_adapter(status: &tonic::Status) -> bool {
    use tonic::Code;
    match status.code() {
        Code::InvalidArgument
        | Code::FailedPrecondition
        | Code::Unimplemented
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::ResourceExhausted
        | Code::NotFound => true,
        Code::Unavailable => {
            let message = status.message().to_ascii_lowercase();
            [
                "tcp connect",
                "trying to connect",
                "connection refused",
                "dns error",
            ]
            .iter()
            .any(|sign| message.contains(sign))
        }
        _ => false,
    }
}

/// A platform call's outcome whose status record is not acked yet. A batch
/// retried after a failed publish finds its messages already claimed: this
/// is what lets it publish their outcome instead of losing it.
#[derive(Clone)]
struct Unconfirmed {
    update: pb::StatusUpdate,
    headers: RecordHeaders,
    /// Why the record goes to the dead-letter topic, when retries ran out.
    dead_letter: Option<String>,
}

impl BatchHandler for Sender {
    async fn handle(&self, batch: &[Record]) -> Result<Vec<DeadLetter>, HandlerError> {
        let mut dead = Vec::new();
        let mut decoded = Vec::with_capacity(batch.len());
        for (index, record) in batch.iter().enumerate() {
            let parsed = decode::<pb::OutboundMessage>(&record.payload).and_then(|m| {
                m.message_id
                    .parse::<MessageId>()
                    .map(|id| (id, m))
                    .map_err(|e| e.to_string())
            });
            match parsed {
                Ok((id, message)) => decoded.push((index, record, id, message)),
                Err(reason) => dead.push(DeadLetter { index, reason }),
            }
        }
        // By conversation, each conversation in offset order: each message
        // is claimed just before its call, so a claim is never held by a
        // message waiting its turn.
        let mut conversations: HashMap<String, Vec<_>> = HashMap::new();
        let mut indexes = HashMap::new();
        for (index, record, id, message) in decoded {
            indexes.insert(id, index);
            conversations
                .entry(message.conversation_id.clone())
                .or_default()
                .push((index, record, id, message));
        }
        let delivered = futures::future::join_all(
            conversations
                .into_values()
                .map(|items| self.deliver_conversation(items)),
        )
        .await;
        let mut enqueued = Vec::new();
        let mut interrupted = Vec::new();
        let mut store_down = None;
        for conversation in delivered {
            enqueued.extend(conversation.enqueued);
            interrupted.extend(conversation.interrupted);
            dead.extend(conversation.dead);
            store_down = store_down.or(conversation.store_down);
        }

        let mut failed = None;
        for (id, delivery) in enqueued {
            let acked = match delivery {
                Ok(delivery) => delivery.acked().await,
                Err(e) => Err(e),
            };
            match acked {
                Ok(()) => {
                    if let (Some(reason), Some(index)) = (
                        self.unconfirmed(&id).and_then(|o| o.dead_letter),
                        indexes.get(&id),
                    ) {
                        dead.push(DeadLetter {
                            index: *index,
                            reason,
                        });
                    }
                    self.confirmed(&id);
                }
                Err(error) => failed = Some(error),
            }
        }
        if !interrupted.is_empty() {
            self.hand_back(&interrupted).await?;
            // Not committed: the records come back after the restart, or
            // with the batch's retry once the store answers.
            return Err(HandlerError::new(match store_down {
                Some(error) => format!("store unavailable: {error}"),
                None => format!("{} messages interrupted by shutdown", interrupted.len()),
            }));
        }
        match failed {
            // The batch is retried; its outcomes are republished from memory.
            Some(error) => Err(HandlerError::new(format!("status not published: {error}"))),
            None => Ok(dead),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(
        kind: pb::PlatformErrorKind,
        retry_after_secs: Option<i64>,
    ) -> Result<tonic::Response<pb::SendResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::SendResponse {
            result: Some(send_response::Result::Error(pb::PlatformError {
                kind: kind.into(),
                code: "130429".into(),
                message: "slow down".into(),
                retry_after: retry_after_secs.map(prost_types_duration),
                http_status: 429,
            })),
        }))
    }

    fn prost_types_duration(seconds: i64) -> chat4all_proto::Duration {
        chat4all_proto::Duration { seconds, nanos: 0 }
    }

    #[test]
    fn permanent_refusals_fail_and_everything_else_retries() {
        assert!(
            matches!(classify(error(pb::PlatformErrorKind::Permanent, None)), Answer::Refused(f) if f.code == "130429")
        );
        assert_eq!(
            classify(error(pb::PlatformErrorKind::RateLimited, Some(7))),
            Answer::Retry {
                failure: pb::Failure {
                    code: "130429".into(),
                    reason: "slow down".into()
                },
                retry_after: Some(Duration::from_secs(7)),
                kind: FailureKind::RateLimited,
            }
        );
        assert!(matches!(
            classify(error(pb::PlatformErrorKind::Transient, None)),
            Answer::Retry {
                retry_after: None,
                kind: FailureKind::Transient,
                ..
            }
        ));
        assert!(matches!(
            classify(error(pb::PlatformErrorKind::Unspecified, None)),
            Answer::Retry { .. }
        ));
        assert!(matches!(
            classify(Err(tonic::Status::unavailable("connection refused"))),
            Answer::Retry { failure, kind: FailureKind::Adapter, .. } if failure.code == "adapter_unavailable"
        ));
        let sent = pb::SendAccepted {
            platform_message_id: "wamid.1".into(),
            at: None,
        };
        let ok = Ok(tonic::Response::new(pb::SendResponse {
            result: Some(send_response::Result::Accepted(sent.clone())),
        }));
        assert_eq!(classify(ok), Answer::Sent(sent));
    }
}
