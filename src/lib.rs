//! keyward: API-key authorization at the edge. This file is the entry only: read the clock once,
//! route, and turn every error into a response.

pub mod core;
pub mod http;

#[cfg(target_arch = "wasm32")]
mod admin;
#[cfg(target_arch = "wasm32")]
mod gateway;
#[cfg(target_arch = "wasm32")]
mod lookup;
#[cfg(target_arch = "wasm32")]
mod state;
#[cfg(target_arch = "wasm32")]
mod store;
#[cfg(target_arch = "wasm32")]
mod verify;

#[cfg(target_arch = "wasm32")]
mod entry {
    use wasm_bindgen::prelude::*;
    use worker::{Context, Date, Env};

    use crate::gateway::{self, Head};
    use crate::http::{js, problem::ApiError, response};
    use crate::{admin, state, verify};

    /// The fetch handler, exported directly instead of through `#[event(fetch)]`: it is a plain
    /// (synchronous) function that returns either a Response or a Promise of one. A key found in
    /// the per-isolate cache is decided here without the async executor, and the origin's fetch
    /// Promise goes straight back to the runtime. Only a cache miss, the verify API and the admin
    /// API run as futures. It takes the raw web_sys::Request: converting to worker::Request
    /// would cost four JS crossings (method, url, headers, cf) that the hot path does not need.
    #[wasm_bindgen]
    pub fn fetch(req: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
        let ctx = Context::new(ctx);
        let now = Date::now().as_millis() as i64;
        let st = match state::get(&env) {
            Ok(st) => st,
            Err(e) => return response::problem(&e, "keyward").into(),
        };
        let head = Head::new(js::request_head(&req));
        let path = head.path();
        let is_admin = path.starts_with("/admin/");
        let is_verify = path == "/v1/keys/verify";
        if !is_admin && !is_verify {
            if let Some(done) = gateway::fast(&req, &head, &env, &ctx, &st, now) {
                return done;
            }
        }
        wasm_bindgen_futures::future_to_promise(async move {
            let result = if is_admin {
                admin::handle(req, head.method(), head.url(), head.path(), head.auth(), &env, &st, now).await
            } else if is_verify {
                verify::handle(req, head.method(), &env, &ctx, &st, now).await
            } else {
                return Ok(gateway::slow(&req, &head, &env, &ctx, &st, now).await);
            };
            Ok(result
                .unwrap_or_else(|e: ApiError| response::problem(&e, &st.policy.realm))
                .into())
        })
        .into()
    }
}
