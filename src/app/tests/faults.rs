//! Every storage step of every admin write, failed in turn, before and after it takes effect:
//! the answer is a clear 4xx/503 (never a 500), the edge never grants a secret-holder more than
//! the record, nothing is half-written (an audit entry exists exactly for each change), and a
//! retry followed by reconcile always converges, never bringing a revoked or deleted key back.

use serde_json::json;

use super::*;
use crate::core::model::Status;
use crate::store::memory::FaultMode;
use crate::store::Edge;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Create,
    PatchNarrow,
    PatchWiden,
    PatchExpiry,
    Rename,
    Revoke,
    Delete,
    Rotate,
    RotateGrace,
    PresetCreate,
    PresetDelete,
    Reconcile,
    Deactivate,
    Reactivate,
    GroupCreate,
    GroupDelete,
    /// Create with a credit cap (the counter is written before the record names the cap).
    CreateCapped,
    /// Give the seeded key a cap (remaining 5, refill 5 every 60 s).
    PatchCap,
    /// Another cap for the same key (remaining 7, refill 7 every 120 s): races with PatchCap.
    PatchCapB,
    /// Top up the workspace by 10 with a fixed top-up id.
    TopUp,
}

pub const ALL_OPS: [Op; 19] = [
    Op::GroupCreate,
    Op::GroupDelete,
    Op::Deactivate,
    Op::Reactivate,
    Op::Create,
    Op::PatchNarrow,
    Op::PatchWiden,
    Op::PatchExpiry,
    Op::Rename,
    Op::Revoke,
    Op::Delete,
    Op::Rotate,
    Op::RotateGrace,
    Op::PresetCreate,
    Op::PresetDelete,
    Op::Reconcile,
    Op::CreateCapped,
    Op::PatchCap,
    Op::TopUp,
];

pub struct Seeded {
    pub id: String,
    pub secret: String,
    /// A key whose revocation reached the edge (tombstone) but not the record.
    pub half_revoked: String,
    pub half_revoked_secret: String,
    /// A deactivated key.
    pub disabled: String,
    /// Every secret handed out so far.
    pub secrets: Vec<String>,
}

pub fn seed(w: &World) -> Seeded {
    let r = w.admin(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "target", "scopes": ["projects:editor", "deploy:trigger"], "expires": "90d"})),
    );
    assert_eq!(r.status, 201);
    let v = r.json_body();
    let (id, secret) = (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    );
    // The target is a member of group g1 (GroupDelete removes it from every member key).
    assert_eq!(
        w.admin("POST", "/admin/v1/groups", Some(json!({"name": "g1"}))).status,
        201
    );
    assert_eq!(
        w.admin(
            "PATCH",
            &format!("/admin/v1/keys/{id}"),
            Some(json!({"groups": ["g1"]}))
        )
        .status,
        200
    );
    let (half_revoked, hs) = w.create_key("half revoked", &["events:write"]);
    let k = w.key(&half_revoked);
    block_on(
        w.edge
            .put(&k.hash, &k.next(|k| k.status = Status::Revoked).edge_record(), w.now()),
    )
    .unwrap();
    assert_eq!(
        w.admin(
            "POST",
            "/admin/v1/presets",
            Some(json!({"name": "p1", "scopes": ["events:write"]}))
        )
        .status,
        201
    );
    let (disabled, ds) = w.create_key("disabled", &["projects:viewer"]);
    assert_eq!(
        w.admin("POST", &format!("/admin/v1/keys/{disabled}/deactivate"), None)
            .status,
        200
    );
    w.advance(1000);
    Seeded {
        disabled,
        secrets: vec![secret.clone(), hs.clone(), ds],
        id,
        secret,
        half_revoked,
        half_revoked_secret: hs,
    }
}

pub fn request(op: Op, s: &Seeded) -> Request {
    let id = &s.id;
    let (m, p, b) = match op {
        Op::Create => (
            "POST",
            "/admin/v1/keys".to_owned(),
            Some(json!({"name": "fresh key", "scopes": ["projects:viewer"]})),
        ),
        Op::PatchNarrow => (
            "PATCH",
            format!("/admin/v1/keys/{id}"),
            Some(json!({"scopes": ["projects:viewer"]})),
        ),
        Op::PatchWiden => (
            "PATCH",
            format!("/admin/v1/keys/{id}"),
            Some(json!({"scopes": ["projects:owner", "deploy:trigger", "events:write"]})),
        ),
        Op::PatchExpiry => ("PATCH", format!("/admin/v1/keys/{id}"), Some(json!({"expires": "15d"}))),
        Op::Rename => (
            "PATCH",
            format!("/admin/v1/keys/{id}"),
            Some(json!({"name": "renamed"})),
        ),
        Op::Revoke => ("POST", format!("/admin/v1/keys/{id}/revoke"), None),
        Op::Delete => ("DELETE", format!("/admin/v1/keys/{id}"), None),
        Op::Rotate => ("POST", format!("/admin/v1/keys/{id}/rotate"), None),
        Op::RotateGrace => (
            "POST",
            format!("/admin/v1/keys/{id}/rotate"),
            Some(json!({"grace_seconds": 60})),
        ),
        Op::PresetCreate => (
            "POST",
            "/admin/v1/presets".to_owned(),
            Some(json!({"name": "p2", "scopes": ["projects:viewer"]})),
        ),
        Op::PresetDelete => ("DELETE", "/admin/v1/presets/p1".to_owned(), None),
        Op::Reconcile => ("POST", "/admin/v1/reconcile".to_owned(), None),
        Op::Deactivate => ("POST", format!("/admin/v1/keys/{id}/deactivate"), None),
        Op::Reactivate => ("POST", format!("/admin/v1/keys/{}/reactivate", s.disabled), None),
        Op::GroupCreate => ("POST", "/admin/v1/groups".to_owned(), Some(json!({"name": "g2"}))),
        Op::GroupDelete => ("DELETE", "/admin/v1/groups/g1".to_owned(), None),
        Op::CreateCapped => (
            "POST",
            "/admin/v1/keys".to_owned(),
            Some(json!({"name": "capped key", "scopes": ["projects:viewer"],
                        "credits": {"remaining": 3, "refill": {"amount": 3, "interval": 60}}})),
        ),
        Op::PatchCap => (
            "PATCH",
            format!("/admin/v1/keys/{id}"),
            Some(json!({"credits": {"remaining": 5, "refill": {"amount": 5, "interval": 60}}})),
        ),
        Op::PatchCapB => (
            "PATCH",
            format!("/admin/v1/keys/{id}"),
            Some(json!({"credits": {"remaining": 7, "refill": {"amount": 7, "interval": 120}}})),
        ),
        Op::TopUp => (
            "POST",
            "/admin/v1/credits".to_owned(),
            Some(json!({"amount": TOP_UP, "id": "topup-1"})),
        ),
    };
    admin_req(m, &p, b, ROOT)
}

const SLUGS_503: [&str; 7] = [
    "group-cleanup-unfinished",
    "edge-write-failed",
    "store-unavailable",
    "edge-unconfirmed",
    "credits-unavailable",
    "audit-write-failed",
    "feed-unavailable",
];

/// The amount `Op::TopUp` adds.
pub const TOP_UP: i64 = 10;

/// Credits after the calls have finished without faults (or been retried): every live key that
/// names a cap finds it in the workspace's counter with the refill its record says, and the count
/// of the write that set it (every cap these tests set has `remaining` equal to its refill amount,
/// and nothing spends); the balance is one top-up or none, never two.
pub fn check_credits(w: &World, ctx: &str) {
    let ledger = w.credits.ledger("acme");
    for k in w.records.keys() {
        let Some(kc) = &k.credits else { continue };
        if k.status.is_final() {
            continue;
        }
        let cap = ledger.caps.get(&kc.counter);
        let cap = cap.unwrap_or_else(|| panic!("{ctx}: {} names cap {} that the counter lacks", k.id, kc.counter));
        assert_eq!(
            cap.refill, kc.refill,
            "{ctx}: {}'s record and the counter disagree on the refill",
            k.id
        );
        assert_eq!(
            Some(cap.remaining),
            kc.refill.map(|r| r.amount),
            "{ctx}: {}'s count",
            k.id
        );
    }
    assert!(
        [0, TOP_UP].contains(&ledger.ws.balance) && ledger.ws.topped_up == ledger.ws.balance,
        "{ctx}: balance {:?}",
        ledger.ws
    );
}

pub fn check_answer(r: &Response, ctx: &str) {
    assert_ne!(r.status, 500, "{ctx}: {}", r.body);
    if r.status == 503 {
        assert!(SLUGS_503.contains(&problem_type(r).as_str()), "{ctx}: {}", r.body);
        assert!(
            r.json_body()["detail"].as_str().is_some_and(|d| d.len() > 20),
            "{ctx}: says what state it left"
        );
    }
    assert!(
        r.status < 300 || [404, 409, 503].contains(&r.status),
        "{ctx}: {} {}",
        r.status,
        r.body
    );
}

/// Invariants that hold after every single call, whatever failed.
pub fn check_state(w: &World, secrets: &[String], ctx: &str) {
    for s in secrets {
        w.assert_edge_within_record(&hash_of(s), ctx);
    }
    // Nothing half-written: one audit entry per record change (a rotation's audit names the
    // old key; its successor is born with it).
    let snap = w.records.snapshot();
    for k in snap.keys.values() {
        let n = snap
            .audit
            .iter()
            .filter(|a| a.entry.key_id.as_deref() == Some(&k.id))
            .count() as u64;
        let born_with_rotation = u64::from(k.rotated_from.is_some());
        assert_eq!(
            n + born_with_rotation,
            k.version,
            "{ctx}: audit entries of {} ({:?})",
            k.id,
            k.status
        );
    }
}

fn reconcile_all(w: &World, ctx: &str) {
    let r = w.admin("POST", "/admin/v1/reconcile", None);
    assert_eq!(r.status, 200, "{ctx}: {}", r.body);
    assert_eq!(r.json_body()["failed"], json!([]), "{ctx}");
}

fn calls_of(op: Op) -> usize {
    let w = World::new();
    let s = seed(&w);
    let before = w.faults.calls();
    let r = w.call(request(op, &s));
    assert!(r.status < 300, "{op:?} without faults: {} {}", r.status, r.body);
    w.faults.calls() - before
}

#[test]
fn every_storage_step_of_every_write_fails_in_turn() {
    let mut cases = 0;
    for op in ALL_OPS {
        let n = calls_of(op);
        assert!(n >= 1, "{op:?} makes storage calls");
        for i in 0..n {
            for mode in [FaultMode::Before, FaultMode::After] {
                cases += 1;
                let ctx = format!("{op:?}, call {i} of {n} fails {mode:?}");
                let w = World::new();
                let mut s = seed(&w);
                let revoked_before = [Op::Revoke, Op::Delete].contains(&op);
                w.faults.fail_call(i, mode);
                let r = w.call(request(op, &s));
                check_answer(&r, &ctx);
                if r.status == 201 {
                    if let Some(k) = r.json_body()["key"].as_str() {
                        s.secrets.push(k.to_owned());
                    }
                }
                check_state(&w, &s.secrets, &ctx);
                if op == Op::GroupDelete && r.status < 300 {
                    assert!(
                        !w.key(&s.id).groups.contains(&"g1".to_owned()),
                        "{ctx}: still a member in D1"
                    );
                    let edge = w.edge.snapshot();
                    let rec = edge.get(&hash_of(&s.secret));
                    assert!(
                        rec.is_none_or(|r| !r.groups.contains(&"g1".to_owned())),
                        "{ctx}: still a member at the edge"
                    );
                }
                if revoked_before && r.status < 300 {
                    assert!(
                        w.key(&s.id).status.is_final(),
                        "{ctx}: answered {} but not final",
                        r.status
                    );
                    assert!(w.edge_grants(&hash_of(&s.secret)).is_none(), "{ctx}");
                }

                // Whatever runs after: a retry, a reconcile, a rotation attempt.
                w.faults.clear();
                let retry = w.call(request(op, &s));
                check_answer(&retry, &format!("{ctx}, retry"));
                assert_ne!(
                    retry.status, 503,
                    "{ctx}: a retry without faults succeeds: {}",
                    retry.body
                );
                if retry.status == 201 {
                    if let Some(k) = retry.json_body()["key"].as_str() {
                        s.secrets.push(k.to_owned());
                    }
                }
                check_state(&w, &s.secrets, &format!("{ctx}, after retry"));
                check_credits(&w, &format!("{ctx}, after retry"));
                if op == Op::TopUp {
                    assert_eq!(
                        w.credits.ledger("acme").ws.balance,
                        TOP_UP,
                        "{ctx}: applied exactly once"
                    );
                    let audited = w
                        .records
                        .snapshot()
                        .audit
                        .iter()
                        .any(|a| a.entry.action == "credits.topup" && a.entry.detail["id"] == "topup-1");
                    assert!(audited, "{ctx}: the top-up is audited");
                }
                reconcile_all(&w, &ctx);
                check_state(&w, &s.secrets, &format!("{ctx}, after reconcile"));
                if op == Op::GroupDelete {
                    // The retried DELETE finished what the failure interrupted: no key is left in a
                    // deleted group, in D1 or at the edge.
                    let snap = w.records.snapshot();
                    assert!(snap.groups.keys().all(|(_, g)| g != "g1"), "{ctx}: group survived");
                    assert!(
                        snap.keys.values().all(|k| !k.groups.contains(&"g1".to_owned())),
                        "{ctx}: member in D1"
                    );
                    assert!(
                        w.edge.snapshot().values().all(|r| !r.groups.contains(&"g1".to_owned())),
                        "{ctx}: member at the edge"
                    );
                }
                w.assert_consistent(&ctx);
                // The half-done revocation from the seed is completed, never undone.
                assert!(w.key(&s.half_revoked).status.is_final(), "{ctx}");
                assert!(w.edge_grants(&hash_of(&s.half_revoked_secret)).is_none(), "{ctx}");
                if revoked_before {
                    assert!(w.key(&s.id).status.is_final(), "{ctx}: retried revoke/delete is final");
                    let rot = w.call(request(Op::Rotate, &s));
                    assert!(rot.status == 404 || rot.status == 409, "{ctx}: {}", rot.body);
                    reconcile_all(&w, &ctx);
                    assert!(w.edge_grants(&hash_of(&s.secret)).is_none(), "{ctx}: revived");
                }
            }
        }
    }
    eprintln!("fault cases: {cases}");
    assert!(cases > 80, "{cases}");
}

#[test]
fn a_failed_create_never_leaves_a_usable_or_listed_key() {
    for i in 0..4 {
        for mode in [FaultMode::Before, FaultMode::After] {
            let w = World::new();
            w.faults.fail_call(i, mode);
            let r = w.admin(
                "POST",
                "/admin/v1/keys",
                Some(json!({"name": "x key", "scopes": ["*"]})),
            );
            if r.status == 201 {
                continue;
            }
            assert_eq!(r.status, 503, "{i} {mode:?}");
            w.faults.clear();
            w.admin("POST", "/admin/v1/reconcile", None);
            let listed = w.admin("GET", "/admin/v1/keys?status=active", None).json_body();
            assert_eq!(listed["items"], json!([]), "call {i} {mode:?}: {listed}");
            // No edge record grants anything without a live record behind it.
            for (h, rec) in w.edge.snapshot() {
                if grants_of_record(Some(&rec), w.now()).is_some() {
                    assert!(
                        w.record_grants(&h).is_some(),
                        "call {i} {mode:?}: orphan live edge record"
                    );
                }
            }
        }
    }
}
