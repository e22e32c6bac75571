//! Building responses: JSON successes and problem+json failures.

use serde::Serialize;

use super::js;
use super::problem::ApiError;

pub fn problem(err: &ApiError, realm: &str) -> web_sys::Response {
    if let ApiError::Internal(msg) = err {
        // Server-side detail only; never contains a key secret (callers pass messages about
        // storage or config, not request input).
        worker::console_error!("internal error: {msg}");
    }
    js::respond(err.status(), Some(err.body()), "application/problem+json", err.challenge(realm), false)
}

pub fn json<T: Serialize>(status: u16, value: &T) -> web_sys::Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    js::respond(status, Some(body), "application/json", None, false)
}

/// For the responses that carry a plaintext key: never stored by any cache.
pub fn json_no_store<T: Serialize>(status: u16, value: &T) -> web_sys::Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    js::respond(status, Some(body), "application/json", None, true)
}

pub fn no_content() -> web_sys::Response {
    js::respond(204, None, "application/json", None, false)
}
