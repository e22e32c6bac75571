//! D1: the system of record for keys, presets and the audit log. Never used by the verify path
//! except the throttled last-used write, which runs after the response via waitUntil.

use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::core::time::Millis;
use crate::http::problem::ApiError;

pub const BINDING: &str = "DB";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRow {
    pub id: String,
    pub workspace: String,
    pub name: String,
    pub description: String,
    pub hash: String,
    pub preview: String,
    pub scopes: String,
    pub metadata: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub rotated_from: Option<String>,
    pub superseded_by: Option<String>,
    pub grace_until: Option<Millis>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PresetRow {
    pub name: String,
    pub description: String,
    pub scopes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: Millis,
    pub actor: String,
    pub action: String,
    pub key_id: Option<String>,
    pub detail: String,
}

/// One audit entry, written in the same batch (transaction) as the change it records.
pub struct Audit<'a> {
    pub at: Millis,
    pub workspace: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub key_id: Option<&'a str>,
    pub detail: String,
}

#[derive(Clone, Copy)]
pub enum StatusFilter {
    Active,
    Revoked,
    Expired,
}

const KEY_COLUMNS: &str = "id, workspace, name, description, hash, preview, scopes, metadata, created_at, \
     expires_at, revoked_at, last_used_at, rotated_from, superseded_by, grace_until";

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}
fn n(v: i64) -> JsValue {
    // Unix ms stay far below 2^53, so f64 holds them exactly.
    JsValue::from_f64(v as f64)
}
fn on(v: Option<i64>) -> JsValue {
    v.map_or(JsValue::NULL, n)
}
fn os(v: Option<&str>) -> JsValue {
    v.map_or(JsValue::NULL, s)
}

fn d1_err(e: worker::Error) -> ApiError {
    let msg = e.to_string();
    if msg.contains("UNIQUE constraint failed") {
        ApiError::Conflict {
            slug: "name-conflict",
            detail: "A key or preset with this name already exists in the workspace.".into(),
        }
    } else {
        worker::console_error!("D1 error: {msg}");
        ApiError::Unavailable {
            slug: "d1-unavailable",
            detail: "The key database is unavailable; nothing was changed.".into(),
        }
    }
}

pub struct Db(D1Database);

impl Db {
    pub fn new(env: &Env) -> Result<Db, ApiError> {
        env.d1(BINDING)
            .map(Db)
            .map_err(|e| ApiError::Internal(format!("D1 binding {BINDING}: {e}")))
    }

    fn stmt(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, ApiError> {
        self.0.prepare(sql).bind(args).map_err(d1_err)
    }

    fn audit_stmt(&self, a: &Audit<'_>) -> Result<D1PreparedStatement, ApiError> {
        self.stmt(
            "INSERT INTO audit (at, workspace, actor, action, key_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                n(a.at),
                s(a.workspace),
                s(a.actor),
                s(a.action),
                os(a.key_id),
                s(&a.detail),
            ],
        )
    }

    fn insert_key_stmt(&self, r: &KeyRow) -> Result<D1PreparedStatement, ApiError> {
        self.stmt(
            &format!("INSERT INTO keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
            &[
                s(&r.id), s(&r.workspace), s(&r.name), s(&r.description), s(&r.hash), s(&r.preview), s(&r.scopes),
                s(&r.metadata), n(r.created_at), on(r.expires_at), on(r.revoked_at), on(r.last_used_at),
                os(r.rotated_from.as_deref()), os(r.superseded_by.as_deref()), on(r.grace_until),
            ],
        )
    }

    fn update_key_stmt(&self, r: &KeyRow) -> Result<D1PreparedStatement, ApiError> {
        self.stmt(
            "UPDATE keys SET name = ?3, description = ?4, scopes = ?5, metadata = ?6, expires_at = ?7, \
             revoked_at = ?8, superseded_by = ?9, grace_until = ?10 WHERE workspace = ?1 AND id = ?2",
            &[
                s(&r.workspace),
                s(&r.id),
                s(&r.name),
                s(&r.description),
                s(&r.scopes),
                s(&r.metadata),
                on(r.expires_at),
                on(r.revoked_at),
                os(r.superseded_by.as_deref()),
                on(r.grace_until),
            ],
        )
    }

    async fn batch(&self, stmts: Vec<D1PreparedStatement>) -> Result<(), ApiError> {
        self.0.batch(stmts).await.map(|_| ()).map_err(d1_err)
    }

    async fn rows<T: for<'de> Deserialize<'de>>(&self, stmt: D1PreparedStatement) -> Result<Vec<T>, ApiError> {
        let res = stmt.all().await.map_err(d1_err)?;
        res.results::<T>()
            .map_err(|e| ApiError::Internal(format!("D1 row decode: {e}")))
    }

    pub async fn insert_key(&self, row: &KeyRow, audit: &Audit<'_>) -> Result<(), ApiError> {
        self.batch(vec![self.insert_key_stmt(row)?, self.audit_stmt(audit)?])
            .await
    }

    fn delete_key_stmt(&self, workspace: &str, id: &str) -> Result<D1PreparedStatement, ApiError> {
        self.stmt(
            "DELETE FROM keys WHERE workspace = ?1 AND id = ?2",
            &[s(workspace), s(id)],
        )
    }

    /// Undo of a create whose KV write failed: the secret was never handed out.
    pub async fn remove_key(&self, workspace: &str, id: &str) -> Result<(), ApiError> {
        self.batch(vec![self.delete_key_stmt(workspace, id)?]).await
    }

    pub async fn update_key(&self, row: &KeyRow, audit: &Audit<'_>) -> Result<(), ApiError> {
        self.batch(vec![self.update_key_stmt(row)?, self.audit_stmt(audit)?])
            .await
    }

    pub async fn delete_key(&self, workspace: &str, id: &str, audit: &Audit<'_>) -> Result<(), ApiError> {
        self.batch(vec![self.delete_key_stmt(workspace, id)?, self.audit_stmt(audit)?])
            .await
    }

    /// Old row first: the partial unique index frees the name only once it is superseded.
    pub async fn rotate(&self, old: &KeyRow, new: &KeyRow, audit: &Audit<'_>) -> Result<(), ApiError> {
        self.batch(vec![
            self.update_key_stmt(old)?,
            self.insert_key_stmt(new)?,
            self.audit_stmt(audit)?,
        ])
        .await
    }

    /// Undo of a rotation whose KV write failed.
    pub async fn unrotate(&self, old: &KeyRow, new_id: &str) -> Result<(), ApiError> {
        self.batch(vec![
            self.delete_key_stmt(&old.workspace, new_id)?,
            self.update_key_stmt(old)?,
        ])
        .await
    }

    pub async fn get_key(&self, workspace: &str, id: &str) -> Result<Option<KeyRow>, ApiError> {
        let stmt = self.stmt(
            &format!("SELECT {KEY_COLUMNS} FROM keys WHERE workspace = ?1 AND id = ?2"),
            &[s(workspace), s(id)],
        )?;
        Ok(self.rows(stmt).await?.into_iter().next())
    }

    /// Newest first; `after` is the (created_at, id) of the last row of the previous page.
    pub async fn list_keys(
        &self,
        workspace: &str,
        status: Option<StatusFilter>,
        after: Option<(Millis, &str)>,
        limit: u32,
        now: Millis,
    ) -> Result<Vec<KeyRow>, ApiError> {
        let filter = match status {
            // Every variant names ?5: D1 refuses a binding count that differs from the parameters used.
            None => "?5 IS NOT NULL",
            Some(StatusFilter::Active) => "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?5)",
            Some(StatusFilter::Revoked) => "revoked_at IS NOT NULL AND ?5 IS NOT NULL",
            Some(StatusFilter::Expired) => "revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?5",
        };
        // No cursor: start above every real row (a far-future time; i64::MAX would not survive f64).
        let (c_at, c_id) = after.unwrap_or((1i64 << 52, "\u{10FFFF}"));
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE workspace = ?1 AND (created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
             AND {filter} ORDER BY created_at DESC, id DESC LIMIT ?4"
        );
        let stmt = self.stmt(&sql, &[s(workspace), n(c_at), s(c_id), n(i64::from(limit)), n(now)])?;
        self.rows(stmt).await
    }

    /// Reconcile pages through a workspace by id.
    pub async fn keys_after(&self, workspace: &str, after_id: &str, limit: u32) -> Result<Vec<KeyRow>, ApiError> {
        let stmt = self.stmt(
            &format!("SELECT {KEY_COLUMNS} FROM keys WHERE workspace = ?1 AND id > ?2 ORDER BY id LIMIT ?3"),
            &[s(workspace), s(after_id), n(i64::from(limit))],
        )?;
        self.rows(stmt).await
    }

    /// One batch for every key used since the last flush; chunks stay under D1's 100 bound
    /// parameters per statement.
    pub async fn touch_last_used(&self, hashes: &[String], now: Millis) -> Result<(), ApiError> {
        let mut stmts = Vec::new();
        for chunk in hashes.chunks(90) {
            let marks: Vec<String> = (2..chunk.len() + 2).map(|i| format!("?{i}")).collect();
            let sql = format!(
                "UPDATE keys SET last_used_at = ?1 WHERE hash IN ({}) AND (last_used_at IS NULL OR last_used_at < ?1)",
                marks.join(", ")
            );
            let mut args = vec![n(now)];
            args.extend(chunk.iter().map(|h| s(h)));
            stmts.push(self.stmt(&sql, &args)?);
        }
        if stmts.is_empty() {
            return Ok(());
        }
        self.batch(stmts).await
    }

    pub async fn list_presets(&self, workspace: &str) -> Result<Vec<PresetRow>, ApiError> {
        let stmt = self.stmt(
            "SELECT name, description, scopes FROM presets WHERE workspace = ?1 ORDER BY name",
            &[s(workspace)],
        )?;
        self.rows(stmt).await
    }

    pub async fn get_preset(&self, workspace: &str, name: &str) -> Result<Option<PresetRow>, ApiError> {
        let stmt = self.stmt(
            "SELECT name, description, scopes FROM presets WHERE workspace = ?1 AND name = ?2",
            &[s(workspace), s(name)],
        )?;
        Ok(self.rows(stmt).await?.into_iter().next())
    }

    pub async fn insert_preset(
        &self,
        workspace: &str,
        p: &PresetRow,
        now: Millis,
        audit: &Audit<'_>,
    ) -> Result<(), ApiError> {
        let ins = self.stmt(
            "INSERT INTO presets (workspace, name, description, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[s(workspace), s(&p.name), s(&p.description), s(&p.scopes), n(now)],
        )?;
        self.batch(vec![ins, self.audit_stmt(audit)?]).await
    }

    pub async fn delete_preset(&self, workspace: &str, name: &str, audit: &Audit<'_>) -> Result<(), ApiError> {
        let del = self.stmt(
            "DELETE FROM presets WHERE workspace = ?1 AND name = ?2",
            &[s(workspace), s(name)],
        )?;
        self.batch(vec![del, self.audit_stmt(audit)?]).await
    }

    pub async fn record_audit(&self, audit: &Audit<'_>) -> Result<(), ApiError> {
        self.batch(vec![self.audit_stmt(audit)?]).await
    }

    pub async fn list_audit(
        &self,
        workspace: &str,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRow>, ApiError> {
        let stmt = self.stmt(
            "SELECT id, at, actor, action, key_id, detail FROM audit WHERE workspace = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            &[s(workspace), n(before_id.unwrap_or(1i64 << 52)), n(i64::from(limit))],
        )?;
        self.rows(stmt).await
    }
}
