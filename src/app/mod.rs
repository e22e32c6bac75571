//! Handlers over plain types, generic over the stores: the admin API, the verify API and the
//! gateway's decision. Nothing here names a runtime type; `src/wasm/` converts to and from the
//! platform and supplies D1/KV, the tests supply `store::memory`.

pub mod admin;
pub mod config;
pub mod credits;
pub mod follow;
pub mod gateway;
pub mod lookup;
pub mod openapi;
pub mod page;
pub mod sync;
pub mod verify;

#[cfg(test)]
pub(crate) mod tests;

use std::cell::RefCell;

use crate::core::cache::{KeyCache, SeededHash};
use crate::core::feed::Follower;
use crate::core::hash::KeyHash;
use crate::core::policy::Policy;
use crate::core::ratelimit::Throttled;
use crate::core::signing::Signer;
use crate::core::time::Millis;
use crate::core::usage::UsageBatch;
use crate::http::plain::{Request, Response};
use crate::http::problem::ApiError;
use crate::store::{Credits, Edge, Feed, Records};

pub use config::Config;

const POLICY_JSON: &str = include_str!("../../config/policy.json");

/// Per-isolate state: configuration, the compiled route policy, the key cache and the last-used
/// batch, built on the first request and reused by every later one (vars and secrets cannot
/// change within an isolate; a deploy starts new isolates).
pub struct State {
    pub config: Config,
    pub policy: Policy,
    pub cache: RefCell<KeyCache>,
    /// KV reads in flight, shared by concurrent misses for the same key.
    pub reads: lookup::Reads,
    pub usage: RefCell<UsageBatch>,
    pub throttled: RefCell<Throttled>,
    pub signer: Option<Signer>,
    /// This isolate's position in the revocation feed and its fences (core::feed).
    pub feed: RefCell<Follower>,
}

/// What a request did with a key, for the glue's bookkeeping after the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    Nothing,
    /// A valid key was used (its last-used time is noted).
    Used(KeyHash),
    /// An invalid key was presented (counted against the client's failed-attempt budget).
    Failed,
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
            reads: lookup::Reads::default(),
            usage: RefCell::new(UsageBatch::new(
                config.last_used_interval,
                10_000,
                SeededHash::new([word(2), word(3)]),
            )),
            throttled: RefCell::new(Throttled::new(10_000)),
            signer: config
                .origin_signing_secret
                .as_deref()
                .map(|s| Signer::new(s.as_bytes())),
            feed: RefCell::new(Follower::new(config.feed)),
            config,
            policy,
        })
    }

    pub fn realm(&self) -> &str {
        &self.policy.realm
    }

    /// Refuses a client that went over its failed-attempt budget, before anything else is done
    /// with its request (so the answer cannot tell a valid key from an invalid one).
    pub fn check_throttle(&self, client: &str, now: Millis) -> Result<(), ApiError> {
        match &self.policy.throttle {
            Some(t) if !client.is_empty() && self.throttled.borrow().is_throttled(client, now) => {
                Err(ApiError::Throttled { period: t.period })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt by `client`; true when the throttle binding must count it too.
    pub fn failure(&self, client: &str, now: Millis) -> bool {
        match &self.policy.throttle {
            Some(t) if !client.is_empty() => {
                self.throttled.borrow_mut().failure(client, &t.rate(), now) == crate::core::ratelimit::Failure::Consult
            }
            _ => false,
        }
    }

    /// The binding's verdict on one more failure from `client` came back: over budget means
    /// refused here until the window ends.
    pub fn failure_counted(&self, client: &str, within_budget: bool, now: Millis) {
        if let (false, Some(t)) = (within_budget, &self.policy.throttle) {
            self.throttled
                .borrow_mut()
                .mark(client, now + i64::from(t.period) * 1000, now);
        }
    }
}

/// Everything a handler needs besides the request: the isolate's state, the two stores, the
/// credit counter and the revocation feed.
pub struct App<'a, R, E> {
    pub st: &'a State,
    pub records: &'a R,
    pub edge: &'a E,
    pub credits: &'a dyn Credits,
    pub feed: &'a dyn Feed,
}

impl<R, E> Clone for App<'_, R, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R, E> Copy for App<'_, R, E> {}

pub enum Route {
    Admin,
    /// The admin web page's static files (no token needed: see `page`).
    Page,
    Verify,
    OpenApi,
    Gateway,
}

/// The verify API's one route (docs/openapi.json `verifyKey`).
pub const VERIFY_PATH: &str = "/v1/keys/verify";

pub fn route_of(path: &str) -> Route {
    if path.starts_with("/admin/") {
        if page::is_page(path) {
            Route::Page
        } else {
            Route::Admin
        }
    } else if path == VERIFY_PATH {
        Route::Verify
    } else if path == openapi::PATH {
        Route::OpenApi
    } else {
        Route::Gateway
    }
}

/// Every operation keyward itself answers (method, OpenAPI path template, operation id): what
/// docs/openapi.json must describe, no more and no less (checked by a native test).
pub fn operations() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut ops: Vec<_> = admin::ROUTES
        .iter()
        .map(|r| (r.method, r.path, r.operation_id))
        .collect();
    ops.push(("POST", VERIFY_PATH, "verifyKey"));
    ops.push(("GET", openapi::PATH, "getOpenApi"));
    ops
}

impl<R: Records, E: Edge> App<'_, R, E> {
    /// The admin and verify APIs, and what happened to a key (the glue notes uses and counts
    /// failures). The gateway forwards a request the runtime owns, so the glue runs it with the
    /// decision functions in `gateway`.
    pub async fn handle_api(&self, req: &Request, now: Millis) -> (Response, KeyUse) {
        let result = match route_of(req.path()) {
            Route::Admin => admin::handle(*self, req, now).await.map(|r| (r, KeyUse::Nothing)),
            Route::Verify => verify::handle(*self, req, now).await,
            Route::Page => Ok((
                page::serve(&req.method, req.path(), self.st.realm(), &req.id),
                KeyUse::Nothing,
            )),
            Route::OpenApi => openapi::handle(&req.method).map(|r| (r, KeyUse::Nothing)),
            Route::Gateway => Err(ApiError::NoRoute),
        };
        result.unwrap_or_else(|e| {
            let outcome = if e == ApiError::InvalidToken {
                KeyUse::Failed
            } else {
                KeyUse::Nothing
            };
            (Response::problem_for(&e, self.st.realm(), &req.id), outcome)
        })
    }
}
