//! The admin web page (web/admin/): its paths and headers over HTTP, then the page itself in
//! headless Chromium (tests/browser/admin-page.mjs): sign in, create a key and read its secret from
//! the page, use it at the gateway, edit, deactivate, rotate, revoke (each checked at the gateway),
//! paging, presets, audit, sign out; no console error, CSP violation or foreign request.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::client::{key_path, str_field, Ctx};
use crate::TestResult;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn admin_page_headers_and_paths(ctx: &Ctx) -> TestResult {
    for (path, ty) in [
        ("/admin/", "text/html"),
        ("/admin/admin.js", "text/javascript"),
        ("/admin/admin.css", "text/css"),
    ] {
        // No Authorization: the page's files are public.
        let resp = ctx.request("GET", path, &[], crate::client::Body::None)?;
        resp.expect_status(200)?;
        ensure!(
            resp.header("content-type").is_some_and(|v| v.starts_with(ty)),
            "{path}: content type\n{}",
            resp.describe()
        );
        ensure!(
            resp.header("content-security-policy")
                .is_some_and(|v| v.starts_with(CSP)),
            "{path}: Content-Security-Policy\n{}",
            resp.describe()
        );
        ensure_eq!(resp.header("x-content-type-options"), Some("nosniff"), "{path}");
        ensure_eq!(resp.header("referrer-policy"), Some("no-referrer"), "{path}");
        ensure!(
            ctx.origin.requests_to(path).is_empty(),
            "{path} was served by the origin"
        );
    }
    let post = ctx.request("POST", "/admin/", &[], crate::client::Body::Bytes(b"x"))?;
    post.expect_problem(405, Some("method-not-allowed"))?;
    // Nothing else opened: other paths under /admin/ are still the admin API, token required.
    for path in [
        "/admin/index.html",
        "/admin/v1/keys",
        "/admin/admin.js/x",
        "/admin/%61dmin.js",
    ] {
        ctx.request("GET", path, &[], crate::client::Body::None)?
            .expect_problem(401, Some("missing-credentials"))?;
    }
    Ok(())
}

/// Keys for the list (and the README's screenshot): a few presets, expiries, one disabled.
fn seed(ctx: &Ctx, ws: &str) -> TestResult {
    let keys: [Value; 4] = [
        json!({"name": "legacy importer", "preset": "read-only", "description": "nightly CSV import"}),
        json!({"name": "nightly agent", "preset": "agent-runner", "expires": "6m"}),
        json!({"name": "web sdk", "preset": "sdk"}),
        json!({"name": "ci deploy", "preset": "deploy", "expires": "90d", "description": "GitHub Actions"}),
    ];
    for body in keys {
        let (secret, obj) = ctx.create_key(ws, body)?;
        let id = str_field(&obj, "id")?;
        match str_field(&obj, "name")? {
            "legacy importer" => {
                ctx.admin("POST", &key_path(ws, id, "/deactivate"), None)?
                    .expect_status(200)?;
            }
            _ => {
                ctx.gateway("GET", &format!("/echo/seed-{}", ctx.nonce()), &secret)?
                    .expect_status(200)?;
            }
        }
    }
    Ok(())
}

pub fn admin_page_in_chromium(ctx: &Ctx) -> TestResult {
    let ws = ctx.workspace("page");
    seed(ctx, &ws)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    ensure!(
        Path::new(&chromium).exists(),
        "{chromium} not found: scripts/setup.sh installs Debian's chromium (or set CHROMIUM)"
    );
    // The script has its own deadline (180 s) and closes the browser on every path.
    let out = Command::new(root.join("node_modules/.bin/node"))
        .arg("tests/browser/admin-page.mjs")
        .args([&ctx.base, &ctx.admin_token, &ws])
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run node tests/browser/admin-page.mjs: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    // Remember what the page showed before judging, so the final leak check covers it either way.
    for s in result["secrets"].as_array().into_iter().flatten() {
        if let Some(s) = s.as_str() {
            ctx.remember_secret(s.to_owned());
        }
    }
    ensure!(
        out.status.success(),
        "the browser test failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        result["secrets"].as_array().is_some_and(|a| a.len() >= 2),
        "the browser test reported no secrets"
    );
    Ok(())
}
