//! Key lookup shared by the gateway, the verify API and admin authentication: the per-isolate
//! cache first, then at most one edge read per key at a time (concurrent misses for one key wait
//! for the same read instead of each reading KV), and refresh-ahead for cached keys.

use std::cell::RefCell;
use std::rc::Rc;

use super::State;
use crate::core::cache::Lookup;
use crate::core::hash::KeyHash;
use crate::core::record::KeyEntry;
use crate::core::time::Millis;
use crate::http::problem::ApiError;
use crate::store::{Edge, Parked, StoreError};

/// What the per-isolate cache knows: `Some(Some(e))` a record, `Some(None)` known to be absent,
/// `None` nothing (the edge must be asked). With the revocation feed on, nothing is known from
/// the cache unless the isolate's last pull is recent enough (core::feed: the bound).
pub fn cached(st: &State, hash: &KeyHash, now: Millis) -> Option<Option<Rc<KeyEntry>>> {
    if !st.feed.borrow().trusts_cache(now) {
        return None;
    }
    match st.cache.borrow_mut().get(hash, now) {
        Lookup::Hit(e) => Some(Some(e)),
        Lookup::KnownMissing => Some(None),
        Lookup::Miss => None,
    }
}

/// For a key just answered from the cache: true when the caller should run `refresh` for it in
/// the background (once per entry, in the last part of its TTL; see core::cache).
pub fn refresh_due(st: &State, hash: &KeyHash, now: Millis) -> bool {
    st.cache.borrow_mut().claim_refresh(hash, now)
}

/// The background half of refresh-ahead: one edge read whose answer replaces the entry. Skipped
/// when a read of this key is already in flight (its answer lands in the cache just the same).
pub async fn refresh<E: Edge>(st: &State, edge: &E, hash: &KeyHash, now: Millis) {
    if let Joined::Lead(lead) = st.reads.join(hash) {
        let r = read(st, edge, hash, now).await;
        lead.land(r);
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
    let answer = match st.reads.join(hash) {
        Joined::Lead(lead) => {
            let r = read(st, edge, hash, now).await;
            lead.land(r.clone());
            r
        }
        Joined::Follow(flight) => match flight.answer(|| edge.park()).await {
            Some(r) => r,
            // The reading request went away before its read answered: read for ourselves.
            None => read(st, edge, hash, now).await,
        },
    };
    answer.map_err(|Unavailable| ApiError::Unavailable {
        slug: "kv-unavailable",
        detail: "The key store is unavailable.".into(),
    })
}

/// The edge could not be read (logged where it failed).
#[derive(Debug, Clone, Copy)]
struct Unavailable;

type Read = Result<Option<Rc<KeyEntry>>, Unavailable>;

/// One edge read, cached unless an eviction overtook it (core::cache's tickets).
async fn read<E: Edge>(st: &State, edge: &E, hash: &KeyHash, now: Millis) -> Read {
    let ticket = st.cache.borrow().ticket(now);
    // A record from before a change the feed announced is replaced by what the change allows at
    // most (KV in this location may not have caught up): checked after the read, so a pull that
    // landed while it ran is honoured too.
    let got = edge.get(hash).await.map(|r| st.feed.borrow().screen(hash, r, now));
    let entry = match got {
        Ok(None) => None,
        // Tombstones (revoked, deleted) answer like unknown keys; keeping them out of the cache
        // as records keeps the cache small.
        Ok(Some(r)) if r.is_tombstone() => None,
        Ok(Some(r)) => match KeyEntry::new(r, &st.policy.catalog) {
            Ok(e) => Some(Rc::new(e)),
            Err(e) => return Ok(corrupt(hash, &e.0)),
        },
        Err(StoreError::Corrupt(msg)) => return Ok(corrupt(hash, &msg)),
        Err(_) => return Err(Unavailable),
    };
    st.cache.borrow_mut().insert(*hash, entry.clone(), ticket);
    Ok(entry)
}

/// Fail closed: an unreadable record denies like an unknown key (and is not cached, so a fixed
/// record is read again). The hash is not a secret; its first 16 hex digits find the record.
fn corrupt(hash: &KeyHash, msg: &str) -> Option<Rc<KeyEntry>> {
    crate::log::error("corrupt-record", &format!("key record {}: {msg}", &hash.to_hex()[..16]));
    None
}

/// Edge reads in flight in this isolate, by key. A plain list: it holds at most one entry per
/// key being read right now (bounded by concurrent requests), so a scan beats hashing.
#[derive(Default)]
pub struct Reads(RefCell<Vec<(KeyHash, Rc<Flight>)>>);

#[derive(Default)]
pub struct Flight {
    /// `None` while reading; then `Some(Some(read))`, or `Some(None)` if the reader went away.
    answer: RefCell<Option<Option<Read>>>,
    /// How to resume each waiter: never a bare waker (Edge::park says why).
    waiting: RefCell<Vec<Box<dyn FnOnce()>>>,
}

enum Joined<'a> {
    /// Nobody is reading this key: the caller reads and must `land` the answer.
    Lead(Lead<'a>),
    /// Someone is: wait for their answer.
    Follow(Rc<Flight>),
}

impl Reads {
    fn join(&self, hash: &KeyHash) -> Joined<'_> {
        let mut list = self.0.borrow_mut();
        if let Some((_, f)) = list.iter().find(|(h, _)| h == hash) {
            return Joined::Follow(Rc::clone(f));
        }
        let flight = Rc::new(Flight::default());
        list.push((*hash, Rc::clone(&flight)));
        Joined::Lead(Lead {
            reads: self,
            hash: *hash,
            flight,
            landed: false,
        })
    }

    pub fn in_flight(&self) -> usize {
        self.0.borrow().len()
    }
}

impl Flight {
    async fn answer(&self, park: impl Fn() -> Parked) -> Option<Read> {
        loop {
            if let Some(a) = self.answer.borrow().as_ref() {
                return a.clone();
            }
            let p = park();
            self.waiting.borrow_mut().push(p.wake);
            p.wait.await;
        }
    }
}

/// The reading request's handle. Dropped without landing (the request was cancelled mid-read),
/// it still releases the waiters, who then read for themselves: nobody waits forever.
struct Lead<'a> {
    reads: &'a Reads,
    hash: KeyHash,
    flight: Rc<Flight>,
    landed: bool,
}

impl Lead<'_> {
    fn land(mut self, r: Read) {
        self.finish(Some(r));
    }

    fn finish(&mut self, answer: Option<Read>) {
        self.landed = true;
        self.reads.0.borrow_mut().retain(|(h, _)| *h != self.hash);
        *self.flight.answer.borrow_mut() = Some(answer);
        for wake in self.flight.waiting.take() {
            wake();
        }
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if !self.landed {
            self.finish(None);
        }
    }
}
