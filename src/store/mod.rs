//! The storage contract. `Records` is the system of record (D1 in production), `Edge` the
//! projection the verify path reads (Workers KV). Handlers are generic over both, so every admin
//! route, the verify API and the gateway decision run natively against `memory` in `cargo test`;
//! `d1.rs` and `kv.rs` are the only files that name D1 or KV types.
//!
//! Store errors are facts about storage (unavailable, a unique name taken, a row that cannot be
//! read), never HTTP statuses: `ApiError: From<StoreError>` decides those.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::core::credits::{Op, Reply};
use crate::core::feed::{Change, Page};
use crate::core::hash::KeyHash;
use crate::core::model::Key;
use crate::core::record::KeyRecord;
use crate::core::scope::ScopeSet;
use crate::core::time::Millis;

pub mod conformance;
pub mod memory;

#[cfg(target_arch = "wasm32")]
pub mod d1;
#[cfg(target_arch = "wasm32")]
pub mod durable;
#[cfg(target_arch = "wasm32")]
pub mod feed_do;
#[cfg(target_arch = "wasm32")]
pub mod kv;

#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// The store did not answer or refused the operation; whether it took effect is unknown.
    Unavailable(String),
    /// A unique name (key or preset) is already taken in the workspace.
    NameTaken,
    /// A stored value could not be read back (corrupt or from an unknown format).
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One audit entry, written in the same transaction as the change it records (and only if the
/// change took effect).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: Millis,
    pub workspace: String,
    pub actor: String,
    pub action: String,
    pub key_id: Option<String>,
    /// JSON; never a secret.
    pub detail: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub entry: AuditEntry,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: String,
    pub description: String,
    pub scopes: ScopeSet,
}

/// A sharing group of a workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    /// Every key but deleted ones.
    All,
    Active,
    Disabled,
    Revoked,
    Expired,
}

/// Position after the last row of a page of keys (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCursor {
    pub created_at: Millis,
    pub id: String,
}

/// A page of keys, newest first, and where the next page starts (None: nothing further).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyPage {
    pub keys: Vec<Key>,
    pub next: Option<KeyCursor>,
}

/// The active and expired lists depend on the clock, which no index can hold: a page of them
/// examines at most this many keys of status active (from an index, without reading the rows) and
/// may come back short, even empty, with a cursor to go on from. So no list call reads more than
/// one page of rows, whatever mix of live and expired keys a workspace holds.
pub const LIST_SCAN: u32 = 1000;

/// One statement the D1 store issues and SQLite's plan for it (`EXPLAIN QUERY PLAN`, one line per
/// step, indented by depth).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPlan {
    pub name: &'static str,
    pub sql: String,
    pub plan: Vec<String>,
}

/// What a plan must not contain, since each reads more rows the more a database holds: a full
/// scan of a stored table (`SCAN keys`, also as a covering index scan), a sort in a temporary
/// B-tree, or a search of a stored table by a range alone (`rowid<?`: it walks other workspaces'
/// rows until it has a page of this one's). `SCAN` of a CTE, a co-routine, constant rows or
/// `json_each` is fine: the statement itself bounds those.
pub fn plan_problems(name: &str, plan: &[String]) -> Vec<String> {
    const TABLES: &[&str] = &["keys", "audit", "presets", "groups", "key_groups"];
    plan.iter()
        .filter(|line| {
            let step = line.trim_start_matches([' ', '|', '`', '-']);
            let mut words = step.split_whitespace();
            let (op, table) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let stored = TABLES.contains(&table);
            let range_only = op == "SEARCH"
                && step
                    .split_once('(')
                    .is_some_and(|(_, constraints)| !constraints.contains("=?"));
            (stored && (op == "SCAN" || range_only)) || step.contains("TEMP B-TREE")
        })
        .map(|line| format!("{name}: {}", line.trim()))
        .collect()
}

/// The outcome of a conditional write: it took effect, or the row was not at the version the
/// caller read (someone else wrote first, or the row is gone or in a final status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Applied,
    Stale,
}

/// The system of record. Every key update is conditional: it applies only if the stored row
/// still has `expected_version` and its status may become the new one (`Status::may_become`);
/// the new row carries `expected_version + 1`. The audit entry is written in the same
/// transaction, and only when the change applied.
#[allow(async_fn_in_trait)]
pub trait Records {
    /// Any key of the workspace, tombstones (status deleted) included.
    async fn get_key(&self, workspace: &str, id: &str) -> StoreResult<Option<Key>>;
    async fn get_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<Key>>;
    /// Fails with NameTaken if a current key (active or disabled, not superseded) has the name.
    async fn insert_key(&self, key: &Key, audit: &AuditEntry) -> StoreResult<()>;
    async fn update_key(&self, key: &Key, expected_version: u64, audit: &AuditEntry) -> StoreResult<Written>;
    /// The old key's update and the successor's insert, in one transaction: both or neither.
    async fn rotate(&self, old: &Key, expected_version: u64, new: &Key, audit: &AuditEntry) -> StoreResult<Written>;
    /// Newest first, deleted keys left out: at most `limit` keys that match `filter` and are older
    /// than `after`. For the active and expired filters at most `scan` keys of status active are
    /// examined (see LIST_SCAN), so the page may hold fewer than `limit` keys while `next` is set.
    /// `next` is None only when no key after the page can match.
    async fn list_keys(
        &self,
        workspace: &str,
        filter: ListFilter,
        after: Option<&KeyCursor>,
        limit: u32,
        scan: u32,
        now: Millis,
    ) -> StoreResult<KeyPage>;
    /// Every key of the workspace by id, tombstones included (reconcile walks these).
    async fn keys_after(&self, workspace: &str, after_id: &str, limit: u32) -> StoreResult<Vec<Key>>;
    /// Raises each key's last_used_at to the given time (never lowers it).
    async fn touch_last_used(&self, uses: &[(KeyHash, Millis)]) -> StoreResult<()>;

    async fn list_presets(&self, workspace: &str) -> StoreResult<Vec<Preset>>;
    async fn get_preset(&self, workspace: &str, name: &str) -> StoreResult<Option<Preset>>;
    /// Fails with NameTaken if the workspace has a preset of that name.
    async fn insert_preset(&self, workspace: &str, preset: &Preset, now: Millis, audit: &AuditEntry)
        -> StoreResult<()>;
    /// Stale if there was no such preset.
    async fn delete_preset(&self, workspace: &str, name: &str, audit: &AuditEntry) -> StoreResult<Written>;

    /// Name order.
    async fn list_groups(&self, workspace: &str) -> StoreResult<Vec<Group>>;
    /// Fails with NameTaken if the workspace has a group of that name.
    async fn insert_group(&self, workspace: &str, group: &Group, audit: &AuditEntry) -> StoreResult<()>;
    /// Stale if there was no such group. Member keys keep the name until they are updated (the
    /// caller removes it from each, through the key write protocol).
    async fn delete_group(&self, workspace: &str, name: &str, audit: &AuditEntry) -> StoreResult<Written>;
    /// Keys of the workspace (not deleted) that list the group, at most `limit`, by id.
    async fn group_members(&self, workspace: &str, name: &str, limit: u32) -> StoreResult<Vec<Key>>;

    async fn record_audit(&self, audit: &AuditEntry) -> StoreResult<()>;
    /// Newest first; `before_id` is the id of the last row of the previous page.
    async fn list_audit(&self, workspace: &str, before_id: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRow>>;

    /// The query plan of every statement this store issues (test deployments only: the
    /// `_plans` route). Stores without a query planner have none.
    async fn query_plans(&self) -> StoreResult<Vec<QueryPlan>> {
        Ok(Vec::new())
    }
}

/// The edge projection: one record per key hash. No compare-and-swap exists on the platform, so
/// the write protocol in `app::sync` makes up for it.
#[allow(async_fn_in_trait)]
pub trait Edge {
    async fn get(&self, hash: &KeyHash) -> StoreResult<Option<KeyRecord>>;
    async fn put(&self, hash: &KeyHash, record: &KeyRecord, now: Millis) -> StoreResult<()>;
    async fn delete(&self, hash: &KeyHash) -> StoreResult<()>;

    /// How a request that waits for another request's read of the same key is resumed
    /// (app::lookup shares one read among concurrent misses). On Workers a request must resume
    /// in its own context: a Rust waker called by the reading request would poll the waiter
    /// inside that request, and the waiter's first touch of its own request or its forward fails
    /// there ("Cannot perform I/O on behalf of a different request"; a 500, or a hung request).
    fn park(&self) -> Parked {
        Parked::local()
    }
}

/// A waiter's half (`wait`) and the reader's half (`wake`) of one resumption.
pub struct Parked {
    pub wait: Pending<'static, ()>,
    pub wake: Box<dyn FnOnce()>,
}

impl Parked {
    /// Resumed by a Rust waker, right where every task shares one context (the native tests).
    pub fn local() -> Parked {
        #[derive(Default)]
        struct Slot {
            woken: bool,
            waker: Option<std::task::Waker>,
        }
        let slot = std::rc::Rc::new(std::cell::RefCell::new(Slot::default()));
        let theirs = std::rc::Rc::clone(&slot);
        Parked {
            wait: Box::pin(std::future::poll_fn(move |cx| {
                let mut s = slot.borrow_mut();
                if s.woken {
                    std::task::Poll::Ready(())
                } else {
                    s.waker = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            })),
            wake: Box::new(move || {
                let waker = {
                    let mut s = theirs.borrow_mut();
                    s.woken = true;
                    s.waker.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            }),
        }
    }
}

/// A boxed future: `Credits` and `Feed` are used as `&dyn`, so the handlers need no more store
/// type parameters (a Durable Object call costs far more than the box).
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// The credit counter: one per workspace, the only place credits are counted (a Durable Object
/// in production, `memory::MemCredits` in tests). Ops on one workspace are applied one at a time,
/// each whole (`core::credits::Ledger::apply`). An error means the counter could not be reached
/// or did not answer: whether the op took effect is unknown.
pub trait Credits {
    fn apply<'a>(&'a self, workspace: &'a str, op: &'a Op, now: Millis) -> Pending<'a, StoreResult<Reply>>;
}

/// The revocation feed (core::feed): an append-only, sequence-numbered log of the changes that
/// take power away, one per deployment (a Durable Object in production, `memory::MemFeed` in
/// tests). Entries older than the retention are trimmed.
pub trait Feed {
    /// Appends `change` and returns its sequence number. An error means the feed could not be
    /// reached or did not answer: whether the entry was appended is unknown.
    fn append<'a>(&'a self, change: &'a Change, now: Millis) -> Pending<'a, StoreResult<u64>>;
    /// Up to `limit` entries with a sequence number above `after`, in order, with the log's
    /// head and oldest retained entry.
    fn since(&self, after: u64, limit: u32) -> Pending<'_, StoreResult<Page>>;
}

/// REVOCATION_FEED=off: nothing is announced (and the follower never pulls).
pub struct NoFeed;

impl Feed for NoFeed {
    fn append<'a>(&'a self, _change: &'a Change, _now: Millis) -> Pending<'a, StoreResult<u64>> {
        Box::pin(async { Ok(0) })
    }

    fn since(&self, _after: u64, _limit: u32) -> Pending<'_, StoreResult<Page>> {
        Box::pin(async {
            Ok(Page {
                entries: Vec::new(),
                next: 1,
                oldest: 1,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::plan_problems;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plan_checker_flags_scans_of_tables_and_temp_sorts() {
        for bad in [
            "SCAN keys",
            "  SCAN keys USING COVERING INDEX keys_workspace_status",
            "`--SCAN audit",
            "|--USE TEMP B-TREE FOR ORDER BY",
            "SCAN key_groups",
            "SEARCH audit USING INTEGER PRIMARY KEY (rowid<?)",
            "SEARCH keys USING INDEX sqlite_autoindex_keys_1 (id>?)",
        ] {
            assert_eq!(plan_problems("q", &lines(&[bad])).len(), 1, "{bad}");
        }
        let fine = lines(&[
            "SEARCH keys USING INDEX keys_workspace_created (workspace=? AND (created_at,id)<(?,?))",
            "CO-ROUTINE w",
            "  SEARCH keys USING COVERING INDEX keys_workspace_status (workspace=? AND status=?)",
            "SCAN w",
            "SCAN json_each VIRTUAL TABLE INDEX 1:",
            "SCAN CONSTANT ROW",
            "SEARCH keys USING INDEX sqlite_autoindex_keys_1 (id=?)",
            "SEARCH keys EXISTS USING INDEX sqlite_autoindex_keys_1 (id=?)",
            "SEARCH audit USING INDEX audit_workspace (workspace=? AND id<?)",
            "SEARCH key_groups USING PRIMARY KEY (workspace=? AND grp=?)",
        ]);
        assert!(plan_problems("q", &fine).is_empty());
        assert_eq!(plan_problems("list", &lines(&["SCAN keys"])), ["list: SCAN keys"]);
    }
}
