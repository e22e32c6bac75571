//! The glue: the only code that knows it runs on Workers. It reads the clock once per request,
//! converts the runtime's Request to a plain one (or, on the gateway's hot path, reads just the
//! request head), hands D1 and KV to the handlers, and turns plain Responses into the runtime's.
//! Every answer it gives carries the request id (X-Request-Id; `instance` in problem bodies), and
//! every future it starts runs with the request's log context (crate::log), so a line logged
//! anywhere below names the request. The synchronous cache-hit path makes no log context unless
//! it has something to log.

mod credits;
mod feed;
mod js;

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use worker::{Context, Env};

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
use crate::log;
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

/// The clock, in ms since the epoch: one import call (worker::Date::now makes a Date object and
/// reads it back, two crossings and an allocation on every request).
pub(crate) fn now_ms() -> Millis {
    js_sys::Date::now() as Millis
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
    feed::check_binding(env, &st).map_err(ApiError::Internal)?;
    let patterns: Vec<&str> = st.policy.routes().iter().map(|r| r.pattern.as_str()).collect();
    js::init(
        &st.config.origin,
        st.config.test_origin.as_deref().unwrap_or(""),
        ApiError::BadGateway.status(),
        &ApiError::BadGateway.body_for(js::REQUEST_ID_MARK),
        &patterns.join("\n"),
    );
    // Canned bodies name the request as `instance`: JS puts each request's id at the mark.
    let canned = |e: &ApiError| {
        let r = Response::problem_for(e, st.realm(), js::REQUEST_ID_MARK);
        js::can(&r, &flat_headers(&r))
    };
    let invalid = canned(&ApiError::InvalidToken);
    let rate_limited = st
        .policy
        .tiers
        .0
        .iter()
        .map(|t| TierAnswer {
            rate: t.rate(),
            binding: t.binding.clone(),
            refusal: canned(&ApiError::RateLimited(t.rate())),
        })
        .collect();
    let insufficient = st
        .policy
        .routes()
        .iter()
        .map(|r| {
            let e = ApiError::InsufficientScope {
                scope_attr: r.scope_attr.clone(),
            };
            (r.scope_attr.clone(), canned(&e))
        })
        .collect();
    let i = Rc::new(Isolate {
        invalid_token: invalid,
        insufficient,
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

/// `r` as the runtime's Response, with the request id as X-Request-Id.
fn to_web(r: &Response, rid: &str) -> web_sys::Response {
    let mut headers = flat_headers(r);
    headers.push_str("x-request-id\n");
    headers.push_str(rid);
    headers.push('\n');
    js::respond(r.status, &r.body, &headers)
}

/// The log context of the request in `head`: the current one (inside a future the glue scoped),
/// or a new one. The synchronous gateway path calls this only when it has something to log.
fn log_ctx(head: &Head, route: &str, key: Option<&str>) -> Rc<log::Ctx> {
    if let Some(c) = log::current() {
        return c;
    }
    let c = log::Ctx::new(head.request_id(), route.to_owned());
    if let Some(k) = key {
        c.set_key(k);
    }
    c
}

/// The problem answer; a 5xx is logged (Response::problem_for) under the request's context.
fn problem(e: &ApiError, realm: &str, head: &Head) -> web_sys::Response {
    let ctx = (e.status() >= 500).then(|| log_ctx(head, "", None));
    let _entered = ctx.as_ref().map(log::enter);
    to_web(&Response::problem_for(e, realm, head.request_id()), head.request_id())
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
    let now = now_ms();
    let head = Head::with_request_id(js::request_head(&req));
    let iso = match isolate(&env) {
        Ok(i) => i,
        Err(e) => return problem(&e, "keyward", &head).into(),
    };
    if let Err(e) = iso.st.check_throttle(head.client(), now) {
        return problem(&e, iso.st.realm(), &head).into();
    }
    match route_of(head.path()) {
        Route::Gateway => {
            if let Some(done) = gateway_fast(&req, &head, &env, &ctx, &iso, now) {
                return done;
            }
            let log_ctx = log::Ctx::new(head.request_id(), "gateway".into());
            wasm_bindgen_futures::future_to_promise(log::scoped(&log_ctx.clone(), async move {
                Ok(gateway_slow(&req, &head, &env, &ctx, &iso, now, &log_ctx).await)
            }))
            .into()
        }
        Route::Admin | Route::Verify => {
            let log_ctx = log::Ctx::new(head.request_id(), log::api_route(head.method(), head.path()));
            if let Some(k) = log::key_in_path(head.path()) {
                log_ctx.set_key(k);
            }
            wasm_bindgen_futures::future_to_promise(log::scoped(&log_ctx, async move {
                let rid = head.request_id().to_owned();
                let resp = match api(&req, head, &env, &ctx, &iso, now).await {
                    Ok(r) => to_web(&r, &rid),
                    Err(e) => to_web(&Response::problem_for(&e, iso.st.realm(), &rid), &rid),
                };
                Ok(resp.into())
            }))
            .into()
        }
        Route::Page => {
            let rid = head.request_id().to_owned();
            to_web(
                &crate::app::page::serve(head.method(), head.path(), iso.st.realm(), &rid),
                &rid,
            )
            .into()
        }
        Route::OpenApi => {
            let rid = head.request_id().to_owned();
            match crate::app::openapi::handle(head.method()) {
                Ok(r) => to_web(&r, &rid).into(),
                Err(e) => to_web(&Response::problem_for(&e, iso.st.realm(), &rid), &rid).into(),
            }
        }
    }
}

async fn plain_request(req: &web_sys::Request, head: Head) -> ApiResult<Request> {
    let body = js::read_body(req, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::bad_request("The request body could not be read."))?
        .ok_or(ApiError::PayloadTooLarge)?;
    let headers = js::headers(req);
    let id = head.request_id().to_owned();
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
    let announce = feed::for_admin(env, &iso.st);
    let app = App {
        st: &iso.st,
        records: &records,
        edge: &edge,
        credits: &credits,
        feed: announce.as_ref(),
    };
    // The verify API and admin authentication by key decide from the cache or KV too.
    feed::catch_up(env, &iso.st, now).await;
    let (resp, key_use) = app.handle_api(&plain, now).await;
    feed::poll_after(env, ctx, iso, now);
    let lc = log::current().unwrap_or_else(|| log::Ctx::new(&plain.id, String::new()));
    match key_use {
        KeyUse::Used(hash) => {
            refresh_ahead(env, ctx, iso, &hash, now, || Rc::clone(&lc));
            note_use(env, ctx, iso, &hash, now, || lc)
        }
        KeyUse::Failed => note_failure(env, ctx, iso, head_client(&plain), now, || lc),
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
            note_failure(env, ctx, iso, head.client(), now, || log_ctx(head, "gateway", None));
            js::canned(iso.invalid_token, head.request_id()).into()
        }
        Err(e) => {
            let canned = match &e {
                ApiError::InsufficientScope { scope_attr } => {
                    iso.insufficient.iter().find(|(a, _)| a == scope_attr).map(|(_, c)| *c)
                }
                _ => None,
            };
            match canned {
                Some(c) => js::canned(c, head.request_id()).into(),
                None => problem(&e, iso.st.realm(), head).into(),
            }
        }
    }
}

/// Counts one failed attempt of `client` on the throttle binding, after the response; over the
/// budget, this isolate refuses the client until the window ends (State::check_throttle).
/// `log_ctx` is called only when a binding call is made (the common case makes no context).
fn note_failure(
    env: &Env,
    ctx: &Context,
    iso: &Rc<Isolate>,
    client: &str,
    now: Millis,
    log_ctx: impl FnOnce() -> Rc<log::Ctx>,
) {
    let Some(t) = &iso.st.policy.throttle else { return };
    if !iso.st.failure(client, now) {
        return;
    }
    let lc = log_ctx();
    let rl = match env.rate_limiter(&t.binding) {
        Ok(rl) => rl,
        Err(e) => {
            let _entered = log::enter(&lc);
            log::error("throttle-failed", &format!("binding {}: {e}", t.binding));
            return;
        }
    };
    let (iso, client) = (Rc::clone(iso), client.to_owned());
    ctx.wait_until(log::scoped(&lc, async move {
        match rl.limit(client.clone()).await {
            Ok(o) => iso.st.failure_counted(&client, o.success, now_ms()),
            Err(e) => log::error("throttle-failed", &format!("binding: {e}")),
        }
    }));
}

/// The origin fetch started (its Promise goes back to the runtime unawaited), or a 502 (logged).
fn started(fetch: Result<JsValue, JsValue>, head: &Head, route: &PolicyRoute, key: Option<&str>) -> ApiResult<JsValue> {
    fetch.map_err(|e| {
        let _entered = log::enter(&log_ctx(head, &route.pattern, key));
        log::error("origin-fetch-not-started", &format!("{e:?}"));
        ApiError::BadGateway
    })
}

/// The index of `route` in the policy, which JS's log lines turn back into its pattern.
fn route_index(iso: &Isolate, route: &PolicyRoute) -> u32 {
    let routes = iso.st.policy.routes();
    routes
        .iter()
        .position(|r| std::ptr::eq(r, route))
        .map_or(u32::MAX, |i| i as u32)
}

/// A public route: no identity headers; signed (when signing is on) over an empty identity.
fn forward_public(
    req: &web_sys::Request,
    head: &Head,
    iso: &Isolate,
    route: &PolicyRoute,
    now: Millis,
) -> ApiResult<JsValue> {
    let signature = gateway::signature(iso.st.signer.as_ref(), now, head, "");
    let fetch = js::forward(req, "", &signature, head.request_id(), route_index(iso, route));
    started(fetch, head, route, None)
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
    note_use(env, ctx, iso, hash, now, || {
        log_ctx(head, &route.pattern, Some(&entry.id))
    });
    let signature = gateway::signature(iso.st.signer.as_ref(), now, head, &entry.identity);
    let tier = entry
        .ratelimit
        .and_then(|rl| iso.rate_limited.iter().find(|t| t.rate == rl));
    let (rid, index) = (head.request_id(), route_index(iso, route));
    // The one test an unmetered request pays for credits.
    if route.cost > 0 {
        let tier = tier.map(|t| (t.binding.clone(), t.refusal));
        return Ok(metered(req, head, env, iso, route, index, entry, signature, tier, now));
    }
    let fetch = match tier {
        Some(t) => js::forward_limited(
            req,
            &entry.identity,
            &signature,
            rid,
            index,
            env,
            &t.binding,
            &entry.id,
            t.refusal,
        ),
        None => js::forward(req, &entry.identity, &signature, rid, index),
    };
    started(fetch, head, route, Some(&entry.id))
}

/// A metered route: the key's rate limit (if any) first, so a request it refuses spends nothing;
/// then one call to the workspace's credit counter; then the forward. Exhausted credits answer 402
/// and an unreachable counter 503, both without an origin call. Runs as its own future under the
/// request's log context (the counter call is awaited, unlike the unmetered forward).
#[allow(clippy::too_many_arguments)]
fn metered(
    req: &web_sys::Request,
    head: &Head,
    env: &Env,
    iso: &Rc<Isolate>,
    route: &PolicyRoute,
    index: u32,
    entry: Rc<KeyEntry>,
    signature: String,
    tier: Option<(String, js::Canned)>,
    now: Millis,
) -> JsValue {
    let lc = log_ctx(head, &route.pattern, Some(&entry.id));
    let cost = route.cost;
    // Clone::clone: web_sys::Request::clone would copy the request (its body included).
    let (req, env, iso) = (Clone::clone(req), env.clone(), Rc::clone(iso));
    let rid = head.request_id().to_owned();
    wasm_bindgen_futures::future_to_promise(log::scoped(&lc, async move {
        if let Some((binding, refusal)) = tier {
            // Like kw_forward_limited: a limiter that fails lets the request through (logged).
            match env.rate_limiter(&binding) {
                Ok(rl) => match rl.limit(entry.id.to_string()).await {
                    Ok(o) if !o.success => return Ok(js::canned(refusal, &rid).into()),
                    Ok(_) => {}
                    Err(e) => log::warn("ratelimiter-failed", &format!("{binding}: {e}")),
                },
                Err(e) => log::warn("ratelimiter-failed", &format!("{binding}: {e}")),
            }
        }
        let credits = DoCredits::new(&env);
        let charged = crate::app::credits::charge(&credits, &entry.workspace, entry.cap.as_deref(), cost, now).await;
        let r = charged.and_then(|()| {
            js::forward(&req, &entry.identity, &signature, &rid, index).map_err(|e| {
                log::error("origin-fetch-not-started", &format!("{e:?}"));
                ApiError::BadGateway
            })
        });
        Ok(match r {
            Ok(v) => v,
            Err(e) => to_web(&Response::problem_for(&e, iso.st.realm(), &rid), &rid).into(),
        })
    }))
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
        Ok(Prepared::Public(route)) => Some(answer(
            forward_public(req, head, iso, route, now),
            env,
            ctx,
            iso,
            head,
            now,
        )),
        Ok(Prepared::Keyed(hash, route)) => {
            let entry = lookup::cached(&iso.st, &hash, now)?;
            refresh_ahead(env, ctx, iso, &hash, now, || log_ctx(head, &route.pattern, None));
            let done = answer(
                finish(req, head, env, ctx, iso, route, &hash, entry, now),
                env,
                ctx,
                iso,
                head,
                now,
            );
            feed::poll_after(env, ctx, iso, now);
            Some(done)
        }
    }
}

/// The cache-miss path: at most one KV read, then the same decision. Runs under `log_ctx`.
async fn gateway_slow(
    req: &web_sys::Request,
    head: &Head,
    env: &Env,
    ctx: &Context,
    iso: &Rc<Isolate>,
    now: Millis,
    log_ctx: &log::Ctx,
) -> JsValue {
    let r = async {
        match gateway::prepare(&iso.st.policy, &iso.st.config.keys, head)? {
            Prepared::Public(route) => {
                log_ctx.set_route(&route.pattern);
                forward_public(req, head, iso, route, now)
            }
            Prepared::Keyed(hash, route) => {
                log_ctx.set_route(&route.pattern);
                let edge = KvEdge::new(env, iso.st.config.kv_cache_ttl);
                feed::catch_up(env, &iso.st, now).await;
                feed::poll_after(env, ctx, iso, now);
                let entry = lookup::entry(&iso.st, &edge, &hash, now).await?;
                finish(req, head, env, ctx, iso, route, &hash, entry, now)
            }
        }
    };
    answer(r.await, env, ctx, iso, head, now)
}

/// Refresh-ahead for a key answered from the cache: when its entry is in the last part of its
/// TTL, one KV read after the response replaces it, so busy keys never wait on KV at expiry.
/// `log_ctx` is called only when a refresh starts (once per entry per TTL).
fn refresh_ahead(
    env: &Env,
    ctx: &Context,
    iso: &Rc<Isolate>,
    hash: &KeyHash,
    now: Millis,
    log_ctx: impl FnOnce() -> Rc<log::Ctx>,
) {
    if !lookup::refresh_due(&iso.st, hash, now) {
        return;
    }
    let (env, iso, hash) = (env.clone(), Rc::clone(iso), *hash);
    ctx.wait_until(log::scoped(&log_ctx(), async move {
        let edge = KvEdge::new(&env, iso.st.config.kv_cache_ttl);
        lookup::refresh(&iso.st, &edge, &hash, now).await;
    }));
}

/// Notes a successful use; the batch decides when D1 is written (after the response, through
/// waitUntil, under the log context `log_ctx` makes). The verify path never waits on D1.
fn note_use(
    env: &Env,
    ctx: &Context,
    iso: &Rc<Isolate>,
    hash: &KeyHash,
    now: Millis,
    log_ctx: impl FnOnce() -> Rc<log::Ctx>,
) {
    let due = iso.st.usage.borrow_mut().record(*hash, now);
    if due == Due::Nothing {
        return;
    }
    let lc = log_ctx();
    let _entered = log::enter(&lc);
    let Ok(db) = D1Records::new(env) else { return };
    let iso = Rc::clone(iso);
    ctx.wait_until(log::scoped(&lc, async move {
        let batch = match due {
            Due::Flush(b) => b,
            Due::Timer { gen, at } => {
                worker::Delay::from(std::time::Duration::from_millis((at - now).max(0) as u64)).await;
                let later = now_ms();
                match iso.st.usage.borrow_mut().on_timer(gen, later) {
                    Some(b) => b,
                    None => return,
                }
            }
            Due::Nothing => return,
        };
        if let Err(e) = db.touch_last_used(&batch).await {
            log::error("last-used-failed", &format!("{} keys: {e:?}", batch.len()));
        }
    }));
}
