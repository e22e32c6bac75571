//! `POST /v1/keys/verify`: the same decision as the gateway, answered as JSON for services that
//! check keys themselves.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{lookup, App, KeyUse};
use crate::core::decide::{decide, Outcome};
use crate::core::hash::KeyHash;
use crate::core::record::KeyEntry;
use crate::core::scope::Catalog;
use crate::core::time::{format_rfc3339, Millis};
use crate::http::body::parse_json;
use crate::http::plain::{Request, Response};
use crate::http::problem::{ApiError, ApiResult, FieldExt};
use crate::store::{Edge, Records};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    key: String,
    #[serde(default)]
    scopes: Vec<String>,
}

fn identity(e: &KeyEntry, catalog: &Catalog) -> Value {
    json!({
        "key_id": e.id,
        "workspace": e.workspace,
        "name": e.name,
        "scopes": catalog.strings(&e.scopes),
        "environment": e.environment.as_str(),
        "groups": e.group_names().collect::<Vec<_>>(),
        "expires_at": e.expires_at.map(format_rfc3339),
        "meta": serde_json::from_str::<Value>(&e.meta_json).unwrap_or(Value::Null),
    })
}

/// The answer, and what happened to the key: used (valid), failed (unknown, disabled, revoked,
/// expired, malformed: counted against the client's failed-attempt budget) or neither.
pub async fn handle<R: Records, E: Edge>(
    app: App<'_, R, E>,
    req: &Request,
    now: Millis,
) -> ApiResult<(Response, KeyUse)> {
    if req.method != "POST" {
        return Err(ApiError::MethodNotAllowed("POST".into()));
    }
    let body: VerifyBody = parse_json(req, false)?.ok_or_else(|| ApiError::field("body", "required"))?;
    let catalog = &app.st.policy.catalog;
    let required = catalog.parse_required(&body.scopes).field("scopes")?;
    let Ok(key) = app.st.config.keys.parse(&body.key) else {
        return Ok((
            Response::json(200, &json!({"valid": false, "code": "NOT_FOUND"})),
            KeyUse::Failed,
        ));
    };
    let hash = KeyHash::of(&key);
    let entry = lookup::entry(app.st, app.edge, &hash, now).await?;
    let mut outcome = KeyUse::Failed;
    let answer = match (decide(entry.as_deref(), &required, now), entry.as_deref()) {
        (Outcome::Valid, Some(e)) => {
            outcome = KeyUse::Used(hash);
            let mut v = identity(e, catalog);
            v["valid"] = json!(true);
            v["code"] = json!("VALID");
            // Only a key with a cap costs a counter read here; verify never spends credits.
            if let Some(cap) = e.cap.as_deref() {
                let caps = super::credits::read_caps(app.credits, &e.workspace, vec![cap.to_owned()], now).await;
                v["credits"] = super::credits::credits_field(cap, caps.as_deref());
            }
            v
        }
        (Outcome::InsufficientScope(missing), Some(e)) => {
            let mut v = identity(e, catalog);
            v["valid"] = json!(false);
            v["code"] = json!("INSUFFICIENT_SCOPE");
            v["missing"] = json!(missing.iter().map(|s| catalog.show(s)).collect::<Vec<_>>());
            outcome = KeyUse::Nothing;
            v
        }
        (Outcome::Expired, _) => json!({"valid": false, "code": "EXPIRED"}),
        _ => json!({"valid": false, "code": "NOT_FOUND"}),
    };
    Ok((Response::json(200, &answer), outcome))
}
