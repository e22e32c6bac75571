//! `ApiError::field` and `ApiError::BadRequest` with arbitrary field names, messages and details:
//! the RFC 9457 body is JSON, its `status` is the HTTP status, and every caller-supplied string
//! that reaches it is printable ASCII and bounded.
//!
//! Input: `field \0 message \0 detail \0 field2 \0 message2 ...` (NUL separated, lossy UTF-8).
#![no_main]

use keyward::http::problem::{ApiError, FieldError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn printable(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

fn check(e: &ApiError, n_errors: usize) {
    let body = e.body();
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|err| panic!("body is not JSON ({err}): {body:?}"));
    assert_eq!(v["status"], e.status(), "{body}");
    assert_eq!(e.status(), 400);
    assert_eq!(v["type"], "urn:keyward:problem:invalid-body");
    assert_eq!(v["title"], "Invalid request");
    let detail = v["detail"].as_str().expect("detail is a string");
    assert!(printable(detail), "detail {detail:?}");
    assert!(
        detail.chars().count() <= 400,
        "detail is {} chars",
        detail.chars().count()
    );
    match v.get("errors") {
        None => assert_eq!(n_errors, 0),
        Some(errors) => {
            let errors = errors.as_array().expect("errors is an array");
            assert_eq!(errors.len(), n_errors);
            for fe in errors {
                let field = fe["field"].as_str().expect("field is a string");
                let message = fe["message"].as_str().expect("message is a string");
                assert!(printable(field), "field {field:?}");
                assert!(field.chars().count() <= 80, "field is {} chars", field.chars().count());
                assert!(printable(message), "message {message:?}");
                assert!(
                    message.chars().count() <= 400,
                    "message is {} chars",
                    message.chars().count()
                );
            }
        }
    }
    // Nothing but the members RFC 9457 and keyward define.
    let obj = v.as_object().unwrap();
    assert!(obj
        .keys()
        .all(|k| ["type", "title", "status", "detail", "errors"].contains(&k.as_str())));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\0').collect();
    let field = parts[0];
    let message = parts.get(1).copied().unwrap_or("");
    let detail = parts.get(2).copied().unwrap_or("");

    check(&ApiError::field(field, message), 1);
    check(&ApiError::bad_request(detail.to_owned()), 0);

    let errors: Vec<FieldError> = parts
        .chunks(2)
        .map(|c| FieldError {
            field: c[0].to_owned(),
            message: c.get(1).copied().unwrap_or("").to_owned(),
        })
        .collect();
    let n = errors.len();
    check(
        &ApiError::BadRequest {
            detail: detail.to_owned(),
            errors,
        },
        n,
    );
});
