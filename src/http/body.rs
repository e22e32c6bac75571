//! JSON request bodies: bounded, JSON only, unknown fields refused (by the target types).

use serde::de::DeserializeOwned;

use super::problem::{ApiError, ApiResult};
use crate::core::validate::MAX_BODY_BYTES;

pub async fn read_json<T: DeserializeOwned>(req: &mut worker::Request, allow_empty: bool) -> ApiResult<Option<T>> {
    let headers = req.headers();
    if let Ok(Some(ct)) = headers.get("content-type") {
        let ct = ct.to_ascii_lowercase();
        if !(ct.starts_with("application/json") || ct.contains("+json")) {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    if let Ok(Some(len)) = headers.get("content-length") {
        if len.trim().parse::<usize>().map_or(true, |n| n > MAX_BODY_BYTES) {
            return Err(ApiError::PayloadTooLarge);
        }
    }
    // Content-Length can be absent (chunked): check the size we actually received as well.
    let bytes = req
        .bytes()
        .await
        .map_err(|_| ApiError::bad_request("The request body could not be read."))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if allow_empty {
            Ok(None)
        } else {
            Err(ApiError::field("body", "a JSON object is required"))
        };
    }
    serde_json::from_slice::<T>(&bytes)
        .map(Some)
        .map_err(|e| json_error(&e.to_string()))
}

/// serde names the offending field in "unknown field `x`" / "missing field `x`": report it as
/// that field, so clients can map the error to their input.
fn json_error(msg: &str) -> ApiError {
    for prefix in ["unknown field `", "missing field `"] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((field, _)) = rest.split_once('`') {
                let what = if prefix.starts_with("unknown") {
                    "unknown field"
                } else {
                    "required field is missing"
                };
                return ApiError::BadRequest {
                    detail: msg.to_owned(),
                    errors: vec![crate::http::problem::FieldError {
                        field: field.to_owned(),
                        message: what.to_owned(),
                    }],
                };
            }
        }
    }
    ApiError::field("body", msg)
}

/// `?a=1&b=2` -> pairs, percent-decoded.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, q)) = url.split_once('?') else {
        return Vec::new();
    };
    let q = q.split('#').next().unwrap_or("");
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Path part of an absolute URL (`https://h/p?q` -> `/p`).
pub fn path_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_field() {
        let e = json_error("unknown field `colour`, expected one of `name` at line 1 column 9");
        let ApiError::BadRequest { errors, .. } = e else {
            panic!()
        };
        assert_eq!(errors[0].field, "colour");
        let ApiError::BadRequest { errors, .. } = json_error("missing field `name` at line 1 column 2") else {
            panic!()
        };
        assert_eq!(errors[0].field, "name");
        let ApiError::BadRequest { errors, .. } = json_error("EOF while parsing a value at line 1 column 0") else {
            panic!()
        };
        assert_eq!(errors[0].field, "body");
    }

    #[test]
    fn paths_and_queries() {
        assert_eq!(path_of("http://127.0.0.1:8787/projects/1?x=2"), "/projects/1");
        assert_eq!(path_of("http://h"), "/");
        assert_eq!(path_of("https://h/a#f"), "/a");
        let q = query_pairs("http://h/a?workspace=acme&cursor=a%2Fb&x=&flag&sp=a+b&bad=%zz&end=%4");
        assert_eq!(
            q,
            vec![
                ("workspace".into(), "acme".into()),
                ("cursor".into(), "a/b".into()),
                ("x".into(), "".into()),
                ("flag".into(), "".into()),
                ("sp".into(), "a b".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
            ]
        );
    }
}
