//! What an operator relies on: a request id on every answer (and at the origin), and a JSON log
//! line, findable by that id, for every 5xx and every storage failure. Every request the suite
//! makes is checked for X-Request-Id, and every problem body for `instance` (client.rs); these
//! cases check where the id comes from and where else it goes.

use serde_json::{json, Value};

use super::expect_forwarded;
use crate::client::{bearer, key_path, str_field, Body, Ctx};
use crate::TestResult;

fn is_generated_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

fn request_id(resp: &crate::client::Resp) -> Result<String, libtest_mimic::Failed> {
    let id = resp.header("x-request-id").unwrap_or_default().to_owned();
    ensure!(!id.is_empty(), "no X-Request-Id\n{}", resp.describe());
    Ok(id)
}

pub fn request_ids_on_answers_and_at_the_origin(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("ops-ids");
    let (key, obj) = ctx.create_key(&ws, json!({"name": "ids", "preset": "sdk"}))?;
    let key_id = str_field(&obj, "id")?;

    // keyward's own answers: canned refusals, other problems, admin and verify JSON, a 204.
    let mut seen = Vec::new();
    let answers = [
        ctx.request("GET", "/projects/1", &[], Body::None)?,
        ctx.gateway("GET", "/projects/1", "kw_live_not-a-key")?,
        ctx.gateway("POST", "/deploy", &key)?,
        ctx.gateway("GET", "/nowhere", &key)?,
        ctx.admin("GET", &format!("/admin/v1/keys?workspace={ws}"), None)?,
        ctx.admin_as("wrong-token", "GET", "/admin/v1/keys", None)?,
        ctx.verify(&json!({"key": key}))?,
        ctx.admin(
            "DELETE",
            &format!("/admin/v1/presets/none-{}?workspace={ws}", ctx.nonce()),
            None,
        )?,
    ];
    for resp in &answers {
        let id = request_id(resp)?;
        ensure!(is_generated_id(&id), "without cf-ray the id is 16 hex digits: {id:?}");
        if resp.status >= 400 {
            resp.expect_problem(resp.status, None)?; // checks `instance` against the header
        }
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    ensure_eq!(seen.len(), answers.len(), "every answer has its own id");

    // Cloudflare's ray id is the request id when present (the edge sets cf-ray; locally a client
    // can); a value without a ray id's shape is not used.
    let ray = "8c1f0e2d3a4b5c6d-SJC";
    let resp = ctx.request("GET", "/projects/1", &[("cf-ray", ray)], Body::None)?;
    ensure_eq!(request_id(&resp)?, ray, "X-Request-Id with cf-ray");
    resp.expect_problem(401, Some("missing-credentials"))?;
    let resp = ctx.request("GET", "/projects/1", &[("cf-ray", "not a ray id!")], Body::None)?;
    ensure!(is_generated_id(&request_id(&resp)?), "a malformed cf-ray is not the id");

    // The origin gets keyward's id as X-Request-Id; a client's own, in either spelling, is
    // replaced (an origin must be able to trust it as keyward's).
    let path = format!("/projects/{}", ctx.nonce());
    let auth = bearer(&key);
    let resp = ctx.request(
        "GET",
        &path,
        &[
            ("authorization", &auth),
            ("x-request-id", "client-chosen"),
            ("x_request_id", "client-chosen-too"),
            ("cf-ray", ray),
        ],
        Body::None,
    )?;
    let got = expect_forwarded(ctx, &resp, &path)?;
    ensure_eq!(
        got.header_values("x-request-id"),
        vec![ray],
        "X-Request-Id at the origin"
    );
    ensure!(
        got.header_values("x_request_id").is_empty(),
        "the underscore spelling reached the origin: {got:?}"
    );
    ensure_eq!(
        got.header("x-keyward-key-id")?,
        Some(key_id),
        "identity alongside the request id"
    );
    let path = format!("/projects/{}", ctx.nonce());
    let got = expect_forwarded(ctx, &ctx.gateway("GET", &path, &key)?, &path)?;
    let at_origin = got.header_values("x-request-id");
    ensure!(
        at_origin.len() == 1 && is_generated_id(at_origin[0]),
        "a generated id at the origin: {at_origin:?}"
    );
    Ok(())
}

/// The JSON line with `outcome` among `lines`, or a failure that shows them all.
fn line_with<'a>(lines: &'a [Value], outcome: &str, log: &std::path::Path) -> Result<&'a Value, libtest_mimic::Failed> {
    lines.iter().find(|l| l["outcome"] == outcome).ok_or_else(|| {
        format!(
            "no log line with outcome {outcome:?} in {}; lines for this request: {lines:#?}",
            log.display()
        )
        .into()
    })
}

pub fn a_500_is_logged_under_its_request_id(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("ops-500");
    let (_, obj) = ctx.create_key(&ws, json!({"name": "broken row", "preset": "sdk"}))?;
    let id = str_field(&obj, "id")?;
    // A row the worker cannot read: the answer is a generic 500, the cause goes to the log.
    ctx.d1
        .execute(&format!("UPDATE keys SET metadata = 'not json' WHERE id = '{id}'"))?;
    let resp = ctx.admin("GET", &key_path(&ws, id, ""), None)?;
    let problem = resp.expect_problem(500, Some("internal"))?;
    let rid = request_id(&resp)?;
    ensure!(
        !resp.text().contains("metadata"),
        "the internal cause reached the caller: {problem}"
    );

    let lines = ctx.log_lines(&rid, 1)?;
    let line = line_with(&lines, "internal", &ctx.log_path)?;
    ensure_eq!(line["level"], "error", "level of {line}");
    ensure_eq!(line["status"], 500, "status of {line}");
    ensure_eq!(line["route"], "GET /admin/v1/keys/{id}", "route of {line}");
    ensure_eq!(line["key_id"], id, "key of {line}");
    ensure!(
        line["detail"].as_str().is_some_and(|d| d.contains("metadata column")),
        "the log line carries the internal cause: {line}"
    );

    ctx.d1
        .execute(&format!("UPDATE keys SET metadata = '{{}}' WHERE id = '{id}'"))?;
    ctx.admin("GET", &key_path(&ws, id, ""), None)?.expect_status(200)?;
    Ok(())
}

pub fn store_failures_are_logged_under_their_request_id(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("ops-503");
    // Every admin write records its audit entry in the same D1 batch: without the table, the
    // batch fails and nothing is written.
    ctx.d1.execute("ALTER TABLE audit RENAME TO audit_gone")?;
    let resp = ctx.admin(
        "POST",
        &format!("/admin/v1/keys?workspace={ws}"),
        Some(&json!({"name": "never", "preset": "sdk"})),
    );
    let restored = ctx.d1.execute("ALTER TABLE audit_gone RENAME TO audit");
    let resp = resp?;
    restored?;
    resp.expect_problem(503, None)?;
    let rid = request_id(&resp)?;

    let lines = ctx.log_lines(&rid, 2)?;
    let store = line_with(&lines, "d1-error", &ctx.log_path)?;
    ensure_eq!(store["level"], "error", "level of {store}");
    ensure_eq!(store["route"], "POST /admin/v1/keys", "route of {store}");
    ensure!(
        store["detail"].as_str().is_some_and(|d| d.contains("audit")),
        "the storage error is logged: {store}"
    );
    let answered = lines
        .iter()
        .find(|l| l["status"] == 503)
        .ok_or_else(|| format!("no line for the 503 answer: {lines:#?}"))?;
    let problem = resp.json()?;
    ensure_eq!(
        answered["outcome"].as_str(),
        problem["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("urn:keyward:problem:")),
        "the 503 line names the problem type"
    );

    // Nothing was half-written, and the table is back.
    let list = ctx
        .admin("GET", &format!("/admin/v1/keys?workspace={ws}"), None)?
        .expect_json(200)?;
    ensure!(
        list["items"].as_array().is_some_and(|a| a.is_empty()),
        "no key was created: {list}"
    );
    ctx.create_key(&ws, json!({"name": "after", "preset": "sdk"}))?;
    Ok(())
}

/// Every statement the admin API issues is an index search on local D1 (the worker's own
/// EXPLAIN QUERY PLAN, through its binding, with bound arguments): no full scan of a table and no
/// sort in a temporary B-tree, whose cost would grow with the workspace (issue #15; the plans at
/// 100,000 keys are in bench/admin-scale/plans.txt). Dropping an index makes the check fail.
pub fn admin_queries_use_indexes(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("ops-plans");
    // (statement name, plan lines), as the worker reports them.
    let plans = |ctx: &Ctx| -> Result<Vec<(String, Vec<String>)>, libtest_mimic::Failed> {
        let out = ctx
            .admin("POST", &format!("/admin/v1/_plans?workspace={ws}"), None)?
            .expect_json(200)?;
        let items = out["statements"].as_array().cloned().unwrap_or_default();
        Ok(items
            .iter()
            .map(|item| {
                let lines = item["plan"].as_array().cloned().unwrap_or_default();
                let name = item["name"].as_str().unwrap_or_default().to_owned();
                (
                    name,
                    lines.iter().filter_map(|l| l.as_str().map(str::to_owned)).collect(),
                )
            })
            .collect())
    };
    // Checked here with the crate's own checker rather than trusting the worker's `problems`.
    let problems_of = |plans: &[(String, Vec<String>)]| -> Vec<String> {
        plans
            .iter()
            .flat_map(|(n, p)| keyward::store::plan_problems(n, p))
            .collect()
    };
    let all = plans(ctx)?;
    ensure!(all.len() >= 25, "statements explained: {}", all.len());
    let problems = problems_of(&all);
    ensure!(problems.is_empty(), "statements that scan or sort: {problems:#?}");
    // The indexes each list was designed for, not merely some index.
    let uses = |name: &str, index: &str| -> TestResult {
        let (_, plan) = all
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| format!("no plan for {name}"))?;
        ensure!(
            plan.iter().any(|l| l.contains(index)),
            "{name} does not use {index}: {plan:#?}"
        );
        Ok(())
    };
    uses(
        "list_keys",
        "USING INDEX keys_workspace_created (workspace=? AND (created_at,id)<(?,?))",
    )?;
    uses(
        "list_keys ?status=revoked",
        "USING INDEX keys_workspace_status (workspace=? AND status=? AND (created_at,id)<(?,?))",
    )?;
    uses(
        "list_keys ?status=expired",
        "USING COVERING INDEX keys_workspace_status",
    )?;
    uses("list_keys: window end", "USING COVERING INDEX keys_workspace_status")?;
    uses(
        "keys_after (reconcile)",
        "USING INDEX keys_workspace_id (workspace=? AND id>?)",
    )?;
    uses("group_members", "key_groups USING PRIMARY KEY (workspace=? AND grp=?)")?;
    uses("list_audit", "USING INDEX audit_workspace (workspace=? AND id<?)")?;
    uses("get_key", "(id=?)")?;

    // The check can fail: without the status index, the status lists sort or scan.
    ctx.d1.execute("DROP INDEX keys_workspace_status")?;
    let without = plans(ctx);
    let restored = ctx.d1.execute(
        "CREATE INDEX keys_workspace_status ON keys (workspace, status, created_at DESC, id DESC, expires_at, grace_until)",
    );
    let without = without?;
    restored?;
    let problems = problems_of(&without);
    ensure!(
        problems.iter().any(|p| p.starts_with("list_keys ?status=revoked")),
        "dropping keys_workspace_status went unnoticed: {problems:#?}"
    );
    Ok(())
}
