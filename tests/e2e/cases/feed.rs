//! The revocation feed across instances: a second `wrangler dev` of the same bundle (the peer)
//! shares this run's local KV and D1 and reaches the first instance's RevocationFeed object
//! through the dev registry. Each instance has its own isolate, so its own cache: keys revoked
//! through the first must be refused by the peer within REVOCATION_BOUND_MS, although the peer
//! holds them in a cache it would otherwise trust for KEY_CACHE_TTL_S (30 s).

use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use serde_json::json;

use crate::client::{bearer, str_field, Body, Ctx};
use crate::TestResult;

/// REVOCATION_BOUND_MS in wrangler.toml.
const BOUND: Duration = Duration::from_millis(2000);
const REVOCATIONS: usize = 60;
/// Every fifth revocation follows an idle period longer than the bound: the peer's first
/// decision afterwards must wait for a pull.
const IDLE: Duration = Duration::from_millis(2500);

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn revocation_reaches_a_second_instance_within_the_bound(ctx: &Ctx) -> TestResult {
    let spec = ctx.peer.as_ref().ok_or("the harness gave no peer spec")?;
    let peer = spec
        .start("keyward-peer", &["KEYWARD_FEED_STATS:1".into()])
        .map_err(Failed::from)?;
    let b = peer.base_url();
    let ws = ctx.workspace("feed");
    let at_b = |key: &str| -> Result<u16, Failed> {
        let auth = bearer(key);
        let path = format!("/projects/{}", ctx.nonce());
        Ok(ctx
            .request_at(&b, "GET", &path, &[("authorization", auth.as_str())], Body::None)?
            .status)
    };
    let mut delays = Vec::new();
    let mut revoke_calls = Vec::new();
    // Revocations after which the peer still accepted the key at least once (from its cache,
    // before its next pull): what would go on for up to 30 s without the feed.
    let mut accepted_after = 0;
    let mut idle_refused_at_once = 0;
    for i in 0..REVOCATIONS {
        let (key, obj) = ctx.create_key(&ws, json!({"name": format!("feed {i}"), "preset": "sdk"}))?;
        let id = str_field(&obj, "id")?;
        // The peer reads it from KV once, then decides it from its cache.
        for _ in 0..3 {
            ensure_eq!(at_b(&key)?, 200, "the peer accepts key {i} before the revoke");
        }
        let idle = i % 5 == 4;
        if idle {
            std::thread::sleep(IDLE);
        }
        let sent = Instant::now();
        ctx.revoke_key(&ws, id)?;
        let answered = Instant::now();
        revoke_calls.push(answered - sent);
        let mut first = true;
        loop {
            let status = at_b(&key)?;
            let waited = answered.elapsed();
            match status {
                401 => {
                    delays.push(waited);
                    if idle {
                        ensure!(
                            first,
                            "revocation {i}: after an idle period the peer accepted the key once more"
                        );
                        idle_refused_at_once += 1;
                    }
                    break;
                }
                200 => {
                    if first {
                        accepted_after += 1;
                    }
                    ensure!(
                        waited < BOUND + Duration::from_secs(3),
                        "revocation {i}: the peer still accepts the key {} ms after the revoke",
                        waited.as_millis()
                    );
                }
                s => return Err(format!("revocation {i}: the peer answered {s}").into()),
            }
            first = false;
        }
    }
    delays.sort();
    revoke_calls.sort();
    let (p50, p99, max) = (pct(&delays, 0.5), pct(&delays, 0.99), delays[delays.len() - 1]);
    eprintln!(
        "feed e2e: {REVOCATIONS} revocations through instance A, refused by instance B after (from the revoke's \
         answer) p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (bound {} ms); the revoke call itself p50 {:.0} ms; B still \
         accepted from its cache after {accepted_after} of them; {idle_refused_at_once} after an idle period were \
         refused by B's first request",
        ms(p50),
        ms(p99),
        ms(max),
        BOUND.as_millis(),
        ms(pct(&revoke_calls, 0.5)),
    );
    // The peer followed the feed (and did not just fall back to KV, which is instant locally):
    // its pulls succeeded, and it decided from its cache in between.
    let log = std::fs::read_to_string(peer.log_path()).map_err(|e| format!("peer log: {e}"))?;
    ensure!(
        !log.contains("feed-unreachable") && !log.contains("feed-pull-failed"),
        "the peer could not reach the feed:\n{}",
        crate::util::tail_of_file(peer.log_path(), 40)
    );
    ensure!(log.contains("feed-stats"), "the peer logged no feed pulls");
    ensure!(
        accepted_after > 0,
        "the peer never decided from its cache: the trial shows nothing"
    );
    ensure_eq!(
        idle_refused_at_once,
        REVOCATIONS / 5,
        "idle revocations refused at once"
    );
    ensure!(max <= BOUND, "max {} ms is over the bound", max.as_millis());
    drop(peer);
    Ok(())
}
