//! The context every trial gets: the worker's address and admin token, HTTP helpers that return any
//! status as a [`Resp`], the echo origin's record, and bookkeeping of every key secret handed out.

use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use libtest_mimic::Failed;
use serde_json::{json, Value};

use crate::http1::{read_body, read_head};
use crate::origin::EchoOrigin;
use crate::util::random_hex;
use crate::wrangler::{LocalD1, PeerSpec};

/// Prefixes a trial failure with what was being checked.
pub trait Context<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, Failed>;
}

impl<T> Context<T> for Result<T, Failed> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, Failed> {
        self.map_err(|e| Failed::from(format!("{what}: {}", e.message().unwrap_or("failed"))))
    }
}

/// A request body.
pub enum Body<'a> {
    None,
    /// Sent with Content-Length.
    Bytes(&'a [u8]),
    /// Sent with `Transfer-Encoding: chunked`.
    Chunked(&'a [u8]),
}

/// A response of any status.
#[derive(Debug, Clone)]
pub struct Resp {
    /// `METHOD url`, for messages.
    pub request: String,
    pub status: u16,
    /// Lowercased names, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// All values of header `name` (case-insensitive).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        crate::util::header_values(&self.headers, name)
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).first().copied()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body with this answer's request id (X-Request-Id, also in a problem's `instance`)
    /// replaced by `<request-id>`: answers that must be identical are identical apart from it.
    pub fn text_without_request_id(&self) -> String {
        match self.header("x-request-id") {
            Some(id) if !id.is_empty() => self.text().replace(id, "<request-id>"),
            _ => self.text(),
        }
    }

    /// The exchange, for failure messages (long bodies cut).
    pub fn describe(&self) -> String {
        let text = self.text();
        let body: String = text.chars().take(1500).collect();
        let cut = if body.len() < text.len() { " [...]" } else { "" };
        let headers: Vec<String> = self.headers.iter().map(|(n, v)| format!("  {n}: {v}")).collect();
        format!(
            "{} -> {}\n{}\n  body: {body}{cut}",
            self.request,
            self.status,
            headers.join("\n")
        )
    }

    fn fail(&self, what: String) -> Failed {
        Failed::from(format!("{what}\n{}", self.describe()))
    }

    /// Ok if the status is `status`.
    pub fn expect_status(&self, status: u16) -> Result<&Self, Failed> {
        if self.status == status {
            Ok(self)
        } else {
            Err(self.fail(format!("expected status {status}, got {}", self.status)))
        }
    }

    /// The body as JSON, whatever the status.
    pub fn json(&self) -> Result<Value, Failed> {
        serde_json::from_slice(&self.body).map_err(|e| self.fail(format!("body is not JSON: {e}")))
    }

    /// Checks the status and returns the JSON body.
    pub fn expect_json(&self, status: u16) -> Result<Value, Failed> {
        self.expect_status(status)?.json()
    }

    /// Checks an RFC 9457 problem with this status: `application/problem+json`, `type`
    /// `urn:keyward:problem:<slug>` (any slug if None), the `status` member, a `title`.
    pub fn expect_problem(&self, status: u16, slug: Option<&str>) -> Result<Value, Failed> {
        self.expect_status(status)?;
        self.problem(slug)
    }

    fn problem(&self, slug: Option<&str>) -> Result<Value, Failed> {
        let ctype = self.header("content-type").unwrap_or_default();
        if !ctype.to_ascii_lowercase().starts_with("application/problem+json") {
            return Err(self.fail(format!("content-type {ctype:?} is not application/problem+json")));
        }
        let problem = self.json()?;
        let kind = problem["type"].as_str().unwrap_or_default();
        match slug {
            Some(slug) if kind != format!("urn:keyward:problem:{slug}") => {
                return Err(self.fail(format!("problem type {kind:?}, expected urn:keyward:problem:{slug}")))
            }
            None if !kind.starts_with("urn:keyward:problem:") => {
                return Err(self.fail(format!("problem type {kind:?} is not urn:keyward:problem:<slug>")))
            }
            _ => {}
        }
        // Every problem names its request (RFC 9457 `instance`), the one in X-Request-Id.
        let rid = self.header("x-request-id").unwrap_or_default();
        if problem["instance"] != format!("urn:keyward:request:{rid}") {
            return Err(self.fail(format!(
                "problem instance {} does not name the request id {rid:?}",
                problem["instance"]
            )));
        }
        if problem["status"].as_u64() != Some(u64::from(self.status)) {
            return Err(self.fail(format!(
                "problem member status is {}, not the HTTP status",
                problem["status"]
            )));
        }
        if !problem["title"].is_string() {
            return Err(self.fail("problem has no string title".into()));
        }
        Ok(problem)
    }

    /// The `WWW-Authenticate` value (exactly one required).
    pub fn www_authenticate(&self) -> Result<&str, Failed> {
        match self.header_values("www-authenticate").as_slice() {
            [one] => Ok(one),
            other => Err(self.fail(format!("expected one WWW-Authenticate header, got {other:?}"))),
        }
    }
}

/// Shared by all trials.
pub struct Ctx {
    pub base: String,
    pub admin_token: String,
    pub origin: EchoOrigin,
    /// TEST_ORIGIN_URL's echo origin: requests made with test keys arrive here.
    pub test_origin: Option<EchoOrigin>,
    pub log_path: PathBuf,
    /// The local D1 database behind the worker (to break it on purpose).
    pub d1: LocalD1,
    /// How to start a second instance on the same state and revocation feed (cases/feed.rs).
    pub peer: Option<PeerSpec>,
    agent: ureq::Agent,
    workspace_seq: AtomicU32,
    run_tag: String,
    /// Every key secret the worker handed out in this run.
    secrets: Mutex<Vec<String>>,
    /// Responses that carried a known secret although they are not the creating response.
    leaks: Mutex<Vec<String>>,
}

/// A fresh client address per request (from 2001:db8::/32, the documentation range: a header
/// value only, no traffic goes there). Local wrangler keeps a client-sent CF-Connecting-IP (the
/// platform overwrites it), so the many invalid keys this suite sends never add up to one
/// client's failed-attempt budget; the throttling cases send a fixed address of their own.
pub fn client_address() -> String {
    let h = random_hex(4);
    format!("2001:db8::{}:{}", &h[..4], &h[4..])
}

/// Every answer keyward gives itself carries X-Request-Id (those from the echo origin need not).
fn expect_request_id(resp: &Resp) -> Result<(), Failed> {
    if resp.header("x-echo-origin").is_some() || resp.header("x-request-id").is_some_and(|v| !v.is_empty()) {
        return Ok(());
    }
    Err(resp.fail("keyward's answer has no X-Request-Id".into()))
}

/// Every answer from keyward's own routes must be one docs/openapi.json describes for the
/// operation, and every refusal the gateway gives itself one its `x-keyward-gateway` lists (an
/// answer from the echo origin is the origin's business).
fn check_contract(method: &str, path: &str, resp: &Resp) -> Result<(), Failed> {
    let route = path.split(['?', '#']).next().unwrap_or_default();
    if route == "/admin/v1/_conformance" || route == "/admin/v1/_plans" {
        // The test deployments' storage-contract and query-plan routes, not part of the API.
        return Ok(());
    }
    if matches!(route, "/admin/" | "/admin/admin.js" | "/admin/admin.css") {
        // The admin page's static files (web/admin/), not API operations.
        return Ok(());
    }
    let own = route.starts_with("/admin/") || route == "/v1/keys/verify" || route == "/openapi.json";
    let contract = crate::openapi::contract();
    let checked = if own {
        contract.check(method, route, resp.status, &resp.headers, &resp.body)
    } else if resp.header("x-echo-origin").is_none() {
        contract.check_gateway(resp.status, &resp.headers, &resp.body)
    } else {
        Ok(())
    };
    checked.map_err(|e| resp.fail(format!("the answer differs from docs/openapi.json:\n{e}")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `/admin/v1/keys/{id}{action}?workspace={ws}`, `action` being "" or e.g. "/revoke".
pub fn key_path(ws: &str, id: &str, action: &str) -> String {
    format!("/admin/v1/keys/{id}{action}?workspace={ws}")
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The string `field` of a JSON object, or a failure naming it.
pub fn str_field<'a>(v: &'a Value, field: &str) -> Result<&'a str, Failed> {
    v[field]
        .as_str()
        .ok_or_else(|| Failed::from(format!("expected a string `{field}` in {v}")))
}

/// A JSON array of strings as a set (scope lists are compared as sets).
pub fn str_set(v: &Value) -> Result<BTreeSet<String>, Failed> {
    let items = v
        .as_array()
        .ok_or_else(|| Failed::from(format!("expected an array of strings, got {v}")))?;
    items
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| Failed::from(format!("non-string in {v}")))
        })
        .collect()
}

pub fn set_of(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Ctx {
    pub fn new(base: String, admin_token: String, origin: EchoOrigin, log_path: PathBuf, d1: LocalD1) -> Self {
        Ctx {
            base,
            admin_token,
            origin,
            test_origin: None,
            log_path,
            d1,
            peer: None,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .redirects(0)
                .build(),
            workspace_seq: AtomicU32::new(0),
            run_tag: random_hex(3),
            secrets: Mutex::default(),
            leaks: Mutex::default(),
        }
    }

    /// A workspace id no other trial uses.
    pub fn workspace(&self, prefix: &str) -> String {
        let n = self.workspace_seq.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{n}-{}", self.run_tag)
    }

    /// A path segment no other request uses (to find the origin's record of one request).
    pub fn nonce(&self) -> String {
        random_hex(6)
    }

    /// Any request; any status is an Ok(Resp). Err only when no HTTP answer came.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Result<Resp, Failed> {
        self.request_at(&self.base, method, path, headers, body)
    }

    /// The same, to another instance of the worker (`base`: its http://host:port).
    pub fn request_at(
        &self,
        base: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Result<Resp, Failed> {
        let url = format!("{base}{path}");
        let request = format!("{method} {url}");
        let mut req = self.agent.request(method, &url);
        for (name, value) in headers {
            req = req.set(name, value);
        }
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("cf-connecting-ip")) {
            req = req.set("cf-connecting-ip", &client_address());
        }
        let result = match body {
            Body::None => req.call(),
            Body::Bytes(bytes) => req.send_bytes(bytes),
            Body::Chunked(bytes) => req.send(std::io::Cursor::new(bytes)),
        };
        let resp = match result {
            Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
            Err(ureq::Error::Transport(e)) => return Err(format!("{request}: no HTTP answer: {e}").into()),
        };
        let status = resp.status();
        let mut names = resp.headers_names();
        names.sort();
        names.dedup();
        let headers = names
            .iter()
            .flat_map(|n| resp.all(n).into_iter().map(move |v| (n.clone(), v.to_owned())))
            .collect();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut body)
            .map_err(|e| format!("{request}: reading the body: {e}"))?;
        let resp = Resp {
            request,
            status,
            headers,
            body,
        };
        self.note_leaks(method, path, &resp);
        expect_request_id(&resp)?;
        check_contract(method, path, &resp)?;
        Ok(resp)
    }

    /// Sends a bodiless request on a new connection with `headers` written verbatim and in order
    /// (plus `host` and `connection: close`), e.g. to repeat a header field, which ureq cannot.
    pub fn raw_request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<Resp, Failed> {
        let addr = self.base.trim_start_matches("http://");
        let request = format!("{method} {}{path} (raw)", self.base);
        let err = |e: std::io::Error| Failed::from(format!("{request}: {e}"));
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("cf-connecting-ip")) {
            head.push_str(&format!("cf-connecting-ip: {}\r\n", client_address()));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut stream = TcpStream::connect(addr).map_err(err)?;
        stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(err)?;
        stream.write_all(head.as_bytes()).map_err(err)?;
        let mut reader = BufReader::new(stream);
        let parsed = read_head(&mut reader)
            .map_err(err)?
            .ok_or_else(|| format!("{request}: no answer"))?;
        let status = parsed
            .start_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{request}: bad status line {:?}", parsed.start_line))?;
        let body = read_body(&mut reader, &parsed, true).map_err(err)?;
        let resp = Resp {
            request,
            status,
            headers: parsed.headers,
            body,
        };
        self.note_leaks(method, path, &resp);
        expect_request_id(&resp)?;
        check_contract(method, path, &resp)?;
        Ok(resp)
    }

    /// keyward's JSON log lines (see src/log.rs) about request `request_id`, waiting up to 10 s
    /// for at least `at_least` of them to reach wrangler's log.
    pub fn log_lines(&self, request_id: &str, at_least: usize) -> Result<Vec<Value>, Failed> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(&self.log_path)
                .map_err(|e| format!("cannot read the wrangler log {}: {e}", self.log_path.display()))?;
            let lines: Vec<Value> = log
                .lines()
                .filter(|l| l.contains(request_id))
                // wrangler prints console.error lines between colour codes: read the one JSON
                // object from the first `{` and ignore what follows it.
                .filter_map(|l| {
                    let json = &l[l.find('{')?..];
                    serde_json::Deserializer::from_str(json)
                        .into_iter::<Value>()
                        .next()?
                        .ok()
                })
                .filter(|v| v["request_id"] == request_id)
                .collect();
            if lines.len() >= at_least || std::time::Instant::now() > deadline {
                return Ok(lines);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A gateway request with `Authorization: Bearer <key>`.
    pub fn gateway(&self, method: &str, path: &str, key: &str) -> Result<Resp, Failed> {
        self.request(method, path, &[("authorization", &bearer(key))], Body::None)
    }

    /// An admin API request as root (`path` includes any query, e.g. `?workspace=ws`).
    pub fn admin(&self, method: &str, path: &str, json: Option<&Value>) -> Result<Resp, Failed> {
        self.admin_as(&self.admin_token, method, path, json)
    }

    /// An admin (or verify) API request with the given bearer token and optional JSON body.
    pub fn admin_as(&self, token: &str, method: &str, path: &str, json: Option<&Value>) -> Result<Resp, Failed> {
        let auth = bearer(token);
        let mut headers = vec![("authorization", auth.as_str())];
        match json {
            None => self.request(method, path, &headers, Body::None),
            Some(json) => {
                headers.push(("content-type", "application/json"));
                self.request(method, path, &headers, Body::Bytes(json.to_string().as_bytes()))
            }
        }
    }

    /// `POST /v1/keys/verify` (no auth) with a JSON body.
    pub fn verify(&self, json: &Value) -> Result<Resp, Failed> {
        let body = json.to_string();
        self.request(
            "POST",
            "/v1/keys/verify",
            &[("content-type", "application/json")],
            Body::Bytes(body.as_bytes()),
        )
    }

    /// Creates a key as root in `ws`; expects 201 with `key`. Returns (plaintext, key object).
    pub fn create_key(&self, ws: &str, body: Value) -> Result<(String, Value), Failed> {
        self.create_key_as(&self.admin_token, &format!("/admin/v1/keys?workspace={ws}"), body)
    }

    /// Creates a key with `token` at `path` (`/admin/v1/keys` plus any query); expects 201.
    pub fn create_key_as(&self, token: &str, path: &str, body: Value) -> Result<(String, Value), Failed> {
        let resp = self.admin_as(token, "POST", path, Some(&body))?;
        self.issued(&resp, 201)
    }

    /// Rotates key `id` of `ws` as root; expects 201 with `key`. Returns (plaintext, new key object).
    pub fn rotate_key(&self, ws: &str, id: &str, body: Value) -> Result<(String, Value), Failed> {
        let resp = self.admin("POST", &key_path(ws, id, "/rotate"), Some(&body))?;
        self.issued(&resp, 201)
    }

    /// `GET` key `id` of `ws` as root; expects 200.
    pub fn get_key(&self, ws: &str, id: &str) -> Result<Value, Failed> {
        self.admin("GET", &key_path(ws, id, ""), None)?.expect_json(200)
    }

    /// Revokes key `id` of `ws` as root; expects 200.
    pub fn revoke_key(&self, ws: &str, id: &str) -> Result<Value, Failed> {
        self.admin("POST", &key_path(ws, id, "/revoke"), None)?.expect_json(200)
    }

    /// Deletes key `id` of `ws` as root; expects 204.
    pub fn delete_key(&self, ws: &str, id: &str) -> Result<(), Failed> {
        self.admin("DELETE", &key_path(ws, id, ""), None)?.expect_status(204)?;
        Ok(())
    }

    /// Three sdk keys of `ws`: one live, one revoked, one deleted (their secrets, in that order).
    pub fn good_revoked_deleted(&self, ws: &str) -> Result<(String, String, String), Failed> {
        let (good, _) = self.create_key(ws, json!({"name": "good key", "preset": "sdk"}))?;
        let (revoked, revoked_obj) = self.create_key(ws, json!({"name": "revoked key", "preset": "sdk"}))?;
        let (deleted, deleted_obj) = self.create_key(ws, json!({"name": "deleted key", "preset": "sdk"}))?;
        self.revoke_key(ws, str_field(&revoked_obj, "id")?)?;
        self.delete_key(ws, str_field(&deleted_obj, "id")?)?;
        Ok((good, revoked, deleted))
    }

    /// Checks a response that issues a secret (create, rotate) and remembers the secret.
    fn issued(&self, resp: &Resp, status: u16) -> Result<(String, Value), Failed> {
        let mut obj = resp.expect_json(status)?;
        let key = str_field(&obj, "key")?.to_owned();
        lock(&self.secrets).push(key.clone());
        let no_store = resp
            .header("cache-control")
            .is_some_and(|v| v.to_ascii_lowercase().contains("no-store"));
        ensure!(
            no_store,
            "a response carrying a secret must have Cache-Control: no-store\n{}",
            resp.describe()
        );
        if let Some(map) = obj.as_object_mut() {
            map.remove("key");
        }
        Ok((key, obj))
    }

    /// A secret handed out to someone else (the browser test reads them from the page), so the
    /// final check looks for it too.
    pub fn remember_secret(&self, secret: String) {
        lock(&self.secrets).push(secret);
    }

    /// Every secret handed out so far.
    pub fn secrets(&self) -> Vec<String> {
        lock(&self.secrets).clone()
    }

    /// Descriptions of responses that echoed a secret where they must not.
    pub fn leaks(&self) -> Vec<String> {
        lock(&self.leaks).clone()
    }

    fn note_leaks(&self, method: &str, path: &str, resp: &Resp) {
        let route = path.split('?').next().unwrap_or_default();
        let issuing = method == "POST"
            && (route == "/admin/v1/keys" || (route.starts_with("/admin/v1/keys/") && route.ends_with("/rotate")));
        if issuing && (200..300).contains(&resp.status) {
            return;
        }
        let text = resp.text();
        let in_headers = |s: &str| resp.headers.iter().any(|(_, v)| v.contains(s));
        let leaked = lock(&self.secrets)
            .iter()
            .any(|s| text.contains(s.as_str()) || in_headers(s));
        if leaked {
            lock(&self.leaks).push(resp.describe());
        }
    }
}
