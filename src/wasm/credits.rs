//! The credit counter: a Durable Object per workspace (class `CreditsCounter`, binding `CREDITS`,
//! SQLite-backed). Thin glue over `core::credits::Ledger`: it parses an op, applies it to the
//! ledger in memory and writes what changed, all without yielding between reading the ledger and
//! writing it. A Durable Object runs one event at a time, and SQL storage calls are synchronous,
//! so two requests can never both spend the same credit; the runtime holds the answer until the
//! writes are durable (output gate), so a spend that was answered is never lost.

use std::cell::RefCell;

use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State};

use super::now_ms;
use crate::core::credits::{Balance, Cap, Changes, Ledger, Op, Refill, Stamp};

#[durable_object]
pub struct CreditsCounter {
    state: State,
    /// Loaded from storage on the first request of this instance.
    ledger: RefCell<Option<Ledger>>,
}

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS ws (id INTEGER PRIMARY KEY CHECK (id = 1), balance INTEGER NOT NULL, \
     spent INTEGER NOT NULL, refused INTEGER NOT NULL, topped_up INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS caps (id TEXT PRIMARY KEY, remaining INTEGER NOT NULL, amount INTEGER, \
     interval_s INTEGER, next_refill INTEGER, stamp_at INTEGER NOT NULL, stamp_version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS topups (id TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
];

#[derive(Deserialize)]
struct CapRow {
    id: String,
    remaining: i64,
    amount: Option<i64>,
    interval_s: Option<i64>,
    next_refill: Option<i64>,
    stamp_at: i64,
    stamp_version: i64,
}

#[derive(Deserialize)]
struct TopUpRow {
    id: String,
}

fn int(v: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(v)
}
fn opt(v: Option<i64>) -> SqlStorageValue {
    v.map_or(SqlStorageValue::Null, SqlStorageValue::Integer)
}

fn load(sql: &SqlStorage) -> Result<Ledger> {
    for s in SCHEMA {
        sql.exec(s, None)?;
    }
    let mut l = Ledger::default();
    if let Some(ws) = sql
        .exec("SELECT balance, spent, refused, topped_up FROM ws WHERE id = 1", None)?
        .to_array::<Balance>()?
        .into_iter()
        .next()
    {
        l.ws = ws;
    }
    for c in sql
        .exec(
            "SELECT id, remaining, amount, interval_s, next_refill, stamp_at, stamp_version FROM caps",
            None,
        )?
        .to_array::<CapRow>()?
    {
        let refill = match (c.amount, c.interval_s) {
            (Some(amount), Some(interval)) => Some(Refill { amount, interval }),
            _ => None,
        };
        l.caps.insert(
            c.id,
            Cap {
                remaining: c.remaining,
                refill,
                next_refill: c.next_refill,
                stamp: Stamp {
                    created_at: c.stamp_at,
                    version: c.stamp_version as u64,
                },
            },
        );
    }
    for t in sql
        .exec("SELECT id FROM topups ORDER BY seq", None)?
        .to_array::<TopUpRow>()?
    {
        l.topups.push_back(t.id);
    }
    Ok(l)
}

fn persist(sql: &SqlStorage, l: &Ledger, ch: &Changes) -> Result<()> {
    if ch.ws {
        let w = &l.ws;
        sql.exec(
            "INSERT OR REPLACE INTO ws (id, balance, spent, refused, topped_up) VALUES (1, ?, ?, ?, ?)",
            vec![int(w.balance), int(w.spent), int(w.refused), int(w.topped_up)],
        )?;
    }
    for id in &ch.caps {
        if let Some(c) = l.caps.get(id) {
            sql.exec(
                "INSERT OR REPLACE INTO caps (id, remaining, amount, interval_s, next_refill, stamp_at, stamp_version) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                vec![
                    SqlStorageValue::String(id.clone()),
                    int(c.remaining),
                    opt(c.refill.map(|r| r.amount)),
                    opt(c.refill.map(|r| r.interval)),
                    opt(c.next_refill),
                    int(c.stamp.created_at),
                    int(c.stamp.version as i64),
                ],
            )?;
        }
    }
    if let Some(id) = &ch.topup {
        sql.exec(
            "INSERT OR REPLACE INTO topups (id, seq) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM topups))",
            vec![SqlStorageValue::String(id.clone())],
        )?;
        sql.exec(
            "DELETE FROM topups WHERE id NOT IN (SELECT id FROM topups ORDER BY seq DESC LIMIT ?)",
            vec![int(l.topups.len() as i64)],
        )?;
    }
    Ok(())
}

impl DurableObject for CreditsCounter {
    fn new(state: State, _env: Env) -> Self {
        CreditsCounter {
            state,
            ledger: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body = req.text().await?;
        let Ok(op) = serde_json::from_str::<Op>(&body) else {
            return Response::error("undecodable credit op", 400);
        };
        // From here to the answer nothing awaits: the read-decide-write is one atomic step.
        let sql = self.state.storage().sql();
        let now = now_ms();
        let mut slot = self.ledger.borrow_mut();
        if slot.is_none() {
            *slot = Some(load(&sql)?);
        }
        let Some(ledger) = slot.as_mut() else {
            return Response::error("credit ledger not loaded", 500);
        };
        let (reply, changes) = ledger.apply(&op, now);
        if let Err(e) = persist(&sql, ledger, &changes) {
            // Memory is ahead of storage now: drop it so the next request reloads what is stored.
            *slot = None;
            return Err(e);
        }
        drop(slot);
        Response::ok(serde_json::to_string(&reply).unwrap_or_default())
    }
}
