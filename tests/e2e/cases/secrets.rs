//! Runs last: no key secret of this run may appear in wrangler's log (the worker's console output
//! included), in anything the origin received, or in any response but the one that issued it.

use std::thread::sleep;
use std::time::Duration;

use serde_json::json;

use super::expect_forwarded;
use crate::client::{str_field, Ctx};
use crate::TestResult;

pub fn never_logged_or_forwarded(ctx: &Ctx) -> TestResult {
    // Exercise every path a secret travels, so the check is never vacuous even when run alone.
    let ws = ctx.workspace("secrets");
    let (key, obj) = ctx.create_key(&ws, json!({"name": "secret keeper", "preset": "sdk"}))?;
    let path = format!("/projects/{}", ctx.nonce());
    expect_forwarded(ctx, &ctx.gateway("GET", &path, &key)?, &path)?;
    ctx.verify(&json!({"key": key}))?.expect_status(200)?;
    ctx.admin_as(&key, "GET", "/admin/v1/keys", None)?.expect_status(403)?;
    let (rotated, _) = ctx.rotate_key(&ws, str_field(&obj, "id")?, json!({}))?;
    ctx.gateway("GET", &format!("/projects/{}", ctx.nonce()), &rotated)?
        .expect_status(200)?;

    sleep(Duration::from_secs(1)); // let wrangler flush its output
    let log = std::fs::read_to_string(&ctx.log_path)
        .map_err(|e| format!("cannot read the wrangler log {}: {e}", ctx.log_path.display()))?;
    let secrets = ctx.secrets();
    ensure!(
        secrets.len() >= 2,
        "expected at least the two secrets made here, got {}",
        secrets.len()
    );

    let mut problems = Vec::new();
    let mut origin_requests = ctx.origin.requests();
    if let Some(test_origin) = &ctx.test_origin {
        origin_requests.extend(test_origin.requests());
    }
    for secret in &secrets {
        // The random part alone counts too (a log line may drop the kw_live_ / kw_test_ prefix).
        let random_part = ["kw_live_", "kw_test_"]
            .iter()
            .find_map(|p| secret.strip_prefix(p))
            .filter(|r| r.len() >= 16)
            .unwrap_or(secret);
        let shown = format!("{}…", secret.chars().take(12).collect::<String>());
        if log.contains(random_part) {
            problems.push(format!(
                "the key {shown} appears in the wrangler log {}",
                ctx.log_path.display()
            ));
        }
        if let Some(r) = origin_requests.iter().find(|r| r.contains(random_part)) {
            problems.push(format!("the key {shown} reached the origin: {} {}", r.method, r.path));
        }
    }
    for leak in ctx.leaks() {
        problems.push(format!("a response echoed a secret:\n{leak}"));
    }
    ensure!(
        problems.is_empty(),
        "{} of {} secrets checked:\n{}",
        problems.len(),
        secrets.len(),
        problems.join("\n")
    );
    Ok(())
}
