//! `Policy::route` on the shipped config/policy.json with arbitrary methods and paths, checked
//! against a naive re-implementation of the documented matching rules (docs/scopes.md):
//! first route in file order; `*` = one non-empty segment; `**` (last) = zero or more segments;
//! HEAD needs what GET needs; encoded slashes/backslashes/dots and dot segments are refused.
//!
//! Input: `METHOD PATH` (split at the first space).
#![no_main]

use std::sync::OnceLock;

use keyward::core::policy::{PathError, Policy};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const SHIPPED: &str = include_str!("../../config/policy.json");

struct Oracle {
    /// (method or None for `*`, pattern segments, scope_attr)
    routes: Vec<(Option<String>, Vec<String>, String)>,
}

struct Shared {
    policy: Policy,
    oracle: Oracle,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let policy = Policy::from_json(SHIPPED).expect("shipped policy parses");
        let v: Value = serde_json::from_str(SHIPPED).unwrap();
        let routes = v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let method = r["method"].as_str().unwrap();
                let path = r["path"].as_str().unwrap();
                let mut scopes: Vec<String> = r["scopes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect();
                scopes.sort();
                scopes.dedup();
                let segs = match &path[1..] {
                    "" => Vec::new(),
                    rest => rest.split('/').map(str::to_owned).collect(),
                };
                ((method != "*").then(|| method.to_owned()), segs, scopes.join(" "))
            })
            .collect();
        Shared {
            policy,
            oracle: Oracle { routes },
        }
    })
}

fn ambiguous(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    path.contains('\\')
        || ["%2f", "%5c", "%2e"].iter().any(|n| lower.contains(n))
        || path.split('/').any(|s| s == "." || s == "..")
}

fn glob(pat: &[String], segs: &[&str]) -> bool {
    match (pat.first().map(String::as_str), segs.first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some("**"), _) => true,
        (Some(_), None) => false,
        (Some("*"), Some(s)) => !s.is_empty() && glob(&pat[1..], &segs[1..]),
        (Some(lit), Some(s)) => lit == *s && glob(&pat[1..], &segs[1..]),
    }
}

impl Oracle {
    fn route(&self, method: &str, path: &str) -> Result<Option<&str>, PathError> {
        if ambiguous(path) {
            return Err(PathError::Ambiguous);
        }
        let method = if method == "HEAD" { "GET" } else { method };
        let Some(rest) = path.strip_prefix('/') else {
            return Ok(None);
        };
        let segs: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        Ok(self
            .routes
            .iter()
            .find(|(m, pat, _)| m.as_deref().is_none_or(|m| m == method) && glob(pat, &segs))
            .map(|(_, _, attr)| attr.as_str()))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (method, path) = text.split_once(' ').unwrap_or(("GET", text));
    let s = shared();

    let got = s.policy.route(method, path);
    let want = s.oracle.route(method, path);
    let got_attr = got.as_ref().map(|r| r.map(|r| r.scope_attr.as_str()));
    // The oracle spells the basic refusals (encoded separators, dot segments); keyward refuses
    // more (docs/scopes.md: `;`, `//`, double encoding, lookalikes, controls, ...). So: whatever
    // the oracle refuses keyward refuses, and whatever keyward accepts matches the oracle's route.
    match (&got_attr, &want) {
        (Ok(g), Ok(w)) => assert_eq!(*g, w.as_deref(), "{method:?} {path:?}"),
        (Err(_), _) => {}
        (Ok(_), Err(_)) => panic!("{method:?} {path:?}: accepted a path the oracle refuses"),
    }

    if let Ok(Some(r)) = &got {
        assert!(path.starts_with('/'));
        assert_eq!(r.scope_attr, r.scopes.joined());
    }
    // HEAD is answered exactly like GET.
    if method == "GET" {
        let head = s.policy.route("HEAD", path);
        assert_eq!(
            head.map(|r| r.map(|r| r as *const _)),
            got.map(|r| r.map(|r| r as *const _)),
            "HEAD {path:?}"
        );
    }
});
