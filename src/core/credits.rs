//! Usage credits: a workspace's balance and per-key caps, and the one decision a metered request
//! gets. Pure: the clock is passed in, storage is the caller's. The Durable Object that counts a
//! workspace (src/wasm/credits.rs) and the in-memory fake (store::memory) both run `Ledger::apply`,
//! so what the tests check is exactly what production counts.
//!
//! Semantics (README "Credits"):
//! - A workspace starts at 0; only a top-up adds to it. A metered route (config/policy.json
//!   `"cost": n`) spends `n` from it per forwarded request; with less than `n` left the request is
//!   refused and nothing is spent.
//! - A key may also have a cap (`remaining`, optional refill `{amount, interval}` in seconds): it
//!   must cover the cost too, and both are spent together or neither. A refill *sets* `remaining`
//!   to `amount` every `interval` from when the cap was set (it does not accumulate).
//! - A cap is set by a key record write, and the counter keeps the newest: each `SetCap` carries
//!   the [`Stamp`] of the write (the key's creation time, then its record version), and one older
//!   than what set the cap changes nothing. So two cap changes whose record writes happen in one
//!   order cannot land in the counter in the other.
//! - Every decision is made in one place (the workspace's object), one at a time, so a balance of
//!   N is spent by at most N/cost requests: zero overspend.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::time::Millis;

/// Largest top-up, cap `remaining` and refill `amount`.
pub const MAX_AMOUNT: i64 = 1_000_000_000;
/// Largest balance (JSON numbers are exact up to 2^53 - 1; this stays well inside).
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000;
/// Largest cost a route may declare.
pub const MAX_COST: i64 = 1_000_000;
/// Refill interval bounds, seconds (one second to a leap year).
pub const MIN_INTERVAL_S: i64 = 1;
pub const MAX_INTERVAL_S: i64 = 366 * 86_400;
/// Top-up ids remembered so a retried top-up is applied once.
const TOPUP_IDS_KEPT: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refill {
    pub amount: i64,
    /// Seconds.
    pub interval: i64,
}

/// A key's cap as the system of record keeps it (configuration; the live count is the counter's).
/// `counter` names the cap in the workspace's counter: the id of the key it was first set on, kept
/// by a rotation's successor so that old and new key spend one cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCredits {
    pub counter: String,
    pub refill: Option<Refill>,
}

/// Which key record write set a cap: the key's `created_at`, then its record `version`. Ordered
/// that way, a rotated key's successor (created later) outranks its predecessor, and a key's later
/// write outranks its earlier ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub created_at: Millis,
    pub version: u64,
}

/// A key's cap as the counter holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    pub remaining: i64,
    pub refill: Option<Refill>,
    /// When the next refill happens (None without refill).
    pub next_refill: Option<Millis>,
    /// The write that set it.
    pub stamp: Stamp,
}

impl Cap {
    pub fn new(remaining: i64, refill: Option<Refill>, stamp: Stamp, now: Millis) -> Cap {
        Cap {
            remaining,
            refill,
            next_refill: refill.map(|r| now + r.interval * 1000),
            stamp,
        }
    }

    /// Applies the refill if one is due at `now` (several missed periods count as one: the refill
    /// sets, it does not add). True if the cap changed.
    pub fn refill_due(&mut self, now: Millis) -> bool {
        let (Some(r), Some(at)) = (self.refill, self.next_refill) else {
            return false;
        };
        if now < at {
            return false;
        }
        let period = r.interval.max(MIN_INTERVAL_S) * 1000;
        let periods = (now - at) / period + 1;
        self.next_refill = Some(at + periods * period);
        self.remaining = r.amount;
        true
    }
}

/// The workspace's counter and its usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub balance: i64,
    /// Credits spent by forwarded requests, all time.
    pub spent: i64,
    /// Metered requests refused for lack of credits, all time.
    pub refused: i64,
    /// Credits added by top-ups, all time.
    pub topped_up: i64,
}

/// What a request asks of the counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Spend `cost` from the workspace (and from the key's cap, if the key has one).
    Spend {
        cost: i64,
        #[serde(default)]
        cap: Option<String>,
    },
    /// Add `amount`; `id` makes a retry harmless (an id already applied changes nothing).
    TopUp { amount: i64, id: String },
    /// Set (replace) a key's cap, unless a newer write (`stamp`) already set it.
    SetCap {
        cap: String,
        remaining: i64,
        refill: Option<Refill>,
        stamp: Stamp,
    },
    /// The balance, and the named caps (None: every cap).
    Read {
        #[serde(default)]
        caps: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Workspace,
    Key,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Workspace => "workspace",
            Limit::Key => "key",
        }
    }
}

/// Why a metered request was refused: which counter, what it has left, when it refills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exhausted {
    pub limit: Limit,
    pub remaining: i64,
    pub cost: i64,
    pub refill_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapView {
    pub id: String,
    pub remaining: i64,
    pub refill: Option<Refill>,
    pub refill_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Reply {
    Granted {
        balance: i64,
        cap: Option<i64>,
    },
    Refused(Exhausted),
    /// After a top-up, a cap change or a read. `applied`: false for a top-up id seen before, or a
    /// cap change older than the one that set the cap.
    State {
        ws: Balance,
        caps: Vec<CapView>,
        applied: bool,
    },
    /// The op was out of bounds; nothing changed.
    Invalid {
        reason: String,
    },
}

/// What `apply` changed, so the owner of the storage writes only that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub ws: bool,
    pub caps: Vec<String>,
    pub topup: Option<String>,
}

/// One workspace's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    pub ws: Balance,
    pub caps: BTreeMap<String, Cap>,
    /// Recent top-up ids, oldest first.
    pub topups: VecDeque<String>,
}

fn view(id: &str, c: &Cap) -> CapView {
    CapView {
        id: id.to_owned(),
        remaining: c.remaining,
        refill: c.refill,
        refill_at: c.next_refill,
    }
}

impl Ledger {
    /// Applies `op` at `now`. Never panics and never leaves a counter negative.
    pub fn apply(&mut self, op: &Op, now: Millis) -> (Reply, Changes) {
        let mut ch = Changes::default();
        let reply = match op {
            Op::Spend { cost, cap } => self.spend(*cost, cap.as_deref(), now, &mut ch),
            Op::TopUp { amount, id } => match check_amount(*amount, 1) {
                Err(reason) => Reply::Invalid { reason },
                Ok(()) if self.topups.iter().any(|t| t == id) => self.state(&[], false),
                Ok(()) if self.ws.balance + amount > MAX_BALANCE => Reply::Invalid {
                    reason: format!("the balance would exceed {MAX_BALANCE}"),
                },
                Ok(()) => {
                    self.ws.balance += amount;
                    self.ws.topped_up = self.ws.topped_up.saturating_add(*amount);
                    self.topups.push_back(id.clone());
                    while self.topups.len() > TOPUP_IDS_KEPT {
                        self.topups.pop_front();
                    }
                    ch.ws = true;
                    ch.topup = Some(id.clone());
                    self.state(&[], true)
                }
            },
            Op::SetCap {
                cap,
                remaining,
                refill,
                stamp,
            } => match check_cap(*remaining, *refill) {
                Err(reason) => Reply::Invalid { reason },
                Ok(()) if self.caps.get(cap).is_some_and(|c| c.stamp >= *stamp) => {
                    self.state(std::slice::from_ref(cap), false)
                }
                Ok(()) => {
                    self.caps
                        .insert(cap.clone(), Cap::new(*remaining, *refill, *stamp, now));
                    ch.caps.push(cap.clone());
                    self.state(std::slice::from_ref(cap), true)
                }
            },
            Op::Read { caps } => {
                let ids: Vec<String> = match caps {
                    Some(c) => c.clone(),
                    None => self.caps.keys().cloned().collect(),
                };
                for id in &ids {
                    if let Some(c) = self.caps.get_mut(id) {
                        if c.refill_due(now) {
                            ch.caps.push(id.clone());
                        }
                    }
                }
                self.state(&ids, true)
            }
        };
        (reply, ch)
    }

    fn state(&self, ids: &[String], applied: bool) -> Reply {
        Reply::State {
            ws: self.ws.clone(),
            caps: ids
                .iter()
                .filter_map(|id| self.caps.get(id).map(|c| view(id, c)))
                .collect(),
            applied,
        }
    }

    fn spend(&mut self, cost: i64, cap: Option<&str>, now: Millis, ch: &mut Changes) -> Reply {
        if !(1..=MAX_COST).contains(&cost) {
            return Reply::Invalid {
                reason: format!("cost must be 1 to {MAX_COST}"),
            };
        }
        if let Some(id) = cap {
            if let Some(c) = self.caps.get_mut(id) {
                if c.refill_due(now) {
                    ch.caps.push(id.to_owned());
                }
            }
        }
        // The workspace first: when both are short, only a top-up helps, so that is the answer.
        let refused = if self.ws.balance < cost {
            Some(Exhausted {
                limit: Limit::Workspace,
                remaining: self.ws.balance,
                cost,
                refill_at: None,
            })
        } else {
            match cap.map(|id| self.caps.get(id)) {
                // A key that names a cap the counter does not know: fail closed (refused, 0 left).
                Some(None) => Some(Exhausted {
                    limit: Limit::Key,
                    remaining: 0,
                    cost,
                    refill_at: None,
                }),
                Some(Some(c)) if c.remaining < cost => Some(Exhausted {
                    limit: Limit::Key,
                    remaining: c.remaining,
                    cost,
                    refill_at: c.next_refill,
                }),
                _ => None,
            }
        };
        if let Some(e) = refused {
            self.ws.refused = self.ws.refused.saturating_add(1);
            ch.ws = true;
            return Reply::Refused(e);
        }
        self.ws.balance -= cost;
        self.ws.spent = self.ws.spent.saturating_add(cost);
        ch.ws = true;
        let left = match cap.and_then(|id| self.caps.get_mut(id)) {
            Some(c) => {
                c.remaining -= cost;
                if let Some(id) = cap {
                    if !ch.caps.iter().any(|x| x == id) {
                        ch.caps.push(id.to_owned());
                    }
                }
                Some(c.remaining)
            }
            None => None,
        };
        Reply::Granted {
            balance: self.ws.balance,
            cap: left,
        }
    }
}

fn check_amount(n: i64, min: i64) -> Result<(), String> {
    if (min..=MAX_AMOUNT).contains(&n) {
        Ok(())
    } else {
        Err(format!("must be an integer from {min} to {MAX_AMOUNT}"))
    }
}

fn check_cap(remaining: i64, refill: Option<Refill>) -> Result<(), String> {
    check_amount(remaining, 0).map_err(|e| format!("remaining {e}"))?;
    if let Some(r) = refill {
        check_amount(r.amount, 1).map_err(|e| format!("refill.amount {e}"))?;
        if !(MIN_INTERVAL_S..=MAX_INTERVAL_S).contains(&r.interval) {
            return Err(format!(
                "refill.interval must be a number of seconds from {MIN_INTERVAL_S} to {MAX_INTERVAL_S}"
            ));
        }
    }
    Ok(())
}

/// A whole number from `min` to MAX_AMOUNT, from JSON (2.0 and "2" are refused: amounts are
/// integers).
pub fn amount(v: &Value, min: i64) -> Result<i64, String> {
    let n = v
        .as_i64()
        .filter(|_| !v.is_f64())
        .ok_or_else(|| format!("must be an integer from {min} to {MAX_AMOUNT}"))?;
    check_amount(n, min)?;
    Ok(n)
}

/// A key's cap as given on create or PATCH: `{remaining, refill: {amount, interval} | null}`.
pub fn parse_cap(v: &Value) -> Result<(i64, Option<Refill>), String> {
    let obj = v.as_object().ok_or("must be an object {remaining, refill} or null")?;
    if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "remaining" | "refill")) {
        return Err(format!(
            "unknown field `{}` (expected remaining, refill)",
            super::scope::printable(k)
        ));
    }
    let remaining =
        amount(obj.get("remaining").ok_or("remaining is required")?, 0).map_err(|e| format!("remaining {e}"))?;
    let refill = match obj.get("refill") {
        None | Some(Value::Null) => None,
        Some(Value::Object(r)) => {
            if let Some(k) = r.keys().find(|k| !matches!(k.as_str(), "amount" | "interval")) {
                return Err(format!(
                    "unknown field `refill.{}` (expected amount, interval)",
                    super::scope::printable(k)
                ));
            }
            let amount = amount(r.get("amount").ok_or("refill.amount is required")?, 1)
                .map_err(|e| format!("refill.amount {e}"))?;
            let iv = r.get("interval").ok_or("refill.interval is required")?;
            let interval = iv
                .as_i64()
                .filter(|n| !iv.is_f64() && (MIN_INTERVAL_S..=MAX_INTERVAL_S).contains(n))
                .ok_or_else(|| {
                    format!("refill.interval must be a number of seconds from {MIN_INTERVAL_S} to {MAX_INTERVAL_S}")
                })?;
            Some(Refill { amount, interval })
        }
        Some(_) => return Err("refill must be an object {amount, interval} or null".into()),
    };
    Ok((remaining, refill))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: Millis = 1_700_000_000_000;
    const ST: Stamp = Stamp {
        created_at: T0,
        version: 1,
    };

    fn topped(n: i64) -> Ledger {
        let mut l = Ledger::default();
        l.apply(
            &Op::TopUp {
                amount: n,
                id: "t0".into(),
            },
            T0,
        );
        l
    }

    fn spend(l: &mut Ledger, cost: i64, cap: Option<&str>, now: Millis) -> Reply {
        l.apply(
            &Op::Spend {
                cost,
                cap: cap.map(str::to_owned),
            },
            now,
        )
        .0
    }

    #[test]
    fn a_balance_of_n_grants_exactly_n_over_cost() {
        let mut l = topped(10);
        let granted = (0..25)
            .filter(|_| matches!(spend(&mut l, 3, None, T0), Reply::Granted { .. }))
            .count();
        assert_eq!(granted, 3);
        assert_eq!(
            l.ws,
            Balance {
                balance: 1,
                spent: 9,
                refused: 22,
                topped_up: 10
            }
        );
        assert_eq!(
            spend(&mut l, 3, None, T0),
            Reply::Refused(Exhausted {
                limit: Limit::Workspace,
                remaining: 1,
                cost: 3,
                refill_at: None
            })
        );
        assert!(matches!(
            spend(&mut l, 1, None, T0),
            Reply::Granted { balance: 0, cap: None }
        ));
    }

    #[test]
    fn an_empty_workspace_refuses() {
        let mut l = Ledger::default();
        assert!(matches!(
            spend(&mut l, 1, None, T0),
            Reply::Refused(Exhausted {
                limit: Limit::Workspace,
                remaining: 0,
                ..
            })
        ));
    }

    #[test]
    fn a_cap_and_the_balance_are_spent_together_or_not_at_all() {
        let mut l = topped(100);
        l.apply(
            &Op::SetCap {
                cap: "k1".into(),
                remaining: 2,
                refill: None,
                stamp: ST,
            },
            T0,
        );
        assert_eq!(
            spend(&mut l, 1, Some("k1"), T0),
            Reply::Granted {
                balance: 99,
                cap: Some(1)
            }
        );
        assert_eq!(
            spend(&mut l, 1, Some("k1"), T0),
            Reply::Granted {
                balance: 98,
                cap: Some(0)
            }
        );
        assert_eq!(
            spend(&mut l, 1, Some("k1"), T0),
            Reply::Refused(Exhausted {
                limit: Limit::Key,
                remaining: 0,
                cost: 1,
                refill_at: None
            })
        );
        assert_eq!(l.ws.balance, 98, "a refused request spends nothing");
        // Other keys of the workspace still spend the balance.
        assert!(matches!(spend(&mut l, 1, None, T0), Reply::Granted { balance: 97, .. }));
        // A cap the counter does not know fails closed.
        assert!(matches!(
            spend(&mut l, 1, Some("nope"), T0),
            Reply::Refused(Exhausted {
                limit: Limit::Key,
                remaining: 0,
                ..
            })
        ));
        // The workspace is reported first when both are short.
        let mut l = topped(1);
        l.apply(
            &Op::SetCap {
                cap: "k".into(),
                remaining: 0,
                refill: None,
                stamp: ST,
            },
            T0,
        );
        assert!(matches!(
            spend(&mut l, 2, Some("k"), T0),
            Reply::Refused(Exhausted {
                limit: Limit::Workspace,
                ..
            })
        ));
    }

    #[test]
    fn refill_sets_remaining_at_each_interval_from_when_the_cap_was_set() {
        let mut l = topped(1_000);
        let refill = Some(Refill {
            amount: 3,
            interval: 60,
        });
        l.apply(
            &Op::SetCap {
                cap: "k".into(),
                remaining: 1,
                refill,
                stamp: ST,
            },
            T0,
        );
        assert!(matches!(
            spend(&mut l, 1, Some("k"), T0),
            Reply::Granted { cap: Some(0), .. }
        ));
        assert_eq!(
            spend(&mut l, 1, Some("k"), T0 + 59_999),
            Reply::Refused(Exhausted {
                limit: Limit::Key,
                remaining: 0,
                cost: 1,
                refill_at: Some(T0 + 60_000)
            })
        );
        // At the instant: refilled to 3 (set, not added), next refill one interval later.
        assert_eq!(
            spend(&mut l, 1, Some("k"), T0 + 60_000),
            Reply::Granted {
                balance: 998,
                cap: Some(2)
            }
        );
        assert_eq!(l.caps["k"].next_refill, Some(T0 + 120_000));
        // Many missed periods: one refill, next aligned to the schedule.
        assert_eq!(
            spend(&mut l, 1, Some("k"), T0 + 10 * 60_000 + 5),
            Reply::Granted {
                balance: 997,
                cap: Some(2)
            }
        );
        assert_eq!(l.caps["k"].next_refill, Some(T0 + 11 * 60_000));
        // A read refills too (and reports the change for storage).
        let (r, ch) = l.apply(
            &Op::Read {
                caps: Some(vec!["k".into()]),
            },
            T0 + 11 * 60_000,
        );
        assert_eq!(ch.caps, ["k"]);
        let Reply::State { caps, .. } = r else { panic!("{r:?}") };
        assert_eq!(caps[0].remaining, 3);
    }

    #[test]
    fn top_ups_are_bounded_and_applied_once_per_id() {
        let mut l = Ledger::default();
        let (r, ch) = l.apply(
            &Op::TopUp {
                amount: 5,
                id: "a".into(),
            },
            T0,
        );
        assert!(matches!(r, Reply::State { applied: true, .. }));
        assert_eq!(ch.topup.as_deref(), Some("a"));
        let (r, ch) = l.apply(
            &Op::TopUp {
                amount: 5,
                id: "a".into(),
            },
            T0,
        );
        assert!(matches!(r, Reply::State { applied: false, .. }));
        assert_eq!(ch, Changes::default());
        assert_eq!(l.ws.balance, 5);
        for bad in [0, -1, MAX_AMOUNT + 1] {
            let (r, ch) = l.apply(
                &Op::TopUp {
                    amount: bad,
                    id: format!("b{bad}"),
                },
                T0,
            );
            assert!(matches!(r, Reply::Invalid { .. }), "{bad}");
            assert_eq!(ch, Changes::default());
        }
        l.ws.balance = MAX_BALANCE - 1;
        assert!(matches!(
            l.apply(
                &Op::TopUp {
                    amount: 2,
                    id: "c".into()
                },
                T0
            )
            .0,
            Reply::Invalid { .. }
        ));
    }

    #[test]
    fn invalid_ops_change_nothing() {
        let mut l = topped(10);
        let before = l.clone();
        for op in [
            Op::Spend { cost: 0, cap: None },
            Op::Spend {
                cost: MAX_COST + 1,
                cap: None,
            },
            Op::SetCap {
                cap: "k".into(),
                remaining: -1,
                refill: None,
                stamp: ST,
            },
            Op::SetCap {
                cap: "k".into(),
                remaining: 1,
                refill: Some(Refill {
                    amount: 0,
                    interval: 60,
                }),
                stamp: ST,
            },
            Op::SetCap {
                cap: "k".into(),
                remaining: 1,
                refill: Some(Refill { amount: 1, interval: 0 }),
                stamp: ST,
            },
        ] {
            assert!(matches!(l.apply(&op, T0).0, Reply::Invalid { .. }), "{op:?}");
        }
        assert_eq!(l, before);
    }

    #[test]
    fn ops_and_replies_survive_the_wire() {
        let ops = [
            Op::Spend {
                cost: 2,
                cap: Some("key_1".into()),
            },
            Op::TopUp {
                amount: 5,
                id: "x".into(),
            },
            Op::SetCap {
                cap: "k".into(),
                remaining: 3,
                refill: Some(Refill {
                    amount: 3,
                    interval: 60,
                }),
                stamp: ST,
            },
            Op::Read { caps: None },
        ];
        for op in ops {
            let s = serde_json::to_string(&op).unwrap();
            assert_eq!(serde_json::from_str::<Op>(&s).unwrap(), op);
        }
        let mut l = topped(3);
        let r = spend(&mut l, 5, None, T0);
        assert_eq!(
            serde_json::from_str::<Reply>(&serde_json::to_string(&r).unwrap()).unwrap(),
            r
        );
    }

    #[test]
    fn cap_input_validation() {
        assert_eq!(parse_cap(&json!({"remaining": 5})), Ok((5, None)));
        assert_eq!(
            parse_cap(&json!({"remaining": 0, "refill": {"amount": 10, "interval": 3600}})),
            Ok((
                0,
                Some(Refill {
                    amount: 10,
                    interval: 3600
                })
            ))
        );
        for bad in [
            json!(5),
            json!({}),
            json!({"remaining": -1}),
            json!({"remaining": 1.5}),
            json!({"remaining": "5"}),
            json!({"remaining": MAX_AMOUNT + 1}),
            json!({"remaining": 1, "extra": 1}),
            json!({"remaining": 1, "refill": {"amount": 0, "interval": 60}}),
            json!({"remaining": 1, "refill": {"amount": 1, "interval": 0}}),
            json!({"remaining": 1, "refill": {"amount": 1, "interval": MAX_INTERVAL_S + 1}}),
            json!({"remaining": 1, "refill": {"amount": 1}}),
            json!({"remaining": 1, "refill": {"amount": 1, "interval": 60, "x": 1}}),
            json!({"remaining": 1, "refill": 5}),
        ] {
            assert!(parse_cap(&bad).is_err(), "{bad}");
        }
        assert_eq!(amount(&json!(7), 1), Ok(7));
        assert!(amount(&json!(7.0), 1).is_err());
        assert!(amount(&json!(0), 1).is_err());
    }

    #[test]
    fn a_cap_change_older_than_the_one_that_set_the_cap_changes_nothing() {
        let mut l = topped(100);
        let set = |l: &mut Ledger, remaining: i64, created_at: Millis, version: u64| {
            let stamp = Stamp { created_at, version };
            l.apply(
                &Op::SetCap {
                    cap: "k".into(),
                    remaining,
                    refill: None,
                    stamp,
                },
                T0,
            )
        };
        assert!(matches!(set(&mut l, 5, T0, 3).0, Reply::State { applied: true, .. }));
        // Version 2 of the same key arrives late: ignored, and nothing to store.
        let (r, ch) = set(&mut l, 9, T0, 2);
        assert!(matches!(r, Reply::State { applied: false, .. }), "{r:?}");
        assert_eq!(ch, Changes::default());
        assert_eq!(l.caps["k"].remaining, 5);
        // The same write twice is applied once (a replayed op must not reset what was spent).
        spend(&mut l, 1, Some("k"), T0);
        assert!(matches!(set(&mut l, 5, T0, 3).0, Reply::State { applied: false, .. }));
        assert_eq!(l.caps["k"].remaining, 4);
        // A successor (created later) outranks its predecessor at any version, not the reverse.
        assert!(matches!(
            set(&mut l, 7, T0 + 1, 1).0,
            Reply::State { applied: true, .. }
        ));
        assert!(matches!(set(&mut l, 8, T0, 9).0, Reply::State { applied: false, .. }));
        assert_eq!(l.caps["k"].remaining, 7);
        assert_eq!(
            l.caps["k"].stamp,
            Stamp {
                created_at: T0 + 1,
                version: 1
            }
        );
    }
}
