//! docs/api.md section 3: the admin API as root (keys:admin keys: see authz.rs).

use std::collections::BTreeSet;
use std::thread::sleep;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use serde_json::{json, Value};

use super::{expect_forwarded, expect_invalid_token};
use crate::client::{bearer, key_path, set_of, str_field, str_set, Body, Context, Ctx};
use crate::util::{parse_rfc3339_ms, rfc3339_ms, unix_ms};
use crate::TestResult;

const DAY_MS: i64 = 86_400_000;

fn keys_path(ws: &str) -> String {
    format!("/admin/v1/keys?workspace={ws}")
}

/// A wire time field as unix ms.
fn time_field(v: &Value, field: &str) -> Result<i64, Failed> {
    let s = str_field(v, field)?;
    parse_rfc3339_ms(s).ok_or_else(|| format!("`{field}` = {s:?} is not an RFC 3339 UTC time (…Z)").into())
}

fn ensure_near(actual_ms: i64, expected_ms: i64, slack_ms: i64, what: &str) -> TestResult {
    ensure!(
        (actual_ms - expected_ms).abs() <= slack_ms,
        "{what}: {} is not within {slack_ms} ms of {}",
        rfc3339_ms(actual_ms),
        rfc3339_ms(expected_ms)
    );
    Ok(())
}

/// Proxies one GET through the gateway with `key` and expects the origin to get it.
fn expect_key_works(ctx: &Ctx, key: &str) -> TestResult {
    let path = format!("/projects/{}", ctx.nonce());
    expect_forwarded(ctx, &ctx.gateway("GET", &path, key)?, &path).map(drop)
}

/// All pages of a listing (`path` has a query already), following `next_cursor`.
fn list_all(ctx: &Ctx, path: &str, limit: usize) -> Result<Vec<Value>, Failed> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let page_path = match &cursor {
            None => format!("{path}&limit={limit}"),
            Some(c) => format!("{path}&limit={limit}&cursor={c}"),
        };
        let page = ctx.admin("GET", &page_path, None)?.expect_json(200)?;
        let page_items = page["items"]
            .as_array()
            .ok_or_else(|| format!("no items array in {page}"))?;
        ensure!(
            page_items.len() <= limit,
            "{page_path} returned {} items",
            page_items.len()
        );
        items.extend(page_items.iter().cloned());
        match &page["next_cursor"] {
            Value::Null => return Ok(items),
            Value::String(next) => {
                ensure!(!page_items.is_empty(), "{page_path}: an empty page with a next_cursor");
                cursor = Some(next.clone());
            }
            other => return Err(format!("next_cursor must be a string or null, got {other}").into()),
        }
    }
    Err(format!("{path}: more than 1000 pages").into())
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap_or("<no id>").to_owned())
        .collect()
}

pub fn auth_required(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-auth");
    let path = keys_path(&ws);

    let resp = ctx.request("GET", &path, &[], Body::None)?;
    resp.expect_problem(401, None)?;

    let resp = ctx.admin_as("not-the-admin-token", "GET", &path, None)?;
    resp.expect_problem(401, None)?;
    let challenge = resp.www_authenticate()?;
    ensure!(
        challenge.contains(r#"error="invalid_token""#),
        "WWW-Authenticate for a bad token: {challenge:?}"
    );

    let (sdk, _) = ctx.create_key(&ws, json!({"name": "no admin", "preset": "sdk"}))?;
    let resp = ctx.admin_as(&sdk, "GET", "/admin/v1/keys", None)?;
    resp.expect_problem(403, Some("insufficient-scope"))?;
    let challenge = resp.www_authenticate()?;
    ensure!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="keys:admin""#),
        "WWW-Authenticate for a key without keys:admin: {challenge:?}"
    );

    let (admin, _) = ctx.create_key(&ws, json!({"name": "ws admin", "scopes": ["keys:admin"]}))?;
    for path in ["/admin/v1/keys".to_owned(), keys_path(&ws)] {
        let list = ctx.admin_as(&admin, "GET", &path, None)?.expect_json(200)?;
        ensure_eq!(
            list["items"].as_array().map(Vec::len),
            Some(2),
            "keys of {ws} listed by its admin key at {path}"
        );
    }

    // Root must name the workspace.
    ctx.admin("GET", "/admin/v1/keys", None)?.expect_problem(400, None)?;
    Ok(())
}

pub fn create_and_get(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-create");
    let body = json!({
        "name": "  ci deploy  ",
        "description": "deploys from CI",
        "scopes": ["deploy:trigger"],
        "preset": "read-only",
        "metadata": {"pipeline": "main"},
        "expires": "90d",
    });
    let before = unix_ms();
    let (key, obj) = ctx.create_key(&ws, body)?;
    let id = str_field(&obj, "id")?;
    ensure!(key.starts_with("kw_live_"), "a key starts with kw_live_: {key:?}");
    ensure!(id.starts_with("key_"), "a key id starts with key_: {id:?}");
    ensure_eq!(obj["workspace"], json!(ws), "workspace");
    ensure_eq!(obj["name"], json!("ci deploy"), "the name is trimmed");
    ensure_eq!(obj["description"], json!("deploys from CI"), "description");
    let scopes = set_of(&["deploy:trigger", "projects:viewer", "deployments:viewer"]);
    ensure_eq!(str_set(&obj["scopes"])?, scopes, "scopes = given scopes + the preset's");
    let preview = str_field(&obj, "preview")?;
    ensure!(
        preview.starts_with("kw_live_") && preview.len() < key.len() && key.ends_with(&preview[preview.len() - 4..]),
        "preview {preview:?} should be kw_live_…<last 4 characters of the key>"
    );
    ensure_eq!(obj["status"], json!("active"), "status");
    let created = time_field(&obj, "created_at")?;
    ensure_near(created, before, 60_000, "created_at")?;
    ensure_near(
        time_field(&obj, "expires_at")?,
        created + 90 * DAY_MS,
        60_000,
        "expires_at of a 90d key",
    )?;
    for field in ["last_used_at", "revoked_at", "rotated_from", "superseded_by"] {
        ensure_eq!(obj[field], Value::Null, "{field} of a new key");
    }
    ensure_eq!(obj["metadata"], json!({"pipeline": "main"}), "metadata");

    let got = ctx.get_key(&ws, id)?;
    ensure!(got.get("key").is_none(), "GET must not return the secret: {got}");
    ensure_eq!(got, obj, "GET vs the created key object");

    // Defaults and every `expires` form.
    let (_, plain) = ctx.create_key(&ws, json!({"name": "plain key", "preset": "sdk", "expires": null}))?;
    ensure_eq!(plain["expires_at"], Value::Null, "expires_at with expires: null");
    ensure_eq!(plain["description"], json!(""), "default description");
    ensure_eq!(plain["metadata"], json!({}), "default metadata");
    let at = rfc3339_ms(unix_ms() + 3 * DAY_MS);
    let forms = [
        ("15d", 15, 15),
        ("25d", 25, 25),
        ("45d", 45, 45),
        ("90d", 90, 90),
        ("6m", 181, 184),
        ("1y", 365, 366),
    ];
    for (form, min_days, max_days) in forms {
        let (_, k) = ctx.create_key(
            &ws,
            json!({"name": format!("expires {form}"), "preset": "sdk", "expires": form}),
        )?;
        let lifetime = time_field(&k, "expires_at")? - time_field(&k, "created_at")?;
        ensure!(
            lifetime >= min_days * DAY_MS - 60_000 && lifetime <= max_days * DAY_MS + 60_000,
            "expires {form:?} gave a lifetime of {:.2} days",
            lifetime as f64 / DAY_MS as f64
        );
    }
    let (_, k) = ctx.create_key(&ws, json!({"name": "expires at", "preset": "sdk", "expires": at}))?;
    ensure_eq!(k["expires_at"], json!(at), "expires_at for an RFC 3339 `expires`");
    Ok(())
}

pub fn list_paginates_newest_first(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-list");
    let mut created = Vec::new();
    for i in 1..=5 {
        let (_, obj) = ctx.create_key(&ws, json!({"name": format!("list key {i}"), "preset": "sdk"}))?;
        created.push(str_field(&obj, "id")?.to_owned());
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let paged = list_all(ctx, &keys_path(&ws), 2)?;
    ensure_eq!(ids(&paged), newest_first, "ids over pages of 2, newest first");
    ensure!(
        paged.iter().all(|i| i.get("key").is_none()),
        "a listing must not contain secrets"
    );

    let all = ctx.admin("GET", &keys_path(&ws), None)?.expect_json(200)?;
    ensure_eq!(
        all["next_cursor"],
        Value::Null,
        "next_cursor of a complete default page"
    );
    ensure_eq!(
        ids(all["items"].as_array().map(Vec::as_slice).unwrap_or_default()),
        newest_first,
        "default page"
    );

    ctx.revoke_key(&ws, &created[1])?;
    let revoked = list_all(ctx, &format!("{}&status=revoked", keys_path(&ws)), 2)?;
    ensure_eq!(ids(&revoked), vec![created[1].clone()], "status=revoked");
    let active = list_all(ctx, &format!("{}&status=active", keys_path(&ws)), 3)?;
    let expected: Vec<String> = newest_first.iter().filter(|id| **id != created[1]).cloned().collect();
    ensure_eq!(ids(&active), expected, "status=active");
    Ok(())
}

pub fn patch(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-patch");
    let (_, obj) = ctx.create_key(&ws, json!({"name": "patch me", "preset": "sdk", "metadata": {"v": 1}}))?;
    let id = str_field(&obj, "id")?;
    let change = json!({
        "name": "patched name",
        "description": "now described",
        "scopes": ["projects:viewer"],
        "metadata": {"v": 2},
        "expires": "15d",
    });
    let patched = ctx
        .admin("PATCH", &key_path(&ws, id, ""), Some(&change))?
        .expect_json(200)?;
    ensure_eq!(patched["id"], json!(id), "id after PATCH");
    ensure_eq!(patched["name"], json!("patched name"), "name after PATCH");
    ensure_eq!(
        patched["description"],
        json!("now described"),
        "description after PATCH"
    );
    ensure_eq!(
        str_set(&patched["scopes"])?,
        set_of(&["projects:viewer"]),
        "scopes after PATCH"
    );
    ensure_eq!(patched["metadata"], json!({"v": 2}), "metadata after PATCH");
    ensure_near(
        time_field(&patched, "expires_at")?,
        unix_ms() + 15 * DAY_MS,
        60_000,
        "expires_at after PATCH",
    )?;
    ensure_eq!(ctx.get_key(&ws, id)?, patched, "GET after PATCH");

    // Partial PATCH leaves the rest alone.
    let renamed = ctx
        .admin("PATCH", &key_path(&ws, id, ""), Some(&json!({"name": "renamed"})))?
        .expect_json(200)?;
    ensure_eq!(
        renamed["description"],
        json!("now described"),
        "description after a name-only PATCH"
    );
    ensure_eq!(renamed["scopes"], patched["scopes"], "scopes after a name-only PATCH");

    let (_, other) = ctx.create_key(&ws, json!({"name": "taken name", "preset": "sdk"}))?;
    let other_id = str_field(&other, "id")?;
    let resp = ctx.admin("PATCH", &key_path(&ws, other_id, ""), Some(&json!({"name": "renamed"})))?;
    resp.expect_problem(409, Some("name-conflict"))?;

    ctx.revoke_key(&ws, id)?;
    let resp = ctx.admin(
        "PATCH",
        &key_path(&ws, id, ""),
        Some(&json!({"description": "too late"})),
    )?;
    resp.expect_problem(409, None)?;
    Ok(())
}

pub fn revoke_and_delete(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-revoke");
    let (key, obj) = ctx.create_key(&ws, json!({"name": "to revoke", "preset": "sdk"}))?;
    let id = str_field(&obj, "id")?;
    let revoked = ctx.revoke_key(&ws, id)?;
    ensure_eq!(revoked["status"], json!("revoked"), "status after revoke");
    ensure_near(time_field(&revoked, "revoked_at")?, unix_ms(), 60_000, "revoked_at")?;
    // Idempotent, with `{}` as the body too.
    let again = ctx
        .admin("POST", &key_path(&ws, id, "/revoke"), Some(&json!({})))?
        .expect_json(200)?;
    ensure_eq!(again["status"], json!("revoked"), "status after a second revoke");
    ensure_eq!(
        again["revoked_at"],
        revoked["revoked_at"],
        "a second revoke keeps revoked_at"
    );
    ensure_eq!(ctx.get_key(&ws, id)?["status"], json!("revoked"), "GET after revoke");
    let path = format!("/projects/{}", ctx.nonce());
    expect_invalid_token(&ctx.gateway("GET", &path, &key)?)?;

    ctx.delete_key(&ws, id)?;
    ctx.admin("GET", &key_path(&ws, id, ""), None)?
        .expect_problem(404, None)?;
    ctx.admin("GET", &key_path(&ws, "key_doesnotexist", ""), None)?
        .expect_problem(404, None)?;

    // Deleting an active key.
    let (key, obj) = ctx.create_key(&ws, json!({"name": "to delete", "preset": "sdk"}))?;
    let id = str_field(&obj, "id")?;
    let resp = ctx.admin("DELETE", &key_path(&ws, id, ""), None)?;
    resp.expect_status(204)?;
    ensure!(resp.body.is_empty(), "a 204 has no body\n{}", resp.describe());
    expect_invalid_token(&ctx.gateway("GET", &format!("/projects/{}", ctx.nonce()), &key)?)?;
    Ok(())
}

pub fn rotate_without_grace(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-rotate");
    let (old_key, old) = ctx.create_key(&ws, json!({"name": "rotating key", "preset": "deploy"}))?;
    let old_id = str_field(&old, "id")?;
    let (new_key, new) = ctx.rotate_key(&ws, old_id, json!({}))?;
    let new_id = str_field(&new, "id")?;
    ensure!(new_id != old_id && new_key != old_key, "rotation must make a new key");
    ensure_eq!(new["rotated_from"], json!(old_id), "rotated_from of the new key");
    ensure_eq!(new["name"], json!("rotating key"), "the successor takes the name");
    ensure_eq!(
        str_set(&new["scopes"])?,
        str_set(&old["scopes"])?,
        "scopes carried over"
    );
    ensure_eq!(new["expires_at"], Value::Null, "no expiry in, no expiry out");
    ensure_eq!(new["status"], json!("active"), "status of the new key");

    let old_now = ctx.get_key(&ws, old_id)?;
    ensure_eq!(old_now["superseded_by"], json!(new_id), "superseded_by of the old key");
    ensure_eq!(
        old_now["status"],
        json!("active"),
        "without grace the old key stays active"
    );
    expect_key_works(ctx, &old_key)?;
    expect_key_works(ctx, &new_key)?;
    Ok(())
}

pub fn rotate_with_grace(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-grace");
    let (key_a, a) = ctx.create_key(&ws, json!({"name": "grace seconds", "preset": "sdk", "expires": "90d"}))?;
    let (key_b, b) = ctx.create_key(&ws, json!({"name": "grace until", "preset": "sdk"}))?;
    let (a_id, b_id) = (str_field(&a, "id")?, str_field(&b, "id")?);

    for bad in [
        json!({"grace_seconds": 0}),
        json!({"grace_seconds": 31_536_001}),
        json!({"grace_until": "soon"}),
    ] {
        ctx.admin("POST", &key_path(&ws, a_id, "/rotate"), Some(&bad))?
            .expect_problem(400, None)?;
    }

    // Grace windows of 3 s; the worker's deadlines fall before our clock readings after each answer.
    let (new_a_key, new_a) = ctx.rotate_key(&ws, a_id, json!({"grace_seconds": 3}))?;
    let deadline_a = unix_ms() + 3_000;
    // The old key expired at all: the new one lives as long as the old one was meant to.
    let lifetime = time_field(&a, "expires_at")? - time_field(&a, "created_at")?;
    ensure_near(
        time_field(&new_a, "expires_at")?,
        unix_ms() + lifetime,
        60_000,
        "expires_at of the successor",
    )?;

    let deadline_b = unix_ms() + 3_000;
    let body = json!({"grace_until": rfc3339_ms(deadline_b), "expires": "15d"});
    let (new_b_key, new_b) = ctx.rotate_key(&ws, b_id, body)?;
    ensure_near(
        time_field(&new_b, "expires_at")?,
        unix_ms() + 15 * DAY_MS,
        60_000,
        "expires_at from `expires`",
    )?;

    expect_key_works(ctx, &key_a)?;
    expect_key_works(ctx, &key_b)?;
    let wait_ms = deadline_a.max(deadline_b) + 1_500 - unix_ms();
    sleep(Duration::from_millis(wait_ms.max(0) as u64));
    for (what, key) in [("grace_seconds", &key_a), ("grace_until", &key_b)] {
        let resp = ctx.gateway("GET", &format!("/projects/{}", ctx.nonce()), key)?;
        expect_invalid_token(&resp).context(format_args!("old key after {what}"))?;
    }
    expect_key_works(ctx, &new_a_key)?;
    expect_key_works(ctx, &new_b_key)?;
    Ok(())
}

fn preset_names(ctx: &Ctx, ws: &str) -> Result<Vec<Value>, Failed> {
    let list = ctx
        .admin("GET", &format!("/admin/v1/presets?workspace={ws}"), None)?
        .expect_json(200)?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn find_preset<'a>(items: &'a [Value], name: &str) -> Option<&'a Value> {
    items.iter().find(|p| p["name"] == json!(name))
}

pub fn presets(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-presets");
    let other_ws = ctx.workspace("adm-presets-other");

    let policy_path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/policy.json");
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(policy_path).map_err(|e| format!("cannot read {policy_path}: {e}"))?,
    )
    .map_err(|e| format!("{policy_path} is not JSON: {e}"))?;
    let builtins = policy["presets"]
        .as_object()
        .ok_or("policy.json has no presets object")?;

    let items = preset_names(ctx, &ws)?;
    for (name, def) in builtins {
        let got = find_preset(&items, name).ok_or_else(|| format!("built-in preset {name} not listed: {items:?}"))?;
        ensure_eq!(got["builtin"], json!(true), "builtin flag of {name}");
        ensure_eq!(
            str_set(&got["scopes"])?,
            str_set(&def["scopes"])?,
            "scopes of built-in {name}"
        );
        ensure_eq!(got["description"], def["description"], "description of built-in {name}");
    }

    let body = json!({"name": "ws-reader", "description": "read projects", "scopes": ["projects:viewer"]});
    let created = ctx
        .admin("POST", &format!("/admin/v1/presets?workspace={ws}"), Some(&body))?
        .expect_json(201)?;
    ensure_eq!(created["name"], json!("ws-reader"), "created preset name");
    ensure_eq!(created["builtin"], json!(false), "a workspace preset is not builtin");
    ensure_eq!(
        str_set(&created["scopes"])?,
        set_of(&["projects:viewer"]),
        "created preset scopes"
    );
    ensure!(
        find_preset(&preset_names(ctx, &ws)?, "ws-reader").is_some(),
        "ws-reader not listed in {ws}"
    );
    ensure!(
        find_preset(&preset_names(ctx, &other_ws)?, "ws-reader").is_none(),
        "ws-reader leaked into {other_ws}"
    );

    let (_, k) = ctx.create_key(&ws, json!({"name": "from ws preset", "preset": "ws-reader"}))?;
    ensure_eq!(
        str_set(&k["scopes"])?,
        set_of(&["projects:viewer"]),
        "scopes from a workspace preset"
    );
    let resp = ctx.admin(
        "POST",
        &keys_path(&other_ws),
        Some(&json!({"name": "wrong ws", "preset": "ws-reader"})),
    )?;
    resp.expect_problem(400, None)?;

    let bad = json!({"name": "bad-preset", "scopes": ["nope:viewer"]});
    ctx.admin("POST", &format!("/admin/v1/presets?workspace={ws}"), Some(&bad))?
        .expect_problem(400, None)?;

    ctx.admin("DELETE", &format!("/admin/v1/presets/sdk?workspace={ws}"), None)?
        .expect_problem(409, None)?;
    ctx.admin("DELETE", &format!("/admin/v1/presets/ws-reader?workspace={ws}"), None)?
        .expect_status(204)?;
    ensure!(
        find_preset(&preset_names(ctx, &ws)?, "ws-reader").is_none(),
        "ws-reader still listed after DELETE"
    );
    let resp = ctx.admin(
        "POST",
        &keys_path(&ws),
        Some(&json!({"name": "deleted preset", "preset": "ws-reader"})),
    )?;
    resp.expect_problem(400, None)?;
    Ok(())
}

/// Whether `needle` occurs in `hay` in order (not necessarily adjacent).
fn is_subsequence(needle: &[&str], hay: &[String]) -> bool {
    let mut hay = hay.iter();
    needle.iter().all(|n| hay.any(|h| h == n))
}

pub fn audit_log(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-audit");
    let (_, a) = ctx.create_key(&ws, json!({"name": "audited", "preset": "sdk"}))?;
    let a_id = str_field(&a, "id")?;
    ctx.admin("PATCH", &key_path(&ws, a_id, ""), Some(&json!({"description": "x"})))?
        .expect_status(200)?;
    let (_, b) = ctx.rotate_key(&ws, a_id, json!({}))?;
    let b_id = str_field(&b, "id")?;
    ctx.revoke_key(&ws, b_id)?;
    ctx.delete_key(&ws, a_id)?;
    let preset = json!({"name": "audit-preset", "scopes": ["projects:viewer"]});
    ctx.admin("POST", &format!("/admin/v1/presets?workspace={ws}"), Some(&preset))?
        .expect_status(201)?;
    ctx.admin(
        "DELETE",
        &format!("/admin/v1/presets/audit-preset?workspace={ws}"),
        None,
    )?
    .expect_status(204)?;
    ctx.admin("POST", &format!("/admin/v1/reconcile?workspace={ws}"), None)?
        .expect_status(200)?;
    let (admin_key, admin_obj) = ctx.create_key(
        &ws,
        json!({"name": "audit admin", "scopes": ["keys:admin", "projects:viewer"]}),
    )?;
    let (_, child) = ctx.create_key_as(
        &admin_key,
        "/admin/v1/keys",
        json!({"name": "by a key", "scopes": ["projects:viewer"]}),
    )?;

    let audit_path = format!("/admin/v1/audit?workspace={ws}");
    let items = list_all(ctx, &audit_path, 50)?;
    for item in &items {
        for field in ["id", "at", "actor", "action", "key_id", "detail"] {
            ensure!(item.get(field).is_some(), "audit item without `{field}`: {item}");
        }
        time_field(item, "at")?;
    }
    let actions: Vec<String> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected_newest_first = [
        "key.create", // by the admin key
        "key.create", // the admin key
        "reconcile",
        "preset.delete",
        "preset.create",
        "key.delete",
        "key.revoke",
        "key.rotate",
        "key.update",
        "key.create",
    ];
    ensure!(
        is_subsequence(&expected_newest_first, &actions),
        "audit actions (newest first): {actions:?}"
    );
    let ats: Vec<i64> = items
        .iter()
        .filter_map(|i| parse_rfc3339_ms(i["at"].as_str()?))
        .collect();
    ensure!(ats.windows(2).all(|w| w[0] >= w[1]), "audit not newest first: {ats:?}");

    let by_key = items
        .iter()
        .find(|i| i["action"] == json!("key.create") && i["key_id"] == child["id"]);
    let by_key = by_key.ok_or_else(|| format!("no key.create for {} in {items:?}", child["id"]))?;
    ensure_eq!(
        by_key["actor"],
        json!(format!("key:{}", admin_obj["id"].as_str().unwrap_or_default())),
        "actor"
    );
    let first = items
        .iter()
        .find(|i| i["action"] == json!("key.create") && i["key_id"] == json!(a_id));
    ensure_eq!(
        first.map(|i| &i["actor"]),
        Some(&json!("root")),
        "actor of root's key.create of {a_id}"
    );

    let paged = list_all(ctx, &audit_path, 3)?;
    ensure_eq!(ids(&paged), ids(&items), "audit ids over pages of 3 vs one page");
    Ok(())
}

pub fn reconcile(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-reconcile");
    let mut keys = Vec::new();
    for i in 1..=3 {
        keys.push(ctx.create_key(&ws, json!({"name": format!("reconciled {i}"), "preset": "sdk"}))?);
    }
    ctx.revoke_key(&ws, str_field(&keys[2].1, "id")?)?;

    let out = ctx
        .admin("POST", &format!("/admin/v1/reconcile?workspace={ws}"), None)?
        .expect_json(200)?;
    // Every admin write already left the edge as the record says: nothing to write, nothing failed.
    ensure_eq!(out["written"], json!(0), "written: {out}");
    ensure_eq!(
        out["unchanged"],
        json!(3),
        "unchanged = every key of the workspace: {out}"
    );
    ensure_eq!(out["failed"], json!([]), "failed: {out}");
    ensure_eq!(out["next_cursor"], Value::Null, "one call covers 3 keys: {out}");

    expect_key_works(ctx, &keys[0].0)?;
    expect_key_works(ctx, &keys[1].0)?;
    let resp = ctx.gateway("GET", &format!("/projects/{}", ctx.nonce()), &keys[2].0)?;
    expect_invalid_token(&resp).context("reconcile resurrected a revoked key")?;
    Ok(())
}

pub fn bad_input(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("adm-input");
    let path = keys_path(&ws);
    let auth = bearer(&ctx.admin_token);
    let raw = |ctype: &str, body: &[u8]| {
        ctx.request(
            "POST",
            &path,
            &[("authorization", auth.as_str()), ("content-type", ctype)],
            Body::Bytes(body),
        )
    };
    let post = |body: Value| ctx.admin("POST", &path, Some(&body));

    raw("application/json", br#"{"name": "#)?.expect_problem(400, None)?;
    raw("application/json", b"[]")?.expect_problem(400, None)?;
    raw("text/plain", br#"{"name": "plain text", "preset": "sdk"}"#)?.expect_problem(415, None)?;
    let big = json!({"name": "big body", "preset": "sdk", "description": "x".repeat(17 * 1024)});
    post(big)?.expect_problem(413, Some("payload-too-large"))?;

    let unknown = post(json!({"name": "unknown field", "preset": "sdk", "colour": "red"}))?;
    let problem = unknown.expect_problem(400, Some("invalid-body"))?;
    let errors = problem["errors"]
        .as_array()
        .ok_or_else(|| format!("no errors array in {problem}"))?;
    ensure!(
        errors
            .iter()
            .any(|e| e["field"].as_str().is_some_and(|f| f.contains("colour")) && e["message"].is_string()),
        "errors should name the field colour with a message: {problem}"
    );

    let past = rfc3339_ms(unix_ms() - 60_000);
    let bad_bodies = [
        ("name too short", json!({"name": "ab", "preset": "sdk"})),
        ("name too long", json!({"name": "n".repeat(51), "preset": "sdk"})),
        ("name blank after trim", json!({"name": "     ", "preset": "sdk"})),
        (
            "name with a control character",
            json!({"name": "bad\u{7}name", "preset": "sdk"}),
        ),
        ("name missing", json!({"preset": "sdk"})),
        (
            "unknown resource",
            json!({"name": "bad scope 1", "scopes": ["nope:viewer"]}),
        ),
        (
            "unknown permission",
            json!({"name": "bad scope 2", "scopes": ["projects:nope"]}),
        ),
        (
            "scope without permission",
            json!({"name": "bad scope 3", "scopes": ["projects"]}),
        ),
        ("scope not a string", json!({"name": "bad scope 4", "scopes": [42]})),
        (
            "unknown preset",
            json!({"name": "bad preset", "preset": "no-such-preset"}),
        ),
        ("no scopes at all", json!({"name": "no scopes"})),
        ("empty scopes", json!({"name": "empty scopes", "scopes": []})),
        (
            "expires 7d",
            json!({"name": "bad expires 1", "preset": "sdk", "expires": "7d"}),
        ),
        (
            "expires in the past",
            json!({"name": "bad expires 2", "preset": "sdk", "expires": past}),
        ),
        (
            "expires a number",
            json!({"name": "bad expires 3", "preset": "sdk", "expires": 42}),
        ),
        (
            "metadata > 1024 bytes",
            json!({"name": "big meta", "preset": "sdk", "metadata": {"m": "x".repeat(1100)}}),
        ),
        (
            "metadata not an object",
            json!({"name": "list meta", "preset": "sdk", "metadata": [1]}),
        ),
    ];
    for (what, body) in bad_bodies {
        post(body)?.expect_problem(400, None).context(what)?;
    }

    // Boundaries that must pass, and the name conflict.
    let mut created = BTreeSet::new();
    for name in ["abc".to_owned(), "n".repeat(50), "dupe name".to_owned()] {
        let (_, k) = ctx.create_key(&ws, json!({"name": name, "preset": "sdk"}))?;
        created.insert(str_field(&k, "id")?.to_owned());
    }
    post(json!({"name": "dupe name", "preset": "sdk"}))?.expect_problem(409, Some("name-conflict"))?;

    // Workspace ids.
    for bad_ws in ["Bad!", "a", "-leading-dash"] {
        let resp = ctx.admin(
            "POST",
            &keys_path(bad_ws),
            Some(&json!({"name": "bad ws", "preset": "sdk"})),
        )?;
        resp.expect_problem(400, None)
            .context(format_args!("workspace {bad_ws:?}"))?;
    }

    // PATCH validates like create.
    let some_id = created.iter().next().cloned().unwrap_or_default();
    let resp = ctx.admin("PATCH", &key_path(&ws, &some_id, ""), Some(&json!({"colour": "red"})))?;
    resp.expect_problem(400, Some("invalid-body"))?;
    let resp = ctx.admin(
        "PATCH",
        &key_path(&ws, &some_id, ""),
        Some(&json!({"scopes": ["nope:viewer"]})),
    )?;
    resp.expect_problem(400, None)?;

    // Nothing half-written: only the three good keys exist.
    let listed: BTreeSet<String> = ids(&list_all(ctx, &path, 100)?).into_iter().collect();
    ensure_eq!(listed, created, "keys in {ws} after the bad requests");
    Ok(())
}

pub fn last_used_at_recorded(ctx: &Ctx) -> TestResult {
    // The worker runs with the default LAST_USED_INTERVAL_S (60): a single use with no traffic
    // after it must still be written, by the isolate's timer, within the interval.
    let ws = ctx.workspace("adm-used");
    let (key, obj) = ctx.create_key(&ws, json!({"name": "used key", "preset": "sdk"}))?;
    let id = str_field(&obj, "id")?.to_owned();
    let (other, other_obj) = ctx.create_key(&ws, json!({"name": "other key", "preset": "sdk"}))?;
    let other_id = str_field(&other_obj, "id")?.to_owned();
    let before = unix_ms();
    expect_key_works(ctx, &key)?;
    let after = unix_ms();
    sleep(Duration::from_millis(1500));
    // Another key's request later must not lend its time to the first key.
    expect_key_works(ctx, &other)?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60 + 10);
    let mut used = None;
    while used.is_none() {
        let now = ctx.get_key(&ws, &id)?;
        if now["last_used_at"].is_string() {
            used = Some(time_field(&now, "last_used_at")?);
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "last_used_at still null {} s after a single use",
            70
        );
        sleep(Duration::from_millis(500));
    }
    let used = used.unwrap_or_default();
    eprintln!(
        "e2e: last_used_at written {:.1} s after the use",
        started.elapsed().as_secs_f64() + 1.5
    );
    ensure!(
        used >= before - 1 && used <= after + 1,
        "last_used_at {used} is not the time of the use ({before}..{after})"
    );
    let o = ctx.get_key(&ws, &other_id)?;
    if o["last_used_at"].is_string() {
        ensure!(
            time_field(&o, "last_used_at")? > after,
            "the other key's time is its own use"
        );
    }
    Ok(())
}
