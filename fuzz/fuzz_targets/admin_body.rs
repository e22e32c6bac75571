//! The real admin and verify handlers, natively over the in-memory stores, with fuzzed JSON bodies.
//!
//! Input: first byte picks the route, the rest is the body:
//!   0 `POST /admin/v1/keys`, 1 `PATCH /admin/v1/keys/<existing id>`, 2 `POST /admin/v1/presets`,
//!   3 `POST /v1/keys/verify`; all as root on workspace `acme`, content-type application/json.
//!
//! Properties: never a 5xx (no storage faults are injected); the body is JSON; a problem body has
//! a `urn:keyward:problem:` type and the HTTP status; no string in the answer carries an ASCII
//! control character, except where the API stores caller text verbatim by design (`description`
//! may hold \n and \t; `metadata`/`meta` is the caller's own JSON object); every instant in an answer
//! is canonical RFC 3339 that keyward reads back; a created key parses,
//! matches its preview, is never cached, and verifies as valid with its own scopes.
#![no_main]

use std::collections::HashMap;
use std::rc::Rc;

use keyward::app::{sync, App, Config, State};
use keyward::core::cache::{KeyCache, SeededHash};
use keyward::core::hash::KeyHash;
use keyward::core::key::ApiKey;
use keyward::core::model::{Key, Status};
use keyward::core::record::KeyRecord;
use keyward::core::scope::ScopeSet;
use keyward::core::time::{format_rfc3339, parse_rfc3339, Millis};
use keyward::core::usage::UsageBatch;
use keyward::http::plain::{Request, Response};
use keyward::store::memory::{block_on, Faults, MemCredits, MemEdge, MemRecords, RecordsState};
use keyward::store::{AuditEntry, NoFeed};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

const NOW: Millis = 1_800_000_000_000;
const ROOT: &str = "root-token";
const BASE_ID: &str = "key_000000000000000000000000";
/// The first golden vector of docs/key-format.md (32 zero bytes): seeds can name it.
const SEED: [u8; 32] = [7u8; 32];
const BASE_SECRET: &str = "kw_live_0000000000000000000000000000000000000000000_0AwA6B";


struct World {
    st: State,
    records: MemRecords,
    edge: MemEdge,
    /// Not reset between inputs: only a top-up changes it, and whether an admin body is valid
    /// never depends on a balance.
    credits: MemCredits,
    /// The stores right after the base key was created: every input starts from here.
    records_at_start: RecordsState,
    edge_at_start: HashMap<KeyHash, KeyRecord>,
}

thread_local! {
    static WORLD: World = World::new();
}

impl World {
    /// One isolate (the route policy is parsed once) holding one key, `BASE_ID`.
    fn new() -> World {
        let config = Config::from_vars(&|n| match n {
            "ORIGIN_URL" => Some("http://origin.test".into()),
            "ADMIN_TOKEN" => Some(ROOT.into()),
            "KEY_CACHE_MAX_ENTRIES" => Some("64".into()),
            _ => None,
        })
        .expect("config");
        let faults = Faults::new();
        let mut w = World {
            st: State::new(config, SEED).expect("state"),
            records: MemRecords::new(Rc::clone(&faults)),
            edge: MemEdge::new(Rc::clone(&faults)),
            credits: MemCredits::new(faults),
            records_at_start: RecordsState::default(),
            edge_at_start: HashMap::new(),
        };
        let secret = ApiKey::generate(&Default::default(), Default::default(), &[0u8; 32]);
        assert_eq!(secret.expose_secret(), BASE_SECRET);
        let key = Key {
            id: BASE_ID.into(),
            workspace: "acme".into(),
            name: "base key".into(),
            description: String::new(),
            hash: KeyHash::of(&secret),
            preview: secret.preview(),
            environment: Default::default(),
            groups: Vec::new(),
            scopes: ScopeSet::parse(&["projects:editor", "events:write", "keys:admin"]).unwrap(),
            metadata: Map::new(),
            created_at: NOW - 1000,
            expires_at: None,
            grace_until: None,
            status: Status::Active,
            revoked_at: None,
            last_used_at: None,
            rotated_from: None,
            superseded_by: None,
            ratelimit: None,
            credits: None,
            version: 1,
        };
        let audit = AuditEntry {
            at: NOW - 1000,
            workspace: "acme".into(),
            actor: "root".into(),
            action: "key.create".into(),
            key_id: Some(BASE_ID.into()),
            detail: json!({}),
        };
        block_on(sync::create(w.app(), &key, &audit, NOW - 1000)).expect("base key");
        w.records_at_start = w.records.snapshot();
        w.edge_at_start = w.edge.snapshot();
        w
    }

    /// Back to the state `new` left: stores, key cache and last-used batch, so each input's
    /// outcome depends on that input alone.
    fn reset(&self) {
        self.records.restore(self.records_at_start.clone());
        self.edge.restore(self.edge_at_start.clone());
        let cfg = self.st.cache.borrow().config();
        *self.st.cache.borrow_mut() = KeyCache::new(cfg, [1, 2]);
        *self.st.usage.borrow_mut() =
            UsageBatch::new(self.st.config.last_used_interval, 10_000, SeededHash::new([3, 4]));
    }

    fn app(&self) -> App<'_, MemRecords, MemEdge> {
        App {
            st: &self.st,
            records: &self.records,
            edge: &self.edge,
            credits: &self.credits,
            // Announcements are not what this target looks at (and a log would only grow).
            feed: &NoFeed,
        }
    }

    fn call(&self, method: &str, path_and_query: &str, body: &[u8]) -> Response {
        let req = Request::new(method, &format!("https://kw.test{path_and_query}"))
            .with_header("authorization", &format!("Bearer {ROOT}"))
            .with_header("content-type", "application/json")
            .with_body(body.to_vec());
        block_on(self.app().handle_api(&req, NOW)).0
    }
}

/// Every string (and member name) in `v`, skipping the members the API keeps verbatim by design.
fn check_strings(v: &Value, path: &str, status: u16, ctx: &str) {
    match v {
        Value::String(s) => {
            let allowed: &[char] = if status < 400 && path.ends_with(".description") {
                &['\n', '\t']
            } else {
                &[]
            };
            if let Some(c) = s.chars().find(|c| c.is_ascii_control() && !allowed.contains(c)) {
                panic!("{ctx}: {path} holds control character {c:?}: {s:?}");
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                check_strings(x, &format!("{path}[{i}]"), status, ctx);
            }
        }
        Value::Object(map) => {
            for (k, x) in map {
                let p = format!("{path}.{k}");
                // The caller's own metadata object, stored and returned as given.
                if status < 400 && (p == ".metadata" || p == ".meta") {
                    continue;
                }
                assert!(!k.chars().any(|c| c.is_ascii_control()), "{ctx}: member name {p:?}");
                check_strings(x, &p, status, ctx);
            }
        }
        _ => {}
    }
}

fn check_response(r: &Response, ctx: &str) -> Value {
    assert!(r.status < 500, "{ctx}: status {} body {}", r.status, r.body);
    let v: Value =
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{ctx}: body is not JSON ({e}): {:?}", r.body));
    if r.status >= 400 {
        assert_eq!(r.header("content-type"), Some("application/problem+json"), "{ctx}");
        let ty = v["type"]
            .as_str()
            .unwrap_or_else(|| panic!("{ctx}: problem without type: {}", r.body));
        assert!(ty.starts_with("urn:keyward:problem:"), "{ctx}: type {ty:?}");
        assert_eq!(v["status"], r.status, "{ctx}: {}", r.body);
    }
    // `key` of a 201 is the freshly minted secret: checked below, not as echoed input.
    let mut shown = v.clone();
    if r.status == 201 {
        if let Some(o) = shown.as_object_mut() {
            o.remove("key");
        }
    }
    check_strings(&shown, "", r.status, ctx);
    check_times(&v, ctx);
    v
}

/// keyward speaks RFC 3339 on the wire: every instant it answers with is in the canonical form
/// `format_rfc3339` writes, and one it would accept back (e.g. as `expires`).
fn check_times(v: &Value, ctx: &str) {
    let Some(o) = v.as_object() else { return };
    for name in [
        "created_at",
        "expires_at",
        "grace_until",
        "valid_until",
        "last_used_at",
        "revoked_at",
    ] {
        if let Some(Value::String(s)) = o.get(name) {
            let back = parse_rfc3339(s).map(format_rfc3339);
            assert_eq!(
                back.as_deref(),
                Some(s.as_str()),
                "{ctx}: {name} {s:?} is not an RFC 3339 instant keyward reads back"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    WORLD.with(|w| run(w, which, body));
});

/// `KEYWARD_FUZZ_DEBUG=1`: print every request and answer (to see what the seeds reach).
fn debug() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("KEYWARD_FUZZ_DEBUG").is_some())
}

fn run(w: &World, which: u8, body: &[u8]) {
    w.reset();
    let (method, path) = match which % 4 {
        0 => ("POST", "/admin/v1/keys?workspace=acme".to_owned()),
        1 => ("PATCH", format!("/admin/v1/keys/{BASE_ID}?workspace=acme")),
        2 => ("POST", "/admin/v1/presets?workspace=acme".to_owned()),
        _ => ("POST", "/v1/keys/verify".to_owned()),
    };
    let ctx = format!("{method} {path} {:?}", String::from_utf8_lossy(body));
    let r = w.call(method, &path, body);
    if debug() {
        eprintln!("{ctx} -> {} {}", r.status, r.body);
    }
    let v = check_response(&r, &ctx);

    if method == "POST" && path.starts_with("/admin/v1/keys") && r.status == 201 {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{ctx}");
        let secret = v["key"].as_str().unwrap_or_else(|| panic!("{ctx}: 201 without key"));
        let key = ApiKey::parse(secret).unwrap_or_else(|e| panic!("{ctx}: minted key does not parse: {e:?}"));
        assert_eq!(v["preview"], key.preview(), "{ctx}");
        // The new key is live at the edge with exactly the scopes the answer lists.
        let scopes = v["scopes"].clone();
        let check = w.call(
            "POST",
            "/v1/keys/verify",
            json!({"key": secret, "scopes": scopes}).to_string().as_bytes(),
        );
        let cv = check_response(&check, &ctx);
        assert_eq!(check.status, 200, "{ctx}: {}", check.body);
        assert_eq!(cv["valid"], true, "{ctx}: {}", check.body);
        assert_eq!(cv["code"], "VALID", "{ctx}");
        assert_eq!(cv["scopes"], scopes, "{ctx}");
    }
    if path == "/v1/keys/verify" && r.status == 200 {
        assert!(v["valid"].is_boolean(), "{ctx}: {}", r.body);
    }
}
