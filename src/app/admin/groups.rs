//! Sharing groups: a workspace's groups (create, list, delete) and keys' memberships. The origin
//! reads a key's groups in X-Keyward-Groups (to give them owner access to what the key creates).
//!
//! Deleting a group removes it from every member key through the ordinary key write protocol
//! (app::sync: leaving a group narrows the key, so the edge is written first): each member's
//! record and edge projection lose the group, with the same fault and race guarantees as a PATCH.
//! The group row goes first, so no key can join it while members are being updated; a key that
//! joined just before is caught by the check every key write makes afterwards (`ensure_groups_exist`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::Admin;
use crate::app::sync;
use crate::core::model::Key;
use crate::core::time::format_rfc3339;
use crate::core::validate;
use crate::http::plain::Response;
use crate::http::problem::{ApiError, ApiResult, FieldExt};
use crate::store::{Edge, Group, Records, Written};

/// Members updated per listing while a group is deleted.
const PAGE: u32 = 100;
/// Listings per DELETE call: beyond this many members the call answers 503 and a retry resumes.
const MAX_PAGES: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
}

fn group_json(g: &Group) -> Value {
    json!({"name": g.name, "description": g.description, "created_at": format_rfc3339(g.created_at)})
}

pub async fn list<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    let items: Vec<Value> = a
        .app
        .records
        .list_groups(&a.workspace)
        .await?
        .iter()
        .map(group_json)
        .collect();
    Ok(Response::json(200, &json!({ "items": items })))
}

pub async fn create<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    let body: CreateBody = a.body()?;
    let name = validate::group_name(&body.name).field("name")?.to_owned();
    let description = validate::description(&body.description).field("description")?;
    let group = Group {
        name,
        description,
        created_at: a.now,
    };
    let audit = a.audit("group.create", None, json!({"name": group.name}));
    a.app
        .records
        .insert_group(&a.workspace, &group, &audit)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NameTaken => ApiError::Conflict {
                slug: "name-conflict",
                detail: "A group with this name already exists in the workspace.".into(),
            },
            e => e.into(),
        })?;
    Ok(Response::json(201, &group_json(&group)))
}

pub async fn delete<R: Records, E: Edge>(a: &Admin<'_, R, E>, name: &str) -> ApiResult<Response> {
    let Ok(name) = validate::group_name(name) else {
        return Err(ApiError::NotFound("group"));
    };
    a.ensure_member_of(&[name.to_owned()])?;
    let audit = a.audit("group.delete", None, json!({"name": name}));
    let deleted = a.app.records.delete_group(&a.workspace, name, &audit).await?;
    let removed = remove_from_members(a, name).await?;
    // A repeated DELETE still finishes a cleanup that a failure interrupted, then answers 404.
    if deleted == Written::Stale && removed == 0 {
        return Err(ApiError::NotFound("group"));
    }
    Ok(Response::no_content())
}

/// Takes `name` off every key that lists it; the number of keys changed.
async fn remove_from_members<R: Records, E: Edge>(a: &Admin<'_, R, E>, name: &str) -> ApiResult<usize> {
    let mut removed = 0;
    for _ in 0..MAX_PAGES {
        let members = a
            .app
            .records
            .group_members(&a.workspace, name, PAGE)
            .await
            .map_err(|_| unfinished("The group is deleted, but its members could not be listed; retry the DELETE."))?;
        if members.is_empty() {
            return Ok(removed);
        }
        for k in members {
            leave(a, &k, name).await?;
            removed += 1;
        }
    }
    Err(unfinished(
        "The group is deleted; more members remain than one call updates. Retry the DELETE to continue.",
    ))
}

fn unfinished(detail: &str) -> ApiError {
    ApiError::Unavailable {
        slug: "group-cleanup-unfinished",
        detail: detail.into(),
    }
}

/// One key leaves a group it lists, through the key write protocol; a key changed meanwhile is
/// read again (the next listing finds it if it still lists the group).
async fn leave<R: Records, E: Edge>(a: &Admin<'_, R, E>, k: &Key, name: &str) -> ApiResult<()> {
    let after = k.next(|k| k.groups.retain(|g| g != name));
    let audit = a.audit(
        "key.update",
        Some(&k.id),
        json!({"changed": ["groups"], "left_group": name, "groups": after.groups}),
    );
    match sync::update(a.app, k, &after, &audit, a.now).await {
        Ok(()) => Ok(()),
        Err(ApiError::Conflict {
            slug: "key-changed", ..
        }) => Ok(()),
        Err(ApiError::Unavailable { detail, .. }) => Err(unfinished(&format!(
            "The group is deleted, but a member key could not be updated: {detail} Retry the DELETE to finish."
        ))),
        Err(e) => Err(e),
    }
}

/// The names in `groups` the workspace has no group for (one read, none when `groups` is empty).
async fn unknown<'g, R: Records, E: Edge>(a: &Admin<'_, R, E>, groups: &'g [String]) -> ApiResult<Vec<&'g String>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let known = a.app.records.list_groups(&a.workspace).await?;
    Ok(groups.iter().filter(|g| !known.iter().any(|k| &k.name == *g)).collect())
}

/// Every named group must exist in the workspace (400 otherwise).
pub async fn check_exist<R: Records, E: Edge>(a: &Admin<'_, R, E>, groups: &[String]) -> ApiResult<()> {
    match unknown(a, groups).await?.first() {
        None => Ok(()),
        Some(g) => Err(ApiError::field(
            "groups",
            format!("unknown group '{g}' (create it first)"),
        )),
    }
}

/// After a key write: a group deleted between the check and the write is taken off the key
/// again, so a deleted group never stays on a key. Answers 409 when that happened.
pub async fn ensure_groups_exist<R: Records, E: Edge>(a: &Admin<'_, R, E>, key: &Key) -> ApiResult<()> {
    let gone = unknown(a, &key.groups).await?;
    let Some(first) = gone.first() else { return Ok(()) };
    for g in &gone {
        if let Some(current) = a.app.records.get_key(&a.workspace, &key.id).await? {
            if current.groups.contains(g) {
                leave(a, &current, g).await?;
            }
        }
    }
    Err(ApiError::Conflict {
        slug: "group-deleted",
        detail: format!("The group '{first}' was deleted while this request ran; it was removed from the key again."),
    })
}
