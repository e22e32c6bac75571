//! The API contract, docs/openapi.json. Every answer any trial sees is checked against it already
//! (client.rs); here: the document is served as it is in the repository, and schemathesis fuzzes
//! this worker against it (scripts/schemathesis.sh; README "API contract").

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::client::{Body, Ctx};
use crate::util::tail_of_file;
use crate::TestResult;

/// Generous: a run takes well under a minute here at 50 examples per operation (plus the
/// one-time install of schemathesis from PyPI).
const SCHEMATHESIS_LIMIT: Duration = Duration::from_secs(600);

pub fn document_is_served_without_auth(ctx: &Ctx) -> TestResult {
    let resp = ctx.request("GET", "/openapi.json", &[], Body::None)?;
    resp.expect_status(200)?;
    ensure_eq!(resp.header("content-type"), Some("application/json"), "content-type");
    ensure!(
        resp.body == crate::openapi::DOCUMENT.as_bytes(),
        "GET /openapi.json is not docs/openapi.json (rebuild the worker?)"
    );
    ensure!(
        resp.header("cache-control").is_some_and(|v| v.contains("max-age")),
        "the document is cacheable\n{}",
        resp.describe()
    );
    Ok(())
}

pub fn schemathesis_finds_nothing(ctx: &Ctx) -> TestResult {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let log_path = ctx.log_path.with_file_name("schemathesis.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| format!("{}: {e}", log_path.display()))?;
    let started = Instant::now();
    let mut child = Command::new(root.join("scripts/schemathesis.sh"))
        .arg(&ctx.base)
        .current_dir(root)
        .env("KEYWARD_ADMIN_TOKEN", &ctx.admin_token)
        .env("KEYWARD_ST_WORKSPACE", ctx.workspace("contract"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run scripts/schemathesis.sh: {e}"))?;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("schemathesis: {e}"))? {
            break status;
        }
        if started.elapsed() > SCHEMATHESIS_LIMIT {
            // The whole group: pip or st, whichever is running.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            return Err(format!(
                "schemathesis ran over {SCHEMATHESIS_LIMIT:?}; its output so far ({}):\n{}",
                log_path.display(),
                tail_of_file(&log_path, 60)
            )
            .into());
        }
        sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    ensure!(
        status.success(),
        "schemathesis found answers that differ from docs/openapi.json ({status}, {:.0} s); full output in {}:\n{}",
        started.elapsed().as_secs_f64(),
        log_path.display(),
        tail_of_file(&log_path, 150)
    );
    let summary = output
        .lines()
        .rfind(|l| l.contains(" generated, "))
        .unwrap_or("")
        .trim();
    eprintln!(
        "e2e: schemathesis: {summary} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
