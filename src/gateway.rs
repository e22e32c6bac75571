//! The hot path: bearer -> key format -> route -> hash -> cache/KV -> decision -> forward.
//! Malformed keys are refused before any hashing or storage read. A request whose key is in the
//! per-isolate cache is decided synchronously (`fast`), with no async executor involved and the
//! origin's fetch Promise handed straight back to the runtime; only a cache miss goes async.

use std::rc::Rc;

use wasm_bindgen::JsValue;
use worker::{Context, Env};

use crate::core::decide::{decide, Outcome};
use crate::core::hash::KeyHash;
use crate::core::key::ApiKey;
use crate::core::policy::Route;
use crate::core::record::KeyEntry;
use crate::http::bearer::bearer;
pub use crate::http::head::Head;
use crate::http::js;
use crate::http::problem::{ApiError, ApiResult};
use crate::http::response;
use crate::lookup;
use crate::state::State;

fn prepare<'s>(st: &'s State, head: &Head) -> ApiResult<(KeyHash, &'s Route)> {
    let token = bearer(head.auth(), head.url())?;
    let key = ApiKey::parse(token).map_err(|_| ApiError::InvalidToken)?;
    let route = st
        .policy
        .route(head.method(), head.path())
        .map_err(|_| ApiError::AmbiguousPath)?
        .ok_or(ApiError::NoRoute)?;
    Ok((KeyHash::of(&key), route))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    req: &web_sys::Request,
    env: &Env,
    ctx: &Context,
    st: &State,
    route: &Route,
    hash: &KeyHash,
    entry: Option<Rc<KeyEntry>>,
    now: i64,
) -> ApiResult<JsValue> {
    let entry = match (decide(entry.as_deref(), &route.scopes, now), entry) {
        (Outcome::Valid, Some(e)) => e,
        (Outcome::InsufficientScope(_), _) => {
            return Err(ApiError::InsufficientScope {
                scope_attr: route.scope_attr.clone(),
            })
        }
        _ => return Err(ApiError::InvalidToken),
    };
    lookup::note_use(st, env, ctx, hash, now);
    js::forward(req, &entry.identity).map_err(|e| {
        worker::console_error!("origin fetch could not start: {e:?}");
        ApiError::BadGateway
    })
}

fn answer(r: ApiResult<JsValue>, st: &State) -> JsValue {
    match r {
        Ok(v) => v,
        Err(ApiError::InvalidToken) => st.invalid_token.respond().into(),
        Err(e) => response::problem(&e, &st.policy.realm).into(),
    }
}

/// Decides from memory: refusals that need no storage, and cache hits. `None` = needs KV.
pub fn fast(req: &web_sys::Request, head: &Head, env: &Env, ctx: &Context, st: &State, now: i64) -> Option<JsValue> {
    let (hash, route) = match prepare(st, head) {
        Ok(p) => p,
        Err(e) => return Some(answer(Err(e), st)),
    };
    let entry = lookup::cached(st, &hash, now)?;
    Some(answer(finish(req, env, ctx, st, route, &hash, entry, now), st))
}

/// The cache-miss path: at most one KV read, then the same decision.
pub async fn slow(req: &web_sys::Request, head: &Head, env: &Env, ctx: &Context, st: &State, now: i64) -> JsValue {
    let r = async {
        let (hash, route) = prepare(st, head)?;
        let entry = lookup::entry(st, env, &hash, now).await?;
        finish(req, env, ctx, st, route, &hash, entry, now)
    };
    answer(r.await, st)
}
