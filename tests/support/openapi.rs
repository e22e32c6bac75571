//! Checks an HTTP answer against docs/openapi.json: the status is documented for the operation,
//! the content type is one it lists, the body validates against its schema (JSON Schema 2020-12,
//! formats asserted) and its required headers are present and valid. Shared by the native tests
//! (src/app/tests, every admin/verify call) and the end-to-end suite (every answer it sees from
//! keyward's own routes, and every gateway refusal), so a route, status or member that changes
//! without the document fails a test.
//!
//! Included with `#[path]` by both test crates; depends only on serde_json and jsonschema.

#![allow(dead_code)] // each including crate uses a part of it

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::{Draft, Registry, Validator};
use serde_json::{json, Value};

pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");
/// The document's URI inside the schema registry (never fetched).
const BASE: &str = "urn:keyward:openapi";
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

pub struct Contract {
    doc: &'static Value,
    registry: &'static Registry<'static>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// The document, parsed and indexed once per test process.
pub fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let doc: &'static Value = Box::leak(Box::new(
            serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON"),
        ));
        let registry = Registry::new()
            .add(BASE, doc)
            .and_then(|b| b.prepare())
            .expect("docs/openapi.json registers as a schema resource");
        Contract {
            doc,
            registry: Box::leak(Box::new(registry)),
            validators: Mutex::default(),
        }
    })
}

/// Whether `path` fits the OpenAPI path template segment by segment.
pub fn fits(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(_)) if ts.starts_with('{') && ts.ends_with('}') => {}
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

/// RFC 6901 escaping of one pointer segment.
fn segment(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Contract {
    pub fn doc(&self) -> &'static Value {
        self.doc
    }

    /// (METHOD, path template, operationId) of every operation the document describes.
    pub fn operations(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    let id = op["operationId"].as_str().unwrap_or("").to_owned();
                    out.push((m.to_ascii_uppercase(), path.clone(), id));
                }
            }
        }
        out
    }

    /// The value a `$ref` names within the document, and its pointer.
    fn deref(&self, v: &'static Value, ptr: String) -> (&'static Value, String) {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let p = r.trim_start_matches('#').to_owned();
                let target = self.doc.pointer(&p).unwrap_or(&Value::Null);
                (target, p)
            }
            None => (v, ptr),
        }
    }

    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, String> {
        let mut cache = self.validators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = cache.get(pointer) {
            return Ok(Arc::clone(v));
        }
        // A URI fragment cannot hold the braces of path templates.
        let fragment = pointer.replace('%', "%25").replace('{', "%7B").replace('}', "%7D");
        let v = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .with_registry(self.registry)
            .build(&json!({ "$ref": format!("{BASE}#{fragment}") }))
            .map_err(|e| format!("the document's schema at {pointer} does not compile: {e}"))?;
        let v = Arc::new(v);
        cache.insert(pointer.to_owned(), Arc::clone(&v));
        Ok(v)
    }

    /// Errors of `instance` against the schema at `pointer` (a JSON pointer into the document).
    pub fn validate(&self, pointer: &str, instance: &Value) -> Vec<String> {
        match self.validator(pointer) {
            Err(e) => vec![e],
            Ok(v) => v
                .iter_errors(instance)
                .map(|e| format!("{} (at {}, schema {})", e, e.instance_path(), e.schema_path()))
                .collect(),
        }
    }

    /// Checks an answer to `method` + `path` (no query) against the operation the document gives
    /// for it. An answer to a path or method the document does not describe (404, 405 and the
    /// auth refusals that precede routing) must still be a problem the Problem schema allows.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), String> {
        let m = method.to_ascii_lowercase();
        let mut path_known = false;
        for (template, item) in self.doc["paths"].as_object().into_iter().flatten() {
            if !fits(template, path) {
                continue;
            }
            path_known = true;
            if let Some(op) = item.get(&m) {
                let ptr = format!("/paths/{}/{m}", segment(template));
                return self.check_operation(op, &ptr, status, headers, body);
            }
        }
        // Not an operation: a problem answer, and a 405 for a documented path says what it allows.
        let mut errs = self.check_problem(status, headers, body);
        if path_known && status == 405 && header(headers, "allow").is_none() {
            errs.push("405 without an Allow header".into());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("\n"))
        }
    }

    /// Checks a refusal the gateway gave itself against `x-keyward-gateway`.
    pub fn check_gateway(&self, status: u16, headers: &[(String, String)], body: &[u8]) -> Result<(), String> {
        let gw = &self.doc["x-keyward-gateway"];
        self.check_operation(gw, "/x-keyward-gateway", status, headers, body)
    }

    fn check_problem(&self, status: u16, headers: &[(String, String)], body: &[u8]) -> Vec<String> {
        let mut errs = Vec::new();
        let ct = header(headers, "content-type").unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/problem+json") {
            errs.push(format!(
                "{status} answer with content-type {ct:?}, not application/problem+json"
            ));
            return errs;
        }
        match serde_json::from_slice::<Value>(body) {
            Err(e) => errs.push(format!("problem body is not JSON: {e}")),
            Ok(v) => {
                errs.extend(self.validate("/components/schemas/Problem", &v));
                if v["status"].as_u64() != Some(u64::from(status)) {
                    errs.push(format!(
                        "problem status {} is not the HTTP status {status}",
                        v["status"]
                    ));
                }
            }
        }
        errs
    }

    fn check_operation(
        &self,
        op: &'static Value,
        op_ptr: &str,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), String> {
        let what = op["operationId"].as_str().unwrap_or(op_ptr);
        let code = status.to_string();
        let range = format!("{}XX", status / 100);
        let responses = &op["responses"];
        let (key, resp) = [code.as_str(), range.as_str(), "default"]
            .into_iter()
            .find_map(|k| responses.get(k).map(|r| (k, r)))
            .ok_or_else(|| format!("{what}: status {status} is not documented"))?;
        let (resp, resp_ptr) = self.deref(resp, format!("{op_ptr}/responses/{key}"));
        let mut errs = Vec::new();

        for (name, h) in resp["headers"].as_object().into_iter().flatten() {
            let (h, h_ptr) = self.deref(h, format!("{resp_ptr}/headers/{}", segment(name)));
            match header(headers, name) {
                None if h["required"] == json!(true) => {
                    errs.push(format!("{what} {status}: required header {name} missing"))
                }
                None => {}
                Some(value) => {
                    let instance = match h["schema"]["type"].as_str() {
                        Some("integer") => value.trim().parse::<i64>().map(Value::from).unwrap_or(json!(value)),
                        _ => json!(value),
                    };
                    for e in self.validate(&format!("{h_ptr}/schema"), &instance) {
                        errs.push(format!("{what} {status}: header {name}: {e}"));
                    }
                }
            }
        }

        match resp["content"].as_object() {
            None => {
                if !body.is_empty() {
                    errs.push(format!(
                        "{what} {status}: documented without a body, got {} bytes",
                        body.len()
                    ));
                }
            }
            Some(content) => {
                let ct = header(headers, "content-type").unwrap_or("");
                let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                match content.get(&essence) {
                    None => errs.push(format!(
                        "{what} {status}: content-type {ct:?} is not one of {:?}",
                        content.keys().collect::<Vec<_>>()
                    )),
                    Some(media) => match serde_json::from_slice::<Value>(body) {
                        Err(e) => errs.push(format!("{what} {status}: body is not JSON: {e}")),
                        Ok(v) => {
                            let (_, schema_ptr) = self.deref(
                                &media["schema"],
                                format!("{resp_ptr}/content/{}/schema", segment(&essence)),
                            );
                            for e in self.validate(&schema_ptr, &v) {
                                errs.push(format!("{what} {status}: body: {e}"));
                            }
                        }
                    },
                }
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("\n"))
        }
    }
}
