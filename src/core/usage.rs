//! Last-used bookkeeping, batched per isolate: a D1 write costs milliseconds of CPU, far more
//! than a verification, so uses are collected and written in one batch per interval.
//!
//! Each pending key keeps the time of its own latest use, so the time written is always a real
//! use of that key. A batch is written (a) at once when a use arrives and the interval since the
//! last write has passed, or (b) by a timer the glue runs after the response (waitUntil). Work in
//! waitUntil ends about 30 s after the response, so a timer is never set further than
//! `MAX_TIMER` ahead: a lone use with no traffic after it is written within
//! min(interval, MAX_TIMER) (+ the write itself). Under steady traffic each request moves the
//! timer towards the interval's end and older timers stand down, so there is one write per
//! interval.

use std::collections::HashMap;

use super::cache::SeededHash;
use super::hash::KeyHash;
use super::time::Millis;

/// Furthest a flush timer is set ahead of the request that sets it.
pub const MAX_TIMER: Millis = 25_000;

/// An armed timer is only replaced by a later one once it is this close to firing.
pub const REARM_SLACK: Millis = 5_000;

#[derive(Debug, PartialEq)]
pub enum Due {
    Nothing,
    /// Write these now (each key with its own latest use).
    Flush(Vec<(KeyHash, Millis)>),
    /// Run `on_timer(gen, ..)` at `at` (after the response).
    Timer {
        gen: u64,
        at: Millis,
    },
}

pub struct UsageBatch {
    interval: Millis,
    max_pending: usize,
    pending: HashMap<KeyHash, Millis, SeededHash>,
    last_flush: Option<Millis>,
    armed: Option<(u64, Millis)>,
    gen: u64,
}

impl UsageBatch {
    pub fn new(interval: Millis, max_pending: usize, hasher: SeededHash) -> UsageBatch {
        UsageBatch {
            interval,
            max_pending: max_pending.max(1),
            pending: HashMap::with_hasher(hasher),
            last_flush: None,
            armed: None,
            gen: 0,
        }
    }

    fn take(&mut self, now: Millis) -> Vec<(KeyHash, Millis)> {
        self.last_flush = Some(now);
        self.armed = None;
        self.pending.drain().collect()
    }

    /// Notes a use of `hash` at `now`.
    pub fn record(&mut self, hash: KeyHash, now: Millis) -> Due {
        let at = self.pending.entry(hash).or_insert(now);
        *at = (*at).max(now);
        let due_at = match self.last_flush {
            None => now,
            // A clock that went backwards flushes rather than stalling.
            Some(last) if now < last => now,
            Some(last) => last.saturating_add(self.interval),
        };
        if now >= due_at || self.pending.len() >= self.max_pending {
            return Due::Flush(self.take(now));
        }
        let target = due_at.min(now + MAX_TIMER);
        match self.armed {
            // A timer is set: it already covers this use. It is moved later (towards the
            // interval's end) only when it is about to fire, so steady traffic sets a new timer
            // every ~20 s rather than on every request (each one is a waitUntil and a JS timer).
            Some((_, at)) if at >= target || at - now >= REARM_SLACK => Due::Nothing,
            _ => {
                self.gen += 1;
                self.armed = Some((self.gen, target));
                Due::Timer {
                    gen: self.gen,
                    at: target,
                }
            }
        }
    }

    /// A timer set by `record` fired. Only the latest timer writes; an older one stands down.
    pub fn on_timer(&mut self, gen: u64, now: Millis) -> Option<Vec<(KeyHash, Millis)>> {
        if self.armed.map(|(g, _)| g) != Some(gen) || self.pending.is_empty() {
            return None;
        }
        Some(self.take(now))
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
        KeyHash::of(&ApiKey::generate(&Default::default(), Default::default(), &[n; 32]))
    }

    fn batch(interval: Millis, max: usize) -> UsageBatch {
        UsageBatch::new(interval, max, SeededHash::new([3, 4]))
    }

    fn sorted(mut v: Vec<(KeyHash, Millis)>) -> Vec<(KeyHash, Millis)> {
        v.sort_by_key(|(h, _)| *h.bytes());
        v
    }

    /// Drives a batch like the glue does: timers fire at their time (if `alive` says the
    /// request that set them still runs), writes are collected with the time they happen.
    struct Sim {
        b: UsageBatch,
        timers: Vec<(u64, Millis)>,
        writes: Vec<(Millis, Vec<(KeyHash, Millis)>)>,
    }

    impl Sim {
        fn new(interval: Millis) -> Sim {
            Sim {
                b: batch(interval, 10_000),
                timers: Vec::new(),
                writes: Vec::new(),
            }
        }
        fn advance_to(&mut self, t: Millis) {
            self.timers.sort_by_key(|(_, at)| *at);
            while let Some(&(gen, at)) = self.timers.first().filter(|(_, at)| *at <= t) {
                self.timers.remove(0);
                if let Some(w) = self.b.on_timer(gen, at) {
                    self.writes.push((at, sorted(w)));
                }
            }
        }
        fn use_key(&mut self, hash: KeyHash, t: Millis) {
            self.advance_to(t);
            match self.b.record(hash, t) {
                Due::Flush(w) => self.writes.push((t, sorted(w))),
                Due::Timer { gen, at } => {
                    assert!(at - t <= MAX_TIMER, "a timer outlives waitUntil");
                    self.timers.push((gen, at));
                }
                Due::Nothing => {}
            }
        }
    }

    #[test]
    fn a_lone_use_is_written_with_its_own_time_without_later_traffic() {
        let mut s = Sim::new(60_000);
        s.use_key(h(1), 0);
        s.use_key(h(2), 10_000);
        s.advance_to(1_000_000);
        assert_eq!(s.writes.len(), 2);
        assert_eq!(s.writes[0], (0, vec![(h(1), 0)]));
        let (written_at, w) = &s.writes[1];
        assert_eq!(
            w,
            &vec![(h(2), 10_000)],
            "the key's own use time, not a later request's"
        );
        assert!(*written_at - 10_000 <= 60_000, "within the interval of the use");
        assert_eq!(*written_at, 35_000, "capped by MAX_TIMER: waitUntil would end first");
    }

    #[test]
    fn steady_traffic_writes_once_per_interval() {
        let mut s = Sim::new(60_000);
        // One use per second for 10 minutes, alternating between three keys.
        for t in 0..600 {
            s.use_key(h((t % 3) as u8), t * 1000);
        }
        s.advance_to(10_000_000);
        let times: Vec<Millis> = s.writes.iter().map(|(t, _)| *t).collect();
        assert_eq!(times.len(), 11, "{times:?}");
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= 60_000 || pair[1] == *times.last().unwrap(),
                "{times:?}"
            );
        }
        // Each write carries each key's latest use before it, never a time after the write.
        for (at, w) in &s.writes {
            for (_, used) in w {
                assert!(used <= at);
            }
        }
    }

    #[test]
    fn every_use_is_written_within_the_interval() {
        let mut s = Sim::new(60_000);
        let uses: Vec<(u8, Millis)> = vec![(1, 0), (2, 1_000), (1, 59_000), (3, 61_000), (2, 200_000), (4, 200_500)];
        for (k, t) in &uses {
            s.use_key(h(*k), *t);
        }
        s.advance_to(10_000_000);
        for (k, t) in uses {
            let written = s
                .writes
                .iter()
                .find(|(at, w)| *at >= t && w.iter().any(|(x, used)| *x == h(k) && *used >= t))
                .map(|(at, _)| *at);
            let w = written.unwrap_or_else(|| panic!("use of {k} at {t} never written: {:?}", s.writes));
            assert!(w - t <= 60_000, "use of {k} at {t} written at {w}");
        }
    }

    #[test]
    fn steady_traffic_sets_few_timers() {
        let mut b = batch(60_000, 10_000);
        let mut timers = 0;
        // 100 requests a second for 2 minutes.
        for t in (0..120_000).step_by(10) {
            if let Due::Timer { .. } = b.record(h((t % 7) as u8), t) {
                timers += 1;
            }
        }
        assert!(timers <= 12, "{timers} timers for 12,000 requests");
    }

    #[test]
    fn older_timers_stand_down() {
        let mut b = batch(60_000, 100);
        assert!(matches!(b.record(h(1), 0), Due::Flush(_)));
        let Due::Timer { gen: g1, at: a1 } = b.record(h(2), 1_000) else {
            panic!()
        };
        assert_eq!(a1, 26_000);
        let Due::Timer { gen: g2, at: a2 } = b.record(h(3), 40_000) else {
            panic!()
        };
        assert_eq!(a2, 60_000);
        assert_eq!(
            b.record(h(3), 41_000),
            Due::Nothing,
            "the armed timer already fires at the interval's end"
        );
        assert_eq!(b.on_timer(g1, a1), None);
        assert_eq!(b.on_timer(g2, a2).map(|w| w.len()), Some(2));
        assert_eq!(b.pending(), 0);
    }

    #[test]
    fn a_full_batch_flushes_early_so_memory_stays_bounded() {
        let mut b = batch(60_000, 3);
        b.record(h(1), 0);
        assert!(matches!(b.record(h(2), 1), Due::Timer { .. }));
        assert!(!matches!(b.record(h(3), 2), Due::Flush(_)) || b.pending() == 0);
        assert!(matches!(b.record(h(4), 3), Due::Flush(_)) || b.pending() < 3);
    }

    #[test]
    fn interval_zero_writes_every_use() {
        let mut b = batch(0, 100);
        for t in 0..5 {
            assert_eq!(b.record(h(7), t), Due::Flush(vec![(h(7), t)]));
        }
    }

    #[test]
    fn a_clock_going_backwards_flushes_rather_than_stalling() {
        let mut b = batch(60_000, 100);
        b.record(h(1), 100_000);
        assert!(matches!(b.record(h(2), 50_000), Due::Flush(_)));
    }
}
