//! docs/api.md section 1: the gateway.

use std::collections::BTreeSet;
use std::thread::sleep;
use std::time::Duration;

use serde_json::json;

use super::{expect_forwarded, expect_invalid_token, expect_not_forwarded, typo_of};
use crate::client::{bearer, set_of, str_field, str_set, Body, Context, Ctx, Resp};
use crate::util::{rfc3339_ms, unix_ms};
use crate::TestResult;

const SDK_SCOPES: &[&str] = &["projects:viewer", "events:write"];

pub fn proxies_valid_key(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("gw");
    let (key, obj) = ctx.create_key(&ws, json!({"name": "gateway proxy", "preset": "sdk"}))?;
    let id = str_field(&obj, "id")?;
    ensure_eq!(
        str_set(&obj["scopes"])?,
        set_of(SDK_SCOPES),
        "scopes of an sdk-preset key"
    );

    // Method, path, query, body and ordinary headers pass; Authorization and client X-Keyward-* do not.
    let path = format!("/echo/{}/item", ctx.nonce());
    let auth = bearer(&key);
    let headers = [
        ("authorization", auth.as_str()),
        ("x-keyward-key-id", "key_forged"),
        ("x-keyward-workspace", "forged"),
        ("x-keyward-scopes", "*"),
        ("x-keyward-anything", "forged"),
        ("x-custom", "kept"),
        ("content-type", "text/plain"),
    ];
    let resp = ctx.request(
        "PUT",
        &format!("{path}?b=2&a=1&a=3"),
        &headers,
        Body::Bytes(b"hello origin"),
    )?;
    let got = expect_forwarded(ctx, &resp, &path)?;
    ensure_eq!(got.method, "PUT", "method at the origin");
    ensure_eq!(got.query, "b=2&a=1&a=3", "query at the origin");
    ensure_eq!(String::from_utf8_lossy(&got.body), "hello origin", "body at the origin");
    ensure_eq!(
        got.header("authorization")?,
        None,
        "Authorization must not reach the origin"
    );
    ensure_eq!(
        got.header("x-keyward-key-id")?,
        Some(id),
        "X-Keyward-Key-Id at the origin"
    );
    ensure_eq!(
        got.header("x-keyward-workspace")?,
        Some(ws.as_str()),
        "X-Keyward-Workspace at the origin"
    );
    let scopes = got
        .header("x-keyward-scopes")?
        .ok_or("X-Keyward-Scopes missing at the origin")?;
    let scopes: BTreeSet<String> = scopes.split(' ').map(str::to_owned).collect();
    ensure_eq!(scopes, set_of(SDK_SCOPES), "X-Keyward-Scopes at the origin");
    ensure_eq!(
        got.header("x-keyward-anything")?,
        None,
        "a client-sent X-Keyward-* header must be dropped"
    );
    ensure_eq!(got.header("x-custom")?, Some("kept"), "other client headers must pass");
    ensure_eq!(
        got.header("content-type")?,
        Some("text/plain"),
        "Content-Type must pass"
    );
    ensure_eq!(
        resp.json()?["path"],
        json!(path),
        "the origin's answer must come back as is"
    );

    // A route that needs a scope; the scheme is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let path = format!("/projects/{}", ctx.nonce());
        let auth = format!("{scheme} {key}");
        let resp = ctx.request("GET", &path, &[("authorization", &auth)], Body::None)?;
        expect_forwarded(ctx, &resp, &path)?;
    }
    let marker = format!("m={}", ctx.nonce());
    let resp = ctx.request(
        "POST",
        &format!("/events?{marker}"),
        &headers[..1],
        Body::Bytes(br#"{"e":1}"#),
    )?;
    resp.expect_status(200)?;
    let seen = ctx.origin.requests_to("/events");
    ensure!(
        seen.iter()
            .any(|r| r.method == "POST" && r.query == marker && r.body == br#"{"e":1}"#),
        "POST /events?{marker} did not reach the origin intact\n{}",
        resp.describe()
    );
    Ok(())
}

/// Many requests at once for keys this isolate has not read yet: concurrent misses for one key
/// share one KV read, and every waiter must still be answered in its own request. When the
/// reading request woke the waiters itself, they ran inside it and their forwards failed ("Cannot
/// perform I/O on behalf of a different request"): 2-8 of 320 such requests answered 500 per
/// round on a warm local isolate. Three rounds of 8 new keys, 32 connections, 10 requests each.
pub fn concurrent_first_requests_for_new_keys(ctx: &Ctx) -> TestResult {
    const KEYS: usize = 8;
    const CONNS: usize = 32;
    const EACH: usize = 10;
    let ws = ctx.workspace("herd");
    let path = format!("/echo/{}/herd", ctx.nonce());
    let mut forwarded = 0;
    for round in 0..3 {
        let keys = (0..KEYS)
            .map(|i| ctx.create_key(&ws, json!({"name": format!("herd {round}-{i}"), "preset": "sdk"})))
            .collect::<Result<Vec<_>, _>>()?;
        let start = std::sync::Barrier::new(CONNS);
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..CONNS)
                .map(|c| {
                    let (keys, start, path) = (&keys, &start, &path);
                    s.spawn(move || {
                        start.wait();
                        (0..EACH)
                            .map(|j| {
                                let (key, _) = &keys[(c + j) % KEYS];
                                ctx.gateway("GET", path, key).map(|r| r.status).unwrap_or(0)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        });
        // A connection the local proxy drops under load (0) is the harness's, not keyward's.
        let lost = statuses.iter().filter(|s| **s == 0).count();
        let ok = statuses.iter().filter(|s| **s == 200).count();
        ensure_eq!(statuses.len(), CONNS * EACH, "answers in round {round}");
        ensure!(lost <= 2, "round {round}: {lost} answers lost (statuses: {statuses:?})");
        ensure_eq!(
            ok + lost,
            CONNS * EACH,
            "round {round}: every answer a 200 (statuses: {statuses:?})"
        );
        forwarded += ok;
    }
    ensure!(
        ctx.origin.requests_to(&path).len() >= forwarded,
        "the origin received every forwarded request"
    );
    Ok(())
}

pub fn streams_chunked_body(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("gw-stream");
    let (key, _) = ctx.create_key(&ws, json!({"name": "stream key", "preset": "sdk"}))?;
    let payload: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let path = format!("/echo/{}/upload", ctx.nonce());
    let auth = bearer(&key);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/octet-stream"),
    ];
    let resp = ctx.request("POST", &path, &headers, Body::Chunked(&payload))?;
    let got = expect_forwarded(ctx, &resp, &path)?;
    ensure!(
        got.body == payload,
        "the origin got {} body bytes, sent {} (chunked)",
        got.body.len(),
        payload.len()
    );
    Ok(())
}

pub fn missing_credentials_401(ctx: &Ctx) -> TestResult {
    for auth in [None, Some("Basic dXNlcjpwYXNzd29yZA=="), Some("Token abcdef")] {
        let path = format!("/projects/{}", ctx.nonce());
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let resp = ctx.request("GET", &path, &headers, Body::None)?;
        resp.expect_problem(401, Some("missing-credentials"))?;
        ensure_eq!(
            resp.www_authenticate()?,
            r#"Bearer realm="keyward""#,
            "WWW-Authenticate for {auth:?}"
        );
        expect_not_forwarded(ctx, &path)?;
    }
    Ok(())
}

fn expect_invalid_request(resp: &Resp) -> TestResult {
    resp.expect_problem(400, Some("invalid-request"))?;
    let challenge = resp.www_authenticate()?;
    let prefix = r#"Bearer realm="keyward", error="invalid_request", error_description=""#;
    ensure!(
        challenge.starts_with(prefix),
        "WWW-Authenticate {challenge:?} should start with {prefix:?}"
    );
    Ok(())
}

pub fn invalid_request_400(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("gw-400");
    let (key, _) = ctx.create_key(&ws, json!({"name": "valid key", "preset": "sdk"}))?;
    let auth = bearer(&key);

    // Two Authorization fields (each alone would be valid).
    let path = format!("/projects/{}", ctx.nonce());
    let resp = ctx.raw_request("GET", &path, &[("authorization", &auth), ("authorization", &auth)])?;
    expect_invalid_request(&resp)?;
    expect_not_forwarded(ctx, &path)?;

    // A token in the query, next to a valid header.
    let path = format!("/projects/{}", ctx.nonce());
    let resp = ctx.gateway("GET", &format!("{path}?access_token=kw_live_in_the_query"), &key)?;
    expect_invalid_request(&resp)?;
    expect_not_forwarded(ctx, &path)?;

    // Bearer with an empty token.
    let path = format!("/projects/{}", ctx.nonce());
    let resp = ctx.raw_request("GET", &path, &[("authorization", "Bearer ")])?;
    expect_invalid_request(&resp)?;
    expect_not_forwarded(ctx, &path)?;
    Ok(())
}

pub fn invalid_tokens_identical_401(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("gw-401");
    let (good, revoked, deleted) = ctx.good_revoked_deleted(&ws)?;

    let path = format!("/projects/{}", ctx.nonce());
    expect_forwarded(ctx, &ctx.gateway("GET", &path, &good)?, &path)?;

    let bad = [
        ("malformed", "not-a-keyward-key".to_owned()),
        ("prefix only", "kw_live_".to_owned()),
        ("bad checksum", typo_of(&good)),
        ("unknown (deleted)", deleted),
        ("revoked", revoked),
    ];
    let mut first: Option<Resp> = None;
    for (what, token) in &bad {
        let path = format!("/projects/{}", ctx.nonce());
        let resp = ctx.gateway("GET", &path, token)?;
        expect_invalid_token(&resp).context(what)?;
        expect_not_forwarded(ctx, &path)?;
        match &first {
            None => first = Some(resp),
            Some(first) => {
                ensure!(
                    resp.text_without_request_id() == first.text_without_request_id()
                        && resp.header("content-type") == first.header("content-type"),
                    "the 401 for a {what} key differs from the one for a {} key:\n{}\n---\n{}",
                    bad[0].0,
                    resp.describe(),
                    first.describe()
                );
            }
        }
    }
    Ok(())
}

/// The `scope="..."` parameter of a challenge, as a set.
fn challenge_scopes(challenge: &str) -> Option<BTreeSet<String>> {
    let start = challenge.find("scope=\"")? + "scope=\"".len();
    let len = challenge[start..].find('"')?;
    Some(challenge[start..start + len].split(' ').map(str::to_owned).collect())
}

pub fn insufficient_scope_403(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("gw-403");
    let (key, _) = ctx.create_key(&ws, json!({"name": "sdk key", "preset": "sdk"}))?;
    let cases: [(&str, String, &[&str]); 2] = [
        ("POST", "/deploy".to_owned(), &["deploy:trigger", "projects:viewer"]),
        ("DELETE", format!("/projects/{}", ctx.nonce()), &["projects:owner"]),
    ];
    for (method, path, required) in cases {
        let before = ctx.origin.requests_to(&path).len();
        let resp = ctx.gateway(method, &path, &key)?;
        let problem = resp.expect_problem(403, Some("insufficient-scope"))?;
        ensure_eq!(
            str_set(&problem["scopes"])?,
            set_of(required),
            "problem member scopes for {method} {path}"
        );
        let challenge = resp.www_authenticate()?;
        let prefix = r#"Bearer realm="keyward", error="insufficient_scope", scope=""#;
        ensure!(
            challenge.starts_with(prefix),
            "WWW-Authenticate {challenge:?} should start with {prefix:?}"
        );
        ensure_eq!(
            challenge_scopes(challenge),
            Some(set_of(required)),
            "scope= of {challenge:?}"
        );
        ensure_eq!(
            ctx.origin.requests_to(&path).len(),
            before,
            "a 403 request must not reach the origin"
        );
    }
    Ok(())
}

pub fn no_route_404(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("gw-404");
    let (key, _) = ctx.create_key(&ws, json!({"name": "sdk key", "preset": "sdk"}))?;
    for (method, path) in [
        ("GET", format!("/nowhere/{}", ctx.nonce())),
        ("DELETE", "/events".to_owned()),
    ] {
        let before = ctx.origin.requests_to(&path).len();
        let resp = ctx.gateway(method, &path, &key)?;
        resp.expect_problem(404, Some("no-route"))?;
        ensure!(
            resp.header("www-authenticate").is_none(),
            "a 404 has no WWW-Authenticate\n{}",
            resp.describe()
        );
        ensure_eq!(
            ctx.origin.requests_to(&path).len(),
            before,
            "an unrouted request must not reach the origin"
        );
    }
    Ok(())
}

pub fn expiry_takes_effect(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("gw-exp");
    let expires_ms = unix_ms() + 4_000;
    let expires = rfc3339_ms(expires_ms);
    let (key, obj) = ctx.create_key(&ws, json!({"name": "short lived", "preset": "sdk", "expires": expires}))?;
    let id = str_field(&obj, "id")?;
    ensure_eq!(obj["expires_at"], json!(expires), "expires_at of the created key");

    let path = format!("/projects/{}", ctx.nonce());
    expect_forwarded(ctx, &ctx.gateway("GET", &path, &key)?, &path)?;
    let valid = ctx.verify(&json!({"key": key}))?.expect_json(200)?;
    ensure_eq!(valid["code"], json!("VALID"), "verify before expiry: {valid}");
    ensure_eq!(valid["expires_at"], json!(expires), "verify expires_at");

    let wait = expires_ms + 1_500 - unix_ms();
    sleep(Duration::from_millis(wait.max(0) as u64));

    let path = format!("/projects/{}", ctx.nonce());
    let expired = ctx.gateway("GET", &path, &key)?;
    expect_invalid_token(&expired)?;
    expect_not_forwarded(ctx, &path)?;
    let malformed = ctx.gateway("GET", &format!("/projects/{}", ctx.nonce()), "not-a-keyward-key")?;
    ensure!(
        expired.text_without_request_id() == malformed.text_without_request_id(),
        "the 401 for an expired key differs from the one for a malformed key:\n{}\n---\n{}",
        expired.describe(),
        malformed.describe()
    );
    let verdict = ctx.verify(&json!({"key": key}))?.expect_json(200)?;
    ensure_eq!(
        verdict,
        json!({"valid": false, "code": "EXPIRED"}),
        "verify after expiry"
    );
    let now = ctx.get_key(&ws, id)?;
    ensure_eq!(now["status"], json!("expired"), "status of the key object after expiry");
    Ok(())
}
