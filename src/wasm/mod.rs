//! The glue: the only code that knows it runs on Workers. It reads the clock once per request,
//! converts the runtime's Request to a plain one (or, on the gateway's hot path, reads just the
//! request head), hands D1 and KV to the handlers, and turns plain Responses into the runtime's.

mod credits;
mod js;

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use worker::{Context, Date, Env};

use crate::app::gateway::{self, Prepared};
use crate::app::{lookup, route_of, App, Config, KeyUse, Route, State};
use crate::core::hash::KeyHash;
use crate::core::policy::Route as PolicyRoute;
use crate::core::ratelimit::RateLimit;
use crate::core::record::KeyEntry;
use crate::core::time::Millis;
use crate::core::usage::Due;
use crate::core::validate::MAX_BODY_BYTES;
use crate::http::head::Head;
use crate::http::plain::{Request, Response};
use crate::http::problem::{ApiError, ApiResult};
use crate::store::d1::D1Records;
use crate::store::durable::DoCredits;
use crate::store::kv::KvEdge;
use crate::store::Records;

struct TierAnswer {
    rate: RateLimit,
    binding: String,
    refusal: js::Canned,
}

/// The isolate's state, and the answers the hot path gives most, built once.
struct Isolate {
    st: State,
    /// The invalid_token refusal, kept on the JS side.
    invalid_token: js::Canned,
    /// Each route's insufficient_scope refusal, by its scope attribute.
    insufficient: Vec<(String, js::Canned)>,
    /// Per rate-limit tier: its binding and its 429.
    rate_limited: Vec<TierAnswer>,
}

thread_local! {
    static ISOLATE: RefCell<Option<Rc<Isolate>>> = const { RefCell::new(None) };
}

fn var(env: &Env, name: &str) -> Option<String> {
    // Secrets are bindings too: `secret` reads them, `var` the plain vars.
    env.secret(name)
        .ok()
        .map(|v| v.to_string())
        .or_else(|| env.var(name).ok().map(|v| v.to_string()))
}

fn isolate(env: &Env) -> Result<Rc<Isolate>, ApiError> {
    if let Some(i) = ISOLATE.with(|s| s.borrow().clone()) {
        return Ok(i);
    }
    let config = Config::from_vars(&|name| var(env, name))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    let st = State::new(config, seed)?;
    js::init(
        &st.config.origin,
        st.config.test_origin.as_deref().unwrap_or(""),
        ApiError::BadGateway.status(),
        &ApiError::BadGateway.body(),
    );
    let invalid = Response::problem(&ApiError::InvalidToken, st.realm());
    let rate_limited = st
        .policy
        .tiers
        .0
        .iter()
        .map(|t| {
            let refusal = Response::problem(&ApiError::RateLimited(t.rate()), st.realm());
            TierAnswer {
                rate: t.rate(),
                binding: t.binding.clone(),
                refusal: js::can(&refusal, &flat_headers(&refusal)),
            }
        })
        .collect();
    let i = Rc::new(Isolate {
        invalid_token: js::can(&invalid, &flat_headers(&invalid)),
        insufficient: st
            .policy
            .routes()
            .iter()
            .map(|r| {
                let e = ApiError::InsufficientScope {
                    scope_attr: r.scope_attr.clone(),
                };
                let refusal = Response::problem(&e, st.realm());
                (r.scope_attr.clone(), js::can(&refusal, &flat_headers(&refusal)))
            })
            .collect(),
        rate_limited,
        st,
    });
    ISOLATE.with(|s| *s.borrow_mut() = Some(Rc::clone(&i)));
    Ok(i)
}

fn flat_headers(r: &Response) -> String {
    let mut out = String::new();
    for (k, v) in &r.headers {
        out.push_str(k);
        out.push('\n');
        out.push_str(v);
        out.push('\n');
    }
    out
}

fn to_web(r: &Response) -> web_sys::Response {
    if let (500, Some(_)) = (r.status, r.header("content-type")) {
        crate::log::error(&format!("answered 500: {}", r.body));
    }
    js::respond(r.status, &r.body, &flat_headers(r))
}

fn problem(e: &ApiError, realm: &str) -> web_sys::Response {
    if let ApiError::Internal(msg) = e {
        // Server-side detail only; never contains a key secret (callers pass messages about
        // storage or config, not request input).
        crate::log::error(&format!("internal error: {msg}"));
    }
    to_web(&Response::problem(e, realm))
}

/// The fetch handler, exported directly instead of through `#[event(fetch)]`: a plain
/// (synchronous) function that returns either a Response or a Promise of one. A key found in the
/// per-isolate cache is decided here without the async executor, and the origin's fetch Promise
/// goes straight back to the runtime. Only a cache miss, the verify API and the admin API run as
/// futures. It takes the raw web_sys::Request: converting to worker::Request would cost four JS
/// crossings (method, url, headers, cf) that the hot path does not need.
#[wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
    let ctx = Context::new(ctx);
    let now = Date::now().as_millis() as i64;
    let iso = match isolate(&env) {
        Ok(i) => i,
        Err(e) => return problem(&e, "keyward").into(),
    };
    let head = Head::new(js::request_head(&req));
    if let Err(e) = iso.st.check_throttle(head.client(), now) {
        return problem(&e, iso.st.realm()).into();
    }
    match route_of(head.path()) {
        Route::Gateway => {
            if let Some(done) = gateway_fast(&req, &head, &env, &ctx, &iso, now) {
                return done;
            }
            wasm_bindgen_futures::future_to_promise(async move {
                Ok(gateway_slow(&req, &head, &env, &ctx, &iso, now).await)
            })
            .into()
        }
        Route::Admin | Route::Verify => wasm_bindgen_futures::future_to_promise(async move {
            let resp = match api(&req, head, &env, &ctx, &iso, now).await {
                Ok(r) => to_web(&r),
                Err(e) => problem(&e, iso.st.realm()),
            };
            Ok(resp.into())
        })
        .into(),
    }
}

async fn plain_request(req: &web_sys::Request, head: Head) -> ApiResult<Request> {
    let body = js::read_body(req, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::bad_request("The request body could not be read."))?
        .ok_or(ApiError::PayloadTooLarge)?;
    let headers = js::headers(req);
    let id = headers
        .iter()
        .find(|(k, _)| k == "cf-ray")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Ok(Request {
        method: head.method().to_owned(),
        url: head.url().to_owned(),
        headers,
        body,
        id,
    })
}

async fn api(
    req: &web_sys::Request,
    head: Head,
    env: &Env,
    ctx: &Context,
    iso: &Rc<Isolate>,
    now: Millis,
) -> ApiResult<Response> {
    let plain = plain_request(req, head).await?;
    let records = D1Records::new(env)?;
    let edge = KvEdge::new(env, iso.st.config.kv_cache_ttl);
    let credits = DoCredits::new(env);
    let app = App {
        st: &iso.st,
        records: &records,
        edge: &edge,
        credits: &credits,
    };
    let (resp, key_use) = app.handle_api(&plain, now).await;
    match key_use {
        KeyUse::Used(hash) => note_use(env, ctx, iso, &hash, now),
        KeyUse::Failed => note_failure(env, ctx, iso, head_client(&plain), now),
        KeyUse::Nothing => {}
    }
    Ok(resp)
}

fn head_client(req: &Request) -> &str {
    req.header("cf-connecting-ip").unwrap_or("")
}

/// The answer; an invalid key also counts against the client's failed-attempt budget.
fn answer(r: ApiResult<JsValue>, env: &Env, ctx: &Context, iso: &Rc<Isolate>, head: &Head, now: Millis) -> JsValue {
    match r {
        Ok(v) => v,
        Err(ApiError::InvalidToken) => {
            note_failure(env, ctx, iso, head.client(), now);
            js::canned(iso.invalid_token).into()
        }
        Err(e) => {
            let canned = match &e {
                ApiError::InsufficientScope { scope_attr } => {
                    iso.insufficient.iter().find(|(a, _)| a == scope_attr).map(|(_, c)| *c)
                }
                _ => None,
            };
            match canned {
                Some(c) => js::canned(c).into(),
                None => problem(&e, iso.st.realm()).into(),
            }
        }
    }
}

/// Counts one failed attempt of `client` on the throttle binding, after the response; over the
/// budget, this isolate refuses the client until the window ends (State::check_throttle).
fn note_failure(env: &Env, ctx: &Context, iso: &Rc<Isolate>, client: &str, now: Millis) {
    let Some(t) = &iso.st.policy.throttle else { return };
    if !iso.st.failure(client, now) {
        return;
    }
    let rl = match env.rate_limiter(&t.binding) {
        Ok(rl) => rl,
        Err(e) => {
            crate::log::error(&format!("throttle binding {}: {e}", t.binding));
            return;
        }
    };
    let (iso, client) = (Rc::clone(iso), client.to_owned());
    ctx.wait_until(async move {
        match rl.limit(client.clone()).await {
            Ok(o) => iso
                .st
                .failure_counted(&client, o.success, Date::now().as_millis() as i64),
            Err(e) => crate::log::error(&format!("throttle binding: {e}")),
        }
    });
}

/// The origin fetch started (its Promise goes back to the runtime unawaited), or a 502.
fn started(fetch: Result<JsValue, JsValue>) -> ApiResult<JsValue> {
    fetch.map_err(|e| {
        crate::log::error(&format!("origin fetch could not start: {e:?}"));
        ApiError::BadGateway
    })
}

fn forward(req: &web_sys::Request, identity: &str, signature: &str) -> ApiResult<JsValue> {
    started(js::forward(req, identity, signature))
}

/// A public route: no identity headers; signed (when signing is on) over an empty identity.
fn forward_public(req: &web_sys::Request, head: &Head, iso: &Isolate, now: Millis) -> ApiResult<JsValue> {
    forward(req, "", &gateway::signature(iso.st.signer.as_ref(), now, head, ""))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    req: &web_sys::Request,
    head: &Head,
    env: &Env,
    ctx: &Context,
    iso: &Rc<Isolate>,
    route: &PolicyRoute,
    hash: &KeyHash,
    entry: Option<Rc<KeyEntry>>,
    now: Millis,
) -> ApiResult<JsValue> {
    let entry = gateway::authorize(route, entry, now)?;
    note_use(env, ctx, iso, hash, now);
    let signature = gateway::signature(iso.st.signer.as_ref(), now, head, &entry.identity);
    let tier = entry
        .ratelimit
        .and_then(|rl| iso.rate_limited.iter().find(|t| t.rate == rl));
    // The one test an unmetered request pays for credits.
    if route.cost > 0 {
        return Ok(metered(req, env, iso, route.cost, entry, signature, tier.map(|t| (t.binding.clone(), t.refusal)), now));
    }
    match tier {
        Some(t) => started(js::forward_limited(
            req,
            &entry.identity,
            &signature,
            env,
            &t.binding,
            &entry.id,
            t.refusal,
        )),
        None => forward(req, &entry.identity, &signature),
    }
}

/// A metered route: the key's rate limit (if any) first, so a request it refuses spends nothing;
/// then one call to the workspace's credit counter; then the forward. Exhausted credits answer 402
/// and an unreachable counter 503, both without an origin call.
#[allow(clippy::too_many_arguments)]
fn metered(
    req: &web_sys::Request,
    env: &Env,
    iso: &Rc<Isolate>,
    cost: i64,
    entry: Rc<KeyEntry>,
    signature: String,
    tier: Option<(String, js::Canned)>,
    now: Millis,
) -> JsValue {
    // Clone::clone: web_sys::Request::clone would copy the request (its body included).
    let (req, env, iso) = (Clone::clone(req), env.clone(), Rc::clone(iso));
    wasm_bindgen_futures::future_to_promise(async move {
        if let Some((binding, refusal)) = tier {
            // Like kw_forward_limited: a limiter that fails lets the request through (logged).
            match env.rate_limiter(&binding) {
                Ok(rl) => match rl.limit(entry.id.to_string()).await {
                    Ok(o) if !o.success => return Ok(js::canned(refusal).into()),
                    Ok(_) => {}
                    Err(e) => crate::log::error(&format!("rate limiter {binding}: {e}")),
                },
                Err(e) => crate::log::error(&format!("rate limiter {binding}: {e}")),
            }
        }
        let credits = DoCredits::new(&env);
        let r = match crate::app::credits::charge(&credits, &entry.workspace, entry.cap.as_deref(), cost, now).await {
            Ok(()) => forward(&req, &entry.identity, &signature),
            Err(e) => Err(e),
        };
        Ok(match r {
            Ok(v) => v,
            Err(e) => problem(&e, iso.st.realm()).into(),
        })
    })
    .into()
}

/// Decides from memory: refusals that need no storage, public routes and cache hits.
/// `None` = needs a KV read.
fn gateway_fast(
    req: &web_sys::Request,
    head: &Head,
    env: &Env,
    ctx: &Context,
    iso: &Rc<Isolate>,
    now: Millis,
) -> Option<JsValue> {
    match gateway::prepare(&iso.st.policy, &iso.st.config.keys, head) {
        Err(e) => Some(answer(Err(e), env, ctx, iso, head, now)),
        Ok(Prepared::Public) => Some(answer(forward_public(req, head, iso, now), env, ctx, iso, head, now)),
        Ok(Prepared::Keyed(hash, route)) => {
            let entry = lookup::cached(&iso.st, &hash, now)?;
            Some(answer(
                finish(req, head, env, ctx, iso, route, &hash, entry, now),
                env,
                ctx,
                iso,
                head,
                now,
            ))
        }
    }
}

/// The cache-miss path: at most one KV read, then the same decision.
async fn gateway_slow(
    req: &web_sys::Request,
    head: &Head,
    env: &Env,
    ctx: &Context,
    iso: &Rc<Isolate>,
    now: Millis,
) -> JsValue {
    let r = async {
        match gateway::prepare(&iso.st.policy, &iso.st.config.keys, head)? {
            Prepared::Public => forward_public(req, head, iso, now),
            Prepared::Keyed(hash, route) => {
                let edge = KvEdge::new(env, iso.st.config.kv_cache_ttl);
                let entry = lookup::entry(&iso.st, &edge, &hash, now).await?;
                finish(req, head, env, ctx, iso, route, &hash, entry, now)
            }
        }
    };
    answer(r.await, env, ctx, iso, head, now)
}

/// Notes a successful use; the batch decides when D1 is written (after the response, through
/// waitUntil). The verify path never waits on D1.
fn note_use(env: &Env, ctx: &Context, iso: &Rc<Isolate>, hash: &KeyHash, now: Millis) {
    let due = iso.st.usage.borrow_mut().record(*hash, now);
    if due == Due::Nothing {
        return;
    }
    let Ok(db) = D1Records::new(env) else { return };
    let iso = Rc::clone(iso);
    ctx.wait_until(async move {
        let batch = match due {
            Due::Flush(b) => b,
            Due::Timer { gen, at } => {
                worker::Delay::from(std::time::Duration::from_millis((at - now).max(0) as u64)).await;
                let later = Date::now().as_millis() as i64;
                match iso.st.usage.borrow_mut().on_timer(gen, later) {
                    Some(b) => b,
                    None => return,
                }
            }
            Due::Nothing => return,
        };
        if let Err(e) = db.touch_last_used(&batch).await {
            crate::log::error(&format!("last-used write for {} keys failed: {e:?}", batch.len()));
        }
    });
}
