//! Two admin calls on one key, in every interleaving of their storage steps (each memory-store
//! call yields once, and a scheduler picks which call runs its next step). Whatever the order:
//! no 5xx, the edge ends up exactly as the record says, a key the record calls revoked or
//! deleted is never accepted again, and a revoke or delete that answered success holds.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::faults::{check_answer, check_credits, request, seed, Op};
use super::*;
use crate::core::model::Status;

pub(super) type Call<'a> = Pin<Box<dyn Future<Output = Response> + 'a>>;

/// Runs `a` and `b` to completion, choosing at each step by `prefix`, then 0 (first call);
/// returns the branch choices made (to enumerate the rest) and both answers.
pub(super) fn drive(mut calls: [Option<Call<'_>>; 2], prefix: &[u8]) -> (Vec<u8>, [Option<Response>; 2]) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out: [Option<Response>; 2] = [None, None];
    let mut choices = Vec::new();
    loop {
        let live: Vec<usize> = (0..2).filter(|i| calls[*i].is_some()).collect();
        let pick = match live.as_slice() {
            [] => break,
            [only] => *only,
            _ => {
                let c = prefix.get(choices.len()).copied().unwrap_or(0);
                choices.push(c);
                c as usize
            }
        };
        if let Some(f) = calls[pick].as_mut() {
            if let Poll::Ready(r) = f.as_mut().poll(&mut cx) {
                out[pick] = Some(r);
                calls[pick] = None;
            }
        }
    }
    (choices, out)
}

/// Runs `one` once per interleaving, depth-first over the scheduler's choices: `one` gets the
/// prefix of choices to follow and returns the choices `drive` made; the number of runs.
pub(super) fn for_every_schedule(mut one: impl FnMut(&[u8]) -> Vec<u8>) -> usize {
    let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
    let mut runs = 0;
    while let Some(prefix) = stack.pop() {
        runs += 1;
        let choices = one(&prefix);
        for i in prefix.len()..choices.len() {
            if choices[i] == 0 {
                let mut alt = choices[..i].to_vec();
                alt.push(1);
                stack.push(alt);
            }
        }
    }
    runs
}

/// Explores every interleaving of `a` and `b` (depth-first over the scheduler's choices).
fn explore(a: Op, b: Op) -> usize {
    // Seeded once; every run starts from a copy of the same stores.
    let w0 = World::new();
    let s = seed(&w0);
    let (records0, edge0, now0) = (w0.records.snapshot(), w0.edge.snapshot(), w0.now());
    let feed0 = w0.feed.snapshot();
    for_every_schedule(|prefix| {
        let w = World::new();
        w.records.restore(records0.clone());
        w.edge.restore(edge0.clone());
        w.feed.restore(feed0.clone());
        w.now.set(now0);
        w.faults.set_yielding(true);
        let (ra, rb) = (request(a, &s), request(b, &s));
        let calls: [Option<Call<'_>>; 2] = [Some(Box::pin(w.call_async(ra))), Some(Box::pin(w.call_async(rb)))];
        let (choices, answers) = drive(calls, prefix);
        w.faults.set_yielding(false);
        let ctx = format!("{a:?} || {b:?}, schedule {choices:?}");
        let mut secrets = s.secrets.clone();
        for (op, r) in [(a, &answers[0]), (b, &answers[1])] {
            let r = r.as_ref().expect("both calls finished");
            check_answer(r, &format!("{ctx}: {op:?}"));
            assert_ne!(r.status, 503, "{ctx}: {op:?} without faults: {}", r.body);
            if r.status == 201 {
                if let Some(k) = r.json_body()["key"].as_str() {
                    secrets.push(k.to_owned());
                }
            }
            if [Op::Revoke, Op::Delete].contains(&op) && r.status < 300 {
                assert!(
                    w.key(&s.id).status.is_final(),
                    "{ctx}: {op:?} answered {} but the key is live",
                    r.status
                );
            }
        }
        super::faults::check_state(&w, &secrets, &ctx);
        check_credits(&w, &ctx);
        // Without faults, no reconcile is needed: the edge already matches the record. (The
        // seed's half-done revocation is left to reconcile, unless reconcile was in the race.)
        if a == Op::Reconcile || b == Op::Reconcile {
            w.assert_consistent(&ctx);
            assert!(w.key(&s.half_revoked).status.is_final(), "{ctx}");
        } else {
            w.assert_consistent_except(&ctx, &[&s.half_revoked]);
        }
        let k = w.key(&s.id);
        if k.status.is_final() {
            assert!(
                w.edge_grants(&k.hash).is_none(),
                "{ctx}: a {:?} key is accepted at the edge",
                k.status
            );
        }
        if k.status == Status::Deleted {
            assert!(w
                .records
                .snapshot()
                .keys
                .values()
                .all(|x| x.id != s.id || x.status == Status::Deleted));
        }
        choices
    })
}

const RACERS: [Op; 9] = [
    Op::Deactivate,
    Op::PatchNarrow,
    Op::PatchWiden,
    Op::Rename,
    Op::Revoke,
    Op::Delete,
    Op::Rotate,
    Op::RotateGrace,
    Op::Reconcile,
];

#[test]
fn every_interleaving_of_every_pair_of_admin_calls_on_one_key() {
    let mut total = 0;
    for (i, a) in RACERS.iter().enumerate() {
        for b in &RACERS[i..] {
            total += explore(*a, *b);
        }
    }
    eprintln!("interleavings explored: {total}");
    assert!(total > 1000, "{total}");
}

/// Credit writes against each other and against the key's other writes: two caps for one key
/// (the record and the counter must end up naming the same one: the write that won), a cap
/// against rotation, revocation, deletion and reconcile, and a top-up retried while the first is
/// in flight (applied once).
const CREDIT_RACES: [(Op, Op); 8] = [
    (Op::PatchCap, Op::PatchCapB),
    (Op::PatchCap, Op::Rotate),
    (Op::PatchCap, Op::PatchNarrow),
    (Op::PatchCap, Op::Revoke),
    (Op::PatchCap, Op::Delete),
    (Op::PatchCap, Op::Reconcile),
    (Op::TopUp, Op::TopUp),
    (Op::TopUp, Op::PatchCap),
];

#[test]
fn every_interleaving_of_credit_writes() {
    let total: usize = CREDIT_RACES.iter().map(|(a, b)| explore(*a, *b)).sum();
    eprintln!("credit interleavings explored: {total}");
    assert!(total > 100, "{total}");
}
