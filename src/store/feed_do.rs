//! The revocation feed in production: one Durable Object per deployment (class `RevocationFeed`
//! in src/wasm/feed.rs), found by a fixed name through the `FEED` binding. The only file besides
//! the class that names it. One JS call per operation: the stub lookup, the fetch, reading the
//! answer and the timeout happen on the JS side.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use worker::Env;

use super::{Feed, Pending, StoreError, StoreResult};
use crate::core::feed::{Change, Page};
use crate::core::time::Millis;

pub const BINDING: &str = "FEED";

#[wasm_bindgen(inline_js = r#"
export function kw_feed(env, binding, path, body, timeoutMs) {
  const ns = env[binding];
  if (!ns) return Promise.reject(new Error('no ' + binding + ' binding'));
  const stub = ns.get(ns.idFromName('revocations'));
  const init = body === undefined ? undefined : { method: 'POST', body };
  const call = stub.fetch('https://feed.internal' + path, init).then((r) =>
    r.status === 200 ? r.text() : r.text().then((t) => Promise.reject(new Error('feed answered ' + r.status + ': ' + t))));
  if (!(timeoutMs > 0)) return call;
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('feed: no answer within ' + timeoutMs + ' ms')), timeoutMs);
  });
  return Promise.race([call, late]).finally(() => clearTimeout(timer));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn kw_feed(
        env: &JsValue,
        binding: &str,
        path: &str,
        body: Option<String>,
        timeout_ms: f64,
    ) -> Result<js_sys::Promise, JsValue>;
}

pub struct DoFeed {
    env: JsValue,
    timeout: Millis,
}

impl DoFeed {
    /// `timeout`: how long one call may take before it counts as failed (0: no limit).
    pub fn new(env: &Env, timeout: Millis) -> DoFeed {
        let v: &JsValue = env.as_ref();
        DoFeed {
            env: v.clone(),
            timeout,
        }
    }

    async fn call(&self, path: &str, body: Option<String>) -> StoreResult<String> {
        let p = kw_feed(&self.env, BINDING, path, body, self.timeout as f64).map_err(unavailable)?;
        let text = JsFuture::from(p).await.map_err(unavailable)?;
        Ok(text.as_string().unwrap_or_default())
    }
}

fn unavailable(e: JsValue) -> StoreError {
    let msg = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    StoreError::Unavailable(format!("revocation feed: {msg}"))
}

#[derive(serde::Deserialize)]
struct Appended {
    seq: u64,
}

impl Feed for DoFeed {
    /// `now` is not sent: the object stamps entries with its own clock, the one retention counts by.
    fn append<'a>(&'a self, change: &'a Change, _now: Millis) -> Pending<'a, StoreResult<u64>> {
        Box::pin(async move {
            let body = serde_json::to_string(change).map_err(|e| StoreError::Corrupt(format!("feed change: {e}")))?;
            let text = self.call("/append", Some(body)).await?;
            let a: Appended =
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("feed append answer: {e}")))?;
            Ok(a.seq)
        })
    }

    fn since(&self, after: u64, limit: u32) -> Pending<'_, StoreResult<Page>> {
        Box::pin(async move {
            let text = self.call(&format!("/since?after={after}&limit={limit}"), None).await?;
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("feed page: {e}")))
        })
    }
}
