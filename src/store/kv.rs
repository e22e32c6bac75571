//! Workers KV: the edge projection the verify path reads. Name = hex SHA-256 of the key,
//! value = versioned KeyRecord JSON (see core::record).

use worker::{Env, KvStore};

use crate::core::hash::KeyHash;
use crate::core::record::KeyRecord;
use crate::core::time::Millis;
use crate::http::problem::ApiError;

pub const BINDING: &str = "KV";

fn store(env: &Env) -> Result<KvStore, ApiError> {
    env.kv(BINDING).map_err(|e| ApiError::Internal(format!("KV binding {BINDING}: {e}")))
}

/// Raw record text. `cache_ttl` (s) lets the edge location reuse a read; KV's minimum is 30.
pub async fn get(env: &Env, hash: &KeyHash, cache_ttl: u64) -> Result<Option<String>, ApiError> {
    store(env)?
        .get(&hash.to_hex())
        .cache_ttl(cache_ttl.max(30))
        .text()
        .await
        .map_err(|e| ApiError::Unavailable { slug: "kv-unavailable", detail: format!("Key store read failed: {e}") })
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
