//! Admin API under /admin/v1/. The system of record decides; the edge is written from it (see
//! app::sync for the order). Callers: the root token (every workspace) or a key holding
//! `keys:admin` (its own workspace only, never granting or managing above itself).

mod audit;
mod credits;
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

    fn not_held(&self, scopes: &ScopeSet) -> Vec<String> {
        let Actor::Key { scopes: held, .. } = &self.actor else {
            return Vec::new();
        };
        let catalog = &self.app.st.policy.catalog;
        scopes.iter().filter(|s| !held.holds(s)).map(|s| catalog.show(s)).collect()
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

pub async fn handle<R: Records, E: Edge>(app: App<'_, R, E>, req: &Request, now: Millis) -> ApiResult<Response> {
    let actor = authenticate(app, req, now).await?;
    let query = query_pairs(&req.url);
    let requested = query.iter().find(|(k, _)| k == "workspace").map(|(_, v)| v.as_str());
    let workspace = resolve_workspace(&actor, requested)?;
    let path = req.path();
    let segs: Vec<&str> = path.trim_start_matches("/admin/v1/").split('/').collect();
    let a = Admin {
        app,
        actor_label: actor.label(),
        actor,
        workspace,
        now,
        query,
        req,
    };
    match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["keys"]) => keys::create(&a).await,
        ("GET", ["keys"]) => keys::list(&a).await,
        ("GET", ["keys", id]) => keys::get(&a, id).await,
        ("PATCH", ["keys", id]) => keys::update(&a, id).await,
        ("DELETE", ["keys", id]) => keys::delete(&a, id).await,
        ("POST", ["keys", id, "revoke"]) => keys::revoke(&a, id).await,
        ("POST", ["keys", id, "rotate"]) => keys::rotate(&a, id).await,
        ("POST", ["keys", id, "deactivate"]) => keys::set_active(&a, id, false).await,
        ("POST", ["keys", id, "reactivate"]) => keys::set_active(&a, id, true).await,
        ("GET", ["presets"]) => presets::list(&a).await,
        ("POST", ["presets"]) => presets::create(&a).await,
        ("DELETE", ["presets", name]) => presets::delete(&a, name).await,
        ("GET", ["audit"]) => audit::list(&a).await,
        ("GET", ["credits"]) => credits::get(&a).await,
        ("POST", ["credits"]) => credits::top_up(&a).await,
        ("POST", ["reconcile"]) => reconcile::run(&a).await,
        ("POST", ["_conformance"]) if app.st.config.conformance_route && matches!(a.actor, Actor::Root) => {
            conformance(&a).await
        }
        (
            _,
            ["keys"]
            | ["keys", _]
            | ["keys", _, "revoke" | "rotate" | "deactivate" | "reactivate"]
            | ["presets"]
            | ["presets", _]
            | ["audit"]
            | ["credits"]
            | ["reconcile"],
        ) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound("admin route")),
    }
}
