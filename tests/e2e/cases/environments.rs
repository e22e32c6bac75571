//! Live and test keys on the real runtime: prefixes, X-Keyward-Environment (signed), test traffic
//! to TEST_ORIGIN_URL, a route that accepts test keys only.

use serde_json::json;

use super::{expect_not_forwarded, TestResult};
use crate::client::{bearer, str_field, Ctx};

pub fn live_and_test_keys(ctx: &Ctx) -> TestResult {
    use keyward::core::signing::Signer;
    let test_origin = ctx.test_origin.as_ref().ok_or("the harness started no test origin")?;
    let ws = ctx.workspace("env");
    let (live, live_obj) = ctx.create_key(&ws, json!({"name": "prod key", "scopes": ["projects:viewer"]}))?;
    let (test, test_obj) = ctx.create_key(
        &ws,
        json!({"name": "ci key", "scopes": ["projects:viewer"], "environment": "test"}),
    )?;
    ensure!(
        live.starts_with("kw_live_") && test.starts_with("kw_test_"),
        "prefixes: {live_obj} {test_obj}"
    );
    ensure_eq!(str_field(&live_obj, "environment")?, "live", "live key object");
    ensure_eq!(str_field(&test_obj, "environment")?, "test", "test key object");
    ensure!(
        str_field(&test_obj, "preview")?.starts_with("kw_test_..."),
        "{test_obj}"
    );

    // A live key goes to ORIGIN_URL, a test key to TEST_ORIGIN_URL; each says its environment,
    // a client-sent X-Keyward-Environment never arrives, and the signature covers it.
    let signer = Signer::new(crate::SIGNING_SECRET.as_bytes());
    for (key, origin, env) in [(&live, &ctx.origin, "live"), (&test, test_origin, "test")] {
        let path = format!("/echo/{}", ctx.nonce());
        let auth = bearer(key);
        let resp = ctx.request(
            "GET",
            &path,
            &[("authorization", &auth), ("x-keyward-environment", "forged")],
            crate::client::Body::None,
        )?;
        resp.expect_status(200)?;
        let mut got = origin.requests_to(&path);
        ensure_eq!(got.len(), 1, "{env} key: requests at its origin for {path}");
        let other = if env == "live" { test_origin } else { &ctx.origin };
        ensure!(
            other.requests_to(&path).is_empty(),
            "{env} key reached the other origin"
        );
        let got = got.remove(0);
        ensure_eq!(got.header("x-keyward-environment")?, Some(env), "X-Keyward-Environment");
        let identity = super::identity_of(&got)?;
        let sig = got.header("x-keyward-signature")?.ok_or("unsigned")?;
        let now = crate::util::unix_ms() / 1000;
        signer
            .verify(sig, now, 300, "GET", &got.path, &identity)
            .map_err(|e| format!("{env}: signature does not verify: {e:?}"))?;
        let flipped = identity.replace(
            &format!("\n{env}\n"),
            if env == "live" { "\ntest\n" } else { "\nlive\n" },
        );
        ensure!(
            signer.verify(sig, now, 300, "GET", &got.path, &flipped).is_err(),
            "environment not signed"
        );
        // The verify API says it too.
        let v = ctx.verify(&json!({"key": key}))?.expect_json(200)?;
        ensure_eq!(str_field(&v, "environment")?, env, "verify API");
    }

    // /sandbox/** accepts test keys only.
    let path = format!("/sandbox/{}", ctx.nonce());
    ctx.gateway("GET", &path, &live)?
        .expect_problem(403, Some("wrong-environment"))?;
    expect_not_forwarded(ctx, &path)?;
    ensure!(
        test_origin.requests_to(&path).is_empty(),
        "a refused request reached the test origin"
    );
    ctx.gateway("GET", &path, &test)?.expect_status(200)?;
    ensure_eq!(test_origin.requests_to(&path).len(), 1, "test key on /sandbox");

    // Bad input: an unknown environment; the environment cannot be edited.
    let bad = ctx.admin(
        "POST",
        &format!("/admin/v1/keys?workspace={ws}"),
        Some(&json!({"name": "bad env", "scopes": ["projects:viewer"], "environment": "prod"})),
    )?;
    bad.expect_problem(400, Some("invalid-body"))?;
    let id = str_field(&live_obj, "id")?;
    let patch = ctx.admin(
        "PATCH",
        &format!("/admin/v1/keys/{id}?workspace={ws}"),
        Some(&json!({"environment": "test"})),
    )?;
    patch.expect_problem(400, Some("invalid-body"))?;
    Ok(())
}

/// Sharing groups: memberships reach the origin in X-Keyward-Groups (signed; a client's value
/// never arrives), the verify API returns them, and deleting a group takes it off its keys.
pub fn sharing_groups(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("grp");
    for g in ["design", "ops"] {
        ctx.admin(
            "POST",
            &format!("/admin/v1/groups?workspace={ws}"),
            Some(&json!({"name": g})),
        )?
        .expect_json(201)?;
    }
    ctx.admin(
        "POST",
        &format!("/admin/v1/groups?workspace={ws}"),
        Some(&json!({"name": "Not Valid"})),
    )?
    .expect_problem(400, Some("invalid-body"))?;
    let listed = ctx
        .admin("GET", &format!("/admin/v1/groups?workspace={ws}"), None)?
        .expect_json(200)?;
    ensure_eq!(listed["items"].as_array().map(Vec::len), Some(2), "groups listed");
    ctx.admin(
        "POST",
        &format!("/admin/v1/keys?workspace={ws}"),
        Some(&json!({"name": "bad group", "scopes": ["projects:viewer"], "groups": ["nope"]})),
    )?
    .expect_problem(400, Some("invalid-body"))?;
    let (key, obj) = ctx.create_key(
        &ws,
        json!({"name": "member", "scopes": ["projects:viewer"], "groups": ["ops", "design"]}),
    )?;
    ensure_eq!(obj["groups"], json!(["design", "ops"]), "key object groups");

    let forwarded = |want: &str| -> TestResult {
        let path = format!("/echo/{}", ctx.nonce());
        let auth = bearer(&key);
        let resp = ctx.request(
            "GET",
            &path,
            &[("authorization", &auth), ("x-keyward-groups", "admins")],
            crate::client::Body::None,
        )?;
        let got = super::expect_forwarded(ctx, &resp, &path)?;
        ensure_eq!(
            got.header("x-keyward-groups")?,
            Some(want),
            "X-Keyward-Groups at the origin"
        );
        Ok(())
    };
    forwarded("design ops")?;
    let v = ctx.verify(&json!({"key": key}))?.expect_json(200)?;
    ensure_eq!(v["groups"], json!(["design", "ops"]), "verify API groups");

    ctx.admin("DELETE", &format!("/admin/v1/groups/design?workspace={ws}"), None)?
        .expect_status(204)?;
    let id = str_field(&obj, "id")?;
    ensure_eq!(
        ctx.get_key(&ws, id)?["groups"],
        json!(["ops"]),
        "groups after the group was deleted"
    );
    forwarded("ops")?;
    ctx.admin("DELETE", &format!("/admin/v1/groups/design?workspace={ws}"), None)?
        .expect_problem(404, Some("not-found"))?;
    Ok(())
}
