//! Serving the webhook routes to the internet, where a client may be slow,
//! silent or many on purpose: each connection must cost a bounded time and
//! there must be a bounded number of them, or a few hundred idle sockets
//! hold the adapter's file descriptors for as long as they like.
//!
//! `axum::serve` offers none of the knobs, so this module runs its own
//! accept loop and drives hyper's HTTP/1 connections itself:
//! - at most `max_connections` at once (a semaphore); one more is accepted
//!   and closed at once, so the platform retries instead of waiting in the
//!   backlog behind stalled clients;
//! - hyper's header read timeout, whose clock runs from the moment hyper
//!   waits for a request (the accept, or the previous answer on a kept-alive
//!   connection) until its headers are complete;
//! - tower-http's request timeout, started when the headers are complete:
//!   the handler reads the whole body before answering, so this bounds the
//!   body's arrival (a late body is answered 408 and the connection closed);
//! - an idle timeout on the socket itself: nothing read or written for that
//!   long closes the connection, which also covers a client that stopped
//!   reading our answers (no HTTP timer runs while hyper waits to write).
//!
//! Each cut-off costs a counter, `chat4all_adapter_webhook_connections_dropped_total`
//! by platform and reason, and at most one WARN line per [`SUMMARY_EVERY`]
//! summing them up: a flood of hostile clients must not become a flood of
//! log lines.
//!
//! Shutdown stops accepting, asks every connection to finish its request
//! in flight and close (hyper's graceful shutdown), and returns when all
//! have; the caller bounds that wait with its drain timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::TimeoutLayer;

/// How often, at most, the server logs the clients it cut off.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(30);

const DROPPED_METRIC: &str = "chat4all_adapter_webhook_connections_dropped_total";

/// How much the webhook server grants each client; every adapter takes
/// these as flags (see [`AdapterArgs`](crate::AdapterArgs)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct WebhookLimits {
    /// How long a webhook client has to send a request's headers, counted
    /// from when the server starts waiting for the request: the accept, or
    /// the answer to the previous request on a kept-alive connection, so it
    /// also bounds how long a kept-alive connection waits for its next
    /// request. 10 s is ample for a few kilobytes of headers.
    #[arg(
        long = "webhook-header-timeout",
        env = "CHAT4ALL_WEBHOOK_HEADER_TIMEOUT",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    pub header_timeout: Duration,
    /// How long a webhook's whole body may take to arrive once its headers
    /// are in (answered 408 and closed otherwise). 30 s: platforms' webhooks
    /// are kilobytes, and Meta gives up on an answer after about 20 s anyway.
    #[arg(
        long = "webhook-body-timeout",
        env = "CHAT4ALL_WEBHOOK_BODY_TIMEOUT",
        default_value = "30s",
        value_parser = humantime::parse_duration
    )]
    pub body_timeout: Duration,
    /// How long a webhook connection may sit with nothing read or written
    /// before it is closed: a silent client, one that stopped reading our
    /// answers. 60 s, the idle timeout of common load balancers. A
    /// kept-alive connection waiting for its next request is closed by the
    /// shorter of this and the header timeout (hyper's header clock runs
    /// while it waits).
    #[arg(
        long = "webhook-idle-timeout",
        env = "CHAT4ALL_WEBHOOK_IDLE_TIMEOUT",
        default_value = "60s",
        value_parser = humantime::parse_duration
    )]
    pub idle_timeout: Duration,
    /// How many webhook connections are served at once; one more is closed
    /// as soon as it is accepted. 1,024: far more than a platform's
    /// deliveries need; give the process a file limit (`ulimit -n`) above it.
    #[arg(
        long = "webhook-max-connections",
        env = "CHAT4ALL_WEBHOOK_MAX_CONNECTIONS",
        default_value_t = 1_024
    )]
    pub max_connections: usize,
}

impl Default for WebhookLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1_024,
        }
    }
}

/// Why the server cut a client off; the metric's `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dropped {
    ConnectionLimit,
    HeaderTimeout,
    BodyTimeout,
    IdleTimeout,
}

impl Dropped {
    const ALL: [Self; 4] = [
        Self::ConnectionLimit,
        Self::HeaderTimeout,
        Self::BodyTimeout,
        Self::IdleTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::ConnectionLimit => "connection_limit",
            Self::HeaderTimeout => "header_timeout",
            Self::BodyTimeout => "body_timeout",
            Self::IdleTimeout => "idle_timeout",
        }
    }
}

/// The counter of cut-offs, and what the next summary line will say.
#[derive(Debug)]
struct Tally {
    platform: &'static str,
    since_summary: [AtomicU64; Dropped::ALL.len()],
}

impl Tally {
    /// Registers every reason at 0, so a dashboard sees the series (and an
    /// alert on its rate works) before the first hostile client.
    fn new(platform: &'static str) -> Self {
        metrics::describe_counter!(
            DROPPED_METRIC,
            metrics::Unit::Count,
            "Webhook connections the adapter cut off: refused over the connection cap, \
             or closed for sending headers or body too slowly or for sitting idle"
        );
        for reason in Dropped::ALL {
            metrics::counter!(DROPPED_METRIC, "platform" => platform, "reason" => reason.label())
                .increment(0);
        }
        Self {
            platform,
            since_summary: Default::default(),
        }
    }

    fn record(&self, reason: Dropped) {
        metrics::counter!(DROPPED_METRIC, "platform" => self.platform, "reason" => reason.label())
            .increment(1);
        self.since_summary[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One line for everything cut off since the last one, if anything was.
    fn summarise(&self) {
        let [connection_limit, header_timeout, body_timeout, idle_timeout] =
            Dropped::ALL.map(|reason| self.since_summary[reason as usize].swap(0, Ordering::Relaxed));
        if connection_limit + header_timeout + body_timeout + idle_timeout > 0 {
            tracing::warn!(
                platform = self.platform,
                connection_limit,
                header_timeout,
                body_timeout,
                idle_timeout,
                "webhook clients cut off since the last summary"
            );
        }
    }
}

/// Serves `router` on `listener` within `limits` until `stop` fires, then
/// waits for the connections to finish their requests in flight.
pub(crate) async fn serve(
    platform: &'static str,
    listener: TcpListener,
    router: Router,
    limits: WebhookLimits,
    stop: CancellationToken,
) {
    let tally = Arc::new(Tally::new(platform));
    let service = TowerToHyperService::new(bounded_requests(router, limits.body_timeout, &tally));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut summary = tokio::time::interval_at(Instant::now() + SUMMARY_EVERY, SUMMARY_EVERY);
    summary.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            _ = summary.tick() => {
                tally.summarise();
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                accept_failed(platform, error).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tally.record(Dropped::ConnectionLimit);
            drop(stream);
            continue;
        };
        let connection = Connection {
            http: http.clone(),
            service: service.clone(),
            idle_timeout: limits.idle_timeout,
            tally: Arc::clone(&tally),
            stop: stop.clone(),
            _permit: permit,
        };
        connections.spawn(connection.serve(stream));
    }

    // New clients are refused by the kernel from here on, not left waiting
    // in a backlog nobody accepts from.
    drop(listener);
    connections.close();
    tracing::debug!(platform, open = connections.len(), "webhook server draining");
    connections.wait().await;
    tally.summarise();
}

/// The routes with the body timeout around them, counted when it fires.
fn bounded_requests(router: Router, body_timeout: Duration, tally: &Arc<Tally>) -> Router {
    let tally = Arc::clone(tally);
    // The routes never answer 408 themselves: one here is the timeout's.
    let count_timeouts = axum::middleware::map_response(move |response: Response| {
        if response.status() == StatusCode::REQUEST_TIMEOUT {
            tally.record(Dropped::BodyTimeout);
        }
        std::future::ready(response)
    });
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            body_timeout,
        ))
        .layer(count_timeouts)
}

/// Errors the kernel reports about one client are that client's business;
/// anything else (out of file descriptors, mostly) would fail again at once,
/// so the loop pauses rather than spinning, as hyper's and axum's do.
async fn accept_failed(platform: &'static str, error: io::Error) {
    let about_one_client = matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    );
    if !about_one_client {
        tracing::warn!(platform, %error, "webhook accept failed, pausing");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One accepted client, holding its place under the connection cap until
/// it is done.
struct Connection {
    http: http1::Builder,
    service: TowerToHyperService<Router>,
    idle_timeout: Duration,
    tally: Arc<Tally>,
    stop: CancellationToken,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let activity = Activity::new();
        let io = TokioIo::new(Watched {
            stream,
            activity: Arc::clone(&activity),
        });
        let connection = self.http.serve_connection(io, self.service);
        tokio::pin!(connection);
        let mut draining = false;
        let served = loop {
            tokio::select! {
                served = connection.as_mut() => break served,
                () = activity.idle_for(self.idle_timeout) => {
                    // Dropping the connection closes the socket.
                    self.tally.record(Dropped::IdleTimeout);
                    return;
                }
                () = self.stop.cancelled(), if !draining => {
                    draining = true;
                    // Closes an idle connection now, a busy one after its answer.
                    connection.as_mut().graceful_shutdown();
                }
            }
        };
        match served {
            Ok(()) => {}
            Err(error) if error.is_timeout() => self.tally.record(Dropped::HeaderTimeout),
            // Malformed requests and resets are the client's; hyper has
            // already answered what deserved an answer.
            Err(error) => tracing::debug!(platform = self.tally.platform, %error, "webhook connection ended"),
        }
    }
}

/// When a connection last moved a byte either way.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Milliseconds after `opened`; an atomic so the I/O never waits on the
    /// timer's reads.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// The client's socket, noting in [`Activity`] every byte that moves.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn activity_pushes_the_idle_deadline_back() {
        let activity = Activity::new();
        let idle = Duration::from_secs(10);
        let started = Instant::now();
        tokio::time::advance(Duration::from_secs(6)).await;
        activity.touch();
        activity.idle_for(idle).await;
        assert_eq!(started.elapsed(), Duration::from_secs(16));
    }

    #[test]
    fn the_summary_starts_afresh_after_each_line() {
        let tally = Tally::new("fake");
        tally.record(Dropped::IdleTimeout);
        tally.record(Dropped::IdleTimeout);
        tally.record(Dropped::ConnectionLimit);
        let counts = || Dropped::ALL.map(|r| tally.since_summary[r as usize].load(Ordering::Relaxed));
        assert_eq!(counts(), [1, 0, 0, 2]);
        tally.summarise();
        assert_eq!(counts(), [0, 0, 0, 0]);
    }
}
