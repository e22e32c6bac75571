//! JSON request bodies: JSON only, objects only, unknown fields refused (by the target types).
//! The size limit is enforced by the glue while it reads the body (never more than
//! MAX_BODY_BYTES + 1 bytes are read), so handlers only see bounded bytes.

use serde::de::DeserializeOwned;

use super::plain::Request;
use super::problem::{ApiError, ApiResult};

/// `application/json` or any `+json` type, with parameters (`; charset=utf-8`) allowed; nothing
/// that merely starts with those letters (`application/jsonfoo`).
pub fn is_json_media_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind == "application" && (sub == "json" || (sub.ends_with("+json") && sub.len() > 5))
}

/// The body as `T`. An absent body is `None` when `allow_empty`, else 400. A body must be a JSON
/// object: serde would accept an array for a struct (fields by position), which no client means.
pub fn parse_json<T: DeserializeOwned>(req: &Request, allow_empty: bool) -> ApiResult<Option<T>> {
    if let Some(ct) = req.header("content-type") {
        if !is_json_media_type(ct) {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let bytes = &req.body;
    let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) else {
        return if allow_empty {
            Ok(None)
        } else {
            Err(ApiError::field("body", "a JSON object is required"))
        };
    };
    if *first != b'{' {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    serde_json::from_slice::<T>(bytes)
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
    fn json_media_types_are_matched_exactly() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            " application/json ;x=1",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "application/jsonfoo",
            "text/json",
            "application/+json",
            "application",
            "",
            "text/plain",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn only_objects_are_bodies() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct B {
            key: String,
        }
        let req = |b: &str| Request::new("POST", "http://h/").with_body(b);
        assert!(
            parse_json::<B>(&req(r#"["kw_live_x"]"#), false).is_err(),
            "arrays are refused"
        );
        assert!(parse_json::<B>(&req(r#" {"key":"x"}"#), false).unwrap().is_some());
        assert!(parse_json::<B>(&req("  "), true).unwrap().is_none());
        assert!(parse_json::<B>(&req(""), false).is_err());
        let r = req(r#"{"key":"x"}"#).with_header("content-type", "application/jsonfoo");
        assert_eq!(parse_json::<B>(&r, false).unwrap_err(), ApiError::UnsupportedMediaType);
    }

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
