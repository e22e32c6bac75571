//! The revocation feed on Workers (README "Consistency"; core::feed has the rules).
//!
//! The object: `RevocationFeed`, one per deployment (binding `FEED`, SQLite-backed), an
//! append-only log. An append and a read each run without yielding between reading the head and
//! writing it (SQL storage calls are synchronous), and the runtime holds an answer until its
//! writes are durable, so an append that was answered is never lost and sequence numbers are
//! never reused. Entries older than REVOCATION_RETENTION_S are trimmed (checked at most every
//! 10 s, on appends and reads). A read at the head is answered from memory, with no SQL at all:
//! that is what almost every pull is.
//!
//! The isolate's side: `poll_after` starts a pull after a response (`waitUntil`) when one is due;
//! `catch_up` makes a decision wait for one (at most REVOCATION_WAIT_MS) when the last good pull
//! is older than the bound. The synchronous cache-hit path only reads the follower's clock
//! (lookup::cached) and, once per interval, hands a pull to `waitUntil`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;
use worker::{
    durable_object, Context, DurableObject, Env, Method, Request, Response, Result, SqlStorage, SqlStorageValue,
    State as DoState,
};

use super::{now_ms, Isolate};
use crate::app::{follow, State};
use crate::core::feed::{Change, Entry, Page};
use crate::core::time::Millis;
use crate::log;
use crate::store::feed_do::{DoFeed, BINDING};
use crate::store::{Feed, NoFeed};

/// A background pull may take this long (it delays no answer).
const BACKGROUND_TIMEOUT: Millis = 10_000;
/// Admin calls wait this long for their announcement before answering 503 feed-unavailable.
const APPEND_TIMEOUT: Millis = 5_000;
const TRIM_EVERY: Millis = 10_000;
const MAX_PAGE: u64 = 1_000;

thread_local! {
    /// The last background pull failed (logged once per outage, not once per pull).
    static FAILING: Cell<bool> = const { Cell::new(false) };
}

/// An isolate with the feed on must have the binding: refusing to start is clearer than
/// refusing every revoke.
pub fn check_binding(env: &Env, st: &State) -> std::result::Result<(), String> {
    if st.config.feed.is_some() && env.durable_object(BINDING).is_err() {
        return Err(format!(
            "config: REVOCATION_FEED is on but the {BINDING} Durable Object binding is missing"
        ));
    }
    Ok(())
}

/// The feed admin calls announce to (nothing when it is off).
pub fn for_admin(env: &Env, st: &State) -> Box<dyn Feed> {
    match st.config.feed {
        Some(_) => Box::new(DoFeed::new(env, APPEND_TIMEOUT)),
        None => Box::new(NoFeed),
    }
}

/// Before a decision that reads the cache or KV: if the last good pull is older than the bound,
/// wait for one (another request's, if it is under way and will do; else this request's own),
/// at most REVOCATION_WAIT_MS. On failure the isolate degrades: decisions read KV, not the cache,
/// until a background pull succeeds.
pub async fn catch_up(env: &Env, st: &State, now: Millis) {
    let Some(cfg) = st.feed.borrow().config() else { return };
    if !st.feed.borrow().must_pull_first(now) {
        return;
    }
    let t0 = now_ms();
    let waited = || now_ms() - t0;
    // Polled, not awaited: a promise made in another request's context must not resume this one.
    while st.feed.borrow().pull_in_flight_helps(now) && !st.feed.borrow().trusts_cache(now) {
        if waited() >= cfg.wait {
            break;
        }
        worker::Delay::from(Duration::from_millis(10)).await;
    }
    if st.feed.borrow().trusts_cache(now) {
        return;
    }
    let left = (cfg.wait - waited()).max(50);
    match follow::pull(st, &DoFeed::new(env, left), now).await {
        Ok(()) if st.config.feed_stats => stats(st, now),
        Ok(()) => {}
        Err(e) => {
            st.feed.borrow_mut().give_up();
            log::warn(
                "feed-unreachable",
                &format!(
                    "no pull within {} ms, deciding from KV until one succeeds: {e:?}",
                    cfg.wait
                ),
            );
        }
    }
}

/// After a response: a pull, if one is due (at most one per REVOCATION_POLL_MS), in `waitUntil`.
pub fn poll_after(env: &Env, ctx: &Context, iso: &Rc<Isolate>, now: Millis) {
    if !iso.st.feed.borrow().poll_due(now) {
        return;
    }
    let feed = DoFeed::new(env, BACKGROUND_TIMEOUT);
    let iso = Rc::clone(iso);
    ctx.wait_until(async move {
        match follow::pull(&iso.st, &feed, now).await {
            Ok(()) => {
                if FAILING.with(|f| f.replace(false)) {
                    log::warn("feed-recovered", "the revocation feed answers again");
                }
                if iso.st.config.feed_stats {
                    stats(&iso.st, now);
                }
            }
            Err(e) => {
                if !FAILING.with(|f| f.replace(true)) {
                    log::warn("feed-pull-failed", &format!("{e:?}"));
                }
            }
        }
    });
}

/// KEYWARD_FEED_STATS=1 (the benchmark, never production): after every pull, this isolate's pull
/// counters, so the feed's own cost per isolate can be read from the log.
fn stats(st: &State, now: Millis) {
    let f = st.feed.borrow();
    log::warn(
        "feed-stats",
        &format!(
            "at={now} pulls={} pages={} fences={} cursor={}",
            f.pulls,
            f.pages,
            f.fences(),
            f.cursor().unwrap_or(0)
        ),
    );
}

// ------------------------------------------------------------------------------------------------
// The Durable Object.

#[durable_object]
pub struct RevocationFeed {
    state: DoState,
    env: Env,
    /// Loaded on the first request of this instance.
    head: RefCell<Option<Head>>,
}

struct Head {
    last: u64,
    /// The oldest retained sequence number; None when the log is empty.
    oldest: Option<u64>,
    trimmed_at: Millis,
    retention: Millis,
}

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, hash TEXT NOT NULL, \
     change TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_at ON entries (at)",
    "CREATE TABLE IF NOT EXISTS head (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL)",
];

#[derive(Deserialize)]
struct LastRow {
    last_seq: i64,
}

#[derive(Deserialize)]
struct MinRow {
    m: Option<i64>,
}

#[derive(Deserialize)]
struct EntryRow {
    seq: i64,
    at: i64,
    change: String,
}

fn int(v: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(v)
}

fn retention(env: &Env) -> Millis {
    env.var("REVOCATION_RETENTION_S")
        .ok()
        .and_then(|v| v.to_string().trim().parse::<i64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(300)
        * 1000
}

fn oldest(sql: &SqlStorage) -> Result<Option<u64>> {
    let rows = sql
        .exec("SELECT MIN(seq) AS m FROM entries", None)?
        .to_array::<MinRow>()?;
    Ok(rows.first().and_then(|r| r.m).map(|m| m as u64))
}

fn load(sql: &SqlStorage, retention: Millis) -> Result<Head> {
    for s in SCHEMA {
        sql.exec(s, None)?;
    }
    let last = sql
        .exec("SELECT last_seq FROM head WHERE id = 1", None)?
        .to_array::<LastRow>()?
        .first()
        .map_or(0, |r| r.last_seq as u64);
    Ok(Head {
        last,
        oldest: oldest(sql)?,
        trimmed_at: 0,
        retention,
    })
}

fn trim(sql: &SqlStorage, head: &mut Head, now: Millis) -> Result<()> {
    if now - head.trimmed_at < TRIM_EVERY {
        return Ok(());
    }
    head.trimmed_at = now;
    sql.exec("DELETE FROM entries WHERE at < ?", vec![int(now - head.retention)])?;
    head.oldest = oldest(sql)?;
    Ok(())
}

fn append(sql: &SqlStorage, head: &mut Head, body: &str, now: Millis) -> Result<Response> {
    let Ok(change) = serde_json::from_str::<Change>(body) else {
        return Response::error("undecodable feed change", 400);
    };
    let seq = head.last + 1;
    sql.exec(
        "INSERT INTO entries (seq, at, hash, change) VALUES (?, ?, ?, ?)",
        vec![
            int(seq as i64),
            int(now),
            SqlStorageValue::String(change.hash.to_hex()),
            SqlStorageValue::String(body.to_owned()),
        ],
    )?;
    sql.exec(
        "INSERT OR REPLACE INTO head (id, last_seq) VALUES (1, ?)",
        vec![int(seq as i64)],
    )?;
    head.last = seq;
    head.oldest.get_or_insert(seq);
    trim(sql, head, now)?;
    Response::ok(format!("{{\"seq\":{seq}}}"))
}

fn since(sql: &SqlStorage, head: &mut Head, url: &worker::Url, now: Millis) -> Result<Response> {
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    let (Some(after), Some(limit)) = (param("after"), param("limit")) else {
        return Response::error("since needs after and limit", 400);
    };
    trim(sql, head, now)?;
    let mut entries = Vec::new();
    if after < head.last {
        let rows = sql
            .exec(
                "SELECT seq, at, change FROM entries WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![int(after as i64), int(limit.clamp(1, MAX_PAGE) as i64)],
            )?
            .to_array::<EntryRow>()?;
        for r in rows {
            let change: Change = serde_json::from_str(&r.change)
                .map_err(|e| worker::Error::RustError(format!("stored feed entry {}: {e}", r.seq)))?;
            entries.push(Entry {
                seq: r.seq as u64,
                at: r.at,
                change,
            });
        }
    }
    let next = head.last + 1;
    let page = Page {
        entries,
        next,
        oldest: head.oldest.unwrap_or(next),
    };
    Response::ok(serde_json::to_string(&page).unwrap_or_default())
}

impl DurableObject for RevocationFeed {
    fn new(state: DoState, env: Env) -> Self {
        RevocationFeed {
            state,
            env,
            head: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Read the body first: from here to the answer nothing awaits.
        let body = match req.method() {
            Method::Post => Some(req.text().await?),
            _ => None,
        };
        let url = req.url()?;
        let now = now_ms();
        let sql = self.state.storage().sql();
        let mut slot = self.head.borrow_mut();
        if slot.is_none() {
            *slot = Some(load(&sql, retention(&self.env))?);
        }
        let Some(head) = slot.as_mut() else {
            return Response::error("feed head not loaded", 500);
        };
        let r = match (url.path(), body) {
            ("/append", Some(b)) => append(&sql, head, &b, now),
            ("/since", None) => since(&sql, head, &url, now),
            _ => Response::error("no such feed operation", 404),
        };
        if r.is_err() {
            // Memory may be ahead of storage: reload on the next request.
            *slot = None;
        }
        r
    }
}
