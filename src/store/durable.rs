//! The credit counter in production: one Durable Object per workspace (src/wasm/credits.rs), found
//! by name (the workspace id) through the `CREDITS` binding. The only file besides the DO class
//! that names it. One JS call per op: the stub lookup, the fetch and reading the answer happen on
//! the JS side (each wasm<->JS crossing costs; see notes on the hot path).

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use worker::Env;

use super::{Credits, Pending, StoreError, StoreResult};
use crate::core::credits::{Op, Reply};
use crate::core::time::Millis;

pub const BINDING: &str = "CREDITS";

#[wasm_bindgen(inline_js = r#"
export function kw_credits(env, binding, workspace, op) {
  const ns = env[binding];
  if (!ns) return Promise.reject(new Error('no ' + binding + ' binding'));
  const stub = ns.get(ns.idFromName(workspace));
  return stub.fetch('https://credits.internal/apply', { method: 'POST', body: op }).then((r) =>
    r.status === 200 ? r.text() : r.text().then((t) => Promise.reject(new Error('counter answered ' + r.status + ': ' + t))));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn kw_credits(env: &JsValue, binding: &str, workspace: &str, op: &str) -> Result<js_sys::Promise, JsValue>;
}

pub struct DoCredits {
    env: JsValue,
}

impl DoCredits {
    pub fn new(env: &Env) -> DoCredits {
        let v: &JsValue = env.as_ref();
        DoCredits { env: v.clone() }
    }
}

fn unavailable(e: JsValue) -> StoreError {
    StoreError::Unavailable(format!(
        "credit counter: {}",
        e.as_string().unwrap_or_else(|| format!("{e:?}"))
    ))
}

impl Credits for DoCredits {
    /// `now` is not sent: the object reads its own clock, the one clock every refill of the
    /// workspace is measured by.
    fn apply<'a>(&'a self, workspace: &'a str, op: &'a Op, _now: Millis) -> Pending<'a, StoreResult<Reply>> {
        Box::pin(async move {
            let body = serde_json::to_string(op).map_err(|e| StoreError::Corrupt(format!("credit op: {e}")))?;
            let p = kw_credits(&self.env, BINDING, workspace, &body).map_err(unavailable)?;
            let text = JsFuture::from(p).await.map_err(unavailable)?;
            let text = text.as_string().unwrap_or_default();
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("credit counter answer: {e}")))
        })
    }
}
