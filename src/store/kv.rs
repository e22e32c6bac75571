//! Workers KV: the edge projection the verify path reads. Name = hex SHA-256 of the key,
//! value = versioned KeyRecord JSON (see core::record).

use wasm_bindgen::prelude::*;
use worker::{Env, KvStore};

use crate::core::hash::KeyHash;
use crate::core::record::KeyRecord;
use crate::core::time::Millis;
use crate::http::problem::ApiError;

pub const BINDING: &str = "KV";

fn store(env: &Env) -> Result<KvStore, ApiError> {
    env.kv(BINDING)
        .map_err(|e| ApiError::Internal(format!("KV binding {BINDING}: {e}")))
}

// The verify path's one storage read, as one JS call: worker's KvStore builds its options
// object through serde-wasm-bindgen and looks the binding up on every call.
#[wasm_bindgen(
    inline_js = "export function kw_kv_get(env, name, ttl) { return env.KV.get(name, { type: 'text', cacheTtl: ttl }); }"
)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn kw_kv_get(env: &Env, name: &str, ttl: u32) -> Result<js_sys::Promise, JsValue>;
}

/// Raw record text. `cache_ttl` (s) lets the edge location reuse a read; KV's minimum is 30.
pub async fn get(env: &Env, hash: &KeyHash, cache_ttl: u64) -> Result<Option<String>, ApiError> {
    let unavailable = |e: JsValue| {
        worker::console_error!("KV read failed: {e:?}");
        ApiError::Unavailable {
            slug: "kv-unavailable",
            detail: "The key store is unavailable.".into(),
        }
    };
    let ttl = cache_ttl.clamp(30, u64::from(u32::MAX)) as u32;
    let promise = kw_kv_get(env, &hash.to_hex(), ttl).map_err(unavailable)?;
    let value = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(unavailable)?;
    Ok(value.as_string())
}

pub async fn put(env: &Env, hash: &KeyHash, record: &KeyRecord, now: Millis) -> Result<(), String> {
    let kv = store(env).map_err(|e| format!("{e:?}"))?;
    let mut put = kv.put(&hash.to_hex(), record.to_json()).map_err(|e| e.to_string())?;
    if let Some(exp) = record.kv_expiration(now) {
        put = put.expiration(exp);
    }
    put.execute().await.map_err(|e| e.to_string())
}

pub async fn delete(env: &Env, hash: &KeyHash) -> Result<(), String> {
    let kv = store(env).map_err(|e| format!("{e:?}"))?;
    kv.delete(&hash.to_hex()).await.map_err(|e| e.to_string())
}
