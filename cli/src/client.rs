//! The `send`, `status` and `watch` commands: a gRPC client of the gateway
//! and how its answers are printed.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use chat4all_domain::{DeliveryStatus, Timestamp};
use chat4all_proto::v1::{
    self as pb, GetMessageRequest, SendMessageRequest, WatchMessagesRequest,
    messaging_service_client::MessagingServiceClient,
};
use tonic::transport::Channel;

pub async fn connect(gateway: &str) -> anyhow::Result<MessagingServiceClient<Channel>> {
    MessagingServiceClient::connect(gateway.to_owned())
        .await
        .with_context(|| format!("connecting to the gateway at {gateway}"))
}

/// Sends one message; returns its id.
pub async fn send(gateway: &str, request: SendMessageRequest) -> anyhow::Result<String> {
    let response = connect(gateway)
        .await?
        .send_message(request)
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?;
    Ok(response.into_inner().message_id)
}

/// Prints a message's timeline.
pub async fn status(gateway: &str, message_id: &str, dashboard: Option<&str>) -> anyhow::Result<String> {
    let response = connect(gateway)
        .await?
        .get_message(GetMessageRequest {
            message_id: message_id.to_owned(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?;
    let message = response
        .into_inner()
        .message
        .context("the gateway answered without a message")?;
    Ok(render_timeline(&message, dashboard))
}

fn status_name(value: i32) -> &'static str {
    DeliveryStatus::from_proto(value).map_or("UNSPECIFIED", DeliveryStatus::as_str)
}

fn format_time(t: Option<chat4all_proto::Timestamp>) -> String {
    let Some(t) = t else { return "-".to_owned() };
    let micros = Timestamp::from(t).as_micros();
    let at = UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0));
    humantime::format_rfc3339_micros(at).to_string()
}

/// The timeline as `chat4all status` prints it: each state, when, from
/// which hop, how long after the state before it; the trace id.
pub fn render_timeline(message: &pb::Message, dashboard: Option<&str>) -> String {
    let mut out = String::new();
    let recipient = message
        .recipient
        .as_ref()
        .map(|r| format!("{}:{}", r.platform, r.id))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "message {}  to {}  conversation {}",
        message.id, recipient, message.conversation_id
    );
    let _ = writeln!(out, "status  {}", status_name(message.status));
    let mut previous: Option<Timestamp> = None;
    for state in &message.timeline {
        let hop = message
            .history
            .iter()
            .find(|h| {
                h.status == state.status
                    && matches!(
                        pb::TransitionOutcome::try_from(h.outcome),
                        Ok(pb::TransitionOutcome::Applied | pb::TransitionOutcome::Backfilled)
                    )
            })
            .map_or("", |h| h.hop.as_str());
        let at = state.at.map(Timestamp::from);
        let delta = match (previous, at) {
            (Some(p), Some(a)) => format!("+{:.3} ms", a.micros_since(p) as f64 / 1000.0),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {:<10} {}  {:<12} {}",
            status_name(state.status),
            format_time(state.at),
            hop,
            delta
        );
        previous = at.or(previous);
    }
    if let Some(f) = &message.failure {
        let _ = writeln!(out, "failure {}: {}", f.code, f.reason);
    }
    if !message.platform_message_id.is_empty() {
        let _ = writeln!(out, "platform message id {}", message.platform_message_id);
    }
    let _ = writeln!(out, "trace   {}", message.trace_id);
    if let Some(base) = dashboard {
        let _ = writeln!(out, "        {}/{}", base.trim_end_matches('/'), message.trace_id);
    }
    out
}

/// Prints each event of a conversation (or channel) as it happens, until
/// the stream ends or `stop` resolves.
pub async fn watch(
    gateway: &str,
    scope: pb::watch_messages_request::Scope,
    mut on_event: impl FnMut(String),
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut stream = connect(gateway)
        .await?
        .watch_messages(WatchMessagesRequest { scope: Some(scope) })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
        .into_inner();
    tokio::pin!(stop);
    loop {
        let next = tokio::select! {
            () = &mut stop => return Ok(()),
            next = stream.message() => next,
        };
        match next.map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))? {
            Some(event) => on_event(render_event(&event)),
            None => return Ok(()),
        }
    }
}

pub fn render_event(event: &pb::MessageEvent) -> String {
    let kind = match pb::MessageEventKind::try_from(event.kind) {
        Ok(pb::MessageEventKind::Created) => "new",
        _ => "status",
    };
    let text = event
        .message
        .as_ref()
        .map(|m| format!("  {:?}", m.text))
        .unwrap_or_default();
    format!(
        "{} {:<6} {} {:<10} via {}{}",
        format_time(event.at),
        kind,
        event.message_id,
        status_name(event.status),
        event.hop,
        text
    )
}
