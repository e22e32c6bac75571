//! GET /admin/v1/audit: the workspace's admin actions, newest first.

use serde_json::{json, Value};

use super::Admin;
use crate::core::time::format_rfc3339;
use crate::http::problem::{ApiError, ApiResult};
use crate::http::response;

pub async fn list(a: &Admin<'_>) -> ApiResult<web_sys::Response> {
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
    let mut rows = a.db.list_audit(&a.workspace, before, limit + 1).await?;
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
                "at": format_rfc3339(r.at),
                "actor": r.actor,
                "action": r.action,
                "key_id": r.key_id,
                "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(response::json(200, &json!({"items": items, "next_cursor": next})))
}
