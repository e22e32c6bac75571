//! Native tests of the handlers over the in-memory stores: every admin route, the verify API and
//! the gateway decision (`routes`), every storage step failed in turn (`faults`), and every
//! interleaving of two admin calls on one key (`races`), and the revocation feed followed by
//! simulated isolates (`feed`).

mod contract;
mod credits;
mod environments;
mod faults;
mod feed;
mod lookup;
mod races;
mod routes;

// The checker the e2e suite uses too: every answer `World::call` sees is checked against
// docs/openapi.json.
#[path = "../../../tests/support/openapi.rs"]
mod openapi_contract;

use std::rc::Rc;

use serde_json::{json, Value};

use super::config::test_config;
use super::{App, State};
use crate::core::hash::KeyHash;
use crate::core::key::ApiKey;
use crate::core::model::{liveness, Key, Liveness};
use crate::core::record::KeyRecord;
use crate::core::scope::ScopeSet;
use crate::core::time::Millis;
use crate::http::plain::{Request, Response};
use crate::store::memory::{Faults, MemCredits, MemEdge, MemFeed, MemRecords};

pub const T0: Millis = 1_800_000_000_000;
pub const ROOT: &str = "root-token";

pub use crate::store::memory::block_on;

pub struct World {
    pub faults: Rc<Faults>,
    pub records: MemRecords,
    pub edge: MemEdge,
    pub credits: MemCredits,
    pub feed: MemFeed,
    pub st: State,
    pub now: std::cell::Cell<Millis>,
}

impl World {
    pub fn new() -> World {
        let faults = Faults::new();
        World {
            records: MemRecords::new(Rc::clone(&faults)),
            edge: MemEdge::new(Rc::clone(&faults)),
            credits: MemCredits::new(Rc::clone(&faults)),
            feed: MemFeed::new(Rc::clone(&faults), 300_000),
            faults,
            st: State::new(test_config(), [7; 32]).unwrap(),
            now: std::cell::Cell::new(T0),
        }
    }

    /// A world with extra vars (over the test config's) and its own policy file.
    pub fn with(vars: &[(&str, &str)], policy_json: &str) -> World {
        let faults = Faults::new();
        let config = super::config::Config::from_vars(&|n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
                .or(match n {
                    "ORIGIN_URL" => Some("http://origin.test".into()),
                    "ADMIN_TOKEN" => Some(ROOT.into()),
                    _ => None,
                })
        })
        .unwrap();
        World {
            records: MemRecords::new(Rc::clone(&faults)),
            edge: MemEdge::new(Rc::clone(&faults)),
            credits: MemCredits::new(Rc::clone(&faults)),
            feed: MemFeed::new(Rc::clone(&faults), 300_000),
            faults,
            st: State::with_policy(config, policy_json, [7; 32]).unwrap(),
            now: std::cell::Cell::new(T0),
        }
    }

    pub fn app(&self) -> App<'_, MemRecords, MemEdge> {
        App {
            st: &self.st,
            records: &self.records,
            edge: &self.edge,
            credits: &self.credits,
            feed: &self.feed,
        }
    }

    pub fn now(&self) -> Millis {
        self.now.get()
    }

    pub fn advance(&self, ms: Millis) {
        self.now.set(self.now.get() + ms);
    }

    /// One admin/verify call as a future (for interleaving tests).
    pub async fn call_async(&self, req: Request) -> Response {
        // As the glue does before a decision that may use the cache (src/wasm/feed.rs).
        crate::app::follow::catch_up(&self.st, &self.feed, self.now()).await;
        self.app().handle_api(&req, self.now()).await.0
    }

    /// An isolate that followed the whole feed.
    pub fn follower(&self) -> crate::core::feed::Follower {
        let mut f = crate::core::feed::Follower::new(self.st.config.feed);
        let mut p = f.begin(self.now());
        let page = block_on(crate::store::Feed::since(&self.feed, 0, u32::MAX)).unwrap();
        f.apply(&mut p, &page);
        f.done(p);
        f
    }

    /// One call, its answer checked against docs/openapi.json (the interleaving tests use
    /// `call_async` unchecked: the same operations, ~165,000 schedules).
    pub fn call(&self, req: Request) -> Response {
        let r = block_on(self.call_async(req.clone()));
        let headers: Vec<(String, String)> = r.headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let page = crate::app::page::is_page(req.path());
        if let Err(e) = openapi_contract::contract()
            .check(&req.method, req.path(), r.status, &headers, r.body.as_bytes())
            .or_else(|e| if page { Ok(()) } else { Err(e) })
        {
            panic!(
                "{} {} -> {}: the answer differs from docs/openapi.json:\n{e}\n{}",
                req.method, req.url, r.status, r.body
            );
        }
        r
    }

    /// A root admin call on workspace `acme`.
    pub fn admin(&self, method: &str, path_and_query: &str, body: Option<Value>) -> Response {
        self.call(admin_req(method, path_and_query, body, ROOT))
    }

    /// Creates a key as root and returns (id, secret).
    pub fn create_key(&self, name: &str, scopes: &[&str]) -> (String, String) {
        let r = self.admin("POST", "/admin/v1/keys", Some(json!({"name": name, "scopes": scopes})));
        assert_eq!(r.status, 201, "{}", r.body);
        let v = r.json_body();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["key"].as_str().unwrap().to_owned(),
        )
    }

    pub fn key(&self, id: &str) -> Key {
        self.records.key(id).expect("key exists")
    }

    /// What the edge would grant a holder of `secret`: (scopes, effective expiry), or None.
    pub fn edge_grants(&self, hash: &KeyHash) -> Option<(ScopeSet, Option<Millis>)> {
        grants_of_record(self.edge.record(hash).as_ref(), self.now())
    }

    /// What the record grants for this hash.
    pub fn record_grants(&self, hash: &KeyHash) -> Option<(ScopeSet, Option<Millis>)> {
        let snap = self.records.snapshot();
        let k = snap.keys.values().find(|k| k.hash == *hash)?;
        k.is_live(self.now()).then(|| (k.scopes.clone(), k.effective_expiry()))
    }

    /// The security invariant: for a secret someone holds, the edge never grants more than the
    /// record (no scope the record lacks, no life past the record's expiry, nothing at all for
    /// a key the record calls revoked, deleted, disabled or expired, or does not have).
    pub fn assert_edge_within_record(&self, hash: &KeyHash, ctx: &str) {
        self.assert_within_record(self.edge_grants(hash), hash, ctx);
        // And in a location whose KV still shows any earlier value, for an isolate that
        // followed the revocation feed (core::feed fences).
        let f = self.follower();
        for (i, stale) in self.edge.history(hash).into_iter().enumerate() {
            let g = grants_of_record(f.screen(hash, stale.clone(), self.now()).as_ref(), self.now());
            self.assert_within_record(g, hash, &format!("{ctx}: remote KV at edge value #{i} {stale:?}"));
        }
    }

    fn assert_within_record(&self, grants: Option<(ScopeSet, Option<Millis>)>, hash: &KeyHash, ctx: &str) {
        let Some((edge_scopes, edge_exp)) = grants else {
            return;
        };
        let Some((rec_scopes, rec_exp)) = self.record_grants(hash) else {
            panic!(
                "{ctx}: the edge accepts a key the record does not ({:?})",
                self.records
                    .snapshot()
                    .keys
                    .values()
                    .find(|k| k.hash == *hash)
                    .map(|k| k.status)
            );
        };
        assert!(
            rec_scopes.covers(&edge_scopes),
            "{ctx}: edge grants {edge_scopes:?}, record only {rec_scopes:?}"
        );
        let later = match (edge_exp, rec_exp) {
            (None, Some(_)) => true,
            (Some(e), Some(r)) => e > r,
            _ => false,
        };
        assert!(
            !later,
            "{ctx}: edge expiry {edge_exp:?} is later than the record's {rec_exp:?}"
        );
    }

    /// After a reconcile: every record's projection is exactly what the edge holds.
    pub fn assert_consistent(&self, ctx: &str) {
        self.assert_consistent_except(ctx, &[]);
    }

    pub fn assert_consistent_except(&self, ctx: &str, skip: &[&str]) {
        for k in self.records.snapshot().keys.values() {
            if skip.contains(&k.id.as_str()) {
                continue;
            }
            let e = self.edge.record(&k.hash);
            let want = k.edge_record();
            match &e {
                Some(r) if *r == want => {}
                // Two tombstones of different final statuses (a revoke and a delete that raced)
                // grant the same: nothing.
                Some(r) if r.is_tombstone() && k.status.is_final() => {}
                // A key that is not live may also be absent from the edge.
                None if !k.is_live(self.now()) => {}
                _ => panic!("{ctx}: edge {e:?} != projection {want:?}"),
            }
        }
    }
}

pub fn grants_of_record(r: Option<&KeyRecord>, now: Millis) -> Option<(ScopeSet, Option<Millis>)> {
    let r = r?;
    if liveness(r.status, r.expires_at, now) != Liveness::Live {
        return None;
    }
    Some((ScopeSet::parse(&r.scopes).unwrap(), r.expires_at))
}

pub fn hash_of(secret: &str) -> KeyHash {
    KeyHash::of(&ApiKey::parse(secret).unwrap())
}

pub fn admin_req(method: &str, path_and_query: &str, body: Option<Value>, token: &str) -> Request {
    let sep = if path_and_query.contains('?') { '&' } else { '?' };
    let url = if token == ROOT {
        format!("https://kw.test{path_and_query}{sep}workspace=acme")
    } else {
        format!("https://kw.test{path_and_query}")
    };
    let mut r = Request::new(method, &url).with_header("authorization", &format!("Bearer {token}"));
    if let Some(b) = body {
        r = r
            .with_header("content-type", "application/json")
            .with_body(b.to_string());
    }
    r
}

pub fn problem_type(r: &Response) -> String {
    r.json_body()["type"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches("urn:keyward:problem:")
        .to_owned()
}
