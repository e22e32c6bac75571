//! Admin API under /admin/v1/. D1 is the system of record; KV is rewritten from it.
//! Callers: the root token (every workspace) or a key holding `keys:admin` (its own workspace,
//! and never granting a scope it does not hold).

mod audit;
mod keys;
mod presets;
mod reconcile;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use worker::Env;

use crate::core::decide::{decide, Outcome};
use crate::core::hash::KeyHash;
use crate::core::key::ApiKey;
use crate::core::scope::{Scope, ScopeSet};
use crate::core::time::Millis;
use crate::core::validate;
use crate::http::bearer::bearer;
use crate::http::body::{query_pairs, read_json};
use crate::http::problem::{ApiError, ApiResult};
use crate::lookup;
use crate::state::State;
use crate::store::d1::{Audit, Db};

pub const ADMIN_SCOPE: &str = "keys:admin";

pub enum Actor {
    Root,
    Key {
        id: String,
        workspace: String,
        scopes: ScopeSet,
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

/// Everything a handler needs: who, which workspace, when, and the stores.
pub struct Admin<'a> {
    pub st: &'a State,
    pub env: &'a Env,
    pub db: Db,
    pub actor: Actor,
    pub actor_label: String,
    pub workspace: String,
    pub now: Millis,
    pub query: Vec<(String, String)>,
    req: worker::Request,
}

impl Admin<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub async fn body<T: DeserializeOwned>(&mut self) -> ApiResult<T> {
        read_json(&mut self.req, false)
            .await?
            .ok_or_else(|| ApiError::field("body", "required"))
    }

    pub async fn optional_body<T: DeserializeOwned + Default>(&mut self) -> ApiResult<T> {
        Ok(read_json(&mut self.req, true).await?.unwrap_or_default())
    }

    /// A key may only hand out what it holds itself; root may hand out anything.
    pub fn ensure_can_grant(&self, scopes: &ScopeSet) -> ApiResult<()> {
        let Actor::Key { scopes: held, .. } = &self.actor else {
            return Ok(());
        };
        let missing: Vec<String> = scopes.iter().filter(|s| !held.holds(s)).map(Scope::to_string).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ApiError::ScopeEscalation { scopes: missing })
        }
    }

    pub fn audit<'b>(&'b self, action: &'b str, key_id: Option<&'b str>, detail: serde_json::Value) -> Audit<'b> {
        Audit {
            at: self.now,
            workspace: &self.workspace,
            actor: &self.actor_label,
            action,
            key_id,
            detail: detail.to_string(),
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

async fn authenticate(st: &State, env: &Env, auth: Option<&str>, url: &str, now: Millis) -> ApiResult<Actor> {
    let token = bearer(auth, url)?;
    if let Ok(key) = ApiKey::parse(token) {
        let entry = lookup::entry(st, env, &KeyHash::of(&key), now).await?;
        let required = ScopeSet::parse(&[ADMIN_SCOPE]).map_err(|e| ApiError::Internal(e.0))?;
        return match (decide(entry.as_deref(), &required, now), entry) {
            (Outcome::Valid, Some(e)) => Ok(Actor::Key {
                id: e.id.to_string(),
                workspace: e.workspace.to_string(),
                scopes: e.scopes.clone(),
            }),
            (Outcome::InsufficientScope(_), _) => Err(ApiError::InsufficientScope {
                scope_attr: ADMIN_SCOPE.into(),
            }),
            _ => Err(ApiError::InvalidToken),
        };
    }
    match &st.admin_token {
        Some(root) if root_token_matches(token, root) => Ok(Actor::Root),
        _ => Err(ApiError::InvalidToken),
    }
}

fn resolve_workspace(actor: &Actor, requested: Option<&str>) -> ApiResult<String> {
    match (actor, requested) {
        (Actor::Root, Some(ws)) => Ok(validate::workspace(ws)
            .map_err(|m| ApiError::field("workspace", m))?
            .to_owned()),
        (Actor::Root, None) => Err(ApiError::field(
            "workspace",
            "the root token must name a workspace: ?workspace=<id>",
        )),
        (Actor::Key { workspace, .. }, None) => Ok(workspace.clone()),
        (Actor::Key { workspace, .. }, Some(ws)) if ws == workspace => Ok(workspace.clone()),
        (Actor::Key { .. }, Some(_)) => Err(ApiError::WorkspaceForbidden),
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn handle(
    req: web_sys::Request,
    method: &str,
    url: &str,
    path: &str,
    auth: Option<&str>,
    env: &Env,
    st: &State,
    now: Millis,
) -> ApiResult<web_sys::Response> {
    let actor = authenticate(st, env, auth, url, now).await?;
    let query = query_pairs(url);
    let requested = query.iter().find(|(k, _)| k == "workspace").map(|(_, v)| v.as_str());
    let workspace = resolve_workspace(&actor, requested)?;
    let segs: Vec<&str> = path.trim_start_matches("/admin/v1/").split('/').collect();
    let mut a = Admin {
        st,
        env,
        db: Db::new(env)?,
        actor_label: actor.label(),
        actor,
        workspace,
        now,
        query,
        req: worker::Request::from(req),
    };
    match (method, segs.as_slice()) {
        ("POST", ["keys"]) => keys::create(&mut a).await,
        ("GET", ["keys"]) => keys::list(&a).await,
        ("GET", ["keys", id]) => keys::get(&a, id).await,
        ("PATCH", ["keys", id]) => keys::update(&mut a, id).await,
        ("DELETE", ["keys", id]) => keys::delete(&a, id).await,
        ("POST", ["keys", id, "revoke"]) => keys::revoke(&mut a, id).await,
        ("POST", ["keys", id, "rotate"]) => keys::rotate(&mut a, id).await,
        ("GET", ["presets"]) => presets::list(&a).await,
        ("POST", ["presets"]) => presets::create(&mut a).await,
        ("DELETE", ["presets", name]) => presets::delete(&a, name).await,
        ("GET", ["audit"]) => audit::list(&a).await,
        ("POST", ["reconcile"]) => reconcile::run(&a).await,
        (
            _,
            ["keys"]
            | ["keys", _]
            | ["keys", _, "revoke" | "rotate"]
            | ["presets"]
            | ["presets", _]
            | ["audit"]
            | ["reconcile"],
        ) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound("admin route")),
    }
}
