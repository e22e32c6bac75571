//! docs/api.md section 2: `POST /v1/keys/verify`.

use serde_json::json;

use super::typo_of;
use crate::client::{set_of, str_field, str_set, Body, Context, Ctx};
use crate::TestResult;

pub fn valid_and_insufficient_scope(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("verify");
    let body = json!({
        "name": "verify me",
        "scopes": ["projects:viewer", "events:write"],
        "metadata": {"team": "core"},
        "expires": "90d",
    });
    let (key, obj) = ctx.create_key(&ws, body)?;
    let id = str_field(&obj, "id")?;
    let scopes = set_of(&["projects:viewer", "events:write"]);

    let v = ctx.verify(&json!({"key": key}))?.expect_json(200)?;
    ensure_eq!(v["valid"], json!(true), "valid in {v}");
    ensure_eq!(v["code"], json!("VALID"), "code in {v}");
    ensure_eq!(v["key_id"], json!(id), "key_id in {v}");
    ensure_eq!(v["workspace"], json!(ws), "workspace in {v}");
    ensure_eq!(v["name"], json!("verify me"), "name in {v}");
    ensure_eq!(str_set(&v["scopes"])?, scopes, "scopes in {v}");
    ensure_eq!(
        v["expires_at"],
        obj["expires_at"],
        "expires_at in {v} vs the key object"
    );
    ensure!(v["expires_at"].is_string(), "a 90d key has an expires_at string: {v}");
    ensure_eq!(v["meta"], json!({"team": "core"}), "meta in {v}");

    let v = ctx
        .verify(&json!({"key": key, "scopes": ["projects:viewer"]}))?
        .expect_json(200)?;
    ensure_eq!(
        (&v["valid"], &v["code"]),
        (&json!(true), &json!("VALID")),
        "verify with a held scope: {v}"
    );

    let v = ctx
        .verify(&json!({"key": key, "scopes": ["projects:viewer", "deploy:trigger"]}))?
        .expect_json(200)?;
    ensure_eq!(v["valid"], json!(false), "valid with a missing scope: {v}");
    ensure_eq!(v["code"], json!("INSUFFICIENT_SCOPE"), "code with a missing scope: {v}");
    ensure_eq!(str_set(&v["missing"])?, set_of(&["deploy:trigger"]), "missing in {v}");
    ensure_eq!(v["key_id"], json!(id), "key_id with a missing scope: {v}");

    let at_origin = ctx.origin.requests_to("/v1/keys/verify");
    ensure!(
        at_origin.is_empty(),
        "verify requests must not reach the origin: {at_origin:?}"
    );
    Ok(())
}

pub fn not_found_variants(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("verify-nf");
    let (good, revoked, deleted) = ctx.good_revoked_deleted(&ws)?;

    let cases = [
        ("malformed", json!({"key": "not-a-keyward-key"})),
        ("bad checksum", json!({"key": typo_of(&good)})),
        ("unknown (deleted)", json!({"key": deleted})),
        ("revoked", json!({"key": revoked})),
        (
            "revoked, with scopes",
            json!({"key": revoked, "scopes": ["projects:viewer"]}),
        ),
    ];
    for (what, body) in cases {
        let v = ctx.verify(&body)?.expect_json(200)?;
        ensure_eq!(
            v,
            json!({"valid": false, "code": "NOT_FOUND"}),
            "verify of a {what} key"
        );
    }
    Ok(())
}

pub fn bad_requests_400(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("verify-400");
    let (key, _) = ctx.create_key(&ws, json!({"name": "some key", "preset": "sdk"}))?;
    let bodies = [
        ("bad JSON", "{\"key\": ".to_owned()),
        ("not an object", "[]".to_owned()),
        ("unknown field", json!({"key": key, "extra": 1}).to_string()),
        ("missing key", json!({"scopes": ["projects:viewer"]}).to_string()),
        ("key not a string", json!({"key": 42}).to_string()),
        (
            "scopes not a list",
            json!({"key": key, "scopes": "projects:viewer"}).to_string(),
        ),
        (
            "unparsable scope",
            json!({"key": key, "scopes": ["not a scope"]}).to_string(),
        ),
    ];
    for (what, body) in bodies {
        let resp = ctx.request(
            "POST",
            "/v1/keys/verify",
            &[("content-type", "application/json")],
            Body::Bytes(body.as_bytes()),
        )?;
        resp.expect_problem(400, None).context(what)?;
    }
    Ok(())
}
