//! Per-isolate state: configuration, the compiled route policy and the key cache, built on the
//! first request and reused by every later one (vars and secrets cannot change within an isolate;
//! a deploy starts new isolates).

use std::cell::RefCell;
use std::rc::Rc;

use worker::Env;

use crate::core::cache::{CacheConfig, KeyCache, SeededHash};
use crate::core::policy::Policy;
use crate::core::time::SECOND;
use crate::core::usage::UsageBatch;
use crate::http::problem::ApiError;

const POLICY_JSON: &str = include_str!("../config/policy.json");

pub struct State {
    pub policy: Policy,
    /// ORIGIN_URL without a trailing slash; the request path is appended as is.
    pub origin: String,
    pub cache: RefCell<KeyCache>,
    pub kv_cache_ttl: u64,
    pub usage: RefCell<UsageBatch>,
    pub admin_token: Option<String>,
    pub invalid_token: crate::http::response::Canned,
}

thread_local! {
    static STATE: RefCell<Option<Rc<State>>> = const { RefCell::new(None) };
}

pub fn get(env: &Env) -> Result<Rc<State>, ApiError> {
    if let Some(st) = STATE.with(|s| s.borrow().clone()) {
        return Ok(st);
    }
    let st = Rc::new(load(env)?);
    crate::http::js::init(&st.origin, &ApiError::BadGateway.body());
    STATE.with(|s| *s.borrow_mut() = Some(Rc::clone(&st)));
    Ok(st)
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

fn number(env: &Env, name: &str, default: i64) -> Result<i64, ApiError> {
    match var(env, name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::Internal(format!("config: {name} must be a non-negative integer, got {v:?}"))),
    }
}

fn load(env: &Env) -> Result<State, ApiError> {
    let policy = Policy::from_json(POLICY_JSON).map_err(ApiError::Internal)?;
    let origin = var(env, "ORIGIN_URL").ok_or_else(|| ApiError::Internal("config: ORIGIN_URL is not set".into()))?;
    let origin = origin.trim().trim_end_matches('/').to_owned();
    if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.matches('/').count() != 2 {
        return Err(ApiError::Internal(format!(
            "config: ORIGIN_URL must be http(s)://host[:port], got {origin:?}"
        )));
    }
    let cfg = CacheConfig {
        ttl: number(env, "KEY_CACHE_TTL_S", 30)? * SECOND,
        negative_ttl: number(env, "KEY_CACHE_NEGATIVE_TTL_S", 5)? * SECOND,
        max_entries: number(env, "KEY_CACHE_MAX_ENTRIES", 10_000)? as usize,
    };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    let word = |i: usize| u64::from_le_bytes(seed[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    // Secrets are bindings too; `var` reads both plain vars and secrets as text.
    let admin_token = env
        .secret("ADMIN_TOKEN")
        .ok()
        .map(|v| v.to_string())
        .or_else(|| var(env, "ADMIN_TOKEN"));
    Ok(State {
        origin,
        cache: RefCell::new(KeyCache::new(cfg, [word(0), word(1)])),
        kv_cache_ttl: number(env, "KV_CACHE_TTL_S", 30)? as u64,
        usage: RefCell::new(UsageBatch::new(
            number(env, "LAST_USED_INTERVAL_S", 60)? * SECOND,
            10_000,
            SeededHash::new([word(2), word(3)]),
        )),
        admin_token: admin_token.filter(|t| !t.is_empty()),
        invalid_token: crate::http::response::Canned::invalid_token(&policy.realm),
        policy,
    })
}
