//! Key lookup shared by the gateway, the verify API and admin authentication: the per-isolate
//! cache first, then at most one KV read.

use std::rc::Rc;

use worker::{Context, Env};

use crate::core::cache::Lookup;
use crate::core::hash::KeyHash;
use crate::core::record::{KeyEntry, KeyRecord};
use crate::core::time::Millis;
use crate::http::problem::ApiError;
use crate::state::State;
use crate::store::{d1::Db, kv};

/// What the per-isolate cache knows: `Some(Some(e))` a record, `Some(None)` known to be absent,
/// `None` nothing (KV must be asked).
pub fn cached(st: &State, hash: &KeyHash, now: Millis) -> Option<Option<Rc<KeyEntry>>> {
    match st.cache.borrow_mut().get(hash, now) {
        Lookup::Hit(e) => Some(Some(e)),
        Lookup::KnownMissing => Some(None),
        Lookup::Miss => None,
    }
}

pub async fn entry(st: &State, env: &Env, hash: &KeyHash, now: Millis) -> Result<Option<Rc<KeyEntry>>, ApiError> {
    if let Some(known) = cached(st, hash, now) {
        return Ok(known);
    }
    let text = kv::get(env, hash, st.kv_cache_ttl).await?;
    let entry = match text.map(|t| KeyRecord::from_json(&t).and_then(|r| KeyEntry::new(r).map_err(|e| e.0))) {
        None => None,
        Some(Ok(e)) => Some(Rc::new(e)),
        Some(Err(msg)) => {
            // Fail closed: an unreadable record denies like an unknown key. The hash is not a secret.
            worker::console_error!("key record {}: {msg}", &hash.to_hex()[..16]);
            None
        }
    };
    st.cache.borrow_mut().insert(*hash, entry.clone(), now);
    Ok(entry)
}

/// Notes a successful use; when the per-isolate batch is due, writes it to D1 after the
/// response (waitUntil). The verify path never waits on D1.
pub fn note_use(st: &State, env: &Env, ctx: &Context, hash: &KeyHash, now: Millis) {
    let Some(batch) = st.usage.borrow_mut().record(*hash, now) else {
        return;
    };
    let Ok(db) = Db::new(env) else { return };
    let hashes: Vec<String> = batch.iter().map(KeyHash::to_hex).collect();
    ctx.wait_until(async move {
        if let Err(e) = db.touch_last_used(&hashes, now).await {
            worker::console_error!("last-used write for {} keys failed: {e:?}", hashes.len());
        }
    });
}
