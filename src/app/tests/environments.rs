//! Live and test keys, deployment key prefixes, route environments, and the scope format and
//! per-resource roles a deployment's policy can declare.

use serde_json::json;

use super::routes::{gateway, verify};
use super::*;
use crate::app::gateway::{self as gw, Prepared};
use crate::core::key::{ApiKey, Environment, KeyPrefix};
use crate::http::head::Head;

fn create(w: &World, token: &str, body: Value) -> Response {
    w.call(admin_req("POST", "/admin/v1/keys", Some(body), token))
}

#[test]
fn keys_are_live_by_default_and_test_on_request() {
    let w = World::new();
    let r = create(&w, ROOT, json!({"name": "prod", "scopes": ["projects:viewer"]}));
    assert_eq!(r.status, 201, "{}", r.body);
    let live = r.json_body();
    assert_eq!(live["environment"], "live");
    let live_secret = live["key"].as_str().unwrap();
    assert!(live_secret.starts_with("kw_live_"));
    assert!(live["preview"].as_str().unwrap().starts_with("kw_live_..."));

    let r = create(
        &w,
        ROOT,
        json!({"name": "key ci", "scopes": ["projects:viewer"], "environment": "test"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let test = r.json_body();
    assert_eq!(test["environment"], "test");
    let test_secret = test["key"].as_str().unwrap();
    assert!(test_secret.starts_with("kw_test_"));
    assert!(test["preview"].as_str().unwrap().starts_with("kw_test_..."));
    let got = w.admin("GET", &format!("/admin/v1/keys/{}", test["id"].as_str().unwrap()), None);
    assert_eq!(got.json_body()["environment"], "test");

    // The environment reaches the origin as the identity's last line, and the verify API.
    let id = |s: &str| gateway(&w, "GET", "/projects/1", Some(&format!("Bearer {s}"))).unwrap();
    assert!(
        id(live_secret).ends_with("\nprojects:viewer\nlive\n"),
        "{}",
        id(live_secret)
    );
    assert!(
        id(test_secret).ends_with("\nprojects:viewer\ntest\n"),
        "{}",
        id(test_secret)
    );
    assert_eq!(verify(&w, test_secret, &[])["environment"], "test");
    assert_eq!(verify(&w, live_secret, &[])["environment"], "live");

    // Rotation keeps the environment.
    let rot = w.admin(
        "POST",
        &format!("/admin/v1/keys/{}/rotate", test["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(rot.status, 201, "{}", rot.body);
    assert!(rot.json_body()["key"].as_str().unwrap().starts_with("kw_test_"));
    assert_eq!(rot.json_body()["environment"], "test");

    // The audit entry says which environment was issued.
    let audit = w.admin("GET", "/admin/v1/audit?limit=100", None).json_body();
    let created: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "key.create")
        .collect();
    assert!(created.iter().any(|e| e["detail"]["environment"] == "test"), "{audit}");
}

#[test]
fn environment_input_is_validated_and_cannot_be_edited() {
    let w = World::new();
    for bad in [json!("prod"), json!("LIVE"), json!(""), json!(1), json!(null)] {
        let r = create(
            &w,
            ROOT,
            json!({"name": "key x", "scopes": ["projects:viewer"], "environment": bad}),
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.body.contains("environment"), "{}", r.body);
    }
    let (id, _) = w.create_key("key k", &["projects:viewer"]);
    let r = w.admin(
        "PATCH",
        &format!("/admin/v1/keys/{id}"),
        Some(json!({"environment": "test"})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("cannot be changed"), "{}", r.body);
    assert_eq!(w.key(&id).environment, Environment::Live);
}

#[test]
fn a_test_admin_key_issues_and_changes_test_keys_only() {
    let w = World::new();
    let r = create(
        &w,
        ROOT,
        json!({"name": "ci admin", "scopes": ["keys:admin", "projects:*"], "environment": "test"}),
    );
    let test_admin = r.json_body()["key"].as_str().unwrap().to_owned();
    let (live_id, _) = w.create_key("prod", &["projects:viewer"]);

    let r = create(
        &w,
        &test_admin,
        json!({"name": "sneaky", "scopes": ["projects:viewer"]}),
    );
    assert_eq!(
        (r.status, problem_type(&r)),
        (403, "environment-forbidden".into()),
        "{}",
        r.body
    );
    let r = create(
        &w,
        &test_admin,
        json!({"name": "sneaky", "scopes": ["projects:viewer"], "environment": "live"}),
    );
    assert_eq!(r.status, 403);
    let r = create(
        &w,
        &test_admin,
        json!({"name": "fine", "scopes": ["projects:viewer"], "environment": "test"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let test_id = r.json_body()["id"].as_str().unwrap().to_owned();

    for (method, path) in [
        ("POST", format!("/admin/v1/keys/{live_id}/revoke")),
        ("POST", format!("/admin/v1/keys/{live_id}/deactivate")),
        ("POST", format!("/admin/v1/keys/{live_id}/rotate")),
        ("DELETE", format!("/admin/v1/keys/{live_id}")),
    ] {
        let r = w.call(admin_req(method, &path, None, &test_admin));
        assert_eq!(
            (r.status, problem_type(&r)),
            (403, "environment-forbidden".into()),
            "{method} {path}"
        );
    }
    let r = w.call(admin_req(
        "PATCH",
        &format!("/admin/v1/keys/{live_id}"),
        Some(json!({"name": "key x"})),
        &test_admin,
    ));
    assert_eq!(r.status, 403);
    assert_eq!(w.key(&live_id).status, crate::core::model::Status::Active);
    let r = w.call(admin_req(
        "POST",
        &format!("/admin/v1/keys/{test_id}/revoke"),
        None,
        &test_admin,
    ));
    assert_eq!(r.status, 200, "{}", r.body);

    // A live admin key manages both.
    let r = create(
        &w,
        ROOT,
        json!({"name": "prod admin", "scopes": ["keys:admin", "projects:*"]}),
    );
    let live_admin = r.json_body()["key"].as_str().unwrap().to_owned();
    let r = create(
        &w,
        &live_admin,
        json!({"name": "key t2", "scopes": ["projects:viewer"], "environment": "test"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

const ROUTE_ENV_POLICY: &str = r#"{
  "realm": "keyward",
  "resources": {"projects": [], "keys": []},
  "presets": {},
  "routes": [
    {"method": "GET", "path": "/live-only", "scopes": ["projects:viewer"], "environment": "live"},
    {"method": "GET", "path": "/sandbox/**", "scopes": [], "environment": "test"},
    {"method": "GET", "path": "/projects/*", "scopes": ["projects:viewer"]}
  ]
}"#;

#[test]
fn a_route_can_accept_one_environment_only() {
    let w = World::with(&[], ROUTE_ENV_POLICY);
    let live = create(&w, ROOT, json!({"name": "key l", "scopes": ["projects:viewer"]})).json_body();
    let test = create(
        &w,
        ROOT,
        json!({"name": "key t", "scopes": ["projects:viewer"], "environment": "test"}),
    )
    .json_body();
    let bearer = |v: &Value| format!("Bearer {}", v["key"].as_str().unwrap());
    assert!(gateway(&w, "GET", "/live-only", Some(&bearer(&live))).is_ok());
    assert_eq!(
        gateway(&w, "GET", "/live-only", Some(&bearer(&test))),
        Err((403, "wrong-environment".into()))
    );
    assert!(gateway(&w, "GET", "/sandbox/x", Some(&bearer(&test))).is_ok());
    assert_eq!(
        gateway(&w, "GET", "/sandbox/x", Some(&bearer(&live))),
        Err((403, "wrong-environment".into()))
    );
    assert!(gateway(&w, "GET", "/projects/1", Some(&bearer(&live))).is_ok());
    assert!(gateway(&w, "GET", "/projects/1", Some(&bearer(&test))).is_ok());
    // An invalid key is still the one uniform 401 on a restricted route.
    assert_eq!(
        gateway(&w, "GET", "/live-only", Some("Bearer kw_test_nope")),
        Err((401, "invalid-token".into()))
    );
    let p = Response::problem(
        &crate::http::problem::ApiError::WrongEnvironment {
            accepted: Environment::Live,
        },
        "k",
    );
    assert_eq!(p.json_body()["environment"], "live");

    for bad in [
        r#"{"method": "GET", "path": "/x", "scopes": [], "environment": "prod"}"#,
        r#"{"method": "GET", "path": "/x", "scopes": [], "public": true, "environment": "live"}"#,
    ] {
        let policy = ROUTE_ENV_POLICY.replace(
            r#"{"method": "GET", "path": "/projects/*", "scopes": ["projects:viewer"]}"#,
            bad,
        );
        assert!(crate::core::policy::Policy::from_json(&policy).is_err(), "{bad}");
    }
}

fn prepared_keyed(w: &World, secret: &str) -> Result<bool, u16> {
    let head = Head::new(format!("GET\nhttps://kw.test/projects/1\n192.0.2.1\nBearer {secret}"));
    match gw::prepare(&w.st.policy, &w.st.config.keys, &head) {
        Ok(Prepared::Keyed(..)) => Ok(true),
        Ok(Prepared::Public(_)) => Ok(false),
        Err(e) => Err(e.status()),
    }
}

#[test]
fn a_deployment_mints_its_prefix_and_refuses_others_before_any_lookup() {
    let w = World::with(&[("KEY_PREFIX", "acme")], include_str!("../../../config/policy.json"));
    let r = create(
        &w,
        ROOT,
        json!({"name": "key a", "scopes": ["projects:viewer"], "environment": "test"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.json_body()["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("acme_test_"), "{secret}");
    assert!(r.json_body()["preview"].as_str().unwrap().starts_with("acme_test_..."));
    assert!(gateway(&w, "GET", "/projects/1", Some(&format!("Bearer {secret}"))).is_ok());
    assert_eq!(verify(&w, &secret, &[])["valid"], true);

    // A well-formed key of another prefix is refused at parse: no hash, no storage read.
    let kw = ApiKey::generate(&KeyPrefix::default(), Environment::Live, &[1; 32]);
    assert_eq!(prepared_keyed(&w, kw.expose_secret()), Err(401));
    let reads = w.edge.reads();
    assert_eq!(verify(&w, kw.expose_secret(), &[])["code"], "NOT_FOUND");
    assert_eq!(
        w.edge.reads(),
        reads,
        "the verify API read storage for a foreign prefix"
    );
    // ...unless the deployment still accepts it (after renaming kw -> acme).
    let renamed = World::with(
        &[("KEY_PREFIX", "acme"), ("KEY_PREFIXES_ACCEPTED", "kw")],
        include_str!("../../../config/policy.json"),
    );
    assert_eq!(prepared_keyed(&renamed, kw.expose_secret()), Ok(true));
    // A test key whose prefix is relabelled live fails its checksum.
    let relabelled = secret.replacen("acme_test_", "acme_live_", 1);
    assert_eq!(prepared_keyed(&w, &relabelled), Err(401));
}

/// A deployment whose API names permissions `trace.read`, with a product's own role lists.
const DOTTED_POLICY: &str = r#"{
  "realm": "keyward",
  "scope_format": "resource.permission",
  "resources": {
    "org": {"roles": ["member", "admin"]},
    "namespace": {"roles": ["admin"]},
    "project": {"roles": ["discoverer", "viewer", "editor", "owner"]},
    "agent": {"roles": ["discoverer", "viewer", "editor", "owner"], "permissions": ["run"],
              "aliases": {"executor": ["viewer", "run"]}},
    "trace": ["read", "write"],
    "keys": []
  },
  "presets": {"tracing": {"description": "read traces", "scopes": ["trace.read", "org.member"]}},
  "routes": [
    {"method": "GET", "path": "/traces", "scopes": ["trace.read"]},
    {"method": "POST", "path": "/traces", "scopes": ["trace.write"]},
    {"method": "GET", "path": "/org", "scopes": ["org.member"]},
    {"method": "DELETE", "path": "/org", "scopes": ["org.admin"]},
    {"method": "POST", "path": "/agents/*/run", "scopes": ["agent.run"]}
  ]
}"#;

#[test]
fn a_dotted_scope_format_is_parsed_granted_and_forwarded_in_that_form() {
    let w = World::with(&[], DOTTED_POLICY);
    let r = create(
        &w,
        ROOT,
        json!({"name": "key t", "scopes": ["trace.read", "org.admin"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json_body();
    assert_eq!(v["scopes"], json!(["org.admin", "org.member", "trace.read"]));
    let auth = format!("Bearer {}", v["key"].as_str().unwrap());
    let id = gateway(&w, "GET", "/traces", Some(&auth)).unwrap();
    assert!(id.ends_with("\norg.admin org.member trace.read\nlive\n"), "{id}");
    assert!(gateway(&w, "GET", "/org", Some(&auth)).is_ok(), "admin implies member");
    assert!(gateway(&w, "DELETE", "/org", Some(&auth)).is_ok());
    assert_eq!(
        gateway(&w, "POST", "/traces", Some(&auth)),
        Err((403, "insufficient-scope".into()))
    );
    let secret = v["key"].as_str().unwrap();
    let ok = verify(&w, secret, &["trace.read", "org.member"]);
    assert_eq!(
        (ok["valid"].clone(), ok["scopes"].clone()),
        (json!(true), v["scopes"].clone())
    );
    let missing = verify(&w, secret, &["trace.write"]);
    assert_eq!(missing["missing"], json!(["trace.write"]));

    // The colon form is not this deployment's form.
    let r = create(&w, ROOT, json!({"name": "key c", "scopes": ["trace:read"]}));
    assert_eq!(r.status, 400, "{}", r.body);
    // Presets expand and show in the dotted form.
    let r = create(&w, ROOT, json!({"name": "key p", "preset": "tracing"}));
    assert_eq!(r.json_body()["scopes"], json!(["org.member", "trace.read"]));
    let presets = w.admin("GET", "/admin/v1/presets", None).json_body();
    assert_eq!(presets["items"][0]["scopes"], json!(["org.member", "trace.read"]));
    let r = w.admin(
        "POST",
        "/admin/v1/presets",
        Some(json!({"name": "agents", "scopes": ["agent.executor"]})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json_body()["scopes"], json!(["agent.run", "agent.viewer"]));
}

#[test]
fn a_role_its_resource_does_not_have_is_refused_with_400() {
    let w = World::with(&[], DOTTED_POLICY);
    for (scopes, says) in [
        (json!(["org.viewer"]), "(roles: member, admin)"),
        (json!(["namespace.member"]), "(roles: admin)"),
        (json!(["project.admin"]), "(roles: discoverer, viewer, editor, owner)"),
        (json!(["org.executor"]), "'executor'"),
        (json!(["trace.delete"]), "has no role or permission 'delete'"),
        (json!(["billing.read"]), "unknown resource"),
    ] {
        let r = create(&w, ROOT, json!({"name": "key x", "scopes": scopes}));
        assert_eq!(r.status, 400, "{scopes}: {}", r.body);
        assert!(r.body.contains(says), "{scopes}: {}", r.body);
        let field = &r.json_body()["errors"][0]["field"];
        assert_eq!(field, "scopes");
    }
    // The legacy executor reads as viewer and still grants agent.run.
    let r = create(&w, ROOT, json!({"name": "legacy", "scopes": ["agent.executor"]}));
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json_body();
    assert_eq!(v["scopes"], json!(["agent.run", "agent.viewer"]));
    let auth = format!("Bearer {}", v["key"].as_str().unwrap());
    assert!(gateway(&w, "POST", "/agents/7/run", Some(&auth)).is_ok());

    // Narrowing org.admin -> org.member goes edge-first like any narrowing: the edge never
    // grants more than the record after a failed write.
    let r = create(&w, ROOT, json!({"name": "boss", "scopes": ["org.admin"]}));
    let id = r.json_body()["id"].as_str().unwrap().to_owned();
    let hash = hash_of(r.json_body()["key"].as_str().unwrap());
    let before = w.key(&id);
    let after = before.next(|k| k.scopes = w.st.policy.catalog.parse_grant(&["org.member"]).unwrap());
    assert!(before.narrows_to(&after));
    let r = w.admin(
        "PATCH",
        &format!("/admin/v1/keys/{id}"),
        Some(json!({"scopes": ["org.member"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json_body()["scopes"], json!(["org.member"]));
    w.assert_edge_within_record(&hash, "after narrowing a custom role");
}

fn groups_of(w: &World, id: &str) -> Vec<String> {
    w.key(id).groups
}

#[test]
fn sharing_groups_are_forwarded_and_deleting_one_removes_it_from_keys() {
    let w = World::new();
    for g in ["design", "ops"] {
        let r = w.admin(
            "POST",
            "/admin/v1/groups",
            Some(json!({"name": g, "description": "team"})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = w.admin("POST", "/admin/v1/groups", Some(json!({"name": "ops"})));
    assert_eq!((r.status, problem_type(&r)), (409, "name-conflict".into()));
    for bad in ["", "Ops", "a", "o p", "ops!"] {
        let r = w.admin("POST", "/admin/v1/groups", Some(json!({"name": bad})));
        assert_eq!(r.status, 400, "{bad:?}");
    }
    let list = w.admin("GET", "/admin/v1/groups", None).json_body();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["design", "ops"]);

    // Unknown groups are refused; groups are sorted and deduplicated.
    let r = create(
        &w,
        ROOT,
        json!({"name": "member", "scopes": ["projects:viewer"], "groups": ["nope"]}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("unknown group 'nope'"), "{}", r.body);
    let r = create(
        &w,
        ROOT,
        json!({"name": "member", "scopes": ["projects:viewer"], "groups": ["ops", "design", "ops"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json_body();
    assert_eq!(v["groups"], json!(["design", "ops"]));
    let id = v["id"].as_str().unwrap().to_owned();
    let secret = v["key"].as_str().unwrap().to_owned();
    let hash = hash_of(&secret);
    let auth = format!("Bearer {secret}");
    assert!(gateway(&w, "GET", "/projects/1", Some(&auth))
        .unwrap()
        .ends_with("\nlive\ndesign ops"));
    assert_eq!(verify(&w, &secret, &[])["groups"], json!(["design", "ops"]));

    // Deleting a group takes it off the key in the record and at the edge at once.
    let r = w.admin("DELETE", "/admin/v1/groups/design", None);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(groups_of(&w, &id), ["ops"]);
    assert_eq!(w.edge.record(&hash).unwrap().groups, ["ops"]);
    assert!(gateway(&w, "GET", "/projects/1", Some(&auth))
        .unwrap()
        .ends_with("\nlive\nops"));
    assert_eq!(w.admin("DELETE", "/admin/v1/groups/design", None).status, 404);
    let audit = w.admin("GET", "/admin/v1/audit?limit=100", None).json_body();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"group.delete") && actions.contains(&"group.create"),
        "{actions:?}"
    );

    // PATCH replaces the memberships; leaving a group narrows the key (edge first).
    let r = w.admin("PATCH", &format!("/admin/v1/keys/{id}"), Some(json!({"groups": []})));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json_body()["groups"], json!([]));
    assert!(w.key(&id).groups.is_empty());
    w.assert_consistent("after groups changes");
}

#[test]
fn a_key_admin_changes_memberships_only_of_its_own_groups() {
    let w = World::new();
    for g in ["design", "ops"] {
        assert_eq!(
            w.admin("POST", "/admin/v1/groups", Some(json!({"name": g}))).status,
            201
        );
    }
    let r = create(
        &w,
        ROOT,
        json!({"name": "design admin", "scopes": ["keys:admin", "projects:*"], "groups": ["design"]}),
    );
    let admin = r.json_body()["key"].as_str().unwrap().to_owned();
    let r = create(
        &w,
        &admin,
        json!({"name": "in design", "scopes": ["projects:viewer"], "groups": ["design"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json_body()["id"].as_str().unwrap().to_owned();
    let r = create(
        &w,
        &admin,
        json!({"name": "in ops", "scopes": ["projects:viewer"], "groups": ["ops"]}),
    );
    assert_eq!(
        (r.status, problem_type(&r)),
        (403, "group-forbidden".into()),
        "{}",
        r.body
    );
    let r = w.call(admin_req(
        "PATCH",
        &format!("/admin/v1/keys/{id}"),
        Some(json!({"groups": ["design", "ops"]})),
        &admin,
    ));
    assert_eq!(r.status, 403);
    let (ops_id, _) = {
        let r = create(
            &w,
            ROOT,
            json!({"name": "ops key", "scopes": ["projects:viewer"], "groups": ["ops"]}),
        );
        (r.json_body()["id"].as_str().unwrap().to_owned(), ())
    };
    // Removing a key from a group the admin is not in is refused too; so is deleting that group.
    let r = w.call(admin_req(
        "PATCH",
        &format!("/admin/v1/keys/{ops_id}"),
        Some(json!({"groups": []})),
        &admin,
    ));
    assert_eq!(r.status, 403);
    let r = w.call(admin_req("DELETE", "/admin/v1/groups/ops", None, &admin));
    assert_eq!(r.status, 403);
    assert_eq!(groups_of(&w, &ops_id), ["ops"]);
    let r = w.call(admin_req(
        "POST",
        &format!("/admin/v1/keys/{ops_id}/rotate"),
        None,
        &admin,
    ));
    assert_eq!(r.status, 403, "rotating mints a new key in the group: {}", r.body);
}

#[test]
fn a_group_deleted_while_a_key_joins_it_does_not_stay_on_the_key() {
    // Every interleaving of "PATCH key into group" with "DELETE group": afterwards no key lists
    // a group that does not exist, in the record or at the edge.
    use super::races::{drive, for_every_schedule, Call};
    let runs = for_every_schedule(|prefix| {
        let w = World::new();
        assert_eq!(
            w.admin("POST", "/admin/v1/groups", Some(json!({"name": "ops"}))).status,
            201
        );
        let (id, secret) = w.create_key("joiner", &["projects:viewer"]);
        let hash = hash_of(&secret);
        w.faults.set_yielding(true);
        let join = admin_req(
            "PATCH",
            &format!("/admin/v1/keys/{id}"),
            Some(json!({"groups": ["ops"]})),
            ROOT,
        );
        let del = admin_req("DELETE", "/admin/v1/groups/ops", None, ROOT);
        let calls: [Option<Call<'_>>; 2] = [Some(Box::pin(w.call_async(join))), Some(Box::pin(w.call_async(del)))];
        let (choices, answers) = drive(calls, prefix);
        w.faults.set_yielding(false);
        let [Some(a), Some(b)] = answers else {
            panic!("both calls finish")
        };
        assert_eq!(b.status, 204, "{choices:?} delete: {}", b.body);
        assert!(
            [200, 400, 409].contains(&a.status),
            "{choices:?} join: {} {}",
            a.status,
            a.body
        );
        assert!(
            w.key(&id).groups.is_empty(),
            "{choices:?}: the record keeps a deleted group"
        );
        assert!(
            w.edge.record(&hash).unwrap().groups.is_empty(),
            "{choices:?}: the edge keeps a deleted group"
        );
        w.assert_consistent(&format!("{choices:?}"));
        choices
    });
    assert!(runs > 10, "{runs} schedules");
}
