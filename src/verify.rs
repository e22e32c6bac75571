//! `POST /v1/keys/verify`: the same decision as the gateway, answered as JSON for services that
//! check keys themselves.

use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Context, Env};

use crate::core::decide::{decide, Outcome};
use crate::core::hash::KeyHash;
use crate::core::key::ApiKey;
use crate::core::record::KeyEntry;
use crate::core::scope::ScopeSet;
use crate::core::time::format_rfc3339;
use crate::http::body::read_json;
use crate::http::problem::{ApiError, ApiResult};
use crate::http::response;
use crate::lookup;
use crate::state::State;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    key: String,
    #[serde(default)]
    scopes: Vec<String>,
}

fn identity(e: &KeyEntry) -> Value {
    json!({
        "key_id": e.id,
        "workspace": e.workspace,
        "name": e.name,
        "scopes": e.scopes.to_strings(),
        "expires_at": e.expires_at.map(format_rfc3339),
        "meta": serde_json::from_str::<Value>(&e.meta_json).unwrap_or(Value::Null),
    })
}

pub async fn handle(
    req: web_sys::Request,
    method: &str,
    env: &Env,
    ctx: &Context,
    st: &State,
    now: i64,
) -> ApiResult<web_sys::Response> {
    if method != "POST" {
        return Err(ApiError::MethodNotAllowed);
    }
    let mut req = worker::Request::from(req);
    let body: VerifyBody = read_json(&mut req, false)
        .await?
        .ok_or_else(|| ApiError::field("body", "required"))?;
    let required = ScopeSet::parse(&body.scopes).map_err(|e| ApiError::field("scopes", e.0))?;
    let Ok(key) = ApiKey::parse(&body.key) else {
        return Ok(response::json(200, &json!({"valid": false, "code": "NOT_FOUND"})));
    };
    let hash = KeyHash::of(&key);
    let entry = lookup::entry(st, env, &hash, now).await?;
    let answer = match (decide(entry.as_deref(), &required, now), entry.as_deref()) {
        (Outcome::Valid, Some(e)) => {
            lookup::note_use(st, env, ctx, &hash, now);
            let mut v = identity(e);
            v["valid"] = json!(true);
            v["code"] = json!("VALID");
            v
        }
        (Outcome::InsufficientScope(missing), Some(e)) => {
            let mut v = identity(e);
            v["valid"] = json!(false);
            v["code"] = json!("INSUFFICIENT_SCOPE");
            v["missing"] = json!(missing.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            v
        }
        (Outcome::Expired, _) => json!({"valid": false, "code": "EXPIRED"}),
        _ => json!({"valid": false, "code": "NOT_FOUND"}),
    };
    Ok(response::json(200, &answer))
}
