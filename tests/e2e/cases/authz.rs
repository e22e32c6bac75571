//! Authorization properties across the admin API and the gateway: workspace isolation, no privilege
//! escalation through keys:admin keys, and changes that take effect on the very next request.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{expect_forwarded, expect_invalid_token, expect_not_forwarded};
use crate::client::{bearer, key_path, set_of, str_field, str_set, Body, Context, Ctx};
use crate::TestResult;

const ADMIN_SCOPES: &[&str] = &["keys:admin", "projects:viewer", "events:write"];

pub fn workspace_isolation(ctx: &Ctx) -> TestResult {
    let ws_a = ctx.workspace("iso-a");
    let ws_b = ctx.workspace("iso-b");
    let (admin_a, _) = ctx.create_key(&ws_a, json!({"name": "admin of a", "scopes": ADMIN_SCOPES}))?;
    let (key_b, obj_b) = ctx.create_key(&ws_b, json!({"name": "key of b", "preset": "sdk"}))?;
    let id_b = str_field(&obj_b, "id")?;

    // Another workspace's id is answered exactly like an unknown id (ids masked in `detail`).
    let unknown_id = "key_doesnotexist";
    let unknown = ctx.admin_as(&admin_a, "GET", &format!("/admin/v1/keys/{unknown_id}"), None)?;
    unknown.expect_problem(404, None)?;
    let requests: [(&str, String, Option<Value>); 6] = [
        ("GET", format!("/admin/v1/keys/{id_b}"), None),
        (
            "PATCH",
            format!("/admin/v1/keys/{id_b}"),
            Some(json!({"name": "hijacked"})),
        ),
        ("POST", format!("/admin/v1/keys/{id_b}/revoke"), None),
        ("POST", format!("/admin/v1/keys/{id_b}/rotate"), Some(json!({}))),
        ("DELETE", format!("/admin/v1/keys/{id_b}"), None),
        ("GET", format!("/admin/v1/keys/{id_b}?workspace={ws_a}"), None),
    ];
    for (method, path, body) in &requests {
        let resp = ctx.admin_as(&admin_a, method, path, body.as_ref())?;
        resp.expect_problem(404, None)?;
        ensure_eq!(
            resp.text_without_request_id().replace(id_b, "<id>"),
            unknown.text_without_request_id().replace(unknown_id, "<id>"),
            "{method} {path}: a foreign id must be answered like an unknown id"
        );
    }
    // Root naming the wrong workspace gets the same.
    ctx.admin("GET", &key_path(&ws_a, id_b, ""), None)?
        .expect_problem(404, None)?;

    let still = ctx.get_key(&ws_b, id_b)?;
    ensure_eq!(
        (&still["status"], &still["name"]),
        (&json!("active"), &json!("key of b")),
        "B's key untouched"
    );
    let path = format!("/projects/{}", ctx.nonce());
    expect_forwarded(ctx, &ctx.gateway("GET", &path, &key_b)?, &path)?;

    // Naming another workspace is forbidden outright.
    let create_b = json!({"name": "planted", "preset": "sdk"});
    let forbidden: [(&str, String, Option<&Value>); 4] = [
        ("GET", format!("/admin/v1/keys?workspace={ws_b}"), None),
        ("POST", format!("/admin/v1/keys?workspace={ws_b}"), Some(&create_b)),
        ("GET", format!("/admin/v1/presets?workspace={ws_b}"), None),
        ("GET", format!("/admin/v1/audit?workspace={ws_b}"), None),
    ];
    for (method, path, body) in forbidden {
        ctx.admin_as(&admin_a, method, &path, body)?
            .expect_problem(403, Some("workspace-forbidden"))?;
    }

    let own = ctx
        .admin_as(&admin_a, "GET", "/admin/v1/keys", None)?
        .expect_json(200)?;
    let items = own["items"].as_array().ok_or_else(|| format!("no items in {own}"))?;
    ensure!(
        !items.is_empty() && items.iter().all(|k| k["workspace"] == json!(ws_a)),
        "an admin key lists only its own workspace: {own}"
    );
    let listed_b = ctx
        .admin("GET", &format!("/admin/v1/keys?workspace={ws_b}"), None)?
        .expect_json(200)?;
    ensure_eq!(
        listed_b["items"].as_array().map(Vec::len),
        Some(1),
        "B has only its own key: {listed_b}"
    );
    Ok(())
}

pub fn no_privilege_escalation(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("escalate");
    let (admin, _) = ctx.create_key(&ws, json!({"name": "limited admin", "scopes": ADMIN_SCOPES}))?;

    // Positive control: granting held scopes works.
    let (_, child) = ctx.create_key_as(&admin, "/admin/v1/keys", json!({"name": "sdk child", "preset": "sdk"}))?;
    let child_id = str_field(&child, "id")?;

    let (_, deployer) = ctx.create_key(&ws, json!({"name": "deployer", "preset": "deploy"}))?;
    let deployer_id = str_field(&deployer, "id")?;
    let ws_preset = json!({"name": "ws-deploy", "scopes": ["deploy:trigger"]});
    ctx.admin("POST", &format!("/admin/v1/presets?workspace={ws}"), Some(&ws_preset))?
        .expect_status(201)?;

    // (what, method, path, body, the scopes the 403 must name as not held; None: any). Acting on a
    // key that holds more than the caller is refused as `outranked` before anything is granted.
    type Attempt<'a> = (&'a str, &'a str, String, Value, Option<&'a [&'a str]>);
    let attempts: [Attempt; 7] = [
        (
            "create",
            "POST",
            "/admin/v1/keys".into(),
            json!({"name": "esc 1", "scopes": ["deploy:trigger"]}),
            Some(&["deploy:trigger"][..]),
        ),
        (
            "built-in preset",
            "POST",
            "/admin/v1/keys".into(),
            json!({"name": "esc 2", "preset": "deploy"}),
            Some(&["deploy:trigger", "deployments:editor"][..]),
        ),
        (
            "workspace preset",
            "POST",
            "/admin/v1/keys".into(),
            json!({"name": "esc 3", "preset": "ws-deploy"}),
            Some(&["deploy:trigger"][..]),
        ),
        (
            "wildcard",
            "POST",
            "/admin/v1/keys".into(),
            json!({"name": "esc 4", "scopes": ["*"]}),
            None,
        ),
        (
            "resource wildcard",
            "POST",
            "/admin/v1/keys".into(),
            json!({"name": "esc 5", "scopes": ["projects:*"]}),
            None,
        ),
        (
            "edit",
            "PATCH",
            format!("/admin/v1/keys/{child_id}"),
            json!({"scopes": ["projects:viewer", "deploy:trigger"]}),
            Some(&["deploy:trigger"][..]),
        ),
        (
            "rotate into",
            "POST",
            format!("/admin/v1/keys/{deployer_id}/rotate"),
            json!({}),
            Some(&["deploy:trigger", "deployments:editor"][..]),
        ),
    ];
    for (what, method, path, body, not_held) in attempts {
        let resp = ctx.admin_as(&admin, method, &path, Some(&body))?;
        let slug = if what == "rotate into" {
            "outranked"
        } else {
            "scope-escalation"
        };
        let problem = resp.expect_problem(403, Some(slug)).context(what)?;
        let listed = str_set(&problem["scopes"])?;
        match not_held {
            Some(expected) => ensure_eq!(listed, set_of(expected), "{what}: scopes not held"),
            None => ensure!(
                !listed.is_empty(),
                "{what}: `scopes` must name what is not held: {problem}"
            ),
        }
    }

    // Nothing changed: no new keys, the child and the deployer as they were.
    let listed = ctx
        .admin("GET", &format!("/admin/v1/keys?workspace={ws}"), None)?
        .expect_json(200)?;
    let names: BTreeSet<String> = listed["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|k| k["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    ensure_eq!(
        names,
        set_of(&["limited admin", "sdk child", "deployer"]),
        "keys after the refused attempts"
    );
    ensure_eq!(
        str_set(&ctx.get_key(&ws, child_id)?["scopes"])?,
        str_set(&child["scopes"])?,
        "child scopes"
    );
    ensure_eq!(
        ctx.get_key(&ws, deployer_id)?["superseded_by"],
        Value::Null,
        "the deployer was not rotated"
    );
    Ok(())
}

pub fn revoke_refused_by_next_request(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("revoke-next");
    for action in ["revoke", "delete"] {
        let (key, obj) = ctx.create_key(&ws, json!({"name": format!("{action} me"), "preset": "sdk"}))?;
        let id = str_field(&obj, "id")?;
        // Warm every cache on the way.
        for _ in 0..3 {
            let path = format!("/projects/{}", ctx.nonce());
            expect_forwarded(ctx, &ctx.gateway("GET", &path, &key)?, &path)?;
        }
        match action {
            "revoke" => drop(ctx.revoke_key(&ws, id)?),
            _ => ctx.delete_key(&ws, id)?,
        }
        let path = format!("/projects/{}", ctx.nonce());
        let resp = ctx.gateway("GET", &path, &key)?;
        expect_invalid_token(&resp).context(format_args!("right after {action}"))?;
        expect_not_forwarded(ctx, &path)?;
        let v = ctx.verify(&json!({"key": key}))?.expect_json(200)?;
        ensure_eq!(
            v,
            json!({"valid": false, "code": "NOT_FOUND"}),
            "verify right after {action}"
        );
    }
    Ok(())
}

pub fn scope_removal_immediate(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("scope-edit");
    let (key, obj) = ctx.create_key(&ws, json!({"name": "shrinking", "preset": "sdk"}))?;
    let id = str_field(&obj, "id")?;
    let auth = bearer(&key);
    let post_event = || {
        ctx.request(
            "POST",
            "/events",
            &[("authorization", auth.as_str())],
            Body::Bytes(b"{}"),
        )
    };

    post_event()?.expect_status(200)?;
    let patch = json!({"scopes": ["projects:viewer"]});
    ctx.admin("PATCH", &key_path(&ws, id, ""), Some(&patch))?
        .expect_status(200)?;
    let problem = post_event()?.expect_problem(403, Some("insufficient-scope"))?;
    ensure_eq!(
        str_set(&problem["scopes"])?,
        set_of(&["events:write"]),
        "required scopes after removal"
    );

    let path = format!("/projects/{}", ctx.nonce());
    let got = expect_forwarded(ctx, &ctx.gateway("GET", &path, &key)?, &path)?;
    ensure_eq!(
        got.header("x-keyward-scopes")?,
        Some("projects:viewer"),
        "X-Keyward-Scopes after the edit"
    );

    // Adding works at once too.
    let patch = json!({"scopes": ["projects:viewer", "deploy:trigger"]});
    ctx.admin("PATCH", &key_path(&ws, id, ""), Some(&patch))?
        .expect_status(200)?;
    let resp = ctx.gateway("POST", "/deploy", &key)?;
    resp.expect_status(200)?;
    ensure!(
        resp.header("x-echo-origin").is_some(),
        "POST /deploy after adding deploy:trigger\n{}",
        resp.describe()
    );
    Ok(())
}

/// Deactivate is reversible, refused at the edge exactly like an unknown key (same 401 body) at
/// once; reactivate restores it; a revoked key cannot be reactivated.
pub fn deactivate_and_reactivate(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("deact");
    let (key, obj) = ctx.create_key(&ws, json!({"name": "pausable", "preset": "sdk"}))?;
    let id = str_field(&obj, "id")?.to_owned();
    let unknown = ctx.gateway(
        "GET",
        &format!("/projects/{}", ctx.nonce()),
        "kw_live_0000000000000000000000000000000000000000000_0AwA6B",
    )?;
    let off = ctx
        .admin("POST", &format!("/admin/v1/keys/{id}/deactivate?workspace={ws}"), None)?
        .expect_json(200)?;
    ensure_eq!(off["status"], json!("disabled"), "status after deactivate");
    let path = format!("/projects/{}", ctx.nonce());
    let refused = ctx.gateway("GET", &path, &key)?;
    expect_invalid_token(&refused)?;
    ensure_eq!(
        refused.text_without_request_id(),
        unknown.text_without_request_id(),
        "a disabled key answers like an unknown one"
    );
    expect_not_forwarded(ctx, &path)?;
    let on = ctx
        .admin("POST", &format!("/admin/v1/keys/{id}/reactivate?workspace={ws}"), None)?
        .expect_json(200)?;
    ensure_eq!(on["status"], json!("active"), "status after reactivate");
    let path = format!("/projects/{}", ctx.nonce());
    expect_forwarded(ctx, &ctx.gateway("GET", &path, &key)?, &path)?;
    ctx.revoke_key(&ws, &id)?;
    ctx.admin("POST", &format!("/admin/v1/keys/{id}/reactivate?workspace={ws}"), None)?
        .expect_problem(409, Some("key-revoked"))?;
    let audit = ctx
        .admin("GET", &format!("/admin/v1/audit?workspace={ws}"), None)?
        .expect_json(200)?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["action"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        actions.contains(&"key.deactivate") && actions.contains(&"key.reactivate"),
        "audit entries: {actions:?}"
    );
    Ok(())
}
