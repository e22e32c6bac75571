//! Credits on the real runtime: the workspace's Durable Object counts every metered request, so a
//! balance spent from many connections at once grants exactly balance / cost requests.

use serde_json::json;

use super::{expect_not_forwarded, TestResult};
use crate::client::{str_field, Ctx};

fn top_up(ctx: &Ctx, ws: &str, amount: i64) -> TestResult {
    let r = ctx.admin(
        "POST",
        &format!("/admin/v1/credits?workspace={ws}"),
        Some(&json!({"amount": amount})),
    )?;
    r.expect_status(201)?;
    Ok(())
}

/// 50 threads, each with its own connection, spend a balance of 100 on a cost-1 route with 200
/// requests: exactly 100 are forwarded, the rest answer 402, none a 5xx.
pub fn concurrent_spending_is_exact(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("credits");
    let (key, _) = ctx.create_key(&ws, json!({"name": "spender", "scopes": ["projects:viewer"]}))?;
    top_up(ctx, &ws, 100)?;
    let path = format!("/metered/{}", ctx.nonce());
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                s.spawn(|| {
                    // Its own client per thread: its own connection.
                    let mut got = Vec::new();
                    for _ in 0..4 {
                        got.push(ctx.gateway("GET", &path, &key).map(|r| r.status).unwrap_or(0));
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    // A connection the local proxy drops under load (0) loses an answer, not a credit: the exact
    // counts are the origin's and the counter's, checked below; the clients' must agree with them.
    let lost = statuses.iter().filter(|s| **s == 0).count();
    ensure_eq!(statuses.len(), 200, "answers");
    ensure!(lost <= 2, "{lost} answers lost: {statuses:?}");
    ensure_eq!(ok + refused + lost, 200, "only 200, 402 or a lost answer: {statuses:?}");
    ensure!(
        ok <= 100 && refused <= 100 && ok + lost >= 100,
        "200s and 402s of {statuses:?}"
    );
    ensure_eq!(ctx.origin.requests_to(&path).len(), 100, "requests the origin received");
    let v = ctx
        .admin("GET", &format!("/admin/v1/credits?workspace={ws}"), None)?
        .expect_json(200)?;
    ensure_eq!(
        (v["balance"].as_i64(), v["spent"].as_i64()),
        (Some(0), Some(100)),
        "usage {v}"
    );
    ensure!(
        v["refused"].as_i64().is_some_and(|r| r as usize >= refused && r <= 100),
        "usage {v}"
    );
    Ok(())
}

/// Exhaustion (402 with the balance state, no origin call), a top-up, a key cap that refills, the
/// key object and the verify API showing what is left, and unmetered routes untouched.
pub fn exhaustion_top_up_and_refill(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("credits");
    let (key, _) = ctx.create_key(&ws, json!({"name": "plain", "scopes": ["projects:viewer"]}))?;
    // An empty workspace: metered refused, unmetered forwarded.
    let path = format!("/metered/{}", ctx.nonce());
    let p = ctx
        .gateway("GET", &path, &key)?
        .expect_problem(402, Some("credits-exhausted"))?;
    ensure_eq!(
        (p["limit"].as_str(), p["remaining"].as_i64(), p["cost"].as_i64()),
        (Some("workspace"), Some(0), Some(1)),
        "{p}"
    );
    expect_not_forwarded(ctx, &path)?;
    ctx.gateway("GET", &format!("/echo/{}", ctx.nonce()), &key)?
        .expect_status(200)?;
    // Bad top-ups, then a good one.
    for bad in [json!(0), json!(-1), json!(2.5), json!("3")] {
        ctx.admin(
            "POST",
            &format!("/admin/v1/credits?workspace={ws}"),
            Some(&json!({"amount": bad})),
        )?
        .expect_problem(400, Some("invalid-body"))?;
    }
    top_up(ctx, &ws, 10)?;
    ctx.gateway("GET", &path, &key)?.expect_status(200)?;

    // A key with its own cap of 2, refilled to 2 every 2 s.
    let (capped, obj) = ctx.create_key(
        &ws,
        json!({"name": "capped", "scopes": ["projects:viewer"], "credits": {"remaining": 2, "refill": {"amount": 2, "interval": 2}}}),
    )?;
    ensure_eq!(
        obj["credits"]["remaining"].as_i64(),
        Some(2),
        "created key object {obj}"
    );
    let id = str_field(&obj, "id")?.to_owned();
    for _ in 0..2 {
        ctx.gateway("GET", &format!("/metered/{}", ctx.nonce()), &capped)?
            .expect_status(200)?;
    }
    let path = format!("/metered/{}", ctx.nonce());
    let resp = ctx.gateway("GET", &path, &capped)?;
    let p = resp.expect_problem(402, Some("credits-exhausted"))?;
    ensure_eq!(
        (p["limit"].as_str(), p["remaining"].as_i64()),
        (Some("key"), Some(0)),
        "{p}"
    );
    ensure!(p["refill_at"].is_string(), "refill_at in {p}");
    ensure!(
        resp.header("retry-after").is_some(),
        "Retry-After on a refillable cap\n{}",
        resp.describe()
    );
    expect_not_forwarded(ctx, &path)?;
    let v = ctx.verify(&json!({"key": capped}))?.expect_json(200)?;
    ensure_eq!(v["credits"]["remaining"].as_i64(), Some(0), "verify API {v}");
    // The refill: wait until refill_at, then the key spends again.
    let at = crate::util::parse_rfc3339_ms(str_field(&p, "refill_at")?).ok_or("refill_at is not RFC 3339")?;
    let wait = (at - crate::util::unix_ms() + 200).max(0) as u64;
    std::thread::sleep(std::time::Duration::from_millis(wait));
    ctx.gateway("GET", &format!("/metered/{}", ctx.nonce()), &capped)?
        .expect_status(200)?;
    let k = ctx.get_key(&ws, &id)?;
    ensure_eq!(
        k["credits"]["remaining"].as_i64(),
        Some(1),
        "key object after the refill {k}"
    );
    // The workspace paid for every forwarded request: 1 + 2 + 1.
    let v = ctx
        .admin("GET", &format!("/admin/v1/credits?workspace={ws}"), None)?
        .expect_json(200)?;
    ensure_eq!(
        (v["balance"].as_i64(), v["spent"].as_i64()),
        (Some(6), Some(4)),
        "usage {v}"
    );
    // Remove the cap: the key spends only the workspace's balance.
    ctx.admin(
        "PATCH",
        &format!("/admin/v1/keys/{id}?workspace={ws}"),
        Some(&json!({"credits": null})),
    )?
    .expect_status(200)?;
    ctx.gateway("GET", &format!("/metered/{}", ctx.nonce()), &capped)?
        .expect_status(200)?;
    // A cap again, by PATCH, then another: the counter takes each (each record write is newer than
    // the one that set the cap before), and the key object shows the count.
    let key_path = format!("/admin/v1/keys/{id}?workspace={ws}");
    for remaining in [1, 3] {
        let obj = ctx
            .admin("PATCH", &key_path, Some(&json!({"credits": {"remaining": remaining}})))?
            .expect_json(200)?;
        ensure_eq!(
            obj["credits"]["remaining"].as_i64(),
            Some(remaining),
            "PATCH answer {obj}"
        );
    }
    for _ in 0..3 {
        ctx.gateway("GET", &format!("/metered/{}", ctx.nonce()), &capped)?
            .expect_status(200)?;
    }
    let p = ctx
        .gateway("GET", &format!("/metered/{}", ctx.nonce()), &capped)?
        .expect_problem(402, Some("credits-exhausted"))?;
    ensure_eq!(
        (p["limit"].as_str(), p["refill_at"].is_null()),
        (Some("key"), true),
        "{p}"
    );
    ensure_eq!(
        ctx.get_key(&ws, &id)?["credits"]["remaining"].as_i64(),
        Some(0),
        "key object"
    );
    // Top-ups and cap changes are audited.
    let audit = ctx
        .admin("GET", &format!("/admin/v1/audit?workspace={ws}"), None)?
        .expect_json(200)?;
    let items = audit["items"].as_array().ok_or("no items")?;
    let actions: Vec<&str> = items.iter().filter_map(|e| e["action"].as_str()).collect();
    ensure!(actions.contains(&"credits.topup"), "audit {actions:?}");
    let cap_changes = items
        .iter()
        .filter(|e| e["action"] == "key.update" && e["detail"]["changed"] == json!(["credits"]))
        .count();
    ensure_eq!(
        cap_changes,
        3,
        "key.update entries for the cap's removal and two PATCHes: {actions:?}"
    );
    Ok(())
}
