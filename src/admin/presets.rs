//! Presets: named scope bundles. Built-ins come from config/policy.json; workspaces add their own.

use serde::Deserialize;
use serde_json::json;

use super::Admin;
use crate::core::scope::ScopeSet;
use crate::core::validate;
use crate::http::problem::{ApiError, ApiResult};
use crate::http::response;
use crate::store::d1::PresetRow;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
    scopes: Vec<String>,
}

fn parse_row_scopes(row: &PresetRow) -> ApiResult<ScopeSet> {
    let raw: Vec<String> =
        serde_json::from_str(&row.scopes).map_err(|e| ApiError::Internal(format!("preset {}: {e}", row.name)))?;
    ScopeSet::parse(&raw).map_err(|e| ApiError::Internal(e.0))
}

/// A preset's scopes, built-in first; unknown -> 400 (the caller named it in a request body).
pub async fn resolve(a: &Admin<'_>, name: &str) -> ApiResult<ScopeSet> {
    if let Some(p) = a.st.policy.preset(name) {
        return Ok(p.scopes.clone());
    }
    match a.db.get_preset(&a.workspace, name).await? {
        Some(row) => parse_row_scopes(&row),
        None => Err(ApiError::field(
            "preset",
            format!("unknown preset '{}'", crate::core::scope::printable(name)),
        )),
    }
}

pub async fn list(a: &Admin<'_>) -> ApiResult<web_sys::Response> {
    let mut items: Vec<_> = a
        .st
        .policy
        .presets
        .iter()
        .map(
            |p| json!({"name": p.name, "description": p.description, "scopes": p.scopes.to_strings(), "builtin": true}),
        )
        .collect();
    for row in a.db.list_presets(&a.workspace).await? {
        let scopes = parse_row_scopes(&row)?;
        items.push(
            json!({"name": row.name, "description": row.description, "scopes": scopes.to_strings(), "builtin": false}),
        );
    }
    Ok(response::json(200, &json!({"items": items})))
}

pub async fn create(a: &mut Admin<'_>) -> ApiResult<web_sys::Response> {
    let body: CreateBody = a.body().await?;
    let name = validate::preset_name(&body.name)
        .map_err(|m| ApiError::field("name", m))?
        .to_owned();
    if a.st.policy.preset(&name).is_some() {
        return Err(ApiError::Conflict {
            slug: "name-conflict",
            detail: format!("'{name}' is a built-in preset."),
        });
    }
    let description = validate::description(&body.description).map_err(|m| ApiError::field("description", m))?;
    let scopes = ScopeSet::parse(&body.scopes).map_err(|e| ApiError::field("scopes", e.0))?;
    a.st.policy
        .catalog
        .check_all(&scopes)
        .map_err(|e| ApiError::field("scopes", e.0))?;
    if scopes.is_empty() || scopes.len() > validate::MAX_SCOPES {
        return Err(ApiError::field(
            "scopes",
            format!("a preset needs 1 to {} scopes", validate::MAX_SCOPES),
        ));
    }
    a.ensure_can_grant(&scopes)?;
    let row = PresetRow {
        name,
        description,
        scopes: json!(scopes.to_strings()).to_string(),
    };
    let audit = a.audit(
        "preset.create",
        None,
        json!({"name": row.name, "scopes": scopes.to_strings()}),
    );
    a.db.insert_preset(&a.workspace, &row, a.now, &audit).await?;
    Ok(response::json(
        201,
        &json!({"name": row.name, "description": row.description, "scopes": scopes.to_strings(), "builtin": false}),
    ))
}

pub async fn delete(a: &Admin<'_>, name: &str) -> ApiResult<web_sys::Response> {
    if a.st.policy.preset(name).is_some() {
        return Err(ApiError::Conflict {
            slug: "builtin-preset",
            detail: "Built-in presets cannot be deleted.".into(),
        });
    }
    if a.db.get_preset(&a.workspace, name).await?.is_none() {
        return Err(ApiError::NotFound("preset"));
    }
    a.db.delete_preset(
        &a.workspace,
        name,
        &a.audit("preset.delete", None, json!({"name": name})),
    )
    .await?;
    Ok(response::no_content())
}
