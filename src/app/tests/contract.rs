//! docs/openapi.json against the code: the routes keyward answers are exactly the operations the
//! document describes, and the document served at /openapi.json is that file. (Every answer of
//! the native tests is checked against it in `World::call`; the e2e suite checks every answer it
//! sees, and schemathesis fuzzes the running worker against it.)

use std::collections::BTreeSet;

use serde_json::Value;

use super::openapi_contract::contract;
use super::World;
use crate::app::operations;
use crate::http::plain::Request;

#[test]
fn every_route_is_documented_and_every_documented_operation_is_a_route() {
    let code: BTreeSet<(String, String, String)> = operations()
        .into_iter()
        .map(|(m, p, id)| (m.to_owned(), p.to_owned(), id.to_owned()))
        .collect();
    let doc: BTreeSet<(String, String, String)> = contract().operations().into_iter().collect();
    let undocumented: Vec<_> = code.difference(&doc).collect();
    let unrouted: Vec<_> = doc.difference(&code).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from docs/openapi.json (or with another operationId): {undocumented:?}\n\
         operations in docs/openapi.json that no route answers: {unrouted:?}"
    );
}

#[test]
fn the_document_is_openapi_3_1_and_every_schema_it_points_to_compiles() {
    let doc = contract().doc();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")));
    assert_eq!(
        doc["jsonSchemaDialect"],
        Value::Null,
        "schemas are JSON Schema 2020-12, the 3.1 default"
    );
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        let errs = contract().validate(&format!("/components/schemas/{name}"), &Value::Null);
        assert!(!errs.iter().any(|e| e.contains("does not compile")), "{name}: {errs:?}");
    }
}

#[test]
fn served_at_openapi_json_without_auth() {
    let w = World::new();
    let r = w.call(Request::new("GET", "https://kw.test/openapi.json"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, super::openapi_contract::DOCUMENT);
    assert!(r.header("cache-control").is_some_and(|v| v.contains("max-age")));
    let r = w.call(Request::new("POST", "https://kw.test/openapi.json"));
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
}

#[test]
fn wrong_methods_answer_405_with_allow() {
    let w = World::new();
    let r = w.admin("PUT", "/admin/v1/keys/key_1", None);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, PATCH, DELETE")));
    let r = w.admin("GET", "/admin/v1/keys/key_1/rotate", None);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = w.call(Request::new("GET", "https://kw.test/v1/keys/verify"));
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = w.admin("GET", "/admin/v1/nothing", None);
    assert_eq!(r.status, 404);
    let r = w.admin("GET", "/admin/v1//admin/v1/keys", None);
    assert_eq!(r.status, 404, "one prefix, matched once");
}
