//! What a failed platform call means, for the Meta Graph API (WhatsApp,
//! Messenger, Instagram share its error body) and for any HTTP call that got
//! no answer at all.
//!
//! The kind decides what the sidecar does, so the rules are explicit and in
//! one place: a rate-limit code or HTTP 429 is RATE_LIMITED (with the
//! `Retry-After` header when given), a 5xx, a "temporarily unavailable" code,
//! a timeout or a connection failure is TRANSIENT, and every other 4xx is
//! PERMANENT (unknown recipient, unsupported type, invalid parameter): a
//! retry would get the same answer.

use std::error::Error as _;
use std::time::Duration;

use chat4all_proto::v1 as pb;
use pb::PlatformErrorKind as Kind;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;

/// Graph codes that mean "too many calls": 4 (app), 613 (calls per page),
/// 80007 (WhatsApp account), 130429 (throughput), 131048 (spam rate),
/// 131056 (pair rate: one user too often).
pub const RATE_LIMIT_CODES: &[i64] = &[4, 613, 80007, 130429, 131048, 131056];

/// Graph codes that mean "try again": 1 (unknown, possibly temporary),
/// 2 (service temporarily unavailable), 131000 (something went wrong),
/// 131016 (service overloaded).
pub const TRANSIENT_CODES: &[i64] = &[1, 2, 131000, 131016];

/// WhatsApp allows about one message every 6 s to one user: a 131056
/// without `Retry-After` waits that long.
const PAIR_RATE_WAIT: Duration = Duration::from_secs(6);

#[derive(Debug, Deserialize)]
struct Envelope {
    error: GraphError,
}

/// The `error` object of a Graph API answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

/// `error.error_data`; WhatsApp puts its human explanation in `details`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

/// Classifies by Graph code first (a rate limit may come with a 400), then by
/// HTTP status.
pub fn classify(http_status: StatusCode, code: Option<i64>) -> Kind {
    match code {
        Some(c) if RATE_LIMIT_CODES.contains(&c) => return Kind::RateLimited,
        Some(c) if TRANSIENT_CODES.contains(&c) => return Kind::Transient,
        _ => {}
    }
    if http_status == StatusCode::TOO_MANY_REQUESTS {
        Kind::RateLimited
    } else if http_status.is_server_error() || http_status == StatusCode::REQUEST_TIMEOUT {
        Kind::Transient
    } else {
        Kind::Permanent
    }
}

/// Maps a non-2xx Graph answer to a [`pb::PlatformError`]. A body that is not
/// a Graph error (a proxy's HTML page) still maps, by HTTP status, with code
/// `http_<status>`.
pub fn graph_error(http_status: StatusCode, headers: &HeaderMap, body: &[u8]) -> pb::PlatformError {
    let graph = serde_json::from_slice::<Envelope>(body).ok().map(|e| e.error);
    let code = graph.as_ref().and_then(|g| g.code);
    let kind = classify(http_status, code);
    let mut retry_after = retry_after(headers);
    if kind == Kind::RateLimited && retry_after.is_none() && code == Some(131056) {
        retry_after = Some(PAIR_RATE_WAIT);
    }
    let message = match &graph {
        Some(g) => describe(g),
        None => format!("HTTP {http_status} without a Graph error body"),
    };
    if let Some(g) = &graph {
        tracing::debug!(
            http_status = http_status.as_u16(),
            code = g.code,
            fbtrace_id = g.fbtrace_id.as_deref().unwrap_or(""),
            "graph api error"
        );
    }
    pb::PlatformError {
        kind: kind as i32,
        code: code.map_or_else(|| format!("http_{}", http_status.as_u16()), |c| c.to_string()),
        message,
        retry_after: retry_after.and_then(pb_duration),
        http_status: u32::from(http_status.as_u16()),
    }
}

fn describe(g: &GraphError) -> String {
    let details = g
        .error_data
        .as_ref()
        .and_then(|d| d.details.as_deref())
        .filter(|d| !d.is_empty());
    match details {
        Some(details) if !g.message.contains(details) => format!("{}: {details}", g.message),
        _ => g.message.clone(),
    }
}

/// `Retry-After` in seconds. The HTTP-date form is not used by these
/// platforms and is ignored.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// Maps a call that got no HTTP answer: TRANSIENT with code `timeout`,
/// `connect` or `transport`. The message walks the error's sources and
/// leaves out the URL, which may carry a token (Messenger's
/// `?access_token=`).
pub fn transport_error(err: &reqwest::Error) -> pb::PlatformError {
    let (code, what) = if err.is_timeout() {
        ("timeout", "the platform did not answer in time")
    } else if err.is_connect() {
        ("connect", "cannot connect to the platform")
    } else if err.is_decode() || err.is_body() {
        ("transport", "the platform's answer was cut short")
    } else {
        ("transport", "the platform call failed")
    };
    let mut message = what.to_owned();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    // Only a connection never made certainly sent nothing; a timeout or a
    // broken connection may have come after the platform took the request.
    let kind = if err.is_connect() {
        Kind::Transient
    } else {
        Kind::Ambiguous
    };
    pb::PlatformError {
        kind: kind as i32,
        code: code.to_owned(),
        message,
        retry_after: None,
        http_status: 0,
    }
}

/// A std duration as a protobuf one.
pub fn pb_duration(d: Duration) -> Option<chat4all_proto::Duration> {
    chat4all_proto::Duration::try_from(d).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn body(code: i64, message: &str, details: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"error": {
            "message": message, "type": "OAuthException", "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}}))
        .unwrap()
    }

    fn retry(secs: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(secs).unwrap());
        h
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let e = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            &retry("7"),
            &body(
                130429,
                "(#130429) Rate limit hit",
                "Cloud API message throughput has been reached.",
            ),
        );
        assert_eq!(e.kind(), Kind::RateLimited);
        assert_eq!(e.code, "130429");
        assert_eq!(e.http_status, 429);
        assert_eq!(
            e.retry_after,
            Some(chat4all_proto::Duration { seconds: 7, nanos: 0 })
        );
        assert!(e.message.contains("throughput"), "{}", e.message);

        // A rate-limit code wins over the HTTP status it came with.
        for code in [4, 613, 80007, 131056] {
            let e = graph_error(
                StatusCode::BAD_REQUEST,
                &HeaderMap::new(),
                &body(code, "limit", ""),
            );
            assert_eq!(e.kind(), Kind::RateLimited, "{code}");
        }
        let pair = graph_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &body(131056, "pair", ""),
        );
        assert_eq!(
            pair.retry_after,
            Some(chat4all_proto::Duration { seconds: 6, nanos: 0 })
        );
        // A bare 429 with no body.
        let bare = graph_error(StatusCode::TOO_MANY_REQUESTS, &retry("2"), b"");
        assert_eq!((bare.kind(), bare.code.as_str()), (Kind::RateLimited, "http_429"));
        assert_eq!(
            bare.retry_after,
            Some(chat4all_proto::Duration { seconds: 2, nanos: 0 })
        );
    }

    #[test]
    fn server_errors_are_transient_and_client_errors_permanent() {
        let e = graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            b"<html>oops</html>",
        );
        assert_eq!(
            (e.kind(), e.code.as_str(), e.http_status),
            (Kind::Transient, "http_500", 500)
        );
        let e = graph_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &body(2, "Service temporarily unavailable", ""),
        );
        assert_eq!(e.kind(), Kind::Transient);

        let e = graph_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            &body(
                131026,
                "(#131026) Message undeliverable",
                "Recipient is not a valid WhatsApp user",
            ),
        );
        assert_eq!(
            (e.kind(), e.code.as_str(), e.http_status),
            (Kind::Permanent, "131026", 400)
        );
        assert_eq!(
            e.message,
            "(#131026) Message undeliverable: Recipient is not a valid WhatsApp user"
        );
        assert_eq!(e.retry_after, None);
        for code in [131051, 100, 551, 190] {
            let e = graph_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), &body(code, "no", ""));
            assert_eq!(e.kind(), Kind::Permanent, "{code}");
        }
        let e = graph_error(StatusCode::NOT_FOUND, &HeaderMap::new(), b"not json");
        assert_eq!((e.kind(), e.code.as_str()), (Kind::Permanent, "http_404"));
    }
}
