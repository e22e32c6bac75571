//! POST /admin/v1/reconcile: rebuild the workspace's KV projection from D1, a page at a time
//! (a Worker invocation may make at most 1,000 KV operations).

use serde_json::json;

use super::keys::{hash_of, record_of};
use super::Admin;
use crate::http::problem::{ApiError, ApiResult};
use crate::http::response;
use crate::store::kv;

const PAGE: u32 = 200;

pub async fn run(a: &Admin<'_>) -> ApiResult<web_sys::Response> {
    let after = a.param("cursor").unwrap_or("");
    let rows = a.db.keys_after(&a.workspace, after, PAGE).await?;
    let (mut written, mut deleted, mut failed) = (0u32, 0u32, 0u32);
    for row in &rows {
        let hash = hash_of(row)?;
        a.st.cache.borrow_mut().evict(&hash);
        // D1 decides: a revoked or expired key is removed, never written back.
        let live = row.revoked_at.is_none() && row.expires_at.is_none_or(|e| e > a.now);
        let res = if live {
            kv::put(a.env, &hash, &record_of(row)?, a.now).await
        } else {
            kv::delete(a.env, &hash).await
        };
        match (res, live) {
            (Ok(()), true) => written += 1,
            (Ok(()), false) => deleted += 1,
            (Err(e), _) => {
                worker::console_error!("reconcile {}: {e}", row.id);
                failed += 1;
            }
        }
    }
    let next = if rows.len() == PAGE as usize {
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    let detail = json!({"written": written, "deleted": deleted, "failed": failed, "from": after});
    a.db.record_audit(&a.audit("reconcile", None, detail)).await?;
    if failed > 0 {
        return Err(ApiError::Unavailable {
            slug: "kv-write-failed",
            detail: format!(
                "{failed} of {} keys could not be written to the key store; run reconcile again.",
                rows.len()
            ),
        });
    }
    Ok(response::json(
        200,
        &json!({"written": written, "deleted": deleted, "next_cursor": next}),
    ))
}
