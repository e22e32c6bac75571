//! GET /admin/v1/audit: the workspace's admin actions, newest first.

use serde_json::{json, Value};

use super::Admin;
use crate::core::time::format_rfc3339;
use crate::http::plain::Response;
use crate::http::problem::{ApiError, ApiResult};
use crate::store::{Edge, Records};

pub async fn list<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    let limit = a.limit()?;
    let before = match a.param("cursor") {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::field("cursor", "not a cursor from a previous page"))?,
        ),
    };
    let mut rows = a.app.records.list_audit(&a.workspace, before, limit + 1).await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "at": format_rfc3339(r.entry.at),
                "actor": r.entry.actor,
                "action": r.entry.action,
                "key_id": r.entry.key_id,
                "detail": r.entry.detail,
            })
        })
        .collect();
    Ok(Response::json(200, &json!({"items": items, "next_cursor": next})))
}
