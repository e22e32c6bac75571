//! Handlers over plain types, generic over the stores: the admin API, the verify API and the
//! gateway's decision. Nothing here names a runtime type; `src/wasm/` converts to and from the
//! platform and supplies D1/KV, the tests supply `store::memory`.

pub mod admin;
pub mod config;
pub mod gateway;
pub mod lookup;
pub mod sync;
pub mod verify;

#[cfg(test)]
pub(crate) mod tests;

use std::cell::RefCell;

use crate::core::cache::{KeyCache, SeededHash};
use crate::core::hash::KeyHash;
use crate::core::policy::Policy;
use crate::core::usage::UsageBatch;
use crate::http::plain::{Request, Response};
use crate::http::problem::ApiError;
use crate::store::{Edge, Records};

pub use config::Config;

const POLICY_JSON: &str = include_str!("../../config/policy.json");

/// Per-isolate state: configuration, the compiled route policy, the key cache and the last-used
/// batch, built on the first request and reused by every later one (vars and secrets cannot
/// change within an isolate; a deploy starts new isolates).
pub struct State {
    pub config: Config,
    pub policy: Policy,
    pub cache: RefCell<KeyCache>,
    pub usage: RefCell<UsageBatch>,
}

impl State {
    /// `seed`: 32 CSPRNG bytes (the glue reads them once per isolate) for the hash tables.
    pub fn new(config: Config, seed: [u8; 32]) -> Result<State, ApiError> {
        Self::with_policy(config, POLICY_JSON, seed)
    }

    pub fn with_policy(config: Config, policy_json: &str, seed: [u8; 32]) -> Result<State, ApiError> {
        let policy = Policy::from_json(policy_json).map_err(ApiError::Internal)?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        Ok(State {
            cache: RefCell::new(KeyCache::new(config.cache, [word(0), word(1)])),
            usage: RefCell::new(UsageBatch::new(
                config.last_used_interval,
                10_000,
                SeededHash::new([word(2), word(3)]),
            )),
            config,
            policy,
        })
    }

    pub fn realm(&self) -> &str {
        &self.policy.realm
    }
}

/// Everything a handler needs besides the request: the isolate's state and the two stores.
pub struct App<'a, R, E> {
    pub st: &'a State,
    pub records: &'a R,
    pub edge: &'a E,
}

impl<R, E> Clone for App<'_, R, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R, E> Copy for App<'_, R, E> {}

pub enum Route {
    Admin,
    Verify,
    Gateway,
}

pub fn route_of(path: &str) -> Route {
    if path.starts_with("/admin/") {
        Route::Admin
    } else if path == "/v1/keys/verify" {
        Route::Verify
    } else {
        Route::Gateway
    }
}

impl<R: Records, E: Edge> App<'_, R, E> {
    /// The admin and verify APIs, and the hash of a key the verify API found valid (the glue
    /// notes its use). The gateway forwards a request the runtime owns, so the glue runs it with
    /// the decision functions in `gateway`.
    pub async fn handle_api(&self, req: &Request, now: crate::core::time::Millis) -> (Response, Option<KeyHash>) {
        let result = match route_of(req.path()) {
            Route::Admin => admin::handle(*self, req, now).await.map(|r| (r, None)),
            Route::Verify => verify::handle(*self, req, now).await,
            Route::Gateway => Err(ApiError::NoRoute),
        };
        result.unwrap_or_else(|e| (Response::problem(&e, self.st.realm()), None))
    }
}
