//! The revocation feed: an append-only, sequence-numbered log of the admin changes that take power
//! away (revoke, delete, deactivate, narrower scopes or groups, an earlier expiry, a rotation's
//! grace cut), kept by one Durable Object and followed by every isolate. This is the follower's
//! side, pure: no clock (`now` comes in), no I/O (pages come in, hashes to evict go out).
//!
//! Why a follower needs more than evictions: KV is eventually consistent, so an isolate that evicts
//! a revoked key and reads KV again may, in a location KV has not reached yet, read the record from
//! before the change. Each entry therefore also carries a *fence*: the record version the change
//! writes and the most the key may grant from then on (`cap`: a tombstone, or the meet of the old
//! and new record). A record read from KV that is older than the fence is replaced by the cap
//! (`Follower::screen`), so what an isolate grants no longer depends on how fresh its location's KV
//! is, only on how fresh its copy of the feed is. Fences are kept for the feed's retention, which
//! is longer than KV needs to converge.
//!
//! The bound: a decision taken at `now` uses the cache (or a KV read) only if the isolate's last
//! successful pull *started* less than `bound` before `now` (`trusts_cache`); every entry appended
//! before that pull started is applied. So a change whose append finished at `t` is honoured by
//! every decision taken from `t + bound` on, in every isolate that can reach the feed. Pulls run
//! after responses, at most every `poll`; only a decision that finds the last pull too old waits
//! for one (`must_pull_first`), and if that fails the isolate degrades to KV reads (no cache).

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::hash::KeyHash;
use super::model::Status;
use super::record::KeyRecord;
use super::scope::ScopeSet;
use super::time::Millis;

/// A pull that started this long ago and never finished (its request was cancelled, say) no
/// longer holds back the next one.
pub const STUCK_PULL: Millis = 10_000;
/// Entries per page of a pull.
pub const PAGE: u32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Revoke,
    Delete,
    Deactivate,
    /// Narrower scopes or groups, an earlier expiry, or a rotation's grace cut.
    Narrow,
}

impl ChangeKind {
    pub fn is_final(self) -> bool {
        matches!(self, ChangeKind::Revoke | ChangeKind::Delete)
    }
}

/// What an admin call announces before it changes anything. Carries the key's hash, never its
/// secret; `cap` is the edge record the change leads to at most (no scopes, name or metadata in
/// a tombstone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    #[serde(serialize_with = "hash_out", deserialize_with = "hash_in")]
    pub hash: KeyHash,
    pub kind: ChangeKind,
    /// The record version the change writes: an edge record older than this predates it.
    pub ver: u64,
    pub cap: KeyRecord,
}

fn hash_out<S: Serializer>(h: &KeyHash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&h.to_hex())
}

fn hash_in<'de, D: Deserializer<'de>>(d: D) -> Result<KeyHash, D::Error> {
    let s = String::deserialize(d)?;
    KeyHash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("not a key hash"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// When the feed appended it (the feed's clock): what retention counts from.
    pub at: Millis,
    #[serde(flatten)]
    pub change: Change,
}

/// One answer to "entries after `after`": at most a page of them in sequence order, the sequence
/// number the next append will get, and the oldest sequence number still retained (`next` when
/// the log is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next: u64,
    pub oldest: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowConfig {
    /// REVOCATION_POLL_MS: at most one background pull per this interval.
    pub poll: Millis,
    /// REVOCATION_BOUND_MS: the cache (and KV) is trusted only this long after the start of the
    /// last successful pull; the stated revocation bound.
    pub bound: Millis,
    /// REVOCATION_WAIT_MS: how long a decision waits for a pull before degrading to KV reads.
    pub wait: Millis,
    /// REVOCATION_RETENTION_S in ms: how long entries and fences are kept.
    pub retention: Millis,
}

#[derive(Debug, Clone)]
struct Fence {
    at: Millis,
    ver: u64,
    /// Revoked or deleted: no record but a tombstone is ever trusted again.
    last: bool,
    cap: KeyRecord,
}

/// One pull in progress: where it reads from, and when it started (the time its success vouches
/// for: everything appended before it is in what it reads).
#[derive(Debug)]
pub struct Pull {
    pub after: u64,
    pub started: Millis,
}

/// What applying a page asks of the cache.
#[derive(Debug, Default, PartialEq)]
pub struct Apply {
    /// Forget every cached entry: first contact, or entries were trimmed (or the feed was reset)
    /// before this isolate saw them.
    pub flush: bool,
    pub evict: Vec<KeyHash>,
    /// The pull is not caught up yet: read the next page.
    pub more: bool,
}

#[derive(Debug, Default)]
pub struct Follower {
    cfg: Option<FollowConfig>,
    /// The last sequence number applied; None before the first pull.
    cursor: Option<u64>,
    last_ok: Option<Millis>,
    last_attempt: Option<Millis>,
    in_flight: u32,
    in_flight_since: Millis,
    /// A decision waited for a pull in vain: decide from KV (not the cache) until a pull succeeds.
    degraded: bool,
    fences: HashMap<KeyHash, Fence>,
    /// Successful pulls and pages read (reported by the bench's feed counter).
    pub pulls: u64,
    pub pages: u64,
}

impl Follower {
    /// `None`: the feed is off (REVOCATION_FEED=off); the follower then trusts the cache as
    /// before the feed existed and never asks for a pull.
    pub fn new(cfg: Option<FollowConfig>) -> Follower {
        Follower {
            cfg,
            ..Follower::default()
        }
    }

    pub fn config(&self) -> Option<FollowConfig> {
        self.cfg
    }

    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    pub fn last_ok(&self) -> Option<Millis> {
        self.last_ok
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// May a decision at `now` use the cache? Only within `bound` of the start of the last
    /// successful pull (a pull that started "after" `now`, by a clock that moved back, counts).
    pub fn trusts_cache(&self, now: Millis) -> bool {
        match (self.cfg, self.last_ok) {
            (None, _) => true,
            (Some(c), Some(p)) => now - p < c.bound,
            (Some(_), None) => false,
        }
    }

    /// Must a decision at `now` wait for a pull first? Not once a wait failed (degraded: it
    /// decides from KV instead, and pulls keep being tried in the background).
    pub fn must_pull_first(&self, now: Millis) -> bool {
        self.cfg.is_some() && !self.trusts_cache(now) && !self.degraded
    }

    /// Would waiting for the pull already in flight make the cache trustworthy at `now`?
    pub fn pull_in_flight_helps(&self, now: Millis) -> bool {
        match self.cfg {
            Some(c) => self.in_flight > 0 && now - self.in_flight_since < c.bound.min(STUCK_PULL),
            None => false,
        }
    }

    /// Is a background pull due after a response at `now`? At most one per `poll`, counted from
    /// the last attempt (so an unreachable feed is not hammered), and not while one is running.
    pub fn poll_due(&self, now: Millis) -> bool {
        let Some(c) = self.cfg else { return false };
        if self.in_flight > 0 && now - self.in_flight_since < STUCK_PULL {
            return false;
        }
        self.last_attempt.is_none_or(|a| now - a >= c.poll || now < a)
    }

    pub fn begin(&mut self, now: Millis) -> Pull {
        self.last_attempt = Some(now);
        self.in_flight += 1;
        self.in_flight_since = now;
        Pull {
            after: self.cursor.unwrap_or(0),
            started: now,
        }
    }

    /// Applies one page read for `pull`: fences, evictions, the new position.
    pub fn apply(&mut self, pull: &mut Pull, page: &Page) -> Apply {
        self.pages += 1;
        let mut out = Apply::default();
        let first_contact = self.cursor.is_none();
        // Entries after `pull.after` that are no longer retained were never seen here: whatever
        // they evicted may still be cached.
        let gap = page.oldest > pull.after + 1;
        let went_back = page.next < pull.after + 1;
        if first_contact || gap || went_back {
            out.flush = true;
        }
        if went_back {
            // A feed that lost its log (a new object): read it again from its start.
            pull.after = 0;
            self.cursor = Some(0);
            out.more = true;
            return out;
        }
        for e in page.entries.iter().filter(|e| e.seq > pull.after) {
            self.fence(e);
            out.evict.push(e.change.hash);
        }
        let pos = page
            .entries
            .last()
            .map_or(page.next.saturating_sub(1), |e| e.seq.max(pull.after));
        pull.after = pos;
        self.cursor = Some(self.cursor.unwrap_or(0).max(pos));
        out.more = pos + 1 < page.next;
        if let Some(c) = self.cfg {
            self.fences.retain(|_, f| pull.started - f.at < c.retention);
        }
        out
    }

    /// The pull read everything up to the head of the log.
    pub fn done(&mut self, pull: Pull) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.last_ok = Some(self.last_ok.map_or(pull.started, |p| p.max(pull.started)));
        self.degraded = false;
        self.pulls += 1;
    }

    pub fn failed(&mut self, _pull: Pull) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// A decision waited for a pull in vain.
    pub fn give_up(&mut self) {
        self.degraded = true;
    }

    fn fence(&mut self, e: &Entry) {
        let c = &e.change;
        let new = Fence {
            at: e.at,
            ver: c.ver,
            last: c.kind.is_final(),
            cap: c.cap.clone(),
        };
        let merged = match self.fences.remove(&c.hash) {
            None => new,
            Some(old) if old.last || new.last => {
                let keep = if old.last { old.clone() } else { new.clone() };
                Fence {
                    at: old.at.max(new.at),
                    ver: old.ver.max(new.ver),
                    last: true,
                    ..keep
                }
            }
            // A later version's cap supersedes: it was computed from a record at least as new.
            Some(old) if new.ver > old.ver => new,
            // An older version announced late lost its race (a newer version exists, so its
            // own write cannot have applied): keep what we have.
            Some(old) if new.ver < old.ver => old,
            // Two changes announced the same version (one of them failed after announcing):
            // honour both.
            Some(old) => Fence {
                at: old.at.max(new.at),
                ver: old.ver,
                last: false,
                cap: meet(&old.cap, &new.cap),
            },
        };
        self.fences.insert(c.hash, merged);
    }

    /// The record a decision at `now` may use, given what KV returned for `hash`: KV's record,
    /// unless a fence says it predates a change that took power away; then the fence's cap.
    pub fn screen(&self, hash: &KeyHash, read: Option<KeyRecord>, now: Millis) -> Option<KeyRecord> {
        let (Some(c), Some(rec)) = (self.cfg, read.as_ref()) else {
            return read;
        };
        let Some(f) = self.fences.get(hash).filter(|f| now - f.at < c.retention) else {
            return read;
        };
        if rec.is_tombstone() || (!f.last && rec.ver >= f.ver) {
            return read;
        }
        Some(f.cap.clone())
    }

    /// Fences held (for tests and the bench's counter).
    pub fn fences(&self) -> usize {
        self.fences.len()
    }
}

/// What both caps allow: common scopes and groups, the earlier expiry, the stricter status.
fn meet(a: &KeyRecord, b: &KeyRecord) -> KeyRecord {
    let rank = |s: Status| match s {
        Status::Active => 0,
        Status::Disabled => 1,
        Status::Revoked => 2,
        Status::Deleted => 3,
    };
    let mut m = a.clone();
    m.status = if rank(b.status) > rank(a.status) {
        b.status
    } else {
        a.status
    };
    m.expires_at = match (a.expires_at, b.expires_at) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    m.groups.retain(|g| b.groups.contains(g));
    m.scopes = match (ScopeSet::parse(&a.scopes), ScopeSet::parse(&b.scopes)) {
        (Ok(x), Ok(y)) => x.meet(&y).to_strings(),
        _ => Vec::new(),
    };
    m.ver = a.ver.min(b.ver);
    m
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::record::sample_record;

    pub(crate) const CFG: FollowConfig = FollowConfig {
        poll: 1_000,
        bound: 2_000,
        wait: 500,
        retention: 300_000,
    };

    pub(crate) fn h(n: u8) -> KeyHash {
        KeyHash::from_hex(&format!("{n:02x}").repeat(32)).unwrap()
    }

    fn rec(scopes: &[&str], ver: u64) -> KeyRecord {
        let mut r = sample_record(scopes, None);
        r.ver = ver;
        r
    }

    fn tomb(ver: u64) -> KeyRecord {
        let mut r = rec(&[], ver);
        r.status = Status::Revoked;
        r
    }

    pub(crate) fn entry(seq: u64, at: Millis, hash: KeyHash, kind: ChangeKind, ver: u64, cap: KeyRecord) -> Entry {
        Entry {
            seq,
            at,
            change: Change { hash, kind, ver, cap },
        }
    }

    fn page(entries: Vec<Entry>, next: u64, oldest: u64) -> Page {
        Page { entries, next, oldest }
    }

    fn pull(f: &mut Follower, now: Millis, p: Page) -> Apply {
        let mut t = f.begin(now);
        let a = f.apply(&mut t, &p);
        if !a.more {
            f.done(t);
        } else {
            f.failed(t);
        }
        a
    }

    #[test]
    fn off_trusts_the_cache_and_never_pulls() {
        let f = Follower::new(None);
        assert!(f.trusts_cache(0));
        assert!(!f.must_pull_first(0));
        assert!(!f.poll_due(0));
        assert_eq!(f.screen(&h(1), Some(rec(&["a:b"], 1)), 0), Some(rec(&["a:b"], 1)));
    }

    #[test]
    fn the_cache_is_trusted_for_bound_after_the_start_of_the_last_good_pull() {
        let mut f = Follower::new(Some(CFG));
        assert!(!f.trusts_cache(0), "never pulled");
        assert!(f.must_pull_first(0));
        let a = pull(&mut f, 1_000, page(vec![], 1, 1));
        assert!(a.flush, "first contact flushes");
        assert!(f.trusts_cache(1_000));
        assert!(f.trusts_cache(2_999));
        assert!(!f.trusts_cache(3_000));
        assert!(f.must_pull_first(3_000));
        assert!(
            f.trusts_cache(500),
            "a clock that went back: the pull started after now"
        );
        // A failed wait degrades: no more waiting, no more trusting.
        f.give_up();
        assert!(!f.must_pull_first(3_000));
        assert!(!f.trusts_cache(3_000));
        pull(&mut f, 3_100, page(vec![], 1, 1));
        assert!(!f.is_degraded());
        assert!(f.trusts_cache(3_100));
    }

    #[test]
    fn background_polls_are_rate_limited_by_attempt_and_not_stacked() {
        let mut f = Follower::new(Some(CFG));
        assert!(f.poll_due(0));
        let t = f.begin(0);
        assert!(!f.poll_due(5_000), "one in flight");
        assert!(f.pull_in_flight_helps(1_999));
        assert!(!f.pull_in_flight_helps(2_000));
        assert!(f.poll_due(STUCK_PULL), "a stuck pull does not block forever");
        f.failed(t);
        assert!(!f.poll_due(999), "an attempt counts, even a failed one");
        assert!(f.poll_due(1_000));
        assert!(!f.trusts_cache(1_000), "a failed pull vouches for nothing");
    }

    #[test]
    fn entries_evict_and_advance_the_cursor_pages_continue() {
        let mut f = Follower::new(Some(CFG));
        pull(&mut f, 0, page(vec![], 3, 3));
        assert_eq!(f.cursor(), Some(2));
        let es: Vec<Entry> = (3..6)
            .map(|s| entry(s, 10, h(s as u8), ChangeKind::Narrow, 2, rec(&[], 1)))
            .collect();
        let mut t = f.begin(100);
        assert_eq!(t.after, 2);
        let a = f.apply(&mut t, &page(es[..2].to_vec(), 6, 1));
        assert!(!a.flush);
        assert_eq!(a.evict, [h(3), h(4)]);
        assert!(a.more, "seq 5 is still to read");
        let a = f.apply(&mut t, &page(es[2..].to_vec(), 6, 1));
        assert_eq!(a.evict, [h(5)]);
        assert!(!a.more);
        f.done(t);
        assert_eq!(f.cursor(), Some(5));
        // Nothing new: nothing to do.
        assert_eq!(pull(&mut f, 200, page(vec![], 6, 3)), Apply::default());
    }

    #[test]
    fn falling_behind_the_retention_or_a_reset_feed_flushes() {
        let mut f = Follower::new(Some(CFG));
        pull(&mut f, 0, page(vec![], 5, 5));
        // Entries 5 and 6 were trimmed before this isolate saw them.
        let a = pull(
            &mut f,
            1,
            page(vec![entry(7, 1, h(7), ChangeKind::Revoke, 1, tomb(1))], 8, 7),
        );
        assert!(a.flush);
        assert_eq!(f.cursor(), Some(7));
        // The feed lost its log (a new object): flush, and read it again from its start.
        let mut t = f.begin(2);
        let a = f.apply(&mut t, &page(vec![], 3, 3));
        assert!(a.flush && a.more);
        assert_eq!(t.after, 0);
        let a = f.apply(
            &mut t,
            &page(vec![entry(1, 2, h(1), ChangeKind::Delete, 1, tomb(1))], 3, 1),
        );
        assert_eq!(a.evict, [h(1)]);
        assert!(a.more, "seq 2 still to come");
        f.failed(t);
    }

    #[test]
    fn screen_replaces_records_older_than_the_fence_by_its_cap() {
        let mut f = Follower::new(Some(CFG));
        let narrowed = rec(&["projects:viewer"], 3);
        pull(
            &mut f,
            0,
            page(
                vec![
                    entry(1, 0, h(1), ChangeKind::Narrow, 4, narrowed.clone()),
                    entry(2, 0, h(2), ChangeKind::Revoke, 8, tomb(7)),
                ],
                3,
                1,
            ),
        );
        let old = rec(&["projects:editor"], 3);
        assert_eq!(
            f.screen(&h(1), Some(old.clone()), 10),
            Some(narrowed.clone()),
            "stale KV"
        );
        let newer = rec(&["projects:owner"], 4);
        assert_eq!(f.screen(&h(1), Some(newer.clone()), 10), Some(newer), "KV caught up");
        assert_eq!(f.screen(&h(1), None, 10), None, "absent stays absent");
        // Revoked: nothing but a tombstone, whatever version KV shows.
        assert_eq!(f.screen(&h(2), Some(rec(&["a:b"], 99)), 10), Some(tomb(7)));
        assert_eq!(f.screen(&h(2), Some(tomb(8)), 10), Some(tomb(8)));
        // No fence: KV as read.
        assert_eq!(f.screen(&h(3), Some(old.clone()), 10), Some(old.clone()));
        // Fences end with the retention.
        assert_eq!(f.screen(&h(1), Some(old.clone()), CFG.retention), Some(old));
    }

    #[test]
    fn fences_merge_final_wins_later_version_wins_ties_meet() {
        let mut f = Follower::new(Some(CFG));
        let e = |seq, kind, ver, cap| entry(seq, 0, h(1), kind, ver, cap);
        pull(
            &mut f,
            0,
            page(
                vec![
                    e(1, ChangeKind::Narrow, 2, rec(&["projects:viewer", "events:write"], 1)),
                    e(2, ChangeKind::Narrow, 2, rec(&["projects:viewer", "deploy:trigger"], 1)),
                ],
                3,
                1,
            ),
        );
        let stale = rec(&["projects:owner", "events:write", "deploy:trigger"], 1);
        assert_eq!(
            f.screen(&h(1), Some(stale.clone()), 0).unwrap().scopes,
            ["projects:viewer"],
            "two announcements of one version: what both allow"
        );
        pull(
            &mut f,
            1,
            page(vec![e(3, ChangeKind::Narrow, 4, rec(&["events:write"], 3))], 4, 1),
        );
        assert_eq!(
            f.screen(&h(1), Some(stale.clone()), 1).unwrap().scopes,
            ["events:write"]
        );
        pull(
            &mut f,
            2,
            page(vec![e(4, ChangeKind::Narrow, 3, rec(&["projects:owner"], 2))], 5, 1),
        );
        assert_eq!(
            f.screen(&h(1), Some(stale.clone()), 2).unwrap().scopes,
            ["events:write"],
            "an older version announced late lost its race"
        );
        pull(&mut f, 3, page(vec![e(5, ChangeKind::Revoke, 5, tomb(4))], 6, 1));
        pull(
            &mut f,
            4,
            page(vec![e(6, ChangeKind::Narrow, 9, rec(&["events:write"], 8))], 7, 1),
        );
        assert!(
            f.screen(&h(1), Some(rec(&["events:write"], 9)), 4)
                .unwrap()
                .is_tombstone(),
            "final stays final"
        );
    }

    #[test]
    fn wire_format_round_trips_and_carries_no_secret() {
        let p = page(
            vec![entry(1, 5, h(9), ChangeKind::Deactivate, 2, rec(&["a:b"], 1))],
            2,
            1,
        );
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(&"09".repeat(32)));
        assert!(json.contains("\"kind\":\"deactivate\""));
        assert_eq!(serde_json::from_str::<Page>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Page>(&json.replace(&"09".repeat(32), "zz")).is_err());
    }
}
