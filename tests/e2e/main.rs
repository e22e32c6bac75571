//! End-to-end tests: the real worker under `wrangler dev` (local KV + D1) in front of an in-process
//! echo origin. Contract: docs/api.md.
//!
//! Run with `./scripts/test.sh` (or `flock /tmp/keyward-build.lock cargo test --test e2e`: this binary
//! builds the worker and does not take the build lock itself).
//! Filter trials like any test: `cargo test --test e2e -- gateway`.
//! The harness builds the worker first (scripts/build.sh, no time limit), then starts wrangler dev on
//! the built bundle; KEYWARD_E2E_READY_TIMEOUT_S (default 120) bounds only that start.

use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

/// Fails the current trial with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(libtest_mimic::Failed::from(format!($($msg)+)));
        }
    };
}

/// Fails the current trial unless `left == right`, showing both values.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($msg:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(libtest_mimic::Failed::from(format!(
                "{}\n  left:  {:?}\n  right: {:?}", format!($($msg)+), left, right
            )));
        }
    }};
}

mod cases;
mod client;
mod http1;
#[path = "../support/openapi.rs"]
mod openapi;
mod origin;
mod util;
mod wrangler;

use client::Ctx;
use origin::EchoOrigin;
use wrangler::WranglerDev;

pub type TestResult = Result<(), Failed>;

/// The worker under test signs what it forwards with this (docs/origin-signing.md).
pub const SIGNING_SECRET: &str = "e2e-origin-signing-secret";

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // Trials share one worker and some assert on global state (logs, the origin's record).
    args.test_threads = Some(1);

    if args.list {
        let trials = cases::ALL
            .iter()
            .map(|(name, _)| Trial::test(*name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }

    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let run_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "e2e-{}-{}",
        util::unix_ms(),
        std::process::id()
    ));

    let origin = match EchoOrigin::start() {
        Ok(origin) => origin,
        Err(e) => {
            eprintln!("e2e: cannot start the echo origin: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Where requests made with test keys go (TEST_ORIGIN_URL).
    let test_origin = match EchoOrigin::start() {
        Ok(origin) => origin,
        Err(e) => {
            eprintln!("e2e: cannot start the test-key echo origin: {e}");
            return ExitCode::FAILURE;
        }
    };
    let admin_token = format!("e2e-admin-{}", util::random_hex(24));

    // `dev` stops the wrangler process group when dropped: on every return path below, on panic.
    let dev = match WranglerDev::start(&root, &run_dir, &origin.url(), &test_origin.url(), &admin_token) {
        Ok(dev) => dev,
        Err(e) => {
            eprintln!("e2e: {e}");
            eprintln!("e2e: run directory kept: {}", run_dir.display());
            return ExitCode::FAILURE;
        }
    };

    let mut ctx = Ctx::new(dev.base_url(), admin_token, origin, dev.log_path().to_owned(), dev.d1());
    ctx.test_origin = Some(test_origin);
    let ctx = Arc::new(ctx);
    let trials = cases::ALL
        .iter()
        .map(|&(name, case)| {
            let ctx = Arc::clone(&ctx);
            Trial::test(name, move || case(&ctx))
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);

    if conclusion.has_failed() {
        eprintln!("\n--- wrangler dev log, last lines ({}) ---", dev.log_path().display());
        eprintln!("{}", util::tail_of_file(dev.log_path(), 80));
    }
    drop(dev);
    if conclusion.has_failed() {
        eprintln!("e2e: run directory kept: {}", run_dir.display());
    } else if let Err(e) = std::fs::remove_dir_all(&run_dir) {
        eprintln!("e2e: could not remove {}: {e}", run_dir.display());
    }
    conclusion.exit_code()
}
