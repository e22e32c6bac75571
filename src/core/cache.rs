//! Per-isolate cache of key records: what lets a recently seen key be decided from memory.
//!
//! Bounded (CLOCK eviction, an LRU approximation that costs one bit per hit instead of list
//! surgery), positive entries trusted for `ttl`, "not found" remembered for `negative_ttl`.
//! The cache never decides validity itself: status and expiry are re-checked from the cached
//! record on every request (core::decide), so no key is accepted past its own expiry.
//! Staleness bound: a change made elsewhere is seen here at most `ttl` (+ KV's own cacheTtl and
//! propagation) later; a change made through this isolate evicts the entry at once.
//!
//! Refresh-ahead: an entry in the last `refresh` of its TTL is still served from memory, and the
//! first request to see it there is told to refresh it (one background KV read per entry, via
//! `claim_refresh`). The refresh window lies *inside* the TTL, so refreshing never extends how long
//! a record is trusted: the bound above stays `ttl`. A key used at least once per window never
//! waits on KV again; a key used less often expires and is read on the request path as before.
//! Reads carry a `Ticket`: an eviction while a read is in flight (an admin write in this isolate)
//! makes its answer too old to cache, so a slow read never resurrects what the eviction removed.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

use super::hash::KeyHash;
use super::record::KeyEntry;
use super::time::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    pub ttl: Millis,
    pub negative_ttl: Millis,
    pub max_entries: usize,
    /// Refresh-ahead window at the end of each TTL (0 = off); at most half the TTL it ends.
    pub refresh: Millis,
}

impl CacheConfig {
    pub fn enabled(&self) -> bool {
        self.ttl > 0 && self.max_entries > 0
    }

    /// Age from which an entry of this TTL is refreshed ahead.
    fn refresh_from(&self, ttl: Millis) -> Millis {
        ttl - self.refresh.clamp(0, ttl / 2)
    }
}

/// Taken before a KV read, handed back with its answer: see `KeyCache::insert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    at: Millis,
    epoch: u64,
}

#[derive(Debug)]
pub enum Lookup {
    Hit(Rc<KeyEntry>),
    /// Recently looked up and absent from KV.
    KnownMissing,
    Miss,
}

struct Slot {
    hash: KeyHash,
    entry: Option<Rc<KeyEntry>>,
    stored_at: Millis,
    referenced: bool,
    /// A background refresh was handed out for this entry (reset when it is replaced).
    refreshing: bool,
}

/// SHA-256 output is already uniform, but an attacker can grind keys whose hashes collide in
/// the few bits a hash table uses for its buckets (unknown keys are negatively cached, so they
/// do get inserted). Mixing in a per-isolate random key makes those bits unpredictable.
#[derive(Clone, Copy)]
pub struct SeededHash {
    k0: u64,
    k1: u64,
}

impl SeededHash {
    /// `seed` must come from a CSPRNG (the glue reads it once per isolate).
    pub fn new(seed: [u64; 2]) -> SeededHash {
        SeededHash {
            k0: seed[0],
            k1: seed[1],
        }
    }
}

pub struct SeededHasher {
    k0: u64,
    k1: u64,
    h: u64,
}

impl BuildHasher for SeededHash {
    type Hasher = SeededHasher;
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher {
            k0: self.k0,
            k1: self.k1,
            h: 0,
        }
    }
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Hasher for SeededHasher {
    fn write(&mut self, bytes: &[u8]) {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            let part = bytes.get(i..(i + 8).min(bytes.len())).unwrap_or(&[]);
            w[..part.len()].copy_from_slice(part);
            u64::from_le_bytes(w)
        };
        self.h = mix(mix(self.h ^ word(0) ^ self.k0) ^ word(8) ^ self.k1);
    }
    fn write_usize(&mut self, _: usize) {}
    fn finish(&self) -> u64 {
        self.h
    }
}

pub struct KeyCache {
    cfg: CacheConfig,
    index: HashMap<KeyHash, usize, SeededHash>,
    slots: Vec<Slot>,
    hand: usize,
    /// Bumped by every eviction: reads that started before it are not cached.
    epoch: u64,
}

impl KeyCache {
    pub fn new(cfg: CacheConfig, seed: [u64; 2]) -> KeyCache {
        let cap = if cfg.enabled() { cfg.max_entries.min(1024) } else { 0 };
        KeyCache {
            cfg,
            index: HashMap::with_capacity_and_hasher(cap, SeededHash::new(seed)),
            slots: Vec::with_capacity(cap),
            hand: 0,
            epoch: 0,
        }
    }

    pub fn config(&self) -> CacheConfig {
        self.cfg
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn ttl_of(&self, slot: &Slot) -> Millis {
        if slot.entry.is_some() {
            self.cfg.ttl
        } else {
            self.cfg.negative_ttl
        }
    }

    fn fresh(&self, slot: &Slot, now: Millis) -> bool {
        let age = now.saturating_sub(slot.stored_at);
        (0..self.ttl_of(slot)).contains(&age)
    }

    /// Call before reading KV for a key; pass the ticket to `insert` with the answer.
    pub fn ticket(&self, now: Millis) -> Ticket {
        Ticket {
            at: now,
            epoch: self.epoch,
        }
    }

    /// True once per cached entry, for the first caller that finds it fresh but inside its
    /// refresh window: that caller starts the one background read (and inserts its answer).
    pub fn claim_refresh(&mut self, hash: &KeyHash, now: Millis) -> bool {
        if self.cfg.refresh <= 0 {
            return false;
        }
        let Some(&i) = self.index.get(hash) else { return false };
        let slot = &self.slots[i];
        let due = self.fresh(slot, now)
            && !slot.refreshing
            && now.saturating_sub(slot.stored_at) >= self.cfg.refresh_from(self.ttl_of(slot));
        if due {
            self.slots[i].refreshing = true;
        }
        due
    }

    pub fn get(&mut self, hash: &KeyHash, now: Millis) -> Lookup {
        let Some(&i) = self.index.get(hash) else {
            return Lookup::Miss;
        };
        if !self.fresh(&self.slots[i], now) {
            return Lookup::Miss;
        }
        let slot = &mut self.slots[i];
        slot.referenced = true;
        match &slot.entry {
            Some(e) => Lookup::Hit(Rc::clone(e)),
            None => Lookup::KnownMissing,
        }
    }

    /// Stores a KV answer: `Some` record, or `None` for "not found", aged from when its read
    /// started. Dropped if anything was evicted since then: the read may predate that change.
    pub fn insert(&mut self, hash: KeyHash, entry: Option<Rc<KeyEntry>>, ticket: Ticket) {
        if !self.cfg.enabled() || (entry.is_none() && self.cfg.negative_ttl <= 0) || ticket.epoch != self.epoch {
            return;
        }
        let slot = Slot {
            hash,
            entry,
            stored_at: ticket.at,
            referenced: false,
            refreshing: false,
        };
        if let Some(&i) = self.index.get(&hash) {
            self.slots[i] = slot;
            return;
        }
        if self.slots.len() < self.cfg.max_entries {
            self.index.insert(hash, self.slots.len());
            self.slots.push(slot);
            return;
        }
        let victim = self.find_victim(ticket.at);
        self.index.remove(&self.slots[victim].hash);
        self.index.insert(hash, victim);
        self.slots[victim] = slot;
    }

    /// CLOCK: the first slot that is stale or was not referenced since the hand last passed.
    /// Terminates within two sweeps because the first sweep clears every reference bit.
    fn find_victim(&mut self, now: Millis) -> usize {
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let stale = !self.fresh(&self.slots[i], now);
            let slot = &mut self.slots[i];
            if stale || !slot.referenced {
                return i;
            }
            slot.referenced = false;
        }
    }

    /// Forgets a key at once: used by admin writes handled in this isolate.
    pub fn evict(&mut self, hash: &KeyHash) {
        // Even when the key is not cached: a read of it may be in flight.
        self.epoch += 1;
        let Some(i) = self.index.remove(hash) else { return };
        self.slots.swap_remove(i);
        if let Some(moved) = self.slots.get(i) {
            self.index.insert(moved.hash, i);
        }
        if self.hand >= self.slots.len() {
            self.hand = 0;
        }
    }

    /// Forgets every key: the revocation feed's follower calls it when it cannot tell which
    /// entries a change it missed concerns.
    pub fn clear(&mut self) {
        // Reads in flight may predate what it could not tell apart, too.
        self.epoch += 1;
        self.index.clear();
        self.slots.clear();
        self.hand = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::ApiKey;
    use crate::core::record::sample_record;

    fn h(n: u8) -> KeyHash {
        KeyHash::of(&ApiKey::generate(&Default::default(), Default::default(), &[n; 32]))
    }

    fn entry() -> Option<Rc<KeyEntry>> {
        Some(Rc::new(
            KeyEntry::new(sample_record(&["projects:viewer"], None), &Default::default()).unwrap(),
        ))
    }

    fn cache(ttl: Millis, neg: Millis, max: usize) -> KeyCache {
        refreshing(ttl, neg, max, 0)
    }

    fn refreshing(ttl: Millis, neg: Millis, max: usize, refresh: Millis) -> KeyCache {
        KeyCache::new(
            CacheConfig {
                ttl,
                negative_ttl: neg,
                max_entries: max,
                refresh,
            },
            [1, 2],
        )
    }

    impl KeyCache {
        /// A read that started and ended at `now` with nothing evicted meanwhile.
        pub(super) fn insert_at(&mut self, hash: KeyHash, entry: Option<Rc<KeyEntry>>, now: Millis) {
            let t = self.ticket(now);
            self.insert(hash, entry, t);
        }
    }

    #[test]
    fn refresh_is_claimed_once_inside_the_last_window_and_never_extends_the_ttl() {
        let mut c = refreshing(30_000, 5_000, 10, 10_000);
        c.insert_at(h(1), entry(), 0);
        assert!(!c.claim_refresh(&h(1), 0));
        assert!(!c.claim_refresh(&h(1), 19_999), "before the window");
        assert!(c.claim_refresh(&h(1), 20_000), "first request in the window");
        assert!(!c.claim_refresh(&h(1), 20_001), "one refresh per entry");
        assert!(!c.claim_refresh(&h(2), 25_000), "not cached: nothing to refresh");
        // The refresh does not prolong trust: without a new answer the entry still ends at ttl.
        assert!(is_hit(c.get(&h(1), 29_999)));
        assert!(matches!(c.get(&h(1), 30_000), Lookup::Miss));
        assert!(
            !c.claim_refresh(&h(1), 30_000),
            "expired entries are read, not refreshed"
        );
        // The refreshed answer is aged from when its read started, and can be refreshed again.
        let t = c.ticket(20_000);
        c.insert(h(1), entry(), t);
        assert!(is_hit(c.get(&h(1), 49_999)));
        assert!(matches!(c.get(&h(1), 50_000), Lookup::Miss));
        assert!(c.claim_refresh(&h(1), 40_000));
    }

    #[test]
    fn refresh_windows_are_at_most_half_a_ttl_and_cover_negative_entries() {
        let mut c = refreshing(30_000, 5_000, 10, 10_000);
        c.insert_at(h(2), None, 0);
        assert!(!c.claim_refresh(&h(2), 2_499));
        assert!(
            c.claim_refresh(&h(2), 2_500),
            "negative ttl 5 s: window capped at 2.5 s"
        );
        let mut off = refreshing(30_000, 5_000, 10, 0);
        off.insert_at(h(1), entry(), 0);
        assert!(!off.claim_refresh(&h(1), 29_000), "refresh 0 turns refresh-ahead off");
    }

    #[test]
    fn a_read_overtaken_by_an_eviction_is_not_cached() {
        let mut c = refreshing(30_000, 5_000, 10, 10_000);
        c.insert_at(h(1), entry(), 0);
        // A refresh (or a miss) starts reading; an admin write in this isolate evicts the key;
        // the read, which may have seen the record before the write, answers afterwards.
        assert!(c.claim_refresh(&h(1), 20_000));
        let before = c.ticket(20_000);
        c.evict(&h(1));
        c.insert(h(1), entry(), before);
        assert!(
            matches!(c.get(&h(1), 20_001), Lookup::Miss),
            "stale read must not resurrect it"
        );
        // Also when the key was not cached at all when evicted (a first read in flight).
        let before = c.ticket(20_002);
        c.evict(&h(3));
        c.insert(h(3), entry(), before);
        assert!(matches!(c.get(&h(3), 20_003), Lookup::Miss));
        // Reads that start after the eviction are cached again.
        c.insert_at(h(1), entry(), 20_004);
        assert!(is_hit(c.get(&h(1), 20_005)));
    }

    fn is_hit(l: Lookup) -> bool {
        matches!(l, Lookup::Hit(_))
    }

    #[test]
    fn positive_entries_live_exactly_ttl() {
        let mut c = cache(30_000, 5_000, 10);
        c.insert_at(h(1), entry(), 1_000);
        assert!(is_hit(c.get(&h(1), 1_000)));
        assert!(is_hit(c.get(&h(1), 30_999)));
        assert!(matches!(c.get(&h(1), 31_000), Lookup::Miss));
        // A clock that goes backwards (isolate time is not monotonic across requests) is not trusted.
        assert!(matches!(c.get(&h(1), 999), Lookup::Miss));
    }

    #[test]
    fn negative_entries_use_the_short_ttl() {
        let mut c = cache(30_000, 5_000, 10);
        c.insert_at(h(2), None, 0);
        assert!(matches!(c.get(&h(2), 4_999), Lookup::KnownMissing));
        assert!(matches!(c.get(&h(2), 5_000), Lookup::Miss));
        let mut no_neg = cache(30_000, 0, 10);
        no_neg.insert_at(h(2), None, 0);
        assert!(matches!(no_neg.get(&h(2), 0), Lookup::Miss));
        assert!(no_neg.is_empty());
    }

    #[test]
    fn ttl_zero_disables_the_cache() {
        let mut c = cache(0, 5_000, 10);
        c.insert_at(h(1), entry(), 0);
        c.insert_at(h(2), None, 0);
        assert!(matches!(c.get(&h(1), 0), Lookup::Miss));
        assert!(c.is_empty());
    }

    #[test]
    fn entries_are_bounded_and_eviction_spares_recently_used() {
        let mut c = cache(30_000, 5_000, 3);
        for n in 1..=3 {
            c.insert_at(h(n), entry(), 0);
        }
        // 1 and 3 are used; 2 is not, so 2 is the victim.
        assert!(is_hit(c.get(&h(1), 1)));
        assert!(is_hit(c.get(&h(3), 1)));
        c.insert_at(h(4), entry(), 2);
        assert_eq!(c.len(), 3);
        assert!(matches!(c.get(&h(2), 3), Lookup::Miss));
        for n in [1, 3, 4] {
            assert!(is_hit(c.get(&h(n), 3)), "{n} should survive");
        }
        // Everyone referenced: the sweep clears bits and still finds a victim; bound holds.
        for n in 5..=50 {
            c.insert_at(h(n), entry(), 4);
            assert!(c.len() <= 3);
        }
        assert!(is_hit(c.get(&h(50), 5)));
    }

    #[test]
    fn stale_entries_are_evicted_before_referenced_fresh_ones() {
        let mut c = cache(10_000, 1_000, 2);
        c.insert_at(h(1), entry(), 0);
        c.insert_at(h(2), None, 0);
        assert!(is_hit(c.get(&h(1), 500)));
        assert!(matches!(c.get(&h(2), 500), Lookup::KnownMissing));
        // At 2 s the negative entry is stale although referenced: it goes first.
        c.insert_at(h(3), entry(), 2_000);
        assert!(is_hit(c.get(&h(1), 2_000)));
        assert!(is_hit(c.get(&h(3), 2_000)));
    }

    #[test]
    fn evict_forgets_at_once_and_keeps_the_index_consistent() {
        let mut c = cache(30_000, 5_000, 10);
        for n in 1..=5 {
            c.insert_at(h(n), entry(), 0);
        }
        c.evict(&h(2));
        c.evict(&h(5));
        c.evict(&h(9)); // absent: no-op
        assert_eq!(c.len(), 3);
        assert!(matches!(c.get(&h(2), 1), Lookup::Miss));
        for n in [1, 3, 4] {
            assert!(is_hit(c.get(&h(n), 1)));
        }
        c.insert_at(h(2), entry(), 1);
        assert!(is_hit(c.get(&h(2), 1)));
    }

    #[test]
    fn reinsert_replaces_a_negative_entry() {
        let mut c = cache(30_000, 5_000, 10);
        c.insert_at(h(1), None, 0);
        c.insert_at(h(1), entry(), 1);
        assert!(is_hit(c.get(&h(1), 2)));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn expiry_crossing_while_cached_is_still_refused() {
        use crate::core::decide::{decide, Outcome};
        use crate::core::scope::ScopeSet;
        let mut c = cache(30_000, 5_000, 10);
        let e = Rc::new(KeyEntry::new(sample_record(&["projects:viewer"], Some(10_000)), &Default::default()).unwrap());
        c.insert_at(h(1), Some(e), 0);
        let need = ScopeSet::parse(&["projects:viewer"]).unwrap();
        let at = |c: &mut KeyCache, now| match c.get(&h(1), now) {
            Lookup::Hit(e) => decide(Some(&e), &need, now) == Outcome::Valid,
            _ => panic!("expected a hit"),
        };
        assert!(at(&mut c, 9_999));
        assert!(!at(&mut c, 10_000), "cached but expired must be refused");
    }
}

/// Memory at the bound, measured with a counting allocator (native test binary only).
#[cfg(test)]
pub(crate) mod memory {
    use super::*;
    use crate::core::key::ApiKey;
    use crate::core::record::sample_record;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicIsize, Ordering};

    struct Counting;
    static LIVE: AtomicIsize = AtomicIsize::new(0);
    std::thread_local! {
        // Per thread, so a test can count its own allocations while others run in parallel.
        static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Allocations made so far by the calling thread.
    pub(crate) fn allocations_on_this_thread() -> usize {
        ALLOCATIONS.with(|n| n.get())
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
            unsafe { System.dealloc(p, l) }
        }
    }

    #[global_allocator]
    static A: Counting = Counting;

    /// A realistic record: sdk preset scopes, a 20-character name, some metadata.
    fn realistic(i: u32) -> Rc<KeyEntry> {
        let mut r = sample_record(&["projects:viewer", "events:write"], Some(1_800_000_000_000));
        r.workspace = "platform-team".into();
        r.id = format!("key_{i:024x}");
        r.name = format!("service key {i:08}");
        r.meta.insert("team".into(), serde_json::json!("platform"));
        Rc::new(KeyEntry::new(r, &Default::default()).unwrap())
    }

    #[test]
    fn memory_at_the_default_bound_of_10000_entries() {
        const N: usize = 10_000;
        let hashes: Vec<KeyHash> = (0..N as u32)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_le_bytes());
                KeyHash::of(&ApiKey::generate(&Default::default(), Default::default(), &b))
            })
            .collect();
        // Other tests run in parallel threads and allocate too; measure repeatedly, keep the minimum.
        let mut best = isize::MAX;
        for _ in 0..3 {
            let before = LIVE.load(Ordering::SeqCst);
            let mut c = KeyCache::new(
                CacheConfig {
                    ttl: 30_000,
                    negative_ttl: 5_000,
                    max_entries: N,
                    refresh: 10_000,
                },
                [7, 9],
            );
            for (i, h) in hashes.iter().enumerate() {
                c.insert_at(*h, Some(realistic(i as u32)), 0);
            }
            // Over the bound: must stay at N and not grow.
            for h in hashes.iter().take(1000) {
                let mut b = *h.bytes();
                b[31] ^= 0xff;
                c.insert_at(
                    KeyHash::of(&ApiKey::generate(&Default::default(), Default::default(), &b)),
                    None,
                    1,
                );
            }
            assert_eq!(c.len(), N);
            best = best.min(LIVE.load(Ordering::SeqCst) - before);
            drop(c);
        }
        let per_entry = best as usize / N;
        println!(
            "key cache at {N} entries: {} KiB total, {per_entry} B per entry",
            best / 1024
        );
        // Documented in README; fails if an entry grows past 640 B.
        assert!(per_entry < 640, "{per_entry} B per entry");
    }
}
