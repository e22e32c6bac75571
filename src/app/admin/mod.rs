//! Admin API under /admin/v1/. The system of record decides; the edge is written from it (see
//! app::sync for the order). Callers: the root token (every workspace) or a key holding
//! `keys:admin` (its own workspace only, never granting or managing above itself).

mod audit;
mod credits;
mod groups;
mod keys;
mod presets;
mod reconcile;

use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{lookup, App};
use crate::core::decide::{decide, Outcome};
use crate::core::hash::KeyHash;
use crate::core::key::Environment;
use crate::core::model::Key;
use crate::core::scope::ScopeSet;
use crate::core::time::{format_rfc3339, Millis};
use crate::core::validate;
use crate::http::bearer::bearer;
use crate::http::body::{parse_json, query_pairs};
use crate::http::plain::{Request, Response};
use crate::http::problem::{ApiError, ApiResult, FieldExt};
use crate::store::{AuditEntry, Edge, Records};

pub const ADMIN_SCOPE: &str = "keys:admin";

pub enum Actor {
    Root,
    Key {
        id: String,
        workspace: String,
        scopes: ScopeSet,
        /// The acting key's own (effective) expiry: it may not hand out a longer life.
        expires_at: Option<Millis>,
        /// A test key may only issue and change test keys.
        environment: Environment,
        /// A key may only add keys to (or remove them from) groups it belongs to.
        groups: Vec<String>,
    },
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Actor::Root => "root".into(),
            Actor::Key { id, .. } => format!("key:{id}"),
        }
    }
}

/// Everything a handler needs: who, which workspace, when, the request and the stores.
pub struct Admin<'a, R, E> {
    pub app: App<'a, R, E>,
    pub actor: Actor,
    pub actor_label: String,
    pub workspace: String,
    pub now: Millis,
    pub query: Vec<(String, String)>,
    pub req: &'a Request,
}

impl<R: Records, E: Edge> Admin<'_, R, E> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn body<T: DeserializeOwned>(&self) -> ApiResult<T> {
        parse_json(self.req, false)?.ok_or_else(|| ApiError::field("body", "required"))
    }

    pub fn optional_body<T: DeserializeOwned + Default>(&self) -> ApiResult<T> {
        Ok(parse_json(self.req, true)?.unwrap_or_default())
    }

    /// A key may only hand out what it holds itself; root may hand out anything.
    pub fn ensure_can_grant(&self, scopes: &ScopeSet) -> ApiResult<()> {
        let missing = self.not_held(scopes);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ApiError::ScopeEscalation { scopes: missing })
        }
    }

    /// A test key may not issue live keys: a key used in development or CI must not be able to
    /// mint production credentials.
    pub fn ensure_can_issue(&self, environment: Environment) -> ApiResult<()> {
        match &self.actor {
            Actor::Key {
                environment: Environment::Test,
                ..
            } if environment != Environment::Test => Err(ApiError::EnvironmentForbidden),
            _ => Ok(()),
        }
    }

    /// A key may only change (edit, revoke, delete, rotate) keys whose scopes it holds itself:
    /// otherwise a narrow admin key could disable or downgrade a broader one. A test key may
    /// only change test keys.
    pub fn ensure_can_manage(&self, target: &Key) -> ApiResult<()> {
        self.ensure_can_issue(target.environment)?;
        let missing = self.not_held(&target.scopes);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Outranked { scopes: missing })
        }
    }

    /// A key may only put keys into, or take them out of, groups it belongs to itself (root: any).
    pub fn ensure_member_of(&self, groups: &[String]) -> ApiResult<()> {
        let Actor::Key { groups: own, .. } = &self.actor else {
            return Ok(());
        };
        match groups.iter().find(|g| !own.contains(g)) {
            None => Ok(()),
            Some(g) => Err(ApiError::GroupForbidden { group: g.clone() }),
        }
    }

    fn not_held(&self, scopes: &ScopeSet) -> Vec<String> {
        let Actor::Key { scopes: held, .. } = &self.actor else {
            return Vec::new();
        };
        let catalog = &self.app.st.policy.catalog;
        scopes
            .iter()
            .filter(|s| !held.holds(s))
            .map(|s| catalog.show(s))
            .collect()
    }

    /// Scopes as the API shows them (the deployment's scope format).
    pub fn show_scopes(&self, scopes: &ScopeSet) -> Vec<String> {
        self.app.st.policy.catalog.strings(scopes)
    }

    /// An expiring key may not set an expiry later than its own, nor none at all.
    pub fn ensure_expiry_within(&self, expires_at: Option<Millis>) -> ApiResult<()> {
        let Actor::Key {
            expires_at: Some(limit),
            ..
        } = &self.actor
        else {
            return Ok(());
        };
        if expires_at.is_some_and(|e| e <= *limit) {
            return Ok(());
        }
        Err(ApiError::ExpiryBeyondCaller {
            limit: format_rfc3339(*limit),
        })
    }

    pub fn audit(&self, action: &str, key_id: Option<&str>, detail: Value) -> AuditEntry {
        AuditEntry {
            at: self.now,
            workspace: self.workspace.clone(),
            actor: self.actor_label.clone(),
            action: action.into(),
            key_id: key_id.map(str::to_owned),
            detail,
        }
    }

    pub fn limit(&self) -> ApiResult<u32> {
        match self.param("limit") {
            None => Ok(50),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| ApiError::field("limit", "must be an integer from 1 to 100")),
        }
    }
}

/// Constant-time comparison of the root token: both sides hashed first, so neither the content
/// nor the length leaks through timing.
fn root_token_matches(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate<R: Records, E: Edge>(app: App<'_, R, E>, req: &Request, now: Millis) -> ApiResult<Actor> {
    let token = bearer(req.header("authorization"), &req.url)?;
    if let Ok(key) = app.st.config.keys.parse(token) {
        let entry = lookup::entry(app.st, app.edge, &KeyHash::of(&key), now).await?;
        let required = ScopeSet::parse(&[ADMIN_SCOPE]).map_err(|e| ApiError::Internal(e.0))?;
        return match (decide(entry.as_deref(), &required, now), entry) {
            (Outcome::Valid, Some(e)) => Ok(Actor::Key {
                id: e.id.to_string(),
                workspace: e.workspace.to_string(),
                scopes: e.scopes.clone(),
                expires_at: e.expires_at,
                environment: e.environment,
                groups: e.group_names().map(str::to_owned).collect(),
            }),
            (Outcome::InsufficientScope(_), _) => Err(ApiError::InsufficientScope {
                scope_attr: app.st.policy.catalog.joined(&required),
            }),
            _ => Err(ApiError::InvalidToken),
        };
    }
    match &app.st.config.admin_token {
        Some(root) if root_token_matches(token, root) => Ok(Actor::Root),
        _ => Err(ApiError::InvalidToken),
    }
}

fn resolve_workspace(actor: &Actor, requested: Option<&str>) -> ApiResult<String> {
    match (actor, requested) {
        (Actor::Root, Some(ws)) => Ok(validate::workspace(ws).field("workspace")?.to_owned()),
        (Actor::Root, None) => Err(ApiError::field(
            "workspace",
            "the root token must name a workspace: ?workspace=<id>",
        )),
        (Actor::Key { workspace, .. }, None) => Ok(workspace.clone()),
        (Actor::Key { workspace, .. }, Some(ws)) if ws == workspace => Ok(workspace.clone()),
        (Actor::Key { .. }, Some(_)) => Err(ApiError::WorkspaceForbidden),
    }
}

/// The storage contract run against the deployment's own stores, in the named workspace (which
/// should be fresh: the suite leaves its rows behind). Test deployments only.
async fn conformance<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    let results = crate::store::conformance::run(a.app.records, a.app.edge, &a.workspace, a.now).await;
    let items: Vec<Value> = results
        .into_iter()
        .map(|(name, r)| serde_json::json!({"name": name, "ok": r.is_ok(), "error": r.err()}))
        .collect();
    Ok(Response::json(200, &serde_json::json!({ "results": items })))
}

/// SQLite's plan for every statement the store issues, as the deployment's D1 runs them (test
/// deployments only; the e2e trial ops::admin_queries_use_indexes and bench/admin-scale.sh read it).
async fn plans<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    let plans = a.app.records.query_plans().await?;
    let items: Vec<Value> = plans
        .iter()
        .map(|p| {
            let problems = crate::store::plan_problems(p.name, &p.plan);
            serde_json::json!({"name": p.name, "sql": p.sql, "plan": p.plan, "problems": problems})
        })
        .collect();
    Ok(Response::json(200, &serde_json::json!({ "statements": items })))
}

/// An admin operation; `ROUTES` says where it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    CreateKey,
    ListKeys,
    GetKey,
    UpdateKey,
    DeleteKey,
    RevokeKey,
    RotateKey,
    DeactivateKey,
    ReactivateKey,
    ListPresets,
    CreatePreset,
    DeletePreset,
    ListGroups,
    CreateGroup,
    DeleteGroup,
    ListAudit,
    GetCredits,
    TopUpCredits,
    Reconcile,
}

/// One admin route. `path` is an OpenAPI path template: `{name}` matches one path segment, which
/// is handed to the handler. `operation_id` is the operation's id in docs/openapi.json.
pub struct AdminRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    op: Op,
}

const fn route(method: &'static str, path: &'static str, operation_id: &'static str, op: Op) -> AdminRoute {
    AdminRoute {
        method,
        path,
        operation_id,
        op,
    }
}

/// Every admin route, and the only place that says which exist: dispatch, 405s and their
/// `Allow` header come from it, and a native test checks it against docs/openapi.json both ways.
pub const ROUTES: &[AdminRoute] = &[
    route("POST", "/admin/v1/keys", "createKey", Op::CreateKey),
    route("GET", "/admin/v1/keys", "listKeys", Op::ListKeys),
    route("GET", "/admin/v1/keys/{id}", "getKey", Op::GetKey),
    route("PATCH", "/admin/v1/keys/{id}", "updateKey", Op::UpdateKey),
    route("DELETE", "/admin/v1/keys/{id}", "deleteKey", Op::DeleteKey),
    route("POST", "/admin/v1/keys/{id}/revoke", "revokeKey", Op::RevokeKey),
    route("POST", "/admin/v1/keys/{id}/rotate", "rotateKey", Op::RotateKey),
    route(
        "POST",
        "/admin/v1/keys/{id}/deactivate",
        "deactivateKey",
        Op::DeactivateKey,
    ),
    route(
        "POST",
        "/admin/v1/keys/{id}/reactivate",
        "reactivateKey",
        Op::ReactivateKey,
    ),
    route("GET", "/admin/v1/presets", "listPresets", Op::ListPresets),
    route("POST", "/admin/v1/presets", "createPreset", Op::CreatePreset),
    route("DELETE", "/admin/v1/presets/{name}", "deletePreset", Op::DeletePreset),
    route("GET", "/admin/v1/groups", "listGroups", Op::ListGroups),
    route("POST", "/admin/v1/groups", "createGroup", Op::CreateGroup),
    route("DELETE", "/admin/v1/groups/{name}", "deleteGroup", Op::DeleteGroup),
    route("GET", "/admin/v1/audit", "listAudit", Op::ListAudit),
    route("GET", "/admin/v1/credits", "getCredits", Op::GetCredits),
    route("POST", "/admin/v1/credits", "topUpCredits", Op::TopUpCredits),
    route("POST", "/admin/v1/reconcile", "reconcile", Op::Reconcile),
];

/// The test deployments' storage-contract and query-plan routes; not part of the API (not in
/// ROUTES or the OpenAPI document), answered only when enabled and only to root.
const CONFORMANCE_PATH: &str = "/admin/v1/_conformance";
const PLANS_PATH: &str = "/admin/v1/_plans";

/// `Some(parameter)` ("" if the template has none) when `path` fits `template` segment by segment.
fn match_template<'p>(template: &str, path: &'p str) -> Option<&'p str> {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    let mut param = "";
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(param),
            (Some(ts), Some(ps)) if ts.starts_with('{') => param = ps,
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return None,
        }
    }
}

/// The operation `method` + `path` names, with its path parameter; a known path under another
/// method is a 405 that lists the methods it has.
fn resolve<'p>(method: &str, path: &'p str) -> ApiResult<(Op, &'p str)> {
    let mut allow: Vec<&str> = Vec::new();
    for r in ROUTES {
        if let Some(param) = match_template(r.path, path) {
            if r.method == method {
                return Ok((r.op, param));
            }
            allow.push(r.method);
        }
    }
    if allow.is_empty() {
        Err(ApiError::NotFound("admin route"))
    } else {
        Err(ApiError::MethodNotAllowed(allow.join(", ")))
    }
}

pub async fn handle<R: Records, E: Edge>(app: App<'_, R, E>, req: &Request, now: Millis) -> ApiResult<Response> {
    let actor = authenticate(app, req, now).await?;
    let query = query_pairs(&req.url);
    let requested = query.iter().find(|(k, _)| k == "workspace").map(|(_, v)| v.as_str());
    let workspace = resolve_workspace(&actor, requested)?;
    let path = req.path();
    let a = Admin {
        app,
        actor_label: actor.label(),
        actor,
        workspace,
        now,
        query,
        req,
    };
    if req.method == "POST" && app.st.config.conformance_route && matches!(a.actor, Actor::Root) {
        match path {
            CONFORMANCE_PATH => return conformance(&a).await,
            PLANS_PATH => return plans(&a).await,
            _ => {}
        }
    }
    let (op, param) = resolve(&req.method, path)?;
    match op {
        Op::CreateKey => keys::create(&a).await,
        Op::ListKeys => keys::list(&a).await,
        Op::GetKey => keys::get(&a, param).await,
        Op::UpdateKey => keys::update(&a, param).await,
        Op::DeleteKey => keys::delete(&a, param).await,
        Op::RevokeKey => keys::revoke(&a, param).await,
        Op::RotateKey => keys::rotate(&a, param).await,
        Op::DeactivateKey => keys::set_active(&a, param, false).await,
        Op::ReactivateKey => keys::set_active(&a, param, true).await,
        Op::ListPresets => presets::list(&a).await,
        Op::CreatePreset => presets::create(&a).await,
        Op::DeletePreset => presets::delete(&a, param).await,
        Op::ListGroups => groups::list(&a).await,
        Op::CreateGroup => groups::create(&a).await,
        Op::DeleteGroup => groups::delete(&a, param).await,
        Op::ListAudit => audit::list(&a).await,
        Op::GetCredits => credits::get(&a).await,
        Op::TopUpCredits => credits::top_up(&a).await,
        Op::Reconcile => reconcile::run(&a).await,
    }
}
