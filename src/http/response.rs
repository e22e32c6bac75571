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
    let www = err.challenge(realm).unwrap_or_default();
    js::respond(err.status(), &err.body(), "application/problem+json", &www, false)
}

/// The most frequent refusal, with body and challenge built once per isolate.
pub struct Canned {
    body: String,
    www: String,
}

impl Canned {
    pub fn invalid_token(realm: &str) -> Canned {
        let e = ApiError::InvalidToken;
        Canned {
            body: e.body(),
            www: e.challenge(realm).unwrap_or_default(),
        }
    }

    pub fn respond(&self) -> web_sys::Response {
        js::respond(401, &self.body, "application/problem+json", &self.www, false)
    }
}

pub fn json<T: Serialize>(status: u16, value: &T) -> web_sys::Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    js::respond(status, &body, "application/json", "", false)
}

/// For the responses that carry a plaintext key: never stored by any cache.
pub fn json_no_store<T: Serialize>(status: u16, value: &T) -> web_sys::Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    js::respond(status, &body, "application/json", "", true)
}

pub fn no_content() -> web_sys::Response {
    js::respond(204, "", "application/json", "", false)
}
