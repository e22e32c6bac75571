//! In-memory `Records` and `Edge` with the same semantics as D1 and KV, for native tests.
//!
//! Fault injection: both stores share one `Faults` counter, so "the n-th storage call" is
//! well defined across them; that call can be told to fail before it takes effect or after
//! (the write happened, the caller hears it failed: what a lost response looks like).
//! Interleaving: with `yielding` on, every call returns Pending once before it runs (with
//! `reads_in_transit`, an edge read also once after, while its answer travels), so a test
//! can poll two handlers in any order and explore every interleaving of their storage steps.
//! `MemFeed` (the revocation feed) counts its appends on the same `Faults`; its reads (the
//! isolates' pulls) do not, and an outage is a switch (`set_down`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::{
    AuditEntry, AuditRow, Credits, Edge, Feed, Group, KeyCursor, KeyPage, ListFilter, Pending, Preset, Records,
    StoreError, StoreResult, Written,
};
use crate::core::credits::{Ledger, Op, Reply};
use crate::core::feed::{Change, Entry, Page};
use crate::core::hash::KeyHash;
use crate::core::model::{Key, Liveness, Status};
use crate::core::record::KeyRecord;
use crate::core::time::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The call fails without taking effect.
    Before,
    /// The call takes effect, then reports failure.
    After,
}

#[derive(Default)]
pub struct Faults {
    calls: Cell<usize>,
    plan: RefCell<Vec<(usize, FaultMode)>>,
    log: RefCell<Vec<&'static str>>,
    yielding: Cell<bool>,
    /// With `yielding`: edge reads also yield after they look (off by default: it multiplies
    /// the admin interleavings, whose only edge read is reconcile's).
    reads_in_transit: Cell<bool>,
}

impl Faults {
    pub fn new() -> Rc<Faults> {
        Rc::new(Faults::default())
    }

    /// Fail the `n`-th call (0-based, counted from now on) in `mode`.
    pub fn fail_call(&self, n: usize, mode: FaultMode) {
        self.plan.borrow_mut().push((self.calls.get() + n, mode));
    }

    pub fn clear(&self) {
        self.plan.borrow_mut().clear();
    }

    pub fn set_yielding(&self, on: bool) {
        self.yielding.set(on);
    }

    pub fn set_reads_in_transit(&self, on: bool) {
        self.reads_in_transit.set(on);
    }

    /// Calls made so far, by name, in order.
    pub fn log(&self) -> Vec<&'static str> {
        self.log.borrow().clone()
    }

    pub fn calls(&self) -> usize {
        self.calls.get()
    }

    fn take(&self, name: &'static str) -> Option<FaultMode> {
        let n = self.calls.get();
        self.calls.set(n + 1);
        self.log.borrow_mut().push(name);
        let mut plan = self.plan.borrow_mut();
        let i = plan.iter().position(|(at, _)| *at == n)?;
        Some(plan.remove(i).1)
    }

    /// One storage call: an optional yield, then `f` unless a fault says otherwise.
    async fn call<T>(&self, name: &'static str, f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
        if self.yielding.get() {
            yield_once().await;
        }
        self.run(name, f)
    }

    /// A call that never yields: counted and failed like any other, but not a scheduling point.
    fn run<T>(&self, name: &'static str, f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
        let fault = self.take(name);
        let injected = || StoreError::Unavailable(format!("injected fault in {name}"));
        if fault == Some(FaultMode::Before) {
            return Err(injected());
        }
        let r = f();
        if fault == Some(FaultMode::After) {
            return Err(injected());
        }
        r
    }
}

/// Pending once (waking itself), then ready: the one kind of wait the memory stores make.
pub fn yield_once() -> impl Future<Output = ()> {
    YieldOnce(false)
}

/// Drives a future whose every wait is a memory-store yield (which wakes itself): the native
/// tests, the examples and the fuzz targets run handlers over these stores with it.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[derive(Default, Clone)]
pub struct RecordsState {
    pub keys: BTreeMap<String, Key>,
    pub presets: BTreeMap<(String, String), Preset>,
    pub groups: BTreeMap<(String, String), Group>,
    pub audit: Vec<AuditRow>,
}

pub struct MemRecords {
    state: RefCell<RecordsState>,
    faults: Rc<Faults>,
}

fn is_current(k: &Key) -> bool {
    matches!(k.status, Status::Active | Status::Disabled) && k.superseded_by.is_none()
}

impl RecordsState {
    fn name_taken(&self, key: &Key) -> bool {
        is_current(key)
            && self
                .keys
                .values()
                .any(|o| o.id != key.id && o.workspace == key.workspace && o.name == key.name && is_current(o))
    }

    fn audit(&mut self, e: &AuditEntry) {
        let id = self.audit.len() as i64 + 1;
        self.audit.push(AuditRow { id, entry: e.clone() });
    }

    /// The guard every key update passes, in D1 as in memory.
    fn guard(&self, key: &Key, expected: u64) -> bool {
        self.keys.get(&key.id).is_some_and(|cur| {
            cur.workspace == key.workspace
                && cur.version == expected
                && key.version == expected + 1
                && cur.status.may_become(key.status)
        })
    }
}

impl MemRecords {
    pub fn new(faults: Rc<Faults>) -> MemRecords {
        MemRecords {
            state: RefCell::new(RecordsState::default()),
            faults,
        }
    }

    pub fn snapshot(&self) -> RecordsState {
        self.state.borrow().clone()
    }

    pub fn restore(&self, state: RecordsState) {
        *self.state.borrow_mut() = state;
    }

    pub fn key(&self, id: &str) -> Option<Key> {
        self.state.borrow().keys.get(id).cloned()
    }

    /// Every key row (without copying the audit log, as `snapshot` does).
    pub fn keys(&self) -> Vec<Key> {
        self.state.borrow().keys.values().cloned().collect()
    }
}

impl Records for MemRecords {
    async fn get_key(&self, workspace: &str, id: &str) -> StoreResult<Option<Key>> {
        self.faults
            .call("records.get_key", || {
                Ok(self
                    .state
                    .borrow()
                    .keys
                    .get(id)
                    .filter(|k| k.workspace == workspace)
                    .cloned())
            })
            .await
    }

    async fn get_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<Key>> {
        self.faults
            .call("records.get_key_by_hash", || {
                Ok(self.state.borrow().keys.values().find(|k| k.hash == *hash).cloned())
            })
            .await
    }

    async fn insert_key(&self, key: &Key, audit: &AuditEntry) -> StoreResult<()> {
        self.faults
            .call("records.insert_key", || {
                let mut st = self.state.borrow_mut();
                if st.name_taken(key) {
                    return Err(StoreError::NameTaken);
                }
                if st.keys.contains_key(&key.id) || st.keys.values().any(|k| k.hash == key.hash) {
                    return Err(StoreError::Unavailable("duplicate id or hash".into()));
                }
                st.keys.insert(key.id.clone(), key.clone());
                st.audit(audit);
                Ok(())
            })
            .await
    }

    async fn update_key(&self, key: &Key, expected_version: u64, audit: &AuditEntry) -> StoreResult<Written> {
        self.faults
            .call("records.update_key", || {
                let mut st = self.state.borrow_mut();
                if !st.guard(key, expected_version) {
                    return Ok(Written::Stale);
                }
                if st.name_taken(key) {
                    return Err(StoreError::NameTaken);
                }
                st.keys.insert(key.id.clone(), key.clone());
                st.audit(audit);
                Ok(Written::Applied)
            })
            .await
    }

    async fn rotate(&self, old: &Key, expected_version: u64, new: &Key, audit: &AuditEntry) -> StoreResult<Written> {
        self.faults
            .call("records.rotate", || {
                let mut st = self.state.borrow_mut();
                if !st.guard(old, expected_version) {
                    return Ok(Written::Stale);
                }
                let prev = st.keys.insert(old.id.clone(), old.clone());
                if st.name_taken(new) {
                    // One transaction: the old row's update is rolled back with the insert.
                    if let Some(p) = prev {
                        st.keys.insert(p.id.clone(), p);
                    }
                    return Err(StoreError::NameTaken);
                }
                st.keys.insert(new.id.clone(), new.clone());
                st.audit(audit);
                Ok(Written::Applied)
            })
            .await
    }

    async fn list_keys(
        &self,
        workspace: &str,
        filter: ListFilter,
        after: Option<&KeyCursor>,
        limit: u32,
        scan: u32,
        now: Millis,
    ) -> StoreResult<KeyPage> {
        self.faults
            .call("records.list_keys", || {
                let st = self.state.borrow();
                // What an index holds: the status part of the filter. The expiry part is decided
                // per key, within a window of at most `scan` keys (as D1 does).
                let mut candidates: Vec<&Key> = st
                    .keys
                    .values()
                    .filter(|k| k.workspace == workspace)
                    .filter(|k| match filter {
                        ListFilter::All => k.status != Status::Deleted,
                        ListFilter::Active | ListFilter::Expired => k.status == Status::Active,
                        ListFilter::Disabled => k.status == Status::Disabled,
                        ListFilter::Revoked => k.status == Status::Revoked,
                    })
                    .filter(|k| after.is_none_or(|c| (k.created_at, k.id.as_str()) < (c.created_at, c.id.as_str())))
                    .collect();
                candidates.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
                let cursor = |k: &Key| KeyCursor {
                    created_at: k.created_at,
                    id: k.id.clone(),
                };
                let bounded = matches!(filter, ListFilter::Active | ListFilter::Expired);
                let window = if bounded {
                    &candidates[..candidates.len().min(scan as usize)]
                } else {
                    &candidates[..]
                };
                let mut keys: Vec<Key> = window
                    .iter()
                    .filter(|k| match filter {
                        ListFilter::Active => k.liveness(now) == Liveness::Live,
                        ListFilter::Expired => k.liveness(now) == Liveness::Expired,
                        _ => true,
                    })
                    .take(limit as usize + 1)
                    .map(|k| (*k).clone())
                    .collect();
                let next = if keys.len() > limit as usize {
                    keys.truncate(limit as usize);
                    keys.last().map(cursor)
                } else if bounded && candidates.len() > window.len() {
                    window.last().map(|k| cursor(k))
                } else {
                    None
                };
                Ok(KeyPage { keys, next })
            })
            .await
    }

    async fn keys_after(&self, workspace: &str, after_id: &str, limit: u32) -> StoreResult<Vec<Key>> {
        self.faults
            .call("records.keys_after", || {
                Ok(self
                    .state
                    .borrow()
                    .keys
                    .values()
                    .filter(|k| k.workspace == workspace && k.id.as_str() > after_id)
                    .take(limit as usize)
                    .cloned()
                    .collect())
            })
            .await
    }

    async fn touch_last_used(&self, uses: &[(KeyHash, Millis)]) -> StoreResult<()> {
        self.faults
            .call("records.touch_last_used", || {
                let mut st = self.state.borrow_mut();
                for (h, at) in uses {
                    if let Some(k) = st.keys.values_mut().find(|k| k.hash == *h) {
                        k.last_used_at = Some(k.last_used_at.map_or(*at, |p| p.max(*at)));
                    }
                }
                Ok(())
            })
            .await
    }

    async fn list_presets(&self, workspace: &str) -> StoreResult<Vec<Preset>> {
        self.faults
            .call("records.list_presets", || {
                Ok(self
                    .state
                    .borrow()
                    .presets
                    .iter()
                    .filter(|((ws, _), _)| ws == workspace)
                    .map(|(_, p)| p.clone())
                    .collect())
            })
            .await
    }

    async fn get_preset(&self, workspace: &str, name: &str) -> StoreResult<Option<Preset>> {
        self.faults
            .call("records.get_preset", || {
                Ok(self
                    .state
                    .borrow()
                    .presets
                    .get(&(workspace.to_owned(), name.to_owned()))
                    .cloned())
            })
            .await
    }

    async fn insert_preset(
        &self,
        workspace: &str,
        preset: &Preset,
        _now: Millis,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.faults
            .call("records.insert_preset", || {
                let mut st = self.state.borrow_mut();
                let k = (workspace.to_owned(), preset.name.clone());
                if st.presets.contains_key(&k) {
                    return Err(StoreError::NameTaken);
                }
                st.presets.insert(k, preset.clone());
                st.audit(audit);
                Ok(())
            })
            .await
    }

    async fn delete_preset(&self, workspace: &str, name: &str, audit: &AuditEntry) -> StoreResult<Written> {
        self.faults
            .call("records.delete_preset", || {
                let mut st = self.state.borrow_mut();
                if st.presets.remove(&(workspace.to_owned(), name.to_owned())).is_none() {
                    return Ok(Written::Stale);
                }
                st.audit(audit);
                Ok(Written::Applied)
            })
            .await
    }

    async fn list_groups(&self, workspace: &str) -> StoreResult<Vec<Group>> {
        self.faults
            .call("records.list_groups", || {
                Ok(self
                    .state
                    .borrow()
                    .groups
                    .iter()
                    .filter(|((ws, _), _)| ws == workspace)
                    .map(|(_, g)| g.clone())
                    .collect())
            })
            .await
    }

    async fn insert_group(&self, workspace: &str, group: &Group, audit: &AuditEntry) -> StoreResult<()> {
        self.faults
            .call("records.insert_group", || {
                let mut st = self.state.borrow_mut();
                let k = (workspace.to_owned(), group.name.clone());
                if st.groups.contains_key(&k) {
                    return Err(StoreError::NameTaken);
                }
                st.groups.insert(k, group.clone());
                st.audit(audit);
                Ok(())
            })
            .await
    }

    async fn delete_group(&self, workspace: &str, name: &str, audit: &AuditEntry) -> StoreResult<Written> {
        self.faults
            .call("records.delete_group", || {
                let mut st = self.state.borrow_mut();
                if st.groups.remove(&(workspace.to_owned(), name.to_owned())).is_none() {
                    return Ok(Written::Stale);
                }
                st.audit(audit);
                Ok(Written::Applied)
            })
            .await
    }

    async fn group_members(&self, workspace: &str, name: &str, limit: u32) -> StoreResult<Vec<Key>> {
        self.faults
            .call("records.group_members", || {
                Ok(self
                    .state
                    .borrow()
                    .keys
                    .values()
                    .filter(|k| {
                        k.workspace == workspace && k.status != Status::Deleted && k.groups.iter().any(|g| g == name)
                    })
                    .take(limit as usize)
                    .cloned()
                    .collect())
            })
            .await
    }

    async fn record_audit(&self, audit: &AuditEntry) -> StoreResult<()> {
        self.faults
            .call("records.record_audit", || {
                self.state.borrow_mut().audit(audit);
                Ok(())
            })
            .await
    }

    async fn list_audit(&self, workspace: &str, before_id: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRow>> {
        self.faults
            .call("records.list_audit", || {
                Ok(self
                    .state
                    .borrow()
                    .audit
                    .iter()
                    .rev()
                    .filter(|r| r.entry.workspace == workspace && before_id.is_none_or(|b| r.id < b))
                    .take(limit as usize)
                    .cloned()
                    .collect())
            })
            .await
    }
}

pub struct MemEdge {
    map: RefCell<HashMap<KeyHash, KeyRecord>>,
    /// Every value each hash has had (None: absent), oldest first: what a location whose KV has
    /// not caught up may still read.
    history: RefCell<Vec<(KeyHash, Option<KeyRecord>)>>,
    faults: Rc<Faults>,
    /// `get` calls so far: tests assert that refusals read no storage.
    reads: std::cell::Cell<u64>,
}

impl MemEdge {
    pub fn new(faults: Rc<Faults>) -> MemEdge {
        MemEdge {
            map: RefCell::new(HashMap::new()),
            history: RefCell::new(Vec::new()),
            faults,
            reads: std::cell::Cell::new(0),
        }
    }

    pub fn reads(&self) -> u64 {
        self.reads.get()
    }

    pub fn snapshot(&self) -> HashMap<KeyHash, KeyRecord> {
        self.map.borrow().clone()
    }

    pub fn restore(&self, map: HashMap<KeyHash, KeyRecord>) {
        *self.history.borrow_mut() = map.iter().map(|(h, r)| (*h, Some(r.clone()))).collect();
        *self.map.borrow_mut() = map;
    }

    /// Every value `hash` has had at this edge, `None` (absent) first.
    pub fn history(&self, hash: &KeyHash) -> Vec<Option<KeyRecord>> {
        let mut out = vec![None];
        out.extend(
            self.history
                .borrow()
                .iter()
                .filter(|(h, _)| h == hash)
                .map(|(_, r)| r.clone()),
        );
        out
    }

    pub fn record(&self, hash: &KeyHash) -> Option<KeyRecord> {
        self.map.borrow().get(hash).cloned()
    }
}

impl Edge for MemEdge {
    async fn get(&self, hash: &KeyHash) -> StoreResult<Option<KeyRecord>> {
        self.reads.set(self.reads.get() + 1);
        let r = self
            .faults
            .call("edge.get", || Ok(self.map.borrow().get(hash).cloned()))
            .await;
        // A read's answer is fixed when KV looks, and reaches the caller later: writes can land
        // in between (the window a stale read lives in).
        if self.faults.yielding.get() && self.faults.reads_in_transit.get() {
            yield_once().await;
        }
        r
    }

    async fn put(&self, hash: &KeyHash, record: &KeyRecord, _now: Millis) -> StoreResult<()> {
        self.faults
            .call("edge.put", || {
                self.map.borrow_mut().insert(*hash, record.clone());
                self.history.borrow_mut().push((*hash, Some(record.clone())));
                Ok(())
            })
            .await
    }

    async fn delete(&self, hash: &KeyHash) -> StoreResult<()> {
        self.faults
            .call("edge.delete", || {
                self.map.borrow_mut().remove(hash);
                self.history.borrow_mut().push((*hash, None));
                Ok(())
            })
            .await
    }
}

/// The fake counter: the same `Ledger::apply` the Durable Object runs, one ledger per workspace,
/// behind the shared fault plan (call name `credits.apply`; with yielding on, each call yields once
/// before it applies, so concurrent spenders interleave).
pub struct MemCredits {
    ledgers: RefCell<HashMap<String, Ledger>>,
    faults: Rc<Faults>,
}

impl MemCredits {
    pub fn new(faults: Rc<Faults>) -> MemCredits {
        MemCredits {
            ledgers: RefCell::new(HashMap::new()),
            faults,
        }
    }

    pub fn ledger(&self, workspace: &str) -> Ledger {
        self.ledgers.borrow().get(workspace).cloned().unwrap_or_default()
    }
}

impl Credits for MemCredits {
    fn apply<'a>(&'a self, workspace: &'a str, op: &'a Op, now: Millis) -> Pending<'a, StoreResult<Reply>> {
        Box::pin(self.faults.call("credits.apply", move || {
            let mut all = self.ledgers.borrow_mut();
            Ok(all.entry(workspace.to_owned()).or_default().apply(op, now).0)
        }))
    }
}

/// The revocation feed in memory, with the Durable Object's semantics: sequence numbers from 1,
/// never reused (also after a trim), entries older than the retention trimmed on append.
pub struct MemFeed {
    log: RefCell<std::collections::VecDeque<Entry>>,
    last_seq: Cell<u64>,
    retention: Millis,
    faults: Rc<Faults>,
    down: Cell<bool>,
    reads: Cell<u64>,
    slow_reads: Cell<bool>,
}

impl MemFeed {
    pub fn new(faults: Rc<Faults>, retention: Millis) -> MemFeed {
        MemFeed {
            log: RefCell::new(Default::default()),
            last_seq: Cell::new(0),
            retention,
            faults,
            down: Cell::new(false),
            reads: Cell::new(0),
            slow_reads: Cell::new(false),
        }
    }

    /// An outage: every append and read fails (without taking effect) until switched back.
    pub fn set_down(&self, down: bool) {
        self.down.set(down);
    }

    /// Reads yield once before they read (and see what was appended meanwhile), so a test can
    /// hold a pull in flight.
    pub fn set_slow_reads(&self, on: bool) {
        self.slow_reads.set(on);
    }

    /// Pulls answered or refused so far.
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }

    /// Drops entries older than the retention, as the Durable Object does on append.
    pub fn trim(&self, now: Millis) {
        let mut log = self.log.borrow_mut();
        while log.front().is_some_and(|e| now - e.at >= self.retention) {
            log.pop_front();
        }
    }

    /// Forgets everything, sequence numbers included (a new object).
    pub fn reset(&self) {
        self.log.borrow_mut().clear();
        self.last_seq.set(0);
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.log.borrow().iter().cloned().collect()
    }

    pub fn snapshot(&self) -> (Vec<Entry>, u64) {
        (self.entries(), self.last_seq.get())
    }

    pub fn restore(&self, (entries, last): (Vec<Entry>, u64)) {
        *self.log.borrow_mut() = entries.into();
        self.last_seq.set(last);
    }

    fn page(&self, after: u64, limit: u32) -> Page {
        let log = self.log.borrow();
        let next = self.last_seq.get() + 1;
        Page {
            entries: log
                .iter()
                .filter(|e| e.seq > after)
                .take(limit as usize)
                .cloned()
                .collect(),
            next,
            oldest: log.front().map_or(next, |e| e.seq),
        }
    }
}

impl Feed for MemFeed {
    /// Counted and failed on the shared `Faults` like a storage write, but not a scheduling point
    /// of the interleaving tests: an append touches nothing an admin call reads, so its place
    /// among the other call's steps changes no outcome, and the order of two appends follows the
    /// order of the reads before them, which the scheduler does vary.
    fn append<'a>(&'a self, change: &'a Change, now: Millis) -> Pending<'a, StoreResult<u64>> {
        let r = self.faults.run("feed.append", move || {
            if self.down.get() {
                return Err(StoreError::Unavailable("feed down".into()));
            }
            self.trim(now);
            let seq = self.last_seq.get() + 1;
            self.last_seq.set(seq);
            self.log.borrow_mut().push_back(Entry {
                seq,
                at: now,
                change: change.clone(),
            });
            Ok(seq)
        });
        Box::pin(async move { r })
    }

    fn since(&self, after: u64, limit: u32) -> Pending<'_, StoreResult<Page>> {
        let slow = self.slow_reads.get();
        Box::pin(async move {
            if slow {
                yield_once().await;
            }
            self.reads.set(self.reads.get() + 1);
            if self.down.get() {
                Err(StoreError::Unavailable("feed down".into()))
            } else {
                Ok(self.page(after, limit))
            }
        })
    }
}
