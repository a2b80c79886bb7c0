//! Calls to Chotot's chat-api internal endpoints, every one with the
//! `x-project-uuid` and `Service` headers chat-api authenticates callers by:
//!
//! - send: `POST /api/v1/internal/messages` with
//!   `{"channel_id","sender_id","message","type":"text"}`; the answer is
//!   `{"id","channel_id","created_at":<ms>}` (platform-apis.md leaves it
//!   open; the simulator and this client agree on that shape, and a 2xx
//!   whose body cannot be read is still a message chat-api took);
//! - history: `GET /api/v1/internal/user_channel/{user_id}/{channel_id}/messages?limit=N&before_ts=<ms>`,
//!   newest first;
//! - channel: `GET /api/v1/internal/channels/{channel_id}`;
//! - a user's listings: `GET /api/v1/internal/users/{user_id}/products?limit=N&page=P`
//!   (pages from 1), our path for the plan's `GetUserProducts`.
//!
//! Errors are `{"error":"<code>","message":"…"}` with the HTTP status
//! saying what kind: 429 (with `Retry-After`) is a rate limit, 5xx and no
//! answer are transient, every other 4xx is permanent. Ids are written into
//! paths as escaped segments, so a channel id cannot redirect a call.

use std::time::SystemTime;

use chat4all_adapter::http_client::send_json;
use chat4all_adapter::{HttpClientConfig, build_http_client, graph};
use chat4all_proto::v1 as pb;
use pb::PlatformErrorKind as Kind;
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::webhook::{Id, ms_to_timestamp};
use crate::{ChototConfig, ChototError, PLATFORM};

/// The header naming the project.
pub const PROJECT_HEADER: &str = "x-project-uuid";
/// The header naming the calling service.
pub const SERVICE_HEADER: &str = "service";

/// The body of a send, field for field.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SendBody<'a> {
    pub channel_id: &'a str,
    pub sender_id: &'a str,
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: Id,
    #[serde(default)]
    created_at: Option<i64>,
}

/// chat-api's error body.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct History {
    #[serde(default)]
    messages: Vec<HistoryMessage>,
}

#[derive(Debug, Deserialize)]
struct HistoryMessage {
    id: Id,
    channel_id: Id,
    sender_id: Id,
    #[serde(default)]
    sender_name: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    created_at: i64,
}

#[derive(Debug, Deserialize)]
struct Products {
    #[serde(default)]
    products: Vec<Product>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Debug, Deserialize)]
struct Product {
    id: Id,
    #[serde(default)]
    title: String,
    #[serde(default)]
    price: i64,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    image_url: String,
    #[serde(default)]
    url: String,
}

/// A page size when the caller gave none, and the most we ask for.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

fn limit(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    }
}

/// Calls chat-api as one project, service and sender.
#[derive(Debug, Clone)]
pub struct ChototClient {
    http: reqwest::Client,
    base: Url,
    project_uuid: String,
    service: String,
    sender_id: String,
}

struct Refusal {
    http_status: StatusCode,
    code: String,
    message: String,
    retry_after: Option<std::time::Duration>,
}

fn refusal(http_status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Refusal {
    let parsed = serde_json::from_slice::<ErrorBody>(body).unwrap_or_default();
    Refusal {
        http_status,
        code: parsed
            .error
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| format!("http_{}", http_status.as_u16())),
        message: parsed
            .message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("HTTP {http_status} without a chat-api error body")),
        retry_after: graph::retry_after(headers),
    }
}

/// Maps a refused send to a [`pb::PlatformError`].
pub fn send_error(http_status: StatusCode, headers: &HeaderMap, body: &[u8]) -> pb::PlatformError {
    let r = refusal(http_status, headers, body);
    let kind = if http_status == StatusCode::TOO_MANY_REQUESTS {
        Kind::RateLimited
    } else if http_status.is_server_error() || http_status == StatusCode::REQUEST_TIMEOUT {
        Kind::Transient
    } else {
        Kind::Permanent
    };
    pb::PlatformError {
        kind: kind as i32,
        code: r.code,
        message: r.message,
        retry_after: r
            .retry_after
            .filter(|_| kind == Kind::RateLimited)
            .and_then(graph::pb_duration),
        http_status: u32::from(http_status.as_u16()),
    }
}

impl ChototClient {
    /// A client for `config`'s project, with its timeout.
    pub fn new(config: &ChototConfig) -> Result<Self, ChototError> {
        let http = build_http_client(&HttpClientConfig::with_request_timeout(
            config.serve.request_timeout,
        ))?;
        let base = Url::parse(&config.serve.api_base_url).map_err(|_| ChototError::InvalidConfig {
            field: "api_base_url",
            reason: "must be an http(s) URL".to_owned(),
        })?;
        Ok(Self {
            http,
            base,
            project_uuid: config.project_uuid.expose().to_owned(),
            service: config.service.clone(),
            sender_id: config.sender_id.clone(),
        })
    }

    /// `{base}/api/v1/internal/<segments…>`, each segment escaped.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // Only a cannot-be-a-base URL (`mailto:`) has no segments, and the
        // configuration refuses those; the base is then used as is.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v1", "internal"])
                .extend(segments);
        }
        url
    }

    fn call(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header(PROJECT_HEADER, &self.project_uuid)
            .header(SERVICE_HEADER, &self.service)
    }

    /// Sends one text message into a channel as the configured sender;
    /// chat-api's refusal, or no answer, is the `Err`.
    pub async fn send_text(
        &self,
        request: &pb::SendRequest,
        traceparent: Option<&str>,
    ) -> Result<pb::SendAccepted, pb::PlatformError> {
        let body = SendBody {
            channel_id: request.recipient_id.trim(),
            sender_id: &self.sender_id,
            message: &request.text,
            kind: "text",
        };
        let call = self.call(reqwest::Method::POST, self.url(&["messages"]));
        let created = send_json(call, &body, traceparent, send_error)
            .await?
            .and_then(|b| serde_json::from_slice::<Created>(&b).ok());
        let (platform_message_id, at) = match created {
            Some(c) => (
                c.id.into_string(),
                c.created_at
                    .map_or_else(|| SystemTime::now().into(), ms_to_timestamp),
            ),
            None => {
                tracing::warn!(
                    message_id = %request.message_id,
                    "chotot accepted the message without a readable id"
                );
                (String::new(), SystemTime::now().into())
            }
        };
        Ok(pb::SendAccepted {
            platform_message_id,
            at: Some(at),
        })
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
    ) -> Result<T, ChototError> {
        let response = self
            .call(reqwest::Method::GET, url)
            .send()
            .await
            .map_err(|source| ChototError::Unreachable { operation, source })?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ChototError::Unreachable { operation, source })?;
        if !status.is_success() {
            let r = refusal(status, &headers, &bytes);
            return Err(ChototError::Refused {
                operation,
                http_status: r.http_status.as_u16(),
                code: r.code,
                message: r.message,
                retry_after: r.retry_after,
            });
        }
        serde_json::from_slice(&bytes).map_err(|source| ChototError::Unreadable { operation, source })
    }

    /// A channel's history as `user_id` sees it, newest first, strictly
    /// before `before` when given. `user_id` defaults to our sender.
    pub async fn list_messages(
        &self,
        request: &pb::ConnectorListMessagesRequest,
    ) -> Result<pb::ConnectorListMessagesResponse, ChototError> {
        let channel_id = required("vendor_channel_id", &request.vendor_channel_id)?;
        let user_id = match request.user_id.trim() {
            "" => self.sender_id.as_str(),
            user => user,
        };
        let mut url = self.url(&["user_channel", user_id, channel_id, "messages"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &limit(request.limit).to_string());
            if let Some(before) = request.before {
                query.append_pair("before_ts", &timestamp_to_ms(before).to_string());
            }
        }
        let history: History = self.get_json("message history", url).await?;
        let messages = history
            .messages
            .into_iter()
            .filter(|m| m.kind.as_deref().is_none_or(|k| k == "text"))
            .map(|m| {
                let sender_id = m.sender_id.into_string();
                pb::InboundMessage {
                    platform: PLATFORM.to_owned(),
                    vendor_channel_id: m.channel_id.into_string(),
                    from_us: sender_id == self.sender_id,
                    sender_id,
                    external_message_id: m.id.into_string(),
                    text: m.message,
                    at: Some(ms_to_timestamp(m.created_at)),
                    sender_name: m.sender_name.unwrap_or_default(),
                }
            })
            .collect();
        Ok(pb::ConnectorListMessagesResponse { messages })
    }

    /// A channel's name and metadata (the listing it is about, its members).
    pub async fn channel_info(
        &self,
        request: &pb::GetChannelInfoRequest,
    ) -> Result<pb::ChannelInfo, ChototError> {
        let channel_id = required("vendor_channel_id", &request.vendor_channel_id)?;
        let doc: serde_json::Map<String, serde_json::Value> = self
            .get_json("channel info", self.url(&["channels", channel_id]))
            .await?;
        Ok(channel_info(channel_id, doc))
    }

    /// One page (from 1) of a user's marketplace listings.
    pub async fn user_products(
        &self,
        request: &pb::ListUserProductsRequest,
    ) -> Result<pb::ListUserProductsResponse, ChototError> {
        let user_id = required("user_id", &request.user_id)?;
        let mut url = self.url(&["users", user_id, "products"]);
        url.query_pairs_mut()
            .append_pair("limit", &limit(request.limit).to_string())
            .append_pair("page", &request.page.max(1).to_string());
        let page: Products = self.get_json("user products", url).await?;
        Ok(pb::ListUserProductsResponse {
            products: page
                .products
                .into_iter()
                .map(|p| pb::Product {
                    id: p.id.into_string(),
                    title: p.title,
                    price: p.price,
                    currency: p.currency,
                    image_url: p.image_url,
                    url: p.url,
                })
                .collect(),
            has_more: page.has_more,
        })
    }
}

fn required<'a>(field: &'static str, value: &'a str) -> Result<&'a str, ChototError> {
    match value.trim() {
        "" => Err(ChototError::InvalidRequest {
            field,
            reason: "is required",
        }),
        v => Ok(v),
    }
}

fn timestamp_to_ms(t: chat4all_proto::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos) / 1_000_000)
}

/// A channel document into [`pb::ChannelInfo`]: `name` is the name, and
/// every other field (the legacy `item_name`, `item_price`,
/// `external_channel_id`, the members, and the entries of a `metadata`
/// object) goes into the metadata as text, so a field chat-api adds later
/// reaches the caller without a release of ours.
fn channel_info(channel_id: &str, doc: serde_json::Map<String, serde_json::Value>) -> pb::ChannelInfo {
    use serde_json::Value;
    fn text(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    let mut info = pb::ChannelInfo {
        vendor_channel_id: channel_id.to_owned(),
        ..Default::default()
    };
    for (key, value) in doc {
        match (key.as_str(), value) {
            ("id", v) => info.vendor_channel_id = text(&v),
            ("name", v) => info.name = text(&v),
            ("metadata", Value::Object(entries)) => {
                for (k, v) in entries {
                    info.metadata.insert(k, text(&v));
                }
            }
            (_, v) => {
                info.metadata.insert(key, text(&v));
            }
        }
    }
    info
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use reqwest::header::{HeaderValue, RETRY_AFTER};
    use serde_json::json;

    use super::*;

    #[test]
    fn urls_escape_ids_and_limits_are_bounded() {
        let client = ChototClient::new(&ChototConfig::default()).unwrap();
        assert_eq!(
            client.url(&["channels", "a/b?c"]).as_str(),
            "http://127.0.0.1:9100/api/v1/internal/channels/a%2Fb%3Fc"
        );
        assert_eq!((limit(0), limit(5), limit(1000)), (20, 5, 100));
        assert_eq!(
            timestamp_to_ms(chat4all_proto::Timestamp {
                seconds: 1_700_000_000,
                nanos: 250_000_000
            }),
            1_700_000_000_250
        );
    }

    #[test]
    fn send_refusals_map_by_status() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("9"));
        let e = send_error(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            br#"{"error":"rate_limited","message":"too many requests"}"#,
        );
        assert_eq!((e.kind(), e.code.as_str()), (Kind::RateLimited, "rate_limited"));
        assert_eq!(
            e.retry_after,
            Some(chat4all_proto::Duration { seconds: 9, nanos: 0 })
        );
        let e = send_error(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            br#"{"error":"not_found","message":"channel c-1 not found"}"#,
        );
        assert_eq!(
            (e.kind(), e.message.as_str(), e.http_status),
            (Kind::Permanent, "channel c-1 not found", 404)
        );
        let e = send_error(StatusCode::SERVICE_UNAVAILABLE, &headers, b"");
        assert_eq!((e.kind(), e.code.as_str()), (Kind::Transient, "http_503"));
        assert_eq!(e.retry_after, None, "only a rate limit says when to retry");
    }

    #[test]
    fn channel_documents_flatten_into_metadata() {
        let doc = json!({"id": "ch-1", "name": "Honda Vision 2020", "item_name": "Honda Vision",
            "item_price": 18_500_000, "members": ["5001", "9000001"], "metadata": {"ad_id": "ad-1"}});
        let serde_json::Value::Object(doc) = doc else {
            unreachable!()
        };
        let info = channel_info("ch-1", doc);
        assert_eq!(info.name, "Honda Vision 2020");
        assert_eq!(info.metadata["item_name"], "Honda Vision");
        assert_eq!(info.metadata["item_price"], "18500000");
        assert_eq!(info.metadata["members"], "5001,9000001");
        assert_eq!(info.metadata["ad_id"], "ad-1");
        assert!(!info.metadata.contains_key("id"));
    }
}
