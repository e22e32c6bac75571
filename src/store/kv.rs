//! Workers KV: the edge projection the verify path reads. Name = hex SHA-256 of the key,
//! value = versioned KeyRecord JSON (see core::record).

use wasm_bindgen::prelude::*;
use worker::{Env, KvStore};

use super::{Edge, Parked, StoreError, StoreResult};
use crate::core::hash::KeyHash;
use crate::core::record::KeyRecord;
use crate::core::time::Millis;

pub const BINDING: &str = "KV";

// The verify path's one storage read, as one JS call: worker's KvStore builds its options
// object through serde-wasm-bindgen and looks the binding up on every call.
#[wasm_bindgen(
    inline_js = "export function kw_kv_get(env, name, ttl) { return env.KV.get(name, { type: 'text', cacheTtl: ttl }); }"
)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn kw_kv_get(env: &Env, name: &str, ttl: u32) -> Result<js_sys::Promise, JsValue>;
}

pub struct KvEdge<'a> {
    env: &'a Env,
    /// `cacheTtl` for reads, seconds: lets the edge location reuse a read; KV's minimum is 30.
    cache_ttl: u32,
}

impl<'a> KvEdge<'a> {
    pub fn new(env: &'a Env, cache_ttl: u64) -> KvEdge<'a> {
        KvEdge {
            env,
            cache_ttl: cache_ttl.clamp(30, u64::from(u32::MAX)) as u32,
        }
    }

    fn store(&self) -> StoreResult<KvStore> {
        self.env.kv(BINDING).map_err(unavailable)
    }
}

/// Every KV failure is logged here, with its cause (the caller's answer says only what it left).
fn unavailable(e: impl std::fmt::Debug) -> StoreError {
    let msg = format!("KV: {e:?}");
    crate::log::error("kv-error", &msg);
    StoreError::Unavailable(msg)
}

impl Edge for KvEdge<'_> {
    async fn get(&self, hash: &KeyHash) -> StoreResult<Option<KeyRecord>> {
        let promise = kw_kv_get(self.env, &hash.to_hex(), self.cache_ttl).map_err(unavailable)?;
        let value = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(unavailable)?;
        match value.as_string() {
            None => Ok(None),
            Some(text) => KeyRecord::from_json(&text).map(Some).map_err(StoreError::Corrupt),
        }
    }

    async fn put(&self, hash: &KeyHash, record: &KeyRecord, now: Millis) -> StoreResult<()> {
        let mut put = self
            .store()?
            .put(&hash.to_hex(), record.to_json())
            .map_err(unavailable)?;
        if let Some(exp) = record.kv_expiration(now) {
            put = put.expiration(exp);
        }
        put.execute().await.map_err(unavailable)
    }

    async fn delete(&self, hash: &KeyHash) -> StoreResult<()> {
        self.store()?.delete(&hash.to_hex()).await.map_err(unavailable)
    }

    /// A promise made by the waiting request and settled by the reader: the runtime
    /// (`handle_cross_request_promise_resolution`, on by default at wrangler.toml's compatibility
    /// date; `no_handle_cross_request_promise_resolution` would turn it off) runs its continuation
    /// in the request that made it, so the waiter resumes in its own context. The e2e trial
    /// `gateway::concurrent_first_requests_for_new_keys` fails without it.
    fn park(&self) -> Parked {
        let mut resolve = None;
        let promise = js_sys::Promise::new(&mut |res, _rej| resolve = Some(res));
        let settled = wasm_bindgen_futures::JsFuture::from(promise);
        Parked {
            wait: Box::pin(async move {
                let _ = settled.await;
            }),
            wake: Box::new(move || {
                if let Some(r) = resolve {
                    let _ = r.call0(&JsValue::UNDEFINED);
                }
            }),
        }
    }
}
