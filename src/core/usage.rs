//! Last-used bookkeeping, batched per isolate. Every key used since the last flush is written in
//! one D1 batch at most once per interval (after the response, via waitUntil), instead of one
//! write per key: a D1 write costs milliseconds of CPU locally, far more than a verification.
//! `last_used_at` is therefore accurate to the interval. Independent of the key cache, so the
//! throttle holds with the cache off too.

use std::collections::HashSet;

use super::cache::SeededHash;
use super::hash::KeyHash;
use super::time::Millis;

pub struct UsageBatch {
    interval: Millis,
    max_pending: usize,
    pending: HashSet<KeyHash, SeededHash>,
    last_flush: Option<Millis>,
}

impl UsageBatch {
    pub fn new(interval: Millis, max_pending: usize, hasher: SeededHash) -> UsageBatch {
        UsageBatch {
            interval,
            max_pending: max_pending.max(1),
            pending: HashSet::with_hasher(hasher),
            last_flush: None,
        }
    }

    /// Notes a use; returns the keys to write now, if a flush is due (interval elapsed since the
    /// last one, or the pending set is full). The first use in an isolate flushes at once.
    pub fn record(&mut self, hash: KeyHash, now: Millis) -> Option<Vec<KeyHash>> {
        self.pending.insert(hash);
        let due = match self.last_flush {
            None => true,
            Some(last) => now.saturating_sub(last) >= self.interval || now < last,
        };
        if !due && self.pending.len() < self.max_pending {
            return None;
        }
        self.last_flush = Some(now);
        Some(self.pending.drain().collect())
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::ApiKey;

    fn h(n: u8) -> KeyHash {
        KeyHash::of(&ApiKey::generate(&[n; 32]))
    }

    fn batch(interval: Millis, max: usize) -> UsageBatch {
        UsageBatch::new(interval, max, SeededHash::new([3, 4]))
    }

    #[test]
    fn first_use_flushes_then_batches_per_interval() {
        let mut b = batch(60_000, 100);
        assert_eq!(b.record(h(1), 0), Some(vec![h(1)]));
        assert_eq!(b.record(h(2), 1_000), None);
        assert_eq!(b.record(h(2), 2_000), None, "a repeat use is not a second write");
        assert_eq!(b.record(h(3), 59_999), None);
        assert_eq!(b.pending(), 2);
        let mut flushed = b.record(h(1), 60_000).unwrap();
        flushed.sort_by_key(|x| *x.bytes());
        let mut want = vec![h(1), h(2), h(3)];
        want.sort_by_key(|x| *x.bytes());
        assert_eq!(flushed, want);
        assert_eq!(b.pending(), 0);
    }

    #[test]
    fn a_full_batch_flushes_early_so_memory_stays_bounded() {
        let mut b = batch(60_000, 3);
        b.record(h(1), 0);
        assert_eq!(b.record(h(2), 1), None);
        assert_eq!(b.record(h(3), 2), None);
        assert_eq!(b.record(h(4), 3).map(|v| v.len()), Some(3));
    }

    #[test]
    fn interval_zero_writes_every_use() {
        let mut b = batch(0, 100);
        for t in 0..5 {
            assert_eq!(b.record(h(7), t), Some(vec![h(7)]));
        }
    }

    #[test]
    fn a_clock_going_backwards_flushes_rather_than_stalling() {
        let mut b = batch(60_000, 100);
        b.record(h(1), 100_000);
        assert!(b.record(h(2), 50_000).is_some());
    }
}
