//! The hot path: bearer -> key format -> route -> hash -> cache/KV -> decision -> forward.
//! Malformed keys are refused before any hashing or storage read.

use worker::{Context, Env};

use crate::core::decide::{decide, Outcome};
use crate::core::hash::KeyHash;
use crate::core::key::ApiKey;
use crate::http::bearer::bearer;
use crate::http::js;
use crate::http::problem::{ApiError, ApiResult};
use crate::lookup;
use crate::state::State;

#[allow(clippy::too_many_arguments)]
pub async fn handle(
    req: &web_sys::Request,
    method: &str,
    url: &str,
    path: &str,
    auth: Option<&str>,
    env: &Env,
    ctx: &Context,
    st: &State,
    now: i64,
) -> ApiResult<web_sys::Response> {
    let token = bearer(auth, url)?;
    let key = ApiKey::parse(token).map_err(|_| ApiError::InvalidToken)?;
    let route = st.policy.route(method, path).map_err(|_| ApiError::AmbiguousPath)?.ok_or(ApiError::NoRoute)?;
    let hash = KeyHash::of(&key);
    let entry = lookup::entry(st, env, &hash, now).await?;
    let entry = match (decide(entry.as_deref(), &route.scopes, now), entry) {
        (Outcome::Valid, Some(e)) => e,
        (Outcome::InsufficientScope(_), _) => {
            return Err(ApiError::InsufficientScope { scope_attr: route.scope_attr.clone() })
        }
        _ => return Err(ApiError::InvalidToken),
    };
    lookup::note_use(st, env, ctx, &entry, now);
    let rec = &entry.record;
    js::forward(req, &st.origin, &rec.id, &rec.workspace, &entry.scopes_header).await.map_err(|e| {
        worker::console_error!("origin fetch failed: {e:?}");
        ApiError::BadGateway
    })
}
