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

pub async fn entry(st: &State, env: &Env, hash: &KeyHash, now: Millis) -> Result<Option<Rc<KeyEntry>>, ApiError> {
    match st.cache.borrow_mut().get(hash, now) {
        Lookup::Hit(e) => return Ok(Some(e)),
        Lookup::KnownMissing => return Ok(None),
        Lookup::Miss => {}
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

/// Schedules a throttled last-used write after the response; the verify path never waits on D1.
pub fn note_use(st: &State, env: &Env, ctx: &Context, entry: &KeyEntry, now: Millis) {
    if !entry.take_last_used_slot(now, st.last_used_interval) {
        return;
    }
    let Ok(db) = Db::new(env) else { return };
    let id = entry.id.to_string();
    ctx.wait_until(async move {
        if let Err(e) = db.touch_last_used(&id, now).await {
            worker::console_error!("last-used write for {id} failed: {e:?}");
        }
    });
}
