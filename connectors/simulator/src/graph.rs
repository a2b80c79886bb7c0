//! Answers in the Meta Graph API's shape, shared by the Meta platforms
//! (WhatsApp now; Messenger and Instagram speak the same errors).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::json;

use crate::config::InjectedFailure;

/// A random `fbtrace_id`, as Meta attaches to every error.
pub(crate) fn fbtrace_id() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(23)
        .map(char::from)
        .collect()
}

/// `{"error":{"message":"(#code) …","type":"OAuthException","code":…,
/// "error_data":{…},"fbtrace_id":…}}`, with `Retry-After` when the failure
/// has one.
pub(crate) fn error(failure: &InjectedFailure, details: &str, messaging_product: Option<&str>) -> Response {
    let status = StatusCode::from_u16(failure.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut error = json!({
        "message": format!("(#{}) {}", failure.code, failure.message),
        "type": "OAuthException",
        "code": failure.code,
        "fbtrace_id": fbtrace_id(),
    });
    if let Some(product) = messaging_product {
        error["error_data"] = json!({"messaging_product": product, "details": details});
    }
    let mut response = (status, Json(json!({ "error": error }))).into_response();
    if let Some(retry_after) = failure.retry_after {
        let seconds = retry_after.as_secs().max(1);
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

/// HTTP 400, Graph 100: a parameter is missing or wrong.
pub(crate) fn invalid_parameter(message: &str) -> InjectedFailure {
    InjectedFailure {
        http_status: 400,
        code: 100,
        message: message.to_owned(),
        retry_after: None,
    }
}

/// HTTP 401, Graph 190: the access token is missing or wrong.
pub(crate) fn invalid_token() -> InjectedFailure {
    InjectedFailure {
        http_status: 401,
        code: 190,
        message: "Invalid OAuth access token - Cannot parse access token".to_owned(),
        retry_after: None,
    }
}
