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
    use worker::{event, Context, Date, Env};

    use crate::http::{body::path_of, js, problem::ApiError, response};
    use crate::{admin, gateway, state, verify};

    /// Takes the raw web_sys request: converting it to worker::Request would cost four JS
    /// crossings (method, url, headers, cf) that the hot path does not need.
    #[event(fetch)]
    async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> worker::Result<web_sys::Response> {
        let now = Date::now().as_millis() as i64;
        let st = match state::get(&env) {
            Ok(st) => st,
            Err(e) => return Ok(response::problem(&e, "keyward")),
        };
        let (method, url, auth) = js::request_head(&req);
        let path = path_of(&url);
        let result = if path.starts_with("/admin/") {
            admin::handle(req, &method, &url, path, auth.as_deref(), &env, &st, now).await
        } else if path == "/v1/keys/verify" {
            verify::handle(req, &method, &env, &ctx, &st, now).await
        } else {
            gateway::handle(&req, &method, &url, path, auth.as_deref(), &env, &ctx, &st, now).await
        };
        Ok(result.unwrap_or_else(|e: ApiError| response::problem(&e, &st.policy.realm)))
    }
}
