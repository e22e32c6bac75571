//! D1: the system of record for keys, presets and the audit log. Never used by the verify path
//! except the batched last-used write, which runs after the response via waitUntil.
//!
//! Conditional writes: an UPDATE names the version it read and the statuses it may leave; its
//! changed-row count (D1 batch meta) says whether it applied. The statements that must only
//! happen with it (the audit entry, a rotation's new row) are guarded by a random write token
//! that the UPDATE stamps on the row, inside the same batch transaction.

use serde::Deserialize;
use serde_json::{Map, Value};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use super::{AuditEntry, AuditRow, Group, KeyCursor, ListFilter, Preset, Records, StoreError, StoreResult, Written};
use crate::core::hash::KeyHash;
use crate::core::key::Environment;
use crate::core::model::{Key, Status};
use crate::core::scope::ScopeSet;
use crate::core::time::Millis;

pub const BINDING: &str = "DB";

const KEY_COLUMNS: &str = "id, workspace, name, description, hash, preview, scopes, metadata, created_at, \
     expires_at, grace_until, status, revoked_at, last_used_at, rotated_from, superseded_by, version, ratelimit, environment, groups, credits";

/// Beyond any real unix-ms time and exactly representable in f64.
const FAR_FUTURE: i64 = 1 << 52;

#[derive(Deserialize)]
struct KeyRow {
    id: String,
    workspace: String,
    name: String,
    description: String,
    hash: String,
    preview: String,
    scopes: String,
    metadata: String,
    created_at: Millis,
    expires_at: Option<Millis>,
    grace_until: Option<Millis>,
    status: String,
    revoked_at: Option<Millis>,
    last_used_at: Option<Millis>,
    rotated_from: Option<String>,
    superseded_by: Option<String>,
    version: i64,
    ratelimit: Option<String>,
    environment: String,
    groups: String,
    credits: Option<String>,
}

impl KeyRow {
    fn into_key(self) -> StoreResult<Key> {
        let bad = |what: &str| StoreError::Corrupt(format!("key {}: {what}", self.id));
        let scopes: Vec<String> = serde_json::from_str(&self.scopes).map_err(|_| bad("scopes column"))?;
        let scopes = ScopeSet::parse(&scopes).map_err(|_| bad("scopes column"))?;
        let metadata: Map<String, Value> = serde_json::from_str(&self.metadata).map_err(|_| bad("metadata column"))?;
        let hash = KeyHash::from_hex(&self.hash).ok_or_else(|| bad("hash column"))?;
        let status = Status::parse(&self.status).ok_or_else(|| bad("status column"))?;
        let environment = Environment::parse(&self.environment).ok_or_else(|| bad("environment column"))?;
        let groups: Vec<String> = serde_json::from_str(&self.groups).map_err(|_| bad("groups column"))?;
        let ratelimit = match &self.ratelimit {
            None => None,
            Some(t) => Some(serde_json::from_str(t).map_err(|_| bad("ratelimit column"))?),
        };
        let credits = match &self.credits {
            None => None,
            Some(t) => Some(serde_json::from_str(t).map_err(|_| bad("credits column"))?),
        };
        Ok(Key {
            id: self.id,
            workspace: self.workspace,
            name: self.name,
            description: self.description,
            hash,
            preview: self.preview,
            environment,
            groups,
            scopes,
            metadata,
            created_at: self.created_at,
            expires_at: self.expires_at,
            grace_until: self.grace_until,
            status,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            rotated_from: self.rotated_from,
            superseded_by: self.superseded_by,
            version: self.version as u64,
            ratelimit,
            credits,
        })
    }
}

#[derive(Deserialize)]
struct PresetRow {
    name: String,
    description: String,
    scopes: String,
}

impl PresetRow {
    fn into_preset(self) -> StoreResult<Preset> {
        let raw: Vec<String> =
            serde_json::from_str(&self.scopes).map_err(|_| StoreError::Corrupt(format!("preset {}", self.name)))?;
        let scopes = ScopeSet::parse(&raw).map_err(|_| StoreError::Corrupt(format!("preset {}", self.name)))?;
        Ok(Preset {
            name: self.name,
            description: self.description,
            scopes,
        })
    }
}

#[derive(Deserialize)]
struct GroupRow {
    name: String,
    description: String,
    created_at: Millis,
}

#[derive(Deserialize)]
struct AuditDbRow {
    id: i64,
    at: Millis,
    workspace: String,
    actor: String,
    action: String,
    key_id: Option<String>,
    detail: String,
}

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}
fn n(v: i64) -> JsValue {
    // Unix ms and versions stay far below 2^53, so f64 holds them exactly.
    JsValue::from_f64(v as f64)
}
fn on(v: Option<i64>) -> JsValue {
    v.map_or(JsValue::NULL, n)
}
fn os(v: Option<&str>) -> JsValue {
    v.map_or(JsValue::NULL, s)
}

fn d1_err(e: worker::Error) -> StoreError {
    let msg = e.to_string();
    // SQLite's wording for the partial unique indexes on names (keys and presets).
    if msg.contains("UNIQUE constraint failed") && msg.contains(".name") {
        StoreError::NameTaken
    } else {
        unavailable(msg)
    }
}

/// Every D1 failure is logged here, with its cause (the caller's answer says only what it left).
fn unavailable(msg: String) -> StoreError {
    crate::log::error("d1-error", &msg);
    StoreError::Unavailable(msg)
}

fn token() -> StoreResult<String> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| unavailable(format!("getrandom: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn scopes_json(k: &Key) -> String {
    serde_json::to_string(&k.scopes.to_strings()).unwrap_or_else(|_| "[]".into())
}

fn groups_json(k: &Key) -> String {
    serde_json::to_string(&k.groups).unwrap_or_else(|_| "[]".into())
}

fn ratelimit_json(k: &Key) -> Option<String> {
    k.ratelimit.and_then(|r| serde_json::to_string(&r).ok())
}

fn credits_json(k: &Key) -> Option<String> {
    k.credits.as_ref().and_then(|c| serde_json::to_string(c).ok())
}

fn metadata_json(k: &Key) -> String {
    Value::Object(k.metadata.clone()).to_string()
}

/// When an audit insert runs, inside its batch.
enum AuditGuard<'a> {
    Always,
    /// Only if the guarded key UPDATE with this write token applied.
    KeyWrite {
        id: &'a str,
        token: &'a str,
    },
    /// Only if the statement before it changed a row.
    PreviousChanged,
}

pub struct D1Records(D1Database);

impl D1Records {
    pub fn new(env: &Env) -> StoreResult<D1Records> {
        env.d1(BINDING)
            .map(D1Records)
            .map_err(|e| unavailable(format!("D1 binding {BINDING}: {e}")))
    }

    fn stmt(&self, sql: &str, args: &[JsValue]) -> StoreResult<D1PreparedStatement> {
        self.0.prepare(sql).bind(args).map_err(d1_err)
    }

    /// The audit insert, written in the same batch as the change it records, and only if that
    /// change applied (`guard`).
    fn audit_stmt(&self, a: &AuditEntry, guard: AuditGuard<'_>) -> StoreResult<D1PreparedStatement> {
        let mut args = vec![
            n(a.at),
            s(&a.workspace),
            s(&a.actor),
            s(&a.action),
            os(a.key_id.as_deref()),
            s(&a.detail.to_string()),
        ];
        let condition = match guard {
            AuditGuard::Always => "",
            AuditGuard::KeyWrite { id, token } => {
                args.extend([s(id), s(token)]);
                " WHERE EXISTS (SELECT 1 FROM keys WHERE id = ?7 AND write_token = ?8)"
            }
            AuditGuard::PreviousChanged => " WHERE changes() = 1",
        };
        self.stmt(
            &format!(
                "INSERT INTO audit (at, workspace, actor, action, key_id, detail) SELECT ?1, ?2, ?3, ?4, ?5, ?6{condition}"
            ),
            &args,
        )
    }

    fn key_args(k: &Key) -> Vec<JsValue> {
        vec![
            s(&k.id),
            s(&k.workspace),
            s(&k.name),
            s(&k.description),
            s(&k.hash.to_hex()),
            s(&k.preview),
            s(&scopes_json(k)),
            s(&metadata_json(k)),
            n(k.created_at),
            on(k.expires_at),
            on(k.grace_until),
            s(k.status.as_str()),
            on(k.revoked_at),
            on(k.last_used_at),
            os(k.rotated_from.as_deref()),
            os(k.superseded_by.as_deref()),
            n(k.version as i64),
            os(ratelimit_json(k).as_deref()),
            s(k.environment.as_str()),
            s(&groups_json(k)),
            os(credits_json(k).as_deref()),
        ]
    }

    /// The guarded UPDATE of every mutable column. Final statuses stay final whatever the
    /// caller read (Status::may_become, spelled in SQL).
    fn update_stmt(&self, k: &Key, expected: u64, tok: &str) -> StoreResult<D1PreparedStatement> {
        self.stmt(
            "UPDATE keys SET name = ?3, description = ?4, scopes = ?5, metadata = ?6, expires_at = ?7, \
             grace_until = ?8, status = ?9, revoked_at = ?10, superseded_by = ?11, version = ?12, write_token = ?13, \
             ratelimit = ?15, groups = ?16, credits = ?17 WHERE workspace = ?1 AND id = ?2 AND version = ?14 AND ?12 = ?14 + 1 \
             AND (status IN ('active', 'disabled') OR (status = 'revoked' AND ?9 IN ('revoked', 'deleted')))",
            &[
                s(&k.workspace),
                s(&k.id),
                s(&k.name),
                s(&k.description),
                s(&scopes_json(k)),
                s(&metadata_json(k)),
                on(k.expires_at),
                on(k.grace_until),
                s(k.status.as_str()),
                on(k.revoked_at),
                os(k.superseded_by.as_deref()),
                n(k.version as i64),
                s(tok),
                n(expected as i64),
                os(ratelimit_json(k).as_deref()),
                s(&groups_json(k)),
                os(credits_json(k).as_deref()),
            ],
        )
    }

    async fn batch(&self, stmts: Vec<D1PreparedStatement>) -> StoreResult<Vec<worker::D1Result>> {
        self.0.batch(stmts).await.map_err(d1_err)
    }

    async fn rows<T: for<'de> Deserialize<'de>>(&self, stmt: D1PreparedStatement) -> StoreResult<Vec<T>> {
        let res = stmt.all().await.map_err(d1_err)?;
        res.results::<T>()
            .map_err(|e| StoreError::Corrupt(format!("D1 row decode: {e}")))
    }

    async fn keys(&self, stmt: D1PreparedStatement) -> StoreResult<Vec<Key>> {
        self.rows::<KeyRow>(stmt)
            .await?
            .into_iter()
            .map(KeyRow::into_key)
            .collect()
    }

    fn applied(results: &[worker::D1Result]) -> StoreResult<Written> {
        let changes = results
            .first()
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes)
            .ok_or_else(|| unavailable("D1 batch without a changed-row count".into()))?;
        Ok(if changes == 1 { Written::Applied } else { Written::Stale })
    }
}

impl Records for D1Records {
    async fn get_key(&self, workspace: &str, id: &str) -> StoreResult<Option<Key>> {
        let stmt = self.stmt(
            &format!("SELECT {KEY_COLUMNS} FROM keys WHERE workspace = ?1 AND id = ?2"),
            &[s(workspace), s(id)],
        )?;
        Ok(self.keys(stmt).await?.into_iter().next())
    }

    async fn get_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<Key>> {
        let stmt = self.stmt(
            &format!("SELECT {KEY_COLUMNS} FROM keys WHERE hash = ?1"),
            &[s(&hash.to_hex())],
        )?;
        Ok(self.keys(stmt).await?.into_iter().next())
    }

    async fn insert_key(&self, key: &Key, audit: &AuditEntry) -> StoreResult<()> {
        let ins = self.stmt(
            &format!(
                "INSERT INTO keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
                 ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
            ),
            &Self::key_args(key),
        )?;
        self.batch(vec![ins, self.audit_stmt(audit, AuditGuard::Always)?])
            .await
            .map(|_| ())
    }

    async fn update_key(&self, key: &Key, expected_version: u64, audit: &AuditEntry) -> StoreResult<Written> {
        let tok = token()?;
        let results = self
            .batch(vec![
                self.update_stmt(key, expected_version, &tok)?,
                self.audit_stmt(
                    audit,
                    AuditGuard::KeyWrite {
                        id: &key.id,
                        token: &tok,
                    },
                )?,
            ])
            .await?;
        Self::applied(&results)
    }

    async fn rotate(&self, old: &Key, expected_version: u64, new: &Key, audit: &AuditEntry) -> StoreResult<Written> {
        let tok = token()?;
        // The old row first: the partial unique index frees the name only once it is superseded.
        let mut args = Self::key_args(new);
        args.extend([s(&old.id), s(&tok)]);
        let insert_new = self.stmt(
            &format!(
                "INSERT INTO keys ({KEY_COLUMNS}) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
                 ?15, ?16, ?17, ?18, ?19, ?20, ?21 WHERE EXISTS (SELECT 1 FROM keys WHERE id = ?22 AND write_token = ?23)"
            ),
            &args,
        )?;
        let results = self
            .batch(vec![
                self.update_stmt(old, expected_version, &tok)?,
                insert_new,
                self.audit_stmt(
                    audit,
                    AuditGuard::KeyWrite {
                        id: &old.id,
                        token: &tok,
                    },
                )?,
            ])
            .await?;
        Self::applied(&results)
    }

    async fn list_keys(
        &self,
        workspace: &str,
        filter: ListFilter,
        after: Option<&KeyCursor>,
        limit: u32,
        now: Millis,
    ) -> StoreResult<Vec<Key>> {
        // ?5 = now, ?6 = far future; every variant names both: D1 refuses a binding count that
        // differs from the parameters a statement uses.
        let eff = "MIN(COALESCE(expires_at, ?6), COALESCE(grace_until, ?6))";
        let filter = match filter {
            ListFilter::All => "status != 'deleted' AND ?5 IS NOT NULL AND ?6 IS NOT NULL".into(),
            ListFilter::Active => format!("status = 'active' AND {eff} > ?5"),
            ListFilter::Disabled => "status = 'disabled' AND ?5 IS NOT NULL AND ?6 IS NOT NULL".into(),
            ListFilter::Revoked => "status = 'revoked' AND ?5 IS NOT NULL AND ?6 IS NOT NULL".into(),
            ListFilter::Expired => format!("status = 'active' AND {eff} <= ?5"),
        };
        let (c_at, c_id) = after.map_or((FAR_FUTURE, "\u{10FFFF}"), |c| (c.created_at, c.id.as_str()));
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE workspace = ?1 AND (created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
             AND {filter} ORDER BY created_at DESC, id DESC LIMIT ?4"
        );
        let stmt = self.stmt(
            &sql,
            &[
                s(workspace),
                n(c_at),
                s(c_id),
                n(i64::from(limit)),
                n(now),
                n(FAR_FUTURE),
            ],
        )?;
        self.keys(stmt).await
    }

    async fn keys_after(&self, workspace: &str, after_id: &str, limit: u32) -> StoreResult<Vec<Key>> {
        let stmt = self.stmt(
            &format!("SELECT {KEY_COLUMNS} FROM keys WHERE workspace = ?1 AND id > ?2 ORDER BY id LIMIT ?3"),
            &[s(workspace), s(after_id), n(i64::from(limit))],
        )?;
        self.keys(stmt).await
    }

    async fn touch_last_used(&self, uses: &[(KeyHash, Millis)]) -> StoreResult<()> {
        // Each key with its own time; 45 (hash, time) pairs a statement stay under D1's 100
        // bound parameters.
        let mut stmts = Vec::new();
        for chunk in uses.chunks(45) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(?{}, ?{})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "WITH u(h, t) AS (VALUES {}) UPDATE keys SET last_used_at = (SELECT t FROM u WHERE u.h = keys.hash) \
                 WHERE hash IN (SELECT h FROM u) AND (last_used_at IS NULL OR last_used_at < (SELECT t FROM u WHERE u.h = keys.hash))",
                values.join(", ")
            );
            let mut args = Vec::with_capacity(chunk.len() * 2);
            for (h, t) in chunk {
                args.push(s(&h.to_hex()));
                args.push(n(*t));
            }
            stmts.push(self.stmt(&sql, &args)?);
        }
        if stmts.is_empty() {
            return Ok(());
        }
        self.batch(stmts).await.map(|_| ())
    }

    async fn list_presets(&self, workspace: &str) -> StoreResult<Vec<Preset>> {
        let stmt = self.stmt(
            "SELECT name, description, scopes FROM presets WHERE workspace = ?1 ORDER BY name",
            &[s(workspace)],
        )?;
        self.rows::<PresetRow>(stmt)
            .await?
            .into_iter()
            .map(PresetRow::into_preset)
            .collect()
    }

    async fn get_preset(&self, workspace: &str, name: &str) -> StoreResult<Option<Preset>> {
        let stmt = self.stmt(
            "SELECT name, description, scopes FROM presets WHERE workspace = ?1 AND name = ?2",
            &[s(workspace), s(name)],
        )?;
        self.rows::<PresetRow>(stmt)
            .await?
            .into_iter()
            .next()
            .map(PresetRow::into_preset)
            .transpose()
    }

    async fn insert_preset(&self, workspace: &str, p: &Preset, now: Millis, audit: &AuditEntry) -> StoreResult<()> {
        let scopes = serde_json::to_string(&p.scopes.to_strings()).unwrap_or_else(|_| "[]".into());
        let ins = self.stmt(
            "INSERT INTO presets (workspace, name, description, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[s(workspace), s(&p.name), s(&p.description), s(&scopes), n(now)],
        )?;
        self.batch(vec![ins, self.audit_stmt(audit, AuditGuard::Always)?])
            .await
            .map(|_| ())
    }

    async fn delete_preset(&self, workspace: &str, name: &str, audit: &AuditEntry) -> StoreResult<Written> {
        let del = self.stmt(
            "DELETE FROM presets WHERE workspace = ?1 AND name = ?2",
            &[s(workspace), s(name)],
        )?;
        // The audit entry only if the preset existed: guarded by the changed-row count.
        let aud = self.audit_stmt(audit, AuditGuard::PreviousChanged)?;
        let results = self.batch(vec![del, aud]).await?;
        Self::applied(&results)
    }

    async fn list_groups(&self, workspace: &str) -> StoreResult<Vec<Group>> {
        let stmt = self.stmt(
            "SELECT name, description, created_at FROM groups WHERE workspace = ?1 ORDER BY name",
            &[s(workspace)],
        )?;
        Ok(self
            .rows::<GroupRow>(stmt)
            .await?
            .into_iter()
            .map(|r| Group {
                name: r.name,
                description: r.description,
                created_at: r.created_at,
            })
            .collect())
    }

    async fn insert_group(&self, workspace: &str, g: &Group, audit: &AuditEntry) -> StoreResult<()> {
        let ins = self.stmt(
            "INSERT INTO groups (workspace, name, description, created_at) VALUES (?1, ?2, ?3, ?4)",
            &[s(workspace), s(&g.name), s(&g.description), n(g.created_at)],
        )?;
        self.batch(vec![ins, self.audit_stmt(audit, AuditGuard::Always)?])
            .await
            .map(|_| ())
    }

    async fn delete_group(&self, workspace: &str, name: &str, audit: &AuditEntry) -> StoreResult<Written> {
        let del = self.stmt(
            "DELETE FROM groups WHERE workspace = ?1 AND name = ?2",
            &[s(workspace), s(name)],
        )?;
        let aud = self.audit_stmt(audit, AuditGuard::PreviousChanged)?;
        let results = self.batch(vec![del, aud]).await?;
        Self::applied(&results)
    }

    async fn group_members(&self, workspace: &str, name: &str, limit: u32) -> StoreResult<Vec<Key>> {
        let stmt = self.stmt(
            &format!(
                "SELECT {KEY_COLUMNS} FROM keys WHERE workspace = ?1 AND status != 'deleted' \
                 AND EXISTS (SELECT 1 FROM json_each(keys.groups) WHERE value = ?2) ORDER BY id LIMIT ?3"
            ),
            &[s(workspace), s(name), n(i64::from(limit))],
        )?;
        self.rows::<KeyRow>(stmt).await?.into_iter().map(KeyRow::into_key).collect()
    }

    async fn record_audit(&self, audit: &AuditEntry) -> StoreResult<()> {
        self.batch(vec![self.audit_stmt(audit, AuditGuard::Always)?])
            .await
            .map(|_| ())
    }

    async fn list_audit(&self, workspace: &str, before_id: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRow>> {
        let stmt = self.stmt(
            "SELECT id, at, workspace, actor, action, key_id, detail FROM audit WHERE workspace = ?1 AND id < ?2 \
             ORDER BY id DESC LIMIT ?3",
            &[s(workspace), n(before_id.unwrap_or(FAR_FUTURE)), n(i64::from(limit))],
        )?;
        Ok(self
            .rows::<AuditDbRow>(stmt)
            .await?
            .into_iter()
            .map(|r| AuditRow {
                id: r.id,
                entry: AuditEntry {
                    at: r.at,
                    workspace: r.workspace,
                    actor: r.actor,
                    action: r.action,
                    key_id: r.key_id,
                    detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
                },
            })
            .collect())
    }
}
