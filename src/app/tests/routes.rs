//! Every admin route, the verify API and the gateway decision, natively.

use serde_json::json;

use super::*;
use crate::app::gateway::{self, Prepared};
use crate::app::lookup;
use crate::core::model::Status;
use crate::core::time::{format_rfc3339, DAY};
use crate::http::head::Head;

pub(super) fn verify(w: &World, key: &str, scopes: &[&str]) -> Value {
    let r = w.call(
        Request::new("POST", "https://kw.test/v1/keys/verify")
            .with_header("content-type", "application/json")
            .with_body(json!({"key": key, "scopes": scopes}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json_body()
}

/// The gateway's answer for a request: Ok(identity header value) or the problem slug + status.
pub(super) fn gateway(w: &World, method: &str, path: &str, auth: Option<&str>) -> Result<String, (u16, String)> {
    let head = match auth {
        Some(a) => Head::new(format!("{method}\nhttps://kw.test{path}\n192.0.2.1\n{a}")),
        None => Head::new(format!("{method}\nhttps://kw.test{path}\n192.0.2.1")),
    };
    let res = block_on(async {
        match gateway::prepare(&w.st.policy, &w.st.config.keys, &head)? {
            Prepared::Public(_) => Ok(String::new()),
            Prepared::Keyed(hash, route) => {
                crate::app::follow::catch_up(&w.st, &w.feed, w.now()).await;
                let entry = lookup::entry(&w.st, &w.edge, &hash, w.now()).await?;
                gateway::authorize(route, entry, w.now()).map(|e| e.identity.to_string())
            }
        }
    });
    res.map_err(|e: crate::http::problem::ApiError| {
        let r = Response::problem(&e, "keyward");
        (r.status, problem_type(&r))
    })
}

#[test]
fn create_get_list_and_the_secret_only_once() {
    let w = World::new();
    let (id, secret) = w.create_key("ci deploy", &["projects:viewer"]);
    let got = w.admin("GET", &format!("/admin/v1/keys/{id}"), None);
    assert_eq!(got.status, 200);
    let v = got.json_body();
    assert_eq!(v["status"], "active");
    assert_eq!(v["name"], "ci deploy");
    assert!(v.get("key").is_none());
    assert!(!got.body.contains(&secret));
    assert_eq!(
        v["preview"].as_str().unwrap(),
        format!("kw_live_...{}", &secret[secret.len() - 4..])
    );
    for i in 0..5 {
        w.advance(1);
        w.create_key(&format!("key {i}"), &["events:write"]);
    }
    let page = w.admin("GET", "/admin/v1/keys?limit=4", None).json_body();
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    assert_eq!(page["items"][0]["name"], "key 4", "newest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = w
        .admin("GET", &format!("/admin/v1/keys?limit=4&cursor={cursor}"), None)
        .json_body();
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    assert_eq!(
        gateway(&w, "GET", "/projects/1", Some(&format!("Bearer {secret}")))
            .unwrap()
            .lines()
            .nth(2),
        Some("projects:viewer")
    );
}

#[test]
fn revoke_is_immediate_permanent_and_frees_the_name() {
    let w = World::new();
    let (id, secret) = w.create_key("svc", &["projects:viewer"]);
    let auth = format!("Bearer {secret}");
    assert!(gateway(&w, "GET", "/projects/1", Some(&auth)).is_ok());
    let r = w.admin("POST", &format!("/admin/v1/keys/{id}/revoke"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json_body()["status"], "revoked");
    assert_eq!(
        gateway(&w, "GET", "/projects/1", Some(&auth)),
        Err((401, "invalid-token".into()))
    );
    assert_eq!(verify(&w, &secret, &[])["code"], "NOT_FOUND");
    // Permanent: no edit, rotation or reconcile brings it back; a second revoke is idempotent.
    let patch = w.admin(
        "PATCH",
        &format!("/admin/v1/keys/{id}"),
        Some(json!({"description": "x"})),
    );
    assert_eq!((patch.status, problem_type(&patch)), (409, "key-revoked".into()));
    let rot = w.admin("POST", &format!("/admin/v1/keys/{id}/rotate"), None);
    assert_eq!(rot.status, 409);
    assert_eq!(
        w.admin("POST", &format!("/admin/v1/keys/{id}/revoke"), None).status,
        200
    );
    assert_eq!(w.admin("POST", "/admin/v1/reconcile", None).status, 200);
    assert_eq!(
        gateway(&w, "GET", "/projects/1", Some(&auth)),
        Err((401, "invalid-token".into()))
    );
    // Names are unique among current keys only: a revoked key hands its name on.
    let (_, _) = w.create_key("svc", &["projects:viewer"]);
}

#[test]
fn delete_leaves_a_tombstone_and_answers_404_after() {
    let w = World::new();
    let (id, secret) = w.create_key("svc", &["projects:viewer"]);
    assert_eq!(w.admin("DELETE", &format!("/admin/v1/keys/{id}"), None).status, 204);
    assert_eq!(w.admin("GET", &format!("/admin/v1/keys/{id}"), None).status, 404);
    assert_eq!(w.admin("DELETE", &format!("/admin/v1/keys/{id}"), None).status, 404);
    assert_eq!(w.key(&id).status, Status::Deleted);
    assert!(w.edge.record(&hash_of(&secret)).is_some_and(|r| r.is_tombstone()));
    assert_eq!(
        w.admin("GET", "/admin/v1/keys", None).json_body()["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn patch_narrows_and_widens_at_the_edge() {
    let w = World::new();
    let (id, secret) = w.create_key("svc", &["projects:editor", "deploy:trigger"]);
    let auth = format!("Bearer {secret}");
    let r = w.admin(
        "PATCH",
        &format!("/admin/v1/keys/{id}"),
        Some(json!({"scopes": ["projects:viewer"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gateway(&w, "POST", "/deploy", Some(&auth)).unwrap_err().0, 403);
    assert!(gateway(&w, "GET", "/projects/1", Some(&auth)).is_ok());
    assert_eq!(w.key(&id).version, 2);
    let audit = w.admin("GET", "/admin/v1/audit", None).json_body();
    assert_eq!(audit["items"][0]["action"], "key.update");
    let empty = w.admin("PATCH", &format!("/admin/v1/keys/{id}"), Some(json!({})));
    assert_eq!(empty.status, 400);
}

#[test]
fn expiry_past_2038_is_stored_and_enforced_from_the_record() {
    let w = World::new();
    let r = w.admin(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "long lived", "scopes": ["projects:viewer"], "expires": "2099-01-01T00:00:00Z"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.json_body()["key"].as_str().unwrap().to_owned();
    let rec = w.edge.record(&hash_of(&secret)).unwrap();
    assert_eq!(
        rec.kv_expiration(w.now()),
        None,
        "no KV expiration beyond what workerd accepts"
    );
    assert!(gateway(&w, "GET", "/projects/1", Some(&format!("Bearer {secret}"))).is_ok());
}

#[test]
fn an_expired_key_cannot_be_brought_back() {
    let w = World::new();
    let r = w.admin(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "short", "scopes": ["projects:viewer"], "expires": "15d"})),
    );
    let id = r.json_body()["id"].as_str().unwrap().to_owned();
    w.advance(16 * DAY);
    assert_eq!(
        w.admin("GET", &format!("/admin/v1/keys/{id}"), None).json_body()["status"],
        "expired"
    );
    let p = w.admin("PATCH", &format!("/admin/v1/keys/{id}"), Some(json!({"expires": "1y"})));
    assert_eq!((p.status, problem_type(&p)), (409, "key-expired".into()));
    let p = w.admin("PATCH", &format!("/admin/v1/keys/{id}"), Some(json!({"expires": null})));
    assert_eq!(p.status, 409);
}

#[test]
fn rotation_with_grace_keeps_both_expiries_visible_and_patch_cannot_undo_the_cut() {
    let w = World::new();
    let r = w.admin(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "rot", "scopes": ["projects:viewer"], "expires": "90d"})),
    );
    let old = r.json_body();
    let id = old["id"].as_str().unwrap().to_owned();
    let old_secret = old["key"].as_str().unwrap().to_owned();
    let rot = w.admin(
        "POST",
        &format!("/admin/v1/keys/{id}/rotate"),
        Some(json!({"grace_seconds": 3600})),
    );
    assert_eq!(rot.status, 201, "{}", rot.body);
    assert_eq!(rot.header("cache-control"), Some("no-store"));
    let new = rot.json_body();
    let new_secret = new["key"].as_str().unwrap().to_owned();
    assert_eq!(new["rotated_from"], id.as_str());
    let o = w.admin("GET", &format!("/admin/v1/keys/{id}"), None).json_body();
    assert_eq!(
        o["expires_at"], old["expires_at"],
        "the old key's own expiry stays visible"
    );
    assert_eq!(o["grace_until"], format_rfc3339(T0 + 3_600_000));
    assert_eq!(o["valid_until"], format_rfc3339(T0 + 3_600_000));
    let p = w.admin("PATCH", &format!("/admin/v1/keys/{id}"), Some(json!({"expires": "1y"})));
    assert_eq!(p.status, 200);
    assert_eq!(
        p.json_body()["valid_until"],
        format_rfc3339(T0 + 3_600_000),
        "grace still cuts"
    );
    w.advance(3_600_000);
    assert_eq!(
        gateway(&w, "GET", "/projects/1", Some(&format!("Bearer {old_secret}")))
            .unwrap_err()
            .0,
        401
    );
    assert!(gateway(&w, "GET", "/projects/1", Some(&format!("Bearer {new_secret}"))).is_ok());
    let again = w.admin("POST", &format!("/admin/v1/keys/{id}/rotate"), None);
    assert_eq!(problem_type(&again), "already-rotated");
}

#[test]
fn a_workspace_admin_key_cannot_act_above_itself() {
    let w = World::new();
    let (_, admin) = w.create_key("ws admin", &["keys:admin", "projects:editor"]);
    let (big, _) = w.create_key("big", &["*"]);
    let (small, _) = w.create_key("small", &["projects:viewer"]);
    let call = |m: &str, p: &str, b: Option<Value>| w.call(admin_req(m, p, b, &admin));
    for (m, p, b) in [
        ("POST", format!("/admin/v1/keys/{big}/revoke"), None),
        ("DELETE", format!("/admin/v1/keys/{big}"), None),
        ("POST", format!("/admin/v1/keys/{big}/rotate"), None),
        (
            "PATCH",
            format!("/admin/v1/keys/{big}"),
            Some(json!({"scopes": ["projects:viewer"]})),
        ),
    ] {
        let r = call(m, &p, b);
        assert_eq!((r.status, problem_type(&r)), (403, "outranked".into()), "{m} {p}");
    }
    assert_eq!(w.key(&big).status, Status::Active);
    let esc = call(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "esc", "scopes": ["deploy:trigger"]})),
    );
    assert_eq!((esc.status, problem_type(&esc)), (403, "scope-escalation".into()));
    assert_eq!(
        call(
            "PATCH",
            &format!("/admin/v1/keys/{small}"),
            Some(json!({"scopes": ["projects:editor"]}))
        )
        .status,
        200
    );
    let other = w.call(admin_req("GET", "/admin/v1/keys?workspace=other", None, &admin));
    assert_eq!(
        (other.status, problem_type(&other)),
        (403, "workspace-forbidden".into())
    );
}

#[test]
fn an_expiring_admin_key_cannot_extend_life() {
    let w = World::new();
    let r = w.admin(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "temp admin", "scopes": ["keys:admin", "projects:viewer"], "expires": "15d"})),
    );
    let v = r.json_body();
    let (id, admin) = (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    );
    let call = |m: &str, p: &str, b: Option<Value>| w.call(admin_req(m, p, b, &admin));
    let own = call("PATCH", &format!("/admin/v1/keys/{id}"), Some(json!({"expires": null})));
    assert_eq!((own.status, problem_type(&own)), (403, "expiry-beyond-caller".into()));
    let longer = call(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "key x1", "scopes": ["projects:viewer"], "expires": "90d"})),
    );
    assert_eq!(longer.status, 403);
    let forever = call(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "key x2", "scopes": ["projects:viewer"]})),
    );
    assert_eq!(forever.status, 403);
    let ok = call(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "key x3", "scopes": ["projects:viewer"], "expires": "15d"})),
    );
    assert_eq!(ok.status, 201, "{}", ok.body);
}

#[test]
fn presets_audit_and_bad_input() {
    let w = World::new();
    let p = w.admin(
        "POST",
        "/admin/v1/presets",
        Some(json!({"name": "ci", "scopes": ["deploy:trigger"]})),
    );
    assert_eq!(p.status, 201, "{}", p.body);
    assert_eq!(
        w.admin(
            "POST",
            "/admin/v1/presets",
            Some(json!({"name": "ci", "scopes": ["deploy:trigger"]}))
        )
        .status,
        409
    );
    let k = w.admin(
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "from preset", "preset": "ci"})),
    );
    assert_eq!(k.json_body()["scopes"], json!(["deploy:trigger"]));
    assert_eq!(w.admin("DELETE", "/admin/v1/presets/ci", None).status, 204);
    assert_eq!(w.admin("DELETE", "/admin/v1/presets/ci", None).status, 404);
    assert_eq!(w.admin("DELETE", "/admin/v1/presets/sdk", None).status, 409);
    let actions: Vec<String> = w.admin("GET", "/admin/v1/audit", None).json_body()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["preset.delete", "key.create", "preset.create"]);
    for (body, field) in [
        (json!({"name": "a", "scopes": ["projects:viewer"]}), "name"),
        (
            json!({"name": "evil\u{202e}name", "scopes": ["projects:viewer"]}),
            "name",
        ),
        (json!({"name": "okay", "scopes": ["billing:viewer"]}), "scopes"),
        (json!({"name": "okay", "scopes": []}), "scopes"),
        (
            json!({"name": "okay", "scopes": ["projects:viewer"], "expires": "30d"}),
            "expires",
        ),
        (
            json!({"name": "okay", "scopes": ["projects:viewer"], "colour": 1}),
            "colour",
        ),
    ] {
        let r = w.admin("POST", "/admin/v1/keys", Some(body.clone()));
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json_body()["errors"][0]["field"], field, "{body}");
    }
    let arr = w.call(
        Request::new("POST", "https://kw.test/admin/v1/keys?workspace=acme")
            .with_header("authorization", "Bearer root-token")
            .with_body("[\"x\"]"),
    );
    assert_eq!(arr.status, 400);
}

#[test]
fn admin_auth_answers() {
    let w = World::new();
    let none = w.call(Request::new("GET", "https://kw.test/admin/v1/keys?workspace=acme"));
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer realm=\"keyward\""));
    let bad = w.call(admin_req("GET", "/admin/v1/keys", None, "not-the-token"));
    assert_eq!(problem_type(&bad), "invalid-token");
    let (_, plain) = w.create_key("plain", &["projects:viewer"]);
    let r = w.call(admin_req("GET", "/admin/v1/keys", None, &plain));
    assert_eq!((r.status, problem_type(&r)), (403, "insufficient-scope".into()));
    assert_eq!(w.admin("PUT", "/admin/v1/keys", None).status, 405);
    assert_eq!(w.admin("GET", "/admin/v1/nothing", None).status, 404);
}

#[test]
fn the_admin_page_needs_no_token_and_opens_nothing_else() {
    let w = World::new();
    for path in [
        "/admin/",
        "/admin/admin.js",
        "/admin/admin.css",
        "/admin/?workspace=acme",
    ] {
        let r = w.call(Request::new("GET", &format!("https://kw.test{path}")));
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-security-policy").is_some(), "{path}");
    }
    for path in ["/admin/index.html", "/admin/admin.js/", "/admin/v1/", "/admin/v1/keys"] {
        let r = w.call(Request::new("GET", &format!("https://kw.test{path}")));
        assert_eq!(
            (r.status, problem_type(&r)),
            (401, "missing-credentials".into()),
            "{path}"
        );
    }
}

#[test]
fn verify_api_answers() {
    let w = World::new();
    let (_, secret) = w.create_key("svc", &["projects:editor"]);
    let ok = verify(&w, &secret, &["projects:viewer"]);
    assert_eq!((ok["valid"].clone(), ok["code"].clone()), (json!(true), json!("VALID")));
    let miss = verify(&w, &secret, &["deploy:trigger"]);
    assert_eq!(miss["code"], "INSUFFICIENT_SCOPE");
    assert_eq!(miss["missing"], json!(["deploy:trigger"]));
    assert_eq!(verify(&w, "kw_live_garbage", &[])["code"], "NOT_FOUND");
    let arr = w.call(Request::new("POST", "https://kw.test/v1/keys/verify").with_body(format!("[\"{secret}\"]")));
    assert_eq!(arr.status, 400, "an array is not the documented object");
    let get = w.call(Request::new("GET", "https://kw.test/v1/keys/verify"));
    assert_eq!(get.status, 405);
}

#[test]
fn gateway_decisions() {
    let w = World::new();
    let (_, secret) = w.create_key("svc", &["projects:viewer"]);
    let auth = format!("Bearer {secret}");
    assert_eq!(
        gateway(&w, "GET", "/projects/1", None),
        Err((401, "missing-credentials".into()))
    );
    assert_eq!(
        gateway(&w, "GET", "/projects/1", Some("Bearer kw_live_x")),
        Err((401, "invalid-token".into()))
    );
    assert_eq!(
        gateway(&w, "DELETE", "/projects/1", Some(&auth)),
        Err((403, "insufficient-scope".into()))
    );
    assert_eq!(
        gateway(&w, "GET", "/nowhere", Some(&auth)),
        Err((404, "no-route".into()))
    );
    assert_eq!(
        gateway(&w, "GET", "/projects/1?access_token=x", Some(&auth))
            .unwrap_err()
            .0,
        400
    );
    let id = gateway(&w, "GET", "/projects/1", Some(&auth)).unwrap();
    assert!(
        id.starts_with("key_") && id.ends_with("\nacme\nprojects:viewer\nlive\n"),
        "{id:?}"
    );
}

#[test]
fn reconcile_repairs_the_edge_and_reports_what_it_could_not() {
    let w = World::new();
    let (a, sa) = w.create_key("a key", &["projects:viewer"]);
    let (_, sb) = w.create_key("b key", &["projects:viewer"]);
    // Someone wiped one edge record and made another one broader than its record.
    block_on(crate::store::Edge::delete(&w.edge, &hash_of(&sa))).unwrap();
    let mut wide = w.edge.record(&hash_of(&sb)).unwrap();
    wide.scopes = vec!["*".into()];
    block_on(crate::store::Edge::put(&w.edge, &hash_of(&sb), &wide, w.now())).unwrap();
    let r = w.admin("POST", "/admin/v1/reconcile", None).json_body();
    assert_eq!(r["written"], 2);
    w.assert_consistent("after reconcile");
    // A failing edge write is skipped and reported; the page still finishes.
    block_on(crate::store::Edge::delete(&w.edge, &hash_of(&sa))).unwrap();
    w.faults.fail_call(2, crate::store::memory::FaultMode::Before);
    let r = w.admin("POST", "/admin/v1/reconcile", None);
    assert_eq!(r.status, 200);
    let v = r.json_body();
    assert_eq!(v["failed"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["next_cursor"].is_null());
    let _ = a;
}

#[test]
fn deactivate_and_reactivate() {
    let w = World::new();
    let (id, secret) = w.create_key("svc", &["projects:viewer"]);
    let auth = format!("Bearer {secret}");
    let r = w.admin("POST", &format!("/admin/v1/keys/{id}/deactivate"), None);
    assert_eq!((r.status, r.json_body()["status"].clone()), (200, json!("disabled")));
    assert_eq!(
        gateway(&w, "GET", "/projects/1", Some(&auth)),
        Err((401, "invalid-token".into())),
        "like an unknown key"
    );
    assert_eq!(verify(&w, &secret, &[])["code"], "NOT_FOUND");
    let listed = w.admin("GET", "/admin/v1/keys?status=disabled", None).json_body();
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert_eq!(
        w.admin("POST", &format!("/admin/v1/keys/{id}/deactivate"), None).status,
        200,
        "idempotent"
    );
    let r = w.admin("POST", &format!("/admin/v1/keys/{id}/reactivate"), None);
    assert_eq!((r.status, r.json_body()["status"].clone()), (200, json!("active")));
    assert!(gateway(&w, "GET", "/projects/1", Some(&auth)).is_ok());
    let actions: Vec<String> = w.admin("GET", "/admin/v1/audit", None).json_body()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(&actions[..2], ["key.reactivate", "key.deactivate"]);
    // Revoke stays permanent: a revoked key cannot be reactivated.
    w.admin("POST", &format!("/admin/v1/keys/{id}/revoke"), None);
    let r = w.admin("POST", &format!("/admin/v1/keys/{id}/reactivate"), None);
    assert_eq!((r.status, problem_type(&r)), (409, "key-revoked".into()));
    assert_eq!(gateway(&w, "GET", "/projects/1", Some(&auth)).unwrap_err().0, 401);
}

#[test]
fn active_and_expired_lists_read_a_bounded_window_and_lead_on() {
    use crate::store::{AuditEntry, Records, LIST_SCAN};
    let w = World::new();
    let (id, _) = w.create_key("template", &["events:write"]);
    let template = w.key(&id);
    let insert = |k: &Key| {
        let audit = AuditEntry {
            at: k.created_at,
            workspace: k.workspace.clone(),
            actor: "root".into(),
            action: "key.create".into(),
            key_id: Some(k.id.clone()),
            detail: json!({}),
        };
        block_on(w.records.insert_key(k, &audit)).unwrap();
    };
    let clone = |i: u32, created_at: Millis, expires_at: Option<Millis>| Key {
        id: format!("key_{i:024x}"),
        name: format!("bulk {i}"),
        hash: KeyHash::from_hex(&format!("{i:064x}")).unwrap(),
        created_at,
        expires_at,
        ..template.clone()
    };
    // The oldest key is the only expired one; more than a window of live keys are newer.
    insert(&clone(0, T0 - DAY, Some(w.now() - 1)));
    for i in 1..=LIST_SCAN {
        insert(&clone(i, w.now() + Millis::from(i), None));
    }
    let first = w
        .admin("GET", "/admin/v1/keys?status=expired&limit=10", None)
        .json_body();
    assert_eq!(first["items"], json!([]), "the first window holds no expired key");
    let cursor = first["next_cursor"].as_str().expect("a cursor after a short page");
    let next = w
        .admin(
            "GET",
            &format!("/admin/v1/keys?status=expired&limit=10&cursor={cursor}"),
            None,
        )
        .json_body();
    assert_eq!(next["items"][0]["name"], "bulk 0");
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
    assert!(next["next_cursor"].is_null());
    let active = w
        .admin("GET", "/admin/v1/keys?status=active&limit=100", None)
        .json_body();
    assert_eq!(
        active["items"].as_array().unwrap().len(),
        100,
        "live keys fill the page"
    );
    assert!(active["next_cursor"].is_string());
}
