//! Credits over the in-memory stores and the fake counter: spending at the gateway (exactly the
//! balance, never more, also when many requests interleave), exhaustion, refill at an injected
//! time, a counter that cannot be reached (fail closed), top-ups, key caps and their audit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use serde_json::{json, Value};

use super::{admin_req, block_on, hash_of, problem_type, World, ROOT};
use crate::app::gateway::{self, Prepared};
use crate::app::{credits, lookup};
use crate::http::head::Head;
use crate::http::plain::{Request, Response};
use crate::http::problem::ApiError;
use crate::store::memory::FaultMode;

/// The gateway's decision for one request, as the glue makes it: prepare, look up, authorize,
/// and for a metered route one counter call. Ok = forwarded.
async fn gateway_async(w: &World, method: &str, path: &str, key: &str) -> Result<(), ApiError> {
    let head = Head::new(format!("{method}\nhttps://kw.test{path}\n192.0.2.1\nBearer {key}"));
    match gateway::prepare(&w.st.policy, &w.st.config.keys, &head)? {
        Prepared::Public(_) => Ok(()),
        Prepared::Keyed(hash, route) => {
            let entry = lookup::entry(&w.st, &w.edge, &hash, w.now()).await?;
            let e = gateway::authorize(route, entry, w.now())?;
            if route.cost > 0 {
                credits::charge(&w.credits, &e.workspace, e.cap.as_deref(), route.cost, w.now()).await?;
            }
            Ok(())
        }
    }
}

/// The gateway's answer; a refusal is checked against docs/openapi.json's `x-keyward-gateway`
/// (402 credits-exhausted with its members and Retry-After, 503 credits-unavailable).
fn gw(w: &World, path: &str, key: &str) -> Result<(), (u16, Value)> {
    block_on(gateway_async(w, "GET", path, key)).map_err(|e| {
        let r = Response::problem_for(&e, "keyward", "8c1f0e2d3a4b5c6d");
        let headers: Vec<(String, String)> = r.headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        if let Err(err) = super::openapi_contract::contract().check_gateway(r.status, &headers, r.body.as_bytes()) {
            panic!(
                "gateway {path} -> {}: the answer differs from docs/openapi.json:\n{err}\n{}",
                r.status, r.body
            );
        }
        (r.status, r.json_body())
    })
}

fn top_up(w: &World, amount: Value, id: Option<&str>) -> Response {
    let mut body = json!({ "amount": amount });
    if let Some(i) = id {
        body["id"] = json!(i);
    }
    w.admin("POST", "/admin/v1/credits", Some(body))
}

fn counter_calls(w: &World) -> usize {
    w.faults.log().iter().filter(|n| **n == "credits.apply").count()
}

#[test]
fn a_balance_is_spent_exactly_and_exhaustion_answers_402() {
    let w = World::new();
    let (_, key) = w.create_key("metered", &["projects:viewer"]);
    // An empty workspace: refused, nothing forwarded.
    let (status, body) = gw(&w, "/metered/a", &key).unwrap_err();
    assert_eq!(
        (status, body["limit"].as_str(), body["remaining"].as_i64()),
        (402, Some("workspace"), Some(0))
    );
    assert_eq!(top_up(&w, json!(3), None).status, 201);
    for _ in 0..3 {
        gw(&w, "/metered/a", &key).unwrap();
    }
    let (status, body) = gw(&w, "/metered/a", &key).unwrap_err();
    assert_eq!(status, 402);
    assert_eq!(body["type"], "urn:keyward:problem:credits-exhausted");
    assert_eq!(body["remaining"], 0);
    assert_eq!(body["cost"], 1);
    assert_eq!(body["refill_at"], Value::Null);
    let r = Response::problem(
        &block_on(gateway_async(&w, "GET", "/metered/a", &key)).unwrap_err(),
        "keyward",
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.header("retry-after"), None, "no refill: waiting does not help");
    let v = w.admin("GET", "/admin/v1/credits", None).json_body();
    assert_eq!(
        (
            v["balance"].as_i64(),
            v["spent"].as_i64(),
            v["refused"].as_i64(),
            v["topped_up"].as_i64()
        ),
        (Some(0), Some(3), Some(3), Some(3))
    );
}

#[test]
fn unmetered_routes_never_touch_the_counter() {
    let w = World::new();
    let (_, key) = w.create_key("plain", &["projects:viewer"]);
    let before = counter_calls(&w);
    for path in ["/echo/a", "/projects/p1"] {
        gw(&w, path, &key).unwrap();
    }
    assert_eq!(counter_calls(&w), before);
    assert!(w.st.policy.routes().iter().any(|r| r.cost == 1));
    assert!(
        w.st.policy.routes().iter().filter(|r| r.cost > 0).count() == 1,
        "only /metered/** is metered"
    );
}

type Spend<'a> = Pin<Box<dyn Future<Output = Result<(), ApiError>> + 'a>>;

/// Many requests in flight at once, their counter calls interleaved (each yields before it
/// applies): exactly balance / cost succeed.
#[test]
fn concurrent_spenders_never_overspend() {
    let w = World::new();
    let (_, key) = w.create_key("busy", &["projects:viewer"]);
    top_up(&w, json!(20), None);
    // Warm the cache so every request goes straight to the counter.
    gw(&w, "/echo/warm", &key).unwrap();
    w.faults.set_yielding(true);
    let mut futs: Vec<Spend<'_>> = (0..50)
        .map(|_| Box::pin(gateway_async(&w, "GET", "/metered/x", &key)) as _)
        .collect();
    let mut done: Vec<Option<Result<(), ApiError>>> = (0..50).map(|_| None).collect();
    let mut cx = Context::from_waker(Waker::noop());
    // Round-robin polling: every request reaches its yield before any applies.
    while done.iter().any(Option::is_none) {
        for (i, f) in futs.iter_mut().enumerate() {
            if done[i].is_none() {
                if let Poll::Ready(r) = f.as_mut().poll(&mut cx) {
                    done[i] = Some(r);
                }
            }
        }
    }
    w.faults.set_yielding(false);
    let ok = done.iter().filter(|r| matches!(r, Some(Ok(())))).count();
    let exhausted = done
        .iter()
        .filter(|r| matches!(r, Some(Err(ApiError::CreditsExhausted { .. }))))
        .count();
    assert_eq!((ok, exhausted), (20, 30));
    assert_eq!(w.credits.ledger("acme").ws.balance, 0);
}

#[test]
fn an_unreachable_counter_fails_closed() {
    let w = World::new();
    let (_, key) = w.create_key("capme", &["projects:viewer"]);
    top_up(&w, json!(5), None);
    gw(&w, "/echo/warm", &key).unwrap();
    w.faults.fail_call(0, FaultMode::Before);
    let (status, body) = gw(&w, "/metered/a", &key).unwrap_err();
    assert_eq!(status, 503);
    assert_eq!(body["type"], "urn:keyward:problem:credits-unavailable");
    // Unmetered routes are unaffected, and the next metered request spends normally.
    w.faults.fail_call(0, FaultMode::Before);
    gw(&w, "/echo/a", &key).unwrap();
    w.faults.clear();
    gw(&w, "/metered/a", &key).unwrap();
    assert_eq!(w.credits.ledger("acme").ws.balance, 4);
}

#[test]
fn key_caps_refill_at_the_injected_time() {
    let w = World::new();
    top_up(&w, json!(100), None);
    let r = w.admin(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "capped", "scopes": ["projects:viewer"], "credits": {"remaining": 2, "refill": {"amount": 2, "interval": 60}}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let obj = r.json_body();
    assert_eq!(obj["credits"]["remaining"], 2);
    assert_eq!(obj["credits"]["refill"], json!({"amount": 2, "interval": 60}));
    let (id, key) = (
        obj["id"].as_str().unwrap().to_owned(),
        obj["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(w.edge.record(&hash_of(&key)).unwrap().cr.as_deref(), Some(id.as_str()));
    gw(&w, "/metered/a", &key).unwrap();
    gw(&w, "/metered/a", &key).unwrap();
    let (status, body) = gw(&w, "/metered/a", &key).unwrap_err();
    assert_eq!(
        (status, body["limit"].as_str(), body["remaining"].as_i64()),
        (402, Some("key"), Some(0))
    );
    assert_eq!(body["refill_at"], crate::core::time::format_rfc3339(super::T0 + 60_000));
    let e = block_on(gateway_async(&w, "GET", "/metered/a", &key)).unwrap_err();
    assert_eq!(e.retry_after(), Some(60));
    // Other keys still spend the workspace's balance.
    let (_, other) = w.create_key("uncapped", &["projects:viewer"]);
    gw(&w, "/metered/a", &other).unwrap();
    w.advance(59_999);
    assert_eq!(gw(&w, "/metered/a", &key).unwrap_err().0, 402);
    w.advance(1);
    gw(&w, "/metered/a", &key).unwrap();
    // The key object and the verify API show what is left.
    assert_eq!(
        w.admin("GET", &format!("/admin/v1/keys/{id}"), None).json_body()["credits"]["remaining"],
        1
    );
    let v = w.call(
        Request::new("POST", "https://kw.test/v1/keys/verify")
            .with_header("content-type", "application/json")
            .with_body(json!({"key": key}).to_string()),
    );
    assert_eq!(v.json_body()["credits"]["remaining"], 1, "{}", v.body);
    assert_eq!(w.credits.ledger("acme").ws.balance, 100 - 4);
}

#[test]
fn caps_are_set_changed_and_removed_by_patch_and_audited() {
    let w = World::new();
    top_up(&w, json!(100), None);
    let (id, key) = w.create_key("capme", &["projects:viewer"]);
    let path = format!("/admin/v1/keys/{id}");
    assert!(
        w.admin("GET", &path, None).json_body().get("credits").is_none(),
        "no cap, no credits field"
    );
    let r = w.admin("PATCH", &path, Some(json!({"credits": {"remaining": 1}})));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json_body()["credits"]["remaining"], 1);
    gw(&w, "/metered/a", &key).unwrap();
    assert_eq!(gw(&w, "/metered/a", &key).unwrap_err().0, 402);
    // A new count replaces the old one.
    w.admin(
        "PATCH",
        &path,
        Some(json!({"credits": {"remaining": 5, "refill": {"amount": 5, "interval": 3600}}})),
    );
    gw(&w, "/metered/a", &key).unwrap();
    assert_eq!(w.admin("GET", &path, None).json_body()["credits"]["remaining"], 4);
    // null removes the cap: the key spends only the workspace's balance.
    let r = w.admin("PATCH", &path, Some(json!({"credits": null})));
    assert_eq!(r.status, 200);
    assert!(r.json_body().get("credits").is_none());
    for _ in 0..6 {
        gw(&w, "/metered/a", &key).unwrap();
    }
    let audit = w.admin("GET", "/admin/v1/audit", None).json_body();
    let updates: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "key.update")
        .collect();
    assert_eq!(updates.len(), 3);
    assert!(
        updates.iter().all(|e| e["detail"]["changed"] == json!(["credits"])),
        "{updates:?}"
    );
    // Bad caps: clear 400s naming the field.
    for bad in [
        json!({"remaining": -1}),
        json!({"remaining": 1.5}),
        json!({"remaining": 1, "refill": {"amount": 0, "interval": 60}}),
        json!({"remaining": 1, "refill": {"amount": 1, "interval": 0}}),
        json!({"remaining": 1, "bogus": true}),
        json!("lots"),
    ] {
        let r = w.admin("PATCH", &path, Some(json!({ "credits": bad })));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.json_body()["errors"][0]["field"], "credits", "{}", r.body);
    }
    // A counter that cannot be reached: nothing created.
    w.faults.fail_call(0, FaultMode::Before);
    let r = w.admin(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "xkey", "scopes": ["projects:viewer"], "credits": {"remaining": 1}})),
    );
    assert_eq!((r.status, problem_type(&r).as_str()), (503, "credits-unavailable"));
    assert!(w.records.snapshot().keys.values().all(|k| k.name != "xkey"));
}

#[test]
fn a_rotated_key_shares_its_predecessors_cap() {
    let w = World::new();
    top_up(&w, json!(100), None);
    let r = w.admin(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "rotating", "scopes": ["projects:viewer"], "credits": {"remaining": 3}})),
    );
    let obj = r.json_body();
    let (id, old) = (
        obj["id"].as_str().unwrap().to_owned(),
        obj["key"].as_str().unwrap().to_owned(),
    );
    gw(&w, "/metered/a", &old).unwrap();
    let r = w.admin(
        "POST",
        &format!("/admin/v1/keys/{id}/rotate"),
        Some(json!({"grace_seconds": 600})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let new = r.json_body()["key"].as_str().unwrap().to_owned();
    assert_eq!(r.json_body()["credits"]["remaining"], 2);
    gw(&w, "/metered/a", &new).unwrap();
    gw(&w, "/metered/a", &old).unwrap();
    assert_eq!(gw(&w, "/metered/a", &new).unwrap_err().0, 402);
    // The shared cap is changed through the successor only (its change outranks the old key's in
    // the counter); the old key's other fields stay editable.
    let r = w.admin(
        "PATCH",
        &format!("/admin/v1/keys/{id}"),
        Some(json!({"credits": {"remaining": 9}})),
    );
    assert_eq!(
        (r.status, problem_type(&r).as_str()),
        (409, "already-rotated"),
        "{}",
        r.body
    );
    assert_eq!(
        w.admin(
            "PATCH",
            &format!("/admin/v1/keys/{id}"),
            Some(json!({"name": "rotating old"}))
        )
        .status,
        200
    );
    let new_id = w.admin("GET", "/admin/v1/keys", None).json_body()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["rotated_from"] == json!(id))
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .unwrap();
    let r = w.admin(
        "PATCH",
        &format!("/admin/v1/keys/{new_id}"),
        Some(json!({"credits": {"remaining": 2}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    gw(&w, "/metered/a", &old).unwrap();
    gw(&w, "/metered/a", &new).unwrap();
    assert_eq!(gw(&w, "/metered/a", &old).unwrap_err().0, 402);
}

#[test]
fn top_ups_are_validated_root_only_audited_and_applied_once() {
    let w = World::new();
    for bad in [
        json!(0),
        json!(-5),
        json!(1.5),
        json!("10"),
        json!(crate::core::credits::MAX_AMOUNT + 1),
        Value::Null,
    ] {
        let r = top_up(&w, bad.clone(), None);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.json_body()["errors"][0]["field"], "amount");
    }
    assert_eq!(top_up(&w, json!(5), Some("bad id!")).status, 400);
    let r = top_up(&w, json!(10), Some("t-1"));
    assert_eq!(r.status, 201);
    assert_eq!(
        (r.json_body()["balance"].as_i64(), r.json_body()["applied"].as_bool()),
        (Some(10), Some(true))
    );
    // A retry with the same id changes nothing.
    let r = top_up(&w, json!(10), Some("t-1"));
    assert_eq!(
        (
            r.status,
            r.json_body()["balance"].as_i64(),
            r.json_body()["applied"].as_bool()
        ),
        (200, Some(10), Some(false))
    );
    // The audit write fails after the counter applied it: 503, and the retry applies nothing
    // more but writes the entry.
    w.faults.fail_call(1, FaultMode::Before);
    let r = top_up(&w, json!(7), Some("t-2"));
    assert_eq!(
        (r.status, problem_type(&r).as_str()),
        (503, "audit-write-failed"),
        "{}",
        r.body
    );
    let r = top_up(&w, json!(7), Some("t-2"));
    assert_eq!((r.status, r.json_body()["balance"].as_i64()), (200, Some(17)));
    // The counter does not answer: 503 naming the id to retry with.
    w.faults.fail_call(0, FaultMode::After);
    let r = top_up(&w, json!(1), Some("t-3"));
    assert_eq!(r.status, 503);
    assert!(r.body.contains("t-3"), "{}", r.body);
    assert_eq!(
        top_up(&w, json!(1), Some("t-3")).json_body()["balance"],
        18,
        "applied once"
    );
    let audit = w.admin("GET", "/admin/v1/audit", None).json_body();
    let topups = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "credits.topup")
        .count();
    assert_eq!(topups, 4, "t-1, its replay, t-2's retry, t-3's retry");
    // A workspace admin key may read, not top up.
    let (_, admin) = w.create_key("ws admin", &["keys:admin", "projects:viewer"]);
    let r = w.call(admin_req(
        "POST",
        "/admin/v1/credits",
        Some(json!({"amount": 5})),
        &admin,
    ));
    assert_eq!((r.status, problem_type(&r).as_str()), (403, "root-only"));
    let r = w.call(admin_req("GET", "/admin/v1/credits", None, &admin));
    assert_eq!((r.status, r.json_body()["balance"].as_i64()), (200, Some(18)));
    // Root reads any workspace; another workspace starts at 0.
    let r = w.call(admin_req("GET", "/admin/v1/credits?workspace=other", None, ROOT));
    assert_eq!(r.json_body()["balance"], 0, "{}", r.body);
    assert_eq!(w.admin("DELETE", "/admin/v1/credits", None).status, 405);
}
