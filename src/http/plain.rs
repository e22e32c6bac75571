//! Plain request and response types: what the handlers see and produce. The wasm glue converts
//! from and to the runtime's objects and nothing else, so handlers run natively in tests.

use serde::Serialize;

use super::body::path_of;
use super::problem::ApiError;

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The absolute URL as the runtime gives it.
    pub url: String,
    /// Lower-case names; a repeated header arrives joined with ", " (as fetch's Headers does).
    pub headers: Vec<(String, String)>,
    /// Already bounded by the glue (at most MAX_BODY_BYTES were read).
    pub body: Vec<u8>,
    /// Request id: the platform's (cf-ray) or one the glue generated.
    pub id: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        path_of(&self.url)
    }

    /// Builder for tests and the glue.
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.into(),
            url: url.into(),
            ..Request::default()
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// Empty for 204.
    pub body: String,
}

impl Response {
    pub fn json<T: Serialize>(status: u16, value: &T) -> Response {
        // Values built from serde_json::Value and plain structs cannot fail to serialise.
        let body = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
        Response {
            status,
            headers: vec![("content-type", "application/json".into())],
            body,
        }
    }

    /// For the responses that carry a plaintext key: never stored by any cache.
    pub fn json_no_store<T: Serialize>(status: u16, value: &T) -> Response {
        let mut r = Response::json(status, value);
        r.headers.push(("cache-control", "no-store".into()));
        r
    }

    pub fn no_content() -> Response {
        Response {
            status: 204,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// RFC 9457 problem + RFC 6750 challenge, all decided by ApiError.
    pub fn problem(err: &ApiError, realm: &str) -> Response {
        Response::problem_for(err, realm, "")
    }

    /// The problem answer to request `request_id` (named in the body as `instance`). A 5xx is
    /// also logged, with the internal detail the body never carries.
    pub fn problem_for(err: &ApiError, realm: &str, request_id: &str) -> Response {
        let status = err.status();
        if status >= 500 {
            crate::log::answered(status, err.slug(), err.internal_detail().unwrap_or(""));
        }
        let mut headers = vec![("content-type", "application/problem+json".to_owned())];
        if let Some(www) = err.challenge(realm) {
            headers.push(("www-authenticate", www));
        }
        if let Some(secs) = err.retry_after() {
            headers.push(("retry-after", secs.to_string()));
        }
        if let ApiError::MethodNotAllowed(allow) = err {
            headers.push(("allow", allow.clone()));
        }
        if let ApiError::RateLimited(rl) = err {
            headers.push(("ratelimit-policy", rl.policy_header("key")));
            headers.push(("ratelimit", rl.exhausted_header("key")));
        }
        Response {
            status,
            headers,
            body: err.body_for(request_id),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (tests and the e2e client use this).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}
