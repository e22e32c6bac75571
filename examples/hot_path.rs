//! How long keyward's own Rust work on a cache hit takes, natively (bench/core.sh runs it).
//!
//! The valid-key row of bench/run.sh sits a few percent under the passthrough worker; this tells
//! how much of that is the decision itself (throttle check, route match, key parse and CRC-32,
//! SHA-256, cache probe, feed clock, scope check, last-used batch) and how much is the platform's
//! entry into a wasm module, which it does not touch. Native x86-64 is faster than wasm in V8
//! (about 1.5-2x for this kind of code), so read the result as an order of magnitude.

use std::rc::Rc;
use std::time::Instant;

use keyward::app::gateway::{self, Prepared};
use keyward::app::{lookup, route_of, App, Config, State};
use keyward::http::head::Head;
use keyward::http::plain::Request;
use keyward::store::memory::{block_on, Faults, MemCredits, MemEdge, MemFeed, MemRecords};

const T0: i64 = 1_800_000_000_000;
const ROOT: &str = "bench-root-token";

fn main() {
    let keys: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let iterations: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let config = Config::from_vars(&|n| match n {
        "ORIGIN_URL" => Some("http://127.0.0.1:9".into()),
        "ADMIN_TOKEN" => Some(ROOT.into()),
        _ => None,
    })
    .expect("config");
    let faults = Faults::new();
    let (records, edge) = (MemRecords::new(Rc::clone(&faults)), MemEdge::new(Rc::clone(&faults)));
    let (credits, feed) = (
        MemCredits::new(Rc::clone(&faults)),
        MemFeed::new(Rc::clone(&faults), 300_000),
    );
    let st = State::new(config, [7; 32]).expect("state");
    let app = App {
        st: &st,
        records: &records,
        edge: &edge,
        credits: &credits,
        feed: &feed,
    };

    // The bench's keys: preset sdk, workspace bench, through the admin API.
    let mut secrets = Vec::with_capacity(keys);
    for i in 0..keys {
        let mut req = Request::new("POST", "http://127.0.0.1/admin/v1/keys?workspace=bench");
        req.headers.push(("authorization".into(), format!("Bearer {ROOT}")));
        req.body = format!(r#"{{"name":"bench-{i}","preset":"sdk"}}"#).into_bytes();
        let resp = block_on(app.handle_api(&req, T0)).0;
        assert_eq!(resp.status, 201, "{}", resp.body);
        let v: serde_json::Value = serde_json::from_str(&resp.body).expect("json");
        secrets.push(v["key"].as_str().expect("key").to_owned());
    }
    // One request per key as a cache miss (the bench's priming), so the timed loop is all hits.
    block_on(keyward::app::follow::catch_up(&st, &feed, T0));
    let heads: Vec<String> = secrets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "0000000100000002\nGET\nhttp://127.0.0.1:8787/projects/42\n10.0.{}.{}\nBearer {s}",
                i / 250,
                i % 250
            )
        })
        .collect();
    for h in &heads {
        let head = Head::with_request_id(h.clone());
        let Ok(Prepared::Keyed(hash, _)) = gateway::prepare(&st.policy, &st.config.keys, &head) else {
            panic!("not keyed")
        };
        block_on(lookup::entry(&st, &edge, &hash, T0)).expect("read");
    }

    let mut forwarded = 0usize;
    let mut runs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        for n in 0..iterations {
            let now = T0 + 1 + (n / 1000) as i64; // a millisecond per 1,000 requests: inside every TTL
                                                  // The buffer the runtime hands over is a fresh String per request.
            let head = Head::with_request_id(heads[n % heads.len()].clone());
            st.check_throttle(head.client(), now).expect("not throttled");
            assert!(matches!(route_of(head.path()), keyward::app::Route::Gateway));
            let Ok(Prepared::Keyed(hash, route)) = gateway::prepare(&st.policy, &st.config.keys, &head) else {
                panic!("not keyed")
            };
            let entry = lookup::cached(&st, &hash, now).expect("a cache hit");
            let _ = lookup::refresh_due(&st, &hash, now);
            let entry = gateway::authorize(route, entry, now).expect("valid");
            let _ = st.usage.borrow_mut().record(hash, now);
            let sig = gateway::signature(st.signer.as_ref(), now, &head, &entry.identity);
            let _ = st.feed.borrow().poll_due(now);
            forwarded += entry.identity.len() + sig.len();
        }
        runs.push(started.elapsed().as_secs_f64() * 1e6 / iterations as f64);
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "hot_path: {keys} keys, 5 runs of {iterations} cache-hit decisions: {:.3} us each (median; min-max {:.3}-{:.3}), native release build (checksum {forwarded})",
        runs[2], runs[0], runs[4]
    );
}
