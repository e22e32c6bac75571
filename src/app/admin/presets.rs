//! Presets: named scope bundles. Built-ins come from config/policy.json; workspaces add their own.

use serde::Deserialize;
use serde_json::json;

use super::Admin;
use crate::core::scope::{printable, Catalog, ScopeSet};
use crate::core::validate;
use crate::http::plain::Response;
use crate::http::problem::{ApiError, ApiResult, FieldExt};
use crate::store::{Edge, Preset, Records, Written};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
    scopes: Vec<String>,
}

/// A preset's scopes, built-in first; unknown -> 400 (the caller named it in a request body).
pub async fn resolve<R: Records, E: Edge>(a: &Admin<'_, R, E>, name: &str) -> ApiResult<ScopeSet> {
    if let Some(p) = a.app.st.policy.preset(name) {
        return Ok(p.scopes.clone());
    }
    match a.app.records.get_preset(&a.workspace, name).await? {
        Some(p) => Ok(p.scopes),
        None => Err(ApiError::field(
            "preset",
            format!("unknown preset '{}'", printable(name)),
        )),
    }
}

fn preset_json(
    catalog: &Catalog,
    name: &str,
    description: &str,
    scopes: &ScopeSet,
    builtin: bool,
) -> serde_json::Value {
    json!({"name": name, "description": description, "scopes": catalog.strings(scopes), "builtin": builtin})
}

pub async fn list<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    let mut items: Vec<_> = a
        .app
        .st
        .policy
        .presets
        .iter()
        .map(|p| preset_json(&a.app.st.policy.catalog, &p.name, &p.description, &p.scopes, true))
        .collect();
    for p in a.app.records.list_presets(&a.workspace).await? {
        items.push(preset_json(
            &a.app.st.policy.catalog,
            &p.name,
            &p.description,
            &p.scopes,
            false,
        ));
    }
    Ok(Response::json(200, &json!({"items": items})))
}

pub async fn create<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    let body: CreateBody = a.body()?;
    let name = validate::preset_name(&body.name).field("name")?.to_owned();
    if a.app.st.policy.preset(&name).is_some() {
        return Err(ApiError::Conflict {
            slug: "name-conflict",
            detail: format!("'{name}' is a built-in preset."),
        });
    }
    let description = validate::description(&body.description).field("description")?;
    let scopes = a.app.st.policy.catalog.parse_grant(&body.scopes).field("scopes")?;
    if scopes.is_empty() || scopes.len() > validate::MAX_SCOPES {
        return Err(ApiError::field(
            "scopes",
            format!("a preset needs 1 to {} scopes", validate::MAX_SCOPES),
        ));
    }
    a.ensure_can_grant(&scopes)?;
    let preset = Preset {
        name,
        description,
        scopes,
    };
    let audit = a.audit(
        "preset.create",
        None,
        json!({"name": preset.name, "scopes": a.show_scopes(&preset.scopes)}),
    );
    a.app
        .records
        .insert_preset(&a.workspace, &preset, a.now, &audit)
        .await?;
    Ok(Response::json(
        201,
        &preset_json(
            &a.app.st.policy.catalog,
            &preset.name,
            &preset.description,
            &preset.scopes,
            false,
        ),
    ))
}

pub async fn delete<R: Records, E: Edge>(a: &Admin<'_, R, E>, name: &str) -> ApiResult<Response> {
    if a.app.st.policy.preset(name).is_some() {
        return Err(ApiError::Conflict {
            slug: "builtin-preset",
            detail: "Built-in presets cannot be deleted.".into(),
        });
    }
    let audit = a.audit("preset.delete", None, json!({"name": name}));
    match a.app.records.delete_preset(&a.workspace, name, &audit).await? {
        Written::Applied => Ok(Response::no_content()),
        Written::Stale => Err(ApiError::NotFound("preset")),
    }
}
