//! Deployment configuration, parsed from the worker's vars and secrets (looked up through a
//! closure, so parsing is tested natively). Read once per isolate.

use crate::core::cache::CacheConfig;
use crate::core::time::{Millis, SECOND};
use crate::http::problem::ApiError;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// ORIGIN_URL without a trailing slash; the request path is appended as is.
    pub origin: String,
    pub cache: CacheConfig,
    /// `cacheTtl` for KV reads, seconds (KV's minimum is 30).
    pub kv_cache_ttl: u64,
    pub last_used_interval: Millis,
    pub admin_token: Option<String>,
    /// KEYWARD_CONFORMANCE=1 (only the e2e harness sets it): enables the root-only route that
    /// runs the storage conformance suite against the real D1 and KV bindings.
    pub conformance_route: bool,
    /// ORIGIN_SIGNING_SECRET (a secret): when set, every forwarded request carries
    /// X-Keyward-Signature (docs/origin-signing.md). Empty counts as unset.
    pub origin_signing_secret: Option<String>,
}

fn number(get: &dyn Fn(&str) -> Option<String>, name: &str, default: i64) -> Result<i64, ApiError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::Internal(format!("config: {name} must be a non-negative integer, got {v:?}"))),
    }
}

impl Config {
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<Config, ApiError> {
        let origin = get("ORIGIN_URL").ok_or_else(|| ApiError::Internal("config: ORIGIN_URL is not set".into()))?;
        let origin = origin.trim().trim_end_matches('/').to_owned();
        if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.matches('/').count() != 2 {
            return Err(ApiError::Internal(format!(
                "config: ORIGIN_URL must be http(s)://host[:port], got {origin:?}"
            )));
        }
        Ok(Config {
            origin,
            cache: CacheConfig {
                ttl: number(get, "KEY_CACHE_TTL_S", 30)? * SECOND,
                negative_ttl: number(get, "KEY_CACHE_NEGATIVE_TTL_S", 5)? * SECOND,
                max_entries: number(get, "KEY_CACHE_MAX_ENTRIES", 10_000)? as usize,
            },
            kv_cache_ttl: number(get, "KV_CACHE_TTL_S", 30)? as u64,
            last_used_interval: number(get, "LAST_USED_INTERVAL_S", 60)? * SECOND,
            admin_token: get("ADMIN_TOKEN").filter(|t| !t.is_empty()),
            conformance_route: get("KEYWARD_CONFORMANCE").as_deref() == Some("1"),
            origin_signing_secret: get("ORIGIN_SIGNING_SECRET").filter(|s| !s.is_empty()),
        })
    }
}

#[cfg(test)]
pub(crate) fn test_config() -> Config {
    Config::from_vars(&|n| match n {
        "ORIGIN_URL" => Some("http://origin.test".into()),
        "ADMIN_TOKEN" => Some("root-token".into()),
        _ => None,
    })
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = test_config();
        assert_eq!(c.origin, "http://origin.test");
        assert_eq!(c.cache.ttl, 30_000);
        assert_eq!(c.last_used_interval, 60_000);
        assert_eq!(c.admin_token.as_deref(), Some("root-token"));
        for (name, value) in [
            ("ORIGIN_URL", "ftp://x"),
            ("ORIGIN_URL", "http://x/path"),
            ("KEY_CACHE_TTL_S", "-1"),
            ("LAST_USED_INTERVAL_S", "soon"),
        ] {
            let r = Config::from_vars(&|n| {
                if n == name {
                    Some(value.into())
                } else if n == "ORIGIN_URL" {
                    Some("http://o".into())
                } else {
                    None
                }
            });
            assert!(r.is_err(), "{name}={value}");
        }
        let empty_token = Config::from_vars(&|n| match n {
            "ORIGIN_URL" => Some("http://o/".into()),
            "ADMIN_TOKEN" => Some(String::new()),
            _ => None,
        })
        .unwrap();
        assert_eq!(empty_token.admin_token, None, "an empty token is no token");
        assert_eq!(empty_token.origin, "http://o");
    }
}
