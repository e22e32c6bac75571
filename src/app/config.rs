//! Deployment configuration, parsed from the worker's vars and secrets (looked up through a
//! closure, so parsing is tested natively). Read once per isolate.

use crate::core::cache::CacheConfig;
use crate::core::feed::FollowConfig;
use crate::core::key::{KeyFormat, KeyPrefix, DEFAULT_PREFIX};
use crate::core::time::{Millis, SECOND};
use crate::http::problem::ApiError;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// ORIGIN_URL without a trailing slash; the request path is appended as is.
    pub origin: String,
    /// TEST_ORIGIN_URL, same form: where requests made with test keys go, when set.
    pub test_origin: Option<String>,
    /// KEY_PREFIX (minted and accepted, default `kw`) and KEY_PREFIXES_ACCEPTED (comma separated,
    /// still accepted after a rename).
    pub keys: KeyFormat,
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
    /// The revocation feed (REVOCATION_FEED, default on; README "Consistency"): None when off.
    pub feed: Option<FollowConfig>,
    /// KEYWARD_FEED_STATS=1 (the benchmark and the e2e peer set it): each isolate logs its feed
    /// pull counters after every pull.
    pub feed_stats: bool,
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

fn origin_url(name: &str, value: &str) -> Result<String, ApiError> {
    let origin = value.trim().trim_end_matches('/').to_owned();
    if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.matches('/').count() != 2 {
        return Err(ApiError::Internal(format!(
            "config: {name} must be http(s)://host[:port], got {origin:?}"
        )));
    }
    Ok(origin)
}

fn key_format(get: &dyn Fn(&str) -> Option<String>) -> Result<KeyFormat, ApiError> {
    let prefix = |s: &str| KeyPrefix::new(s.trim()).map_err(|e| ApiError::Internal(format!("config: {e}")));
    let mint = prefix(get("KEY_PREFIX").as_deref().unwrap_or(DEFAULT_PREFIX))?;
    let also_accepted = get("KEY_PREFIXES_ACCEPTED")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(prefix)
        .collect::<Result<_, _>>()?;
    Ok(KeyFormat { mint, also_accepted })
}

/// REVOCATION_*: the feed's timing. The retention must outlast everything that can still hand out
/// a record from before a change: the cache, KV's cacheTtl and KV's propagation (about 60 s).
fn feed(
    get: &dyn Fn(&str) -> Option<String>,
    cache: &CacheConfig,
    kv_cache_ttl: u64,
) -> Result<Option<FollowConfig>, ApiError> {
    match get("REVOCATION_FEED").as_deref().map(str::trim) {
        None | Some("on") => {}
        Some("off") => return Ok(None),
        Some(v) => {
            return Err(ApiError::Internal(format!(
                "config: REVOCATION_FEED must be on or off, got {v:?}"
            )))
        }
    }
    let poll = number(get, "REVOCATION_POLL_MS", 1000)?;
    let bound = number(get, "REVOCATION_BOUND_MS", 2 * poll)?;
    let wait = number(get, "REVOCATION_WAIT_MS", 500)?;
    let retention = number(get, "REVOCATION_RETENTION_S", 300)? * SECOND;
    let floor = cache.ttl.max(cache.negative_ttl) + kv_cache_ttl as Millis * SECOND + 60 * SECOND;
    if poll < 50 || bound < poll {
        return Err(ApiError::Internal(format!(
            "config: REVOCATION_POLL_MS must be at least 50 and REVOCATION_BOUND_MS at least it, got {poll} and {bound}"
        )));
    }
    if retention < floor {
        return Err(ApiError::Internal(format!(
            "config: REVOCATION_RETENTION_S must be at least KEY_CACHE_TTL_S + KV_CACHE_TTL_S + 60 ({} s)",
            floor / SECOND
        )));
    }
    Ok(Some(FollowConfig {
        poll,
        bound,
        wait,
        retention,
    }))
}

impl Config {
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<Config, ApiError> {
        let origin = get("ORIGIN_URL").ok_or_else(|| ApiError::Internal("config: ORIGIN_URL is not set".into()))?;
        let origin = origin_url("ORIGIN_URL", &origin)?;
        let test_origin = match get("TEST_ORIGIN_URL").filter(|s| !s.trim().is_empty()) {
            Some(v) => Some(origin_url("TEST_ORIGIN_URL", &v)?),
            None => None,
        };
        let cache = CacheConfig {
            ttl: number(get, "KEY_CACHE_TTL_S", 30)? * SECOND,
            negative_ttl: number(get, "KEY_CACHE_NEGATIVE_TTL_S", 5)? * SECOND,
            max_entries: number(get, "KEY_CACHE_MAX_ENTRIES", 10_000)? as usize,
            // Every refresh is a billed KV read (and locally about a millisecond of the worker's
            // CPU): a busy key's entry is re-read every TTL - window instead of every TTL, so 10 s of
            // 30 meant 1.5x the reads of no refresh-ahead, 3 s means 1.11x; a key used about once a
            // second per isolate is still seen inside 3 s and never waits on KV.
            refresh: number(get, "KEY_CACHE_REFRESH_S", 3)? * SECOND,
        };
        let kv_cache_ttl = number(get, "KV_CACHE_TTL_S", 30)? as u64;
        Ok(Config {
            origin,
            test_origin,
            keys: key_format(get)?,
            feed: feed(get, &cache, kv_cache_ttl)?,
            feed_stats: get("KEYWARD_FEED_STATS").as_deref() == Some("1"),
            cache,
            kv_cache_ttl,
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
        assert_eq!(c.cache.refresh, 3_000);
        assert_eq!(c.last_used_interval, 60_000);
        assert_eq!(c.admin_token.as_deref(), Some("root-token"));
        let f = c.feed.expect("the feed is on by default");
        assert_eq!((f.poll, f.bound, f.wait, f.retention), (1000, 2000, 500, 300_000));
        for (name, value) in [
            ("ORIGIN_URL", "ftp://x"),
            ("ORIGIN_URL", "http://x/path"),
            ("KEY_CACHE_TTL_S", "-1"),
            ("LAST_USED_INTERVAL_S", "soon"),
            ("TEST_ORIGIN_URL", "http://x/y"),
            ("KEY_PREFIX", "Acme"),
            ("KEY_PREFIX", "ac_me"),
            ("KEY_PREFIXES_ACCEPTED", "kw,bad-one"),
            ("REVOCATION_FEED", "yes"),
            ("REVOCATION_POLL_MS", "10"),
            ("REVOCATION_BOUND_MS", "500"),
            ("REVOCATION_RETENTION_S", "100"),
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
        assert_eq!(empty_token.test_origin, None);
        assert_eq!(empty_token.keys.mint.as_str(), "kw");

        let renamed = Config::from_vars(&|n| match n {
            "ORIGIN_URL" => Some("http://o".into()),
            "TEST_ORIGIN_URL" => Some("https://sandbox.example:8443/".into()),
            "KEY_PREFIX" => Some("acme".into()),
            "KEY_PREFIXES_ACCEPTED" => Some(" kw , old1 ,".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(renamed.test_origin.as_deref(), Some("https://sandbox.example:8443"));
        assert_eq!(renamed.keys.mint.as_str(), "acme");
        let off = Config::from_vars(&|n| match n {
            "ORIGIN_URL" => Some("http://o".into()),
            "REVOCATION_FEED" => Some("off".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(off.feed, None);
        let kept: Vec<&str> = renamed.keys.also_accepted.iter().map(|p| p.as_str()).collect();
        assert_eq!(kept, ["kw", "old1"]);
    }
}
