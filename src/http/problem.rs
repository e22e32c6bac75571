//! ApiError: the one place that turns a failure into an HTTP status, an RFC 9457 problem body and,
//! for authentication failures, an RFC 6750 `WWW-Authenticate` challenge.

use serde_json::{json, Map, Value};

use crate::core::key::Environment;
use crate::core::scope::{printable, ScopeError};
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// No credentials at all (or not Bearer): challenge without an error code (RFC 6750 §3.1).
    MissingCredentials(&'static str),
    /// Malformed auth request: two Authorization values, token in the query, empty token.
    InvalidAuthRequest(&'static str),
    /// Malformed, unknown, revoked or expired key: one answer for all, so none can be told apart.
    InvalidToken,
    /// Key valid but lacks scopes; `scope_attr` is the space-separated requirement.
    InsufficientScope {
        scope_attr: String,
    },
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// A key tried to grant scopes it does not hold.
    ScopeEscalation {
        scopes: Vec<String>,
    },
    WorkspaceForbidden,
    /// A key tried to change a key whose scopes it does not hold.
    Outranked {
        scopes: Vec<String>,
    },
    /// An expiring key tried to set a later expiry (or none); `limit` is its own, RFC 3339.
    ExpiryBeyondCaller {
        limit: String,
    },
    /// A key of the other environment on a route restricted to one (config/policy.json).
    WrongEnvironment {
        accepted: Environment,
    },
    /// A test key tried to issue or change a live key.
    EnvironmentForbidden,
    /// An admin action that only the root token may take (the detail says which).
    RootOnly(&'static str),
    /// A key tried to change membership of a group it does not belong to.
    GroupForbidden {
        group: String,
    },
    NotFound(&'static str),
    NoRoute,
    AmbiguousPath,
    /// A `_method` query parameter (an origin could run another method than the one authorised).
    MethodOverride,
    /// The path exists under other methods, listed for the `Allow` header (RFC 9110 §15.5.6).
    MethodNotAllowed(String),
    Conflict {
        slug: &'static str,
        detail: String,
    },
    PayloadTooLarge,
    UnsupportedMediaType,
    /// The key's own rate limit is spent for this window.
    RateLimited(crate::core::ratelimit::RateLimit),
    /// This client sent too many invalid keys; refused before any key is looked at.
    Throttled {
        period: u32,
    },
    /// A metered route's credits are spent: the workspace's balance or the key's cap (`limit`)
    /// has `remaining` < `cost`. 402, not 429: waiting does not help unless a refill is due
    /// (then `refill_at` and Retry-After say when); a top-up does. Clients and proxies retry 429s
    /// on their own, which here would only load the counter.
    CreditsExhausted {
        limit: &'static str,
        remaining: i64,
        cost: i64,
        /// RFC 3339.
        refill_at: Option<String>,
        retry_after: Option<u64>,
    },
    /// A storage write failed part-way; `detail` says what state it left.
    Unavailable {
        slug: &'static str,
        detail: String,
    },
    BadGateway,
    /// Logged server-side only; the caller sees a generic 500.
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A rejected input: which field, and why (a message already fit to show the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> ApiError {
        ApiError::field(e.field, e.message)
    }
}

/// `validate::key_name(n).field("name")?`: names the field a validation message is about.
pub trait FieldExt<T> {
    fn field(self, name: &'static str) -> Result<T, Invalid>;
}

impl<T> FieldExt<T> for Result<T, String> {
    fn field(self, name: &'static str) -> Result<T, Invalid> {
        self.map_err(|message| Invalid { field: name, message })
    }
}

impl<T> FieldExt<T> for Result<T, ScopeError> {
    fn field(self, name: &'static str) -> Result<T, Invalid> {
        self.map_err(|e| Invalid {
            field: name,
            message: e.0,
        })
    }
}

/// Storage failures as the caller sees them. Handlers that know more about what a failed write
/// left behind (see app::sync) answer with their own, more precise Unavailable detail.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NameTaken => ApiError::Conflict {
                slug: "name-conflict",
                detail: "A key or preset with this name already exists in the workspace.".into(),
            },
            StoreError::Unavailable(_) => ApiError::Unavailable {
                slug: "store-unavailable",
                detail: "The key database is unavailable; nothing was changed. Retry.".into(),
            },
            StoreError::Corrupt(msg) => ApiError::Internal(format!("stored data: {msg}")),
        }
    }
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::BadRequest {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError {
                field: field.into(),
                message,
            }],
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::MissingCredentials(_) | ApiError::InvalidToken => 401,
            ApiError::InvalidAuthRequest(_)
            | ApiError::BadRequest { .. }
            | ApiError::AmbiguousPath
            | ApiError::MethodOverride => 400,
            ApiError::InsufficientScope { .. }
            | ApiError::ScopeEscalation { .. }
            | ApiError::WorkspaceForbidden
            | ApiError::Outranked { .. }
            | ApiError::ExpiryBeyondCaller { .. }
            | ApiError::WrongEnvironment { .. }
            | ApiError::EnvironmentForbidden
            | ApiError::RootOnly(_)
            | ApiError::GroupForbidden { .. } => 403,
            ApiError::CreditsExhausted { .. } => 402,
            ApiError::NotFound(_) | ApiError::NoRoute => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict { .. } => 409,
            ApiError::PayloadTooLarge => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::RateLimited(_) | ApiError::Throttled { .. } => 429,
            ApiError::Internal(_) => 500,
            ApiError::BadGateway => 502,
            ApiError::Unavailable { .. } => 503,
        }
    }

    /// Seconds for a `Retry-After` header, where the failure is worth retrying soon.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Unavailable { .. } => Some(1),
            ApiError::RateLimited(rl) => Some(u64::from(rl.period)),
            ApiError::Throttled { period } => Some(u64::from(*period)),
            ApiError::CreditsExhausted { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The `WWW-Authenticate` value, if this failure carries a challenge.
    pub fn challenge(&self, realm: &str) -> Option<String> {
        match self {
            ApiError::MissingCredentials(_) => Some(format!("Bearer realm=\"{realm}\"")),
            ApiError::InvalidAuthRequest(desc) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"invalid_request\", error_description=\"{desc}\""
            )),
            ApiError::InvalidToken => Some(format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"The access token is invalid\""
            )),
            ApiError::InsufficientScope { scope_attr } => Some(format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{scope_attr}\""
            )),
            _ => None,
        }
    }

    /// RFC 9457 body without `instance`. `type` is a URN per problem kind; extension members are
    /// snake_case.
    pub fn body(&self) -> String {
        self.body_for("")
    }

    /// The `type` slug (`urn:keyward:problem:<slug>`); log lines name the outcome with it.
    pub fn slug(&self) -> &'static str {
        self.parts().0
    }

    /// What the logs get and the caller never does: the internal cause of a 500.
    pub fn internal_detail(&self) -> Option<&str> {
        match self {
            ApiError::Internal(msg) => Some(msg),
            _ => None,
        }
    }

    /// RFC 9457 body of the answer to request `request_id`, which it names as `instance`
    /// (`urn:keyward:request:<id>`, the value of the X-Request-Id response header) so a caller can
    /// quote it and an operator find the request's log lines. No `instance` when the id is empty.
    pub fn body_for(&self, request_id: &str) -> String {
        let (slug, title, detail) = self.parts();
        let mut obj = Map::new();
        obj.insert("type".into(), json!(format!("urn:keyward:problem:{slug}")));
        obj.insert("title".into(), json!(title));
        obj.insert("status".into(), json!(self.status()));
        obj.insert("detail".into(), json!(detail));
        if !request_id.is_empty() {
            obj.insert("instance".into(), json!(instance(request_id)));
        }
        match self {
            ApiError::BadRequest { errors, .. } if !errors.is_empty() => {
                let list: Vec<Value> = errors
                    .iter()
                    .map(|e| json!({"field": printable(&e.field), "message": printable_long(&e.message)}))
                    .collect();
                obj.insert("errors".into(), Value::Array(list));
            }
            ApiError::InsufficientScope { scope_attr } => {
                obj.insert(
                    "scopes".into(),
                    json!(scope_attr.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>()),
                );
            }
            ApiError::ScopeEscalation { scopes } | ApiError::Outranked { scopes } => {
                obj.insert("scopes".into(), json!(scopes));
            }
            ApiError::WrongEnvironment { accepted } => {
                obj.insert("environment".into(), json!(accepted.as_str()));
            }
            ApiError::CreditsExhausted {
                limit,
                remaining,
                cost,
                refill_at,
                ..
            } => {
                obj.insert("limit".into(), json!(limit));
                obj.insert("remaining".into(), json!(remaining));
                obj.insert("cost".into(), json!(cost));
                obj.insert("refill_at".into(), json!(refill_at));
            }
            _ => {}
        }
        Value::Object(obj).to_string()
    }

    /// (type slug, title, detail) of the body.
    fn parts(&self) -> (&'static str, &'static str, String) {
        match self {
            ApiError::MissingCredentials(d) => ("missing-credentials", "Authentication required", (*d).into()),
            ApiError::InvalidAuthRequest(d) => ("invalid-request", "Invalid authorization request", (*d).into()),
            ApiError::InvalidToken => ("invalid-token", "Invalid token", "The access token is invalid.".into()),
            ApiError::InsufficientScope { .. } => (
                "insufficient-scope",
                "Insufficient scope",
                "The key lacks a scope this request requires.".into(),
            ),
            ApiError::BadRequest { detail, .. } => ("invalid-body", "Invalid request", printable_long(detail)),
            ApiError::ScopeEscalation { .. } => (
                "scope-escalation",
                "Scope escalation",
                "A key cannot grant scopes it does not hold.".into(),
            ),
            ApiError::WorkspaceForbidden => (
                "workspace-forbidden",
                "Workspace forbidden",
                "A key can only manage its own workspace.".into(),
            ),
            ApiError::Outranked { .. } => (
                "outranked",
                "Key outranks the caller",
                "A key can only change keys whose scopes it holds itself.".into(),
            ),
            ApiError::ExpiryBeyondCaller { limit } => (
                "expiry-beyond-caller",
                "Expiry beyond the caller's",
                format!("An expiring key cannot set an expiry later than its own ({limit}), nor none."),
            ),
            ApiError::WrongEnvironment { accepted } => (
                "wrong-environment",
                "Wrong key environment",
                format!("This route accepts only {} keys.", accepted.as_str()),
            ),
            ApiError::EnvironmentForbidden => (
                "environment-forbidden",
                "Environment forbidden",
                "A test key can only issue and change test keys.".into(),
            ),
            ApiError::RootOnly(d) => ("root-only", "Root token required", (*d).into()),
            ApiError::GroupForbidden { group } => (
                "group-forbidden",
                "Group forbidden",
                format!(
                    "A key can only add keys to, or remove them from, groups it belongs to (not '{}').",
                    printable(group)
                ),
            ),
            ApiError::NotFound(what) => ("not-found", "Not found", format!("No such {what}.")),
            ApiError::NoRoute => ("no-route", "Not found", "No route matches this method and path.".into()),
            ApiError::AmbiguousPath => (
                "ambiguous-path",
                "Ambiguous path",
                "The origin could read this path differently (encoded or lookalike separators, dot or empty segments, `;`); see docs/scopes.md.".into(),
            ),
            ApiError::MethodOverride => (
                "method-override",
                "Method override refused",
                "A _method query parameter could make the origin run another method than the one authorised.".into(),
            ),
            ApiError::MethodNotAllowed(allow) => (
                "method-not-allowed",
                "Method not allowed",
                format!("This path allows {allow} only."),
            ),
            ApiError::Conflict { slug, detail } => (*slug, "Conflict", printable_long(detail)),
            ApiError::PayloadTooLarge => (
                "payload-too-large",
                "Payload too large",
                format!(
                    "Request bodies are limited to {} bytes.",
                    crate::core::validate::MAX_BODY_BYTES
                ),
            ),
            ApiError::UnsupportedMediaType => (
                "unsupported-media-type",
                "Unsupported media type",
                "Send JSON (application/json).".into(),
            ),
            ApiError::RateLimited(rl) => (
                "rate-limited",
                "Too many requests",
                format!("This key may make {} requests per {} s; retry after the window.", rl.limit, rl.period),
            ),
            ApiError::Throttled { .. } => (
                "too-many-failures",
                "Too many requests",
                "Too many invalid keys were sent from this address; retry later.".into(),
            ),
            ApiError::CreditsExhausted { limit, .. } => (
                "credits-exhausted",
                "Credits exhausted",
                if *limit == "key" {
                    "This key's credits do not cover this request.".into()
                } else {
                    "The workspace's credits do not cover this request.".into()
                },
            ),
            ApiError::Unavailable { slug, detail } => (*slug, "Service unavailable", printable_long(detail)),
            ApiError::BadGateway => ("bad-gateway", "Bad gateway", "The origin could not be reached.".into()),
            ApiError::Internal(_) => ("internal", "Internal error", "An internal error occurred.".into()),
        }
    }
}

/// The RFC 9457 `instance` URI of request `request_id`.
pub fn instance(request_id: &str) -> String {
    format!("urn:keyward:request:{request_id}")
}

/// Messages may quote caller input: keep them printable and bounded.
fn printable_long(s: &str) -> String {
    s.split_inclusive(' ')
        .map(printable)
        .collect::<String>()
        .chars()
        .take(400)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_token_is_one_identical_answer() {
        let e = ApiError::InvalidToken;
        assert_eq!(e.status(), 401);
        assert_eq!(
            e.challenge("keyward").unwrap(),
            "Bearer realm=\"keyward\", error=\"invalid_token\", error_description=\"The access token is invalid\""
        );
        let body: Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(body["status"], 401);
        assert_eq!(body["type"], "urn:keyward:problem:invalid-token");
        assert_eq!(e.body(), ApiError::InvalidToken.body());
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(
            ApiError::MissingCredentials("x").challenge("r").unwrap(),
            "Bearer realm=\"r\""
        );
        let s = ApiError::InsufficientScope {
            scope_attr: "a:b c:d".into(),
        };
        assert_eq!(s.status(), 403);
        assert_eq!(
            s.challenge("r").unwrap(),
            "Bearer realm=\"r\", error=\"insufficient_scope\", scope=\"a:b c:d\""
        );
        let body: Value = serde_json::from_str(&s.body()).unwrap();
        assert_eq!(body["scopes"], json!(["a:b", "c:d"]));
        assert!(ApiError::NotFound("key").challenge("r").is_none());
        assert!(ApiError::InvalidAuthRequest("Two Authorization values")
            .challenge("r")
            .unwrap()
            .contains("invalid_request"));
    }

    #[test]
    fn every_status_equals_the_body_status() {
        let all = [
            ApiError::MissingCredentials("x"),
            ApiError::InvalidAuthRequest("x"),
            ApiError::InvalidToken,
            ApiError::InsufficientScope {
                scope_attr: "a:b".into(),
            },
            ApiError::field("name", "too short"),
            ApiError::ScopeEscalation {
                scopes: vec!["a:b".into()],
            },
            ApiError::WorkspaceForbidden,
            ApiError::Outranked {
                scopes: vec!["a:b".into()],
            },
            ApiError::ExpiryBeyondCaller {
                limit: "2030-01-01T00:00:00.000Z".into(),
            },
            ApiError::NotFound("key"),
            ApiError::NoRoute,
            ApiError::AmbiguousPath,
            ApiError::MethodOverride,
            ApiError::MethodNotAllowed("GET, POST".into()),
            ApiError::Conflict {
                slug: "name-conflict",
                detail: "x".into(),
            },
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType,
            ApiError::RateLimited(crate::core::ratelimit::RateLimit { limit: 5, period: 10 }),
            ApiError::Throttled { period: 60 },
            ApiError::RootOnly("x"),
            ApiError::CreditsExhausted {
                limit: "key",
                remaining: 0,
                cost: 1,
                refill_at: Some("2030-01-01T00:00:00.000Z".into()),
                retry_after: Some(5),
            },
            ApiError::Unavailable {
                slug: "kv-write-failed",
                detail: "x".into(),
            },
            ApiError::BadGateway,
            ApiError::Internal("secret detail".into()),
        ];
        for e in all {
            let body: Value = serde_json::from_str(&e.body()).unwrap();
            assert_eq!(body["status"], e.status(), "{e:?}");
            assert_eq!(body["type"], format!("urn:keyward:problem:{}", e.slug()));
            assert!(body.get("instance").is_none());
            let with_id: Value = serde_json::from_str(&e.body_for("8c1f0e2d3a4b5c6d")).unwrap();
            assert_eq!(with_id["instance"], "urn:keyward:request:8c1f0e2d3a4b5c6d", "{e:?}");
            assert_eq!(with_id["type"], body["type"]);
            assert!(
                !e.body().contains("secret detail"),
                "internal details never reach the caller"
            );
        }
    }

    #[test]
    fn field_names_are_sanitised_and_bounded() {
        for raw in ["a\u{7f}b", "x\u{85}y", "evil\u{202e}txt", &"n".repeat(15_000)] {
            let e = ApiError::BadRequest {
                detail: "unknown field".into(),
                errors: vec![FieldError {
                    field: raw.into(),
                    message: "unknown field".into(),
                }],
            };
            let body: Value = serde_json::from_str(&e.body()).unwrap();
            let field = body["errors"][0]["field"].as_str().unwrap();
            assert!(field.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{field:?}");
            assert!(field.len() <= 80);
        }
    }

    #[test]
    fn caller_input_in_messages_is_sanitised() {
        let e = ApiError::field("name", "bad \u{1b}[31m value\n");
        assert!(!e.body().contains('\u{1b}'));
        let body: Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(body["errors"][0]["field"], "name");
    }
}
