//! Following the revocation feed (core::feed): one pull reads the log from this isolate's
//! position to its head, page by page, and applies it: fences for later KV reads, evictions (or a
//! flush) of the cache. The glue runs it after responses (`waitUntil`, at most every
//! REVOCATION_POLL_MS) and, when the last good pull is older than REVOCATION_BOUND_MS, before a
//! decision (with a timeout); the native tests run it the same way on simulated isolates.

use super::State;
use crate::core::feed::{Pull, PAGE};
use crate::core::time::Millis;
use crate::store::{Feed, StoreError, StoreResult};

/// A pull that ends in any way but success (an error, or its future dropped by a timeout) is
/// reported as failed, so it stops counting as in flight.
struct Running<'a> {
    st: &'a State,
    pull: Option<Pull>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.pull.take() {
            self.st.feed.borrow_mut().failed(p);
        }
    }
}

/// Pages one pull may read before it gives up (a follower that far behind flushes anyway).
const MAX_PAGES: usize = 20;

/// One pull, started at `now` (the time its success vouches for).
pub async fn pull(st: &State, feed: &dyn Feed, now: Millis) -> StoreResult<()> {
    let mut run = Running {
        st,
        pull: Some(st.feed.borrow_mut().begin(now)),
    };
    for _ in 0..MAX_PAGES {
        let after = run.pull.as_ref().map_or(0, |p| p.after);
        let page = feed.since(after, PAGE).await?;
        let Some(p) = run.pull.as_mut() else {
            return Err(StoreError::Unavailable("pull state lost".into()));
        };
        let a = st.feed.borrow_mut().apply(p, &page);
        {
            let mut cache = st.cache.borrow_mut();
            if a.flush {
                cache.clear();
            } else {
                for h in &a.evict {
                    cache.evict(h);
                }
            }
        }
        if !a.more {
            if let Some(p) = run.pull.take() {
                st.feed.borrow_mut().done(p);
            }
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(format!(
        "revocation feed: more than {} entries behind",
        MAX_PAGES * PAGE as usize
    )))
}

/// Before a decision at `now`: if the last good pull is too old, pull now (no waiting on other
/// pulls: the glue adds that and a timeout). A failure degrades the isolate to KV reads until a
/// pull succeeds. Returns whether the cache may be used.
pub async fn catch_up(st: &State, feed: &dyn Feed, now: Millis) -> bool {
    if !st.feed.borrow().must_pull_first(now) {
        return st.feed.borrow().trusts_cache(now);
    }
    if pull(st, feed, now).await.is_err() {
        st.feed.borrow_mut().give_up();
        return false;
    }
    true
}
