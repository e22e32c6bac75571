//! POST /admin/v1/reconcile: make the workspace's edge records match the system of record, a
//! page at a time (a Worker invocation may make at most 1,000 KV operations). The record
//! decides, with one exception that keeps revocation permanent: an edge tombstone is a
//! revocation or deletion whose record write failed, and is completed, never overwritten.
//! A key that cannot be read or written is skipped and reported, so a page always finishes.

use serde_json::json;

use super::Admin;
use crate::app::sync::{self, Reconciled};
use crate::core::model::Status;
use crate::http::plain::Response;
use crate::http::problem::ApiResult;
use crate::store::{Edge, Records};

const PAGE: u32 = 100;

pub async fn run<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    let after = a.param("cursor").unwrap_or("").to_owned();
    let keys = a.app.records.keys_after(&a.workspace, &after, PAGE).await?;
    let (mut written, mut unchanged, mut completed) = (0u32, 0u32, 0u32);
    let mut failed: Vec<String> = Vec::new();
    let mut projected = Vec::new();
    for key in &keys {
        let audit = |s: Status| {
            let action = if s == Status::Deleted {
                "key.delete"
            } else {
                "key.revoke"
            };
            a.audit(action, Some(&key.id), json!({"name": key.name, "by": "reconcile"}))
        };
        match sync::reconcile_key(a.app, key, audit, a.now).await {
            Ok((k, Reconciled::Unchanged)) => {
                unchanged += 1;
                projected.push(k);
            }
            Ok((k, Reconciled::Written)) => {
                written += 1;
                projected.push(k);
            }
            Ok((_, Reconciled::Completed)) => completed += 1,
            Err(()) => failed.push(key.id.clone()),
        }
    }
    // A concurrent admin write may have overtaken what this page projected: read the page once
    // more and settle every key whose version moved (one query, not one per key).
    if let Ok(again) = a.app.records.keys_after(&a.workspace, &after, PAGE).await {
        for k in again {
            if projected.iter().any(|p| p.id == k.id && p.version != k.version)
                && sync::settle(a.app, &k, a.now).await.is_err()
            {
                failed.push(k.id.clone());
            }
        }
    }
    let next = if keys.len() == PAGE as usize {
        keys.last().map(|k| k.id.clone())
    } else {
        None
    };
    let detail =
        json!({"written": written, "unchanged": unchanged, "completed": completed, "failed": failed, "from": after});
    // The audit entry is best effort: the page's work is done and reported either way.
    let _ = a.app.records.record_audit(&a.audit("reconcile", None, detail)).await;
    Ok(Response::json(
        200,
        &json!({"written": written, "unchanged": unchanged, "completed": completed, "failed": failed, "next_cursor": next}),
    ))
}
