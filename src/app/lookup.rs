//! Key lookup shared by the gateway, the verify API and admin authentication: the per-isolate
//! cache first, then at most one edge read.

use std::rc::Rc;

use super::State;
use crate::core::cache::Lookup;
use crate::core::hash::KeyHash;
use crate::core::record::KeyEntry;
use crate::core::time::Millis;
use crate::http::problem::ApiError;
use crate::store::{Edge, StoreError};

/// What the per-isolate cache knows: `Some(Some(e))` a record, `Some(None)` known to be absent,
/// `None` nothing (the edge must be asked).
pub fn cached(st: &State, hash: &KeyHash, now: Millis) -> Option<Option<Rc<KeyEntry>>> {
    match st.cache.borrow_mut().get(hash, now) {
        Lookup::Hit(e) => Some(Some(e)),
        Lookup::KnownMissing => Some(None),
        Lookup::Miss => None,
    }
}

pub async fn entry<E: Edge>(
    st: &State,
    edge: &E,
    hash: &KeyHash,
    now: Millis,
) -> Result<Option<Rc<KeyEntry>>, ApiError> {
    if let Some(known) = cached(st, hash, now) {
        return Ok(known);
    }
    let entry = match edge.get(hash).await {
        Ok(None) => None,
        // Tombstones (revoked, deleted) answer like unknown keys; keeping them out of the cache
        // as records keeps the cache small.
        Ok(Some(r)) if r.is_tombstone() => None,
        Ok(Some(r)) => match KeyEntry::new(r, &st.policy.catalog) {
            Ok(e) => Some(Rc::new(e)),
            Err(e) => return Ok(corrupt(hash, &e.0)),
        },
        Err(StoreError::Corrupt(msg)) => return Ok(corrupt(hash, &msg)),
        Err(_) => {
            return Err(ApiError::Unavailable {
                slug: "kv-unavailable",
                detail: "The key store is unavailable.".into(),
            })
        }
    };
    st.cache.borrow_mut().insert(*hash, entry.clone(), now);
    Ok(entry)
}

/// Fail closed: an unreadable record denies like an unknown key (and is not cached, so a fixed
/// record is read again). The hash is not a secret; its first 16 hex digits find the record.
fn corrupt(hash: &KeyHash, msg: &str) -> Option<Rc<KeyEntry>> {
    crate::log::error("corrupt-record", &format!("key record {}: {msg}", &hash.to_hex()[..16]));
    None
}
