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

use super::{
    AuditEntry, AuditRow, Group, KeyCursor, KeyPage, ListFilter, Preset, QueryPlan, Records, StoreError, StoreResult,
    Written,
};
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

/// KEY_COLUMNS of the `keys` table by name, for statements that join another table.
fn keys_columns() -> String {
    KEY_COLUMNS
        .split(", ")
        .map(|c| format!("keys.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A statement's text and its arguments, before it is prepared: the same value is run by the
/// store and explained by `query_plans`, so the plans shown are those of the statements run.
struct Q {
    sql: String,
    args: Vec<JsValue>,
}

fn q(sql: impl Into<String>, args: Vec<JsValue>) -> Q {
    Q { sql: sql.into(), args }
}

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
struct CursorRow {
    created_at: Millis,
    id: String,
}

#[derive(Deserialize)]
struct PlanRow {
    id: i64,
    parent: i64,
    detail: String,
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

/// The audit insert, written in the same batch as the change it records, and only if that
/// change applied (`guard`).
fn audit_q(a: &AuditEntry, guard: AuditGuard<'_>) -> Q {
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
    q(
        format!(
            "INSERT INTO audit (at, workspace, actor, action, key_id, detail) SELECT ?1, ?2, ?3, ?4, ?5, ?6{condition}"
        ),
        args,
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

fn get_key_q(workspace: &str, id: &str) -> Q {
    q(
        format!("SELECT {KEY_COLUMNS} FROM keys WHERE workspace = ?1 AND id = ?2"),
        vec![s(workspace), s(id)],
    )
}

fn get_key_by_hash_q(hash: &str) -> Q {
    q(format!("SELECT {KEY_COLUMNS} FROM keys WHERE hash = ?1"), vec![s(hash)])
}

fn insert_key_q(k: &Key) -> Q {
    q(
        format!(
            "INSERT INTO keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
             ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
        ),
        key_args(k),
    )
}

/// The guarded UPDATE of every mutable column. Final statuses stay final whatever the
/// caller read (Status::may_become, spelled in SQL).
fn update_key_q(k: &Key, expected: u64, tok: &str) -> Q {
    q(
        "UPDATE keys SET name = ?3, description = ?4, scopes = ?5, metadata = ?6, expires_at = ?7, \
         grace_until = ?8, status = ?9, revoked_at = ?10, superseded_by = ?11, version = ?12, write_token = ?13, \
         ratelimit = ?15, groups = ?16, credits = ?17 WHERE workspace = ?1 AND id = ?2 AND version = ?14 AND ?12 = ?14 + 1 \
         AND (status IN ('active', 'disabled') OR (status = 'revoked' AND ?9 IN ('revoked', 'deleted')))",
        vec![
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

/// A rotation's successor, inserted only if the old key's guarded UPDATE applied.
fn insert_successor_q(new: &Key, old_id: &str, tok: &str) -> Q {
    let mut args = key_args(new);
    args.extend([s(old_id), s(tok)]);
    q(
        format!(
            "INSERT INTO keys ({KEY_COLUMNS}) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
             ?15, ?16, ?17, ?18, ?19, ?20, ?21 WHERE EXISTS (SELECT 1 FROM keys WHERE id = ?22 AND write_token = ?23)"
        ),
        args,
    )
}

/// The key's group memberships (table key_groups) as its row now says, in the same batch as the
/// row's write: the row's groups, none once it is deleted. With a write token, only if the
/// guarded UPDATE that stamped it applied (otherwise the row is someone else's and so are its
/// memberships). Two statements: the old memberships out, the current ones in.
fn members_q(id: &str, tok: Option<&str>) -> [Q; 2] {
    let (guard, args) = match tok {
        Some(t) => (
            " AND EXISTS (SELECT 1 FROM keys WHERE id = ?1 AND write_token = ?2)",
            vec![s(id), s(t)],
        ),
        None => ("", vec![s(id)]),
    };
    let guard_row = if tok.is_some() {
        " AND keys.write_token = ?2"
    } else {
        ""
    };
    [
        q(format!("DELETE FROM key_groups WHERE key_id = ?1{guard}"), args.clone()),
        q(
            format!(
                "INSERT OR IGNORE INTO key_groups (workspace, grp, key_id) SELECT keys.workspace, j.value, keys.id \
                 FROM keys, json_each(keys.groups) AS j WHERE keys.id = ?1{guard_row} AND keys.status != 'deleted'"
            ),
            args,
        ),
    ]
}

/// Where a page of keys starts: after `after`, or at the newest key.
fn cursor_args(after: Option<&KeyCursor>) -> (JsValue, JsValue) {
    let (c_at, c_id) = after.map_or((FAR_FUTURE, "\u{10FFFF}"), |c| (c.created_at, c.id.as_str()));
    (n(c_at), s(c_id))
}

/// The statements of one page of keys (`limit + 1` rows, so a further row tells whether a next page
/// exists). The status lists are index searches that stop at the page's end. The active and
/// expired lists also depend on the clock: they examine a window of at most `scan` active keys
/// from the covering index keys_workspace_status, read only the rows that match, and a second
/// statement finds the window's last key and whether any active key follows it.
fn list_keys_q(
    workspace: &str,
    filter: ListFilter,
    after: Option<&KeyCursor>,
    limit: u32,
    scan: u32,
    now: Millis,
) -> Vec<Q> {
    let (c_at, c_id) = cursor_args(after);
    let rows = n(i64::from(limit) + 1);
    let order = "ORDER BY created_at DESC, id DESC";
    let status = match filter {
        ListFilter::All => {
            // Written as in the partial index keys_workspace_created, which holds no tombstones.
            return vec![q(
                format!(
                    "SELECT {KEY_COLUMNS} FROM keys WHERE workspace = ?1 AND status != 'deleted' \
                     AND (created_at, id) < (?2, ?3) {order} LIMIT ?4"
                ),
                vec![s(workspace), c_at, c_id, rows],
            )];
        }
        ListFilter::Disabled => "disabled",
        ListFilter::Revoked => "revoked",
        ListFilter::Active | ListFilter::Expired => {
            let cmp = if filter == ListFilter::Active { ">" } else { "<=" };
            // CROSS JOIN keeps the window as the outer loop, so rows come out in its order and
            // LIMIT keeps the newest matches.
            let page = q(
                format!(
                    "WITH w(wid, wat, eff) AS (SELECT id, created_at, MIN(COALESCE(expires_at, ?6), COALESCE(grace_until, ?6)) \
                     FROM keys WHERE workspace = ?1 AND status = 'active' AND (created_at, id) < (?2, ?3) {order} LIMIT ?7) \
                     SELECT {} FROM w CROSS JOIN keys ON keys.id = w.wid WHERE w.eff {cmp} ?5 LIMIT ?4",
                    keys_columns()
                ),
                vec![s(workspace), c_at.clone(), c_id.clone(), rows, n(now), n(FAR_FUTURE), n(i64::from(scan))],
            );
            let end = q(
                format!(
                    "SELECT created_at, id FROM keys WHERE workspace = ?1 AND status = 'active' \
                     AND (created_at, id) < (?2, ?3) {order} LIMIT 2 OFFSET ?4"
                ),
                vec![s(workspace), c_at, c_id, n(i64::from(scan.max(1)) - 1)],
            );
            return vec![page, end];
        }
    };
    vec![q(
        format!("SELECT {KEY_COLUMNS} FROM keys WHERE workspace = ?1 AND status = ?5 AND (created_at, id) < (?2, ?3) {order} LIMIT ?4"),
        vec![s(workspace), c_at, c_id, rows, s(status)],
    )]
}

// INDEXED BY in keys_after and list_audit: with statistics (ANALYZE, or PRAGMA optimize) from a
// database where one workspace dominates, SQLite may walk the primary key by range instead (`id > ?`,
// `rowid < ?`), reading every other workspace's rows on the way: the plans in
// bench/admin-scale/plans.txt showed it for the audit log. Named, the index is used or the statement
// fails; it never silently reads the whole table.
fn keys_after_q(workspace: &str, after_id: &str, limit: u32) -> Q {
    q(
        format!(
            "SELECT {KEY_COLUMNS} FROM keys INDEXED BY keys_workspace_id WHERE workspace = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        vec![s(workspace), s(after_id), n(i64::from(limit))],
    )
}

/// Each key with its own time; 45 (hash, time) pairs a statement stay under D1's 100 bound
/// parameters.
fn touch_last_used_q(chunk: &[(KeyHash, Millis)]) -> Q {
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
    q(sql, args)
}

fn list_presets_q(workspace: &str) -> Q {
    q(
        "SELECT name, description, scopes FROM presets WHERE workspace = ?1 ORDER BY name",
        vec![s(workspace)],
    )
}

fn get_preset_q(workspace: &str, name: &str) -> Q {
    q(
        "SELECT name, description, scopes FROM presets WHERE workspace = ?1 AND name = ?2",
        vec![s(workspace), s(name)],
    )
}

fn insert_preset_q(workspace: &str, p: &Preset, now: Millis) -> Q {
    let scopes = serde_json::to_string(&p.scopes.to_strings()).unwrap_or_else(|_| "[]".into());
    q(
        "INSERT INTO presets (workspace, name, description, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        vec![s(workspace), s(&p.name), s(&p.description), s(&scopes), n(now)],
    )
}

fn delete_preset_q(workspace: &str, name: &str) -> Q {
    q(
        "DELETE FROM presets WHERE workspace = ?1 AND name = ?2",
        vec![s(workspace), s(name)],
    )
}

fn list_groups_q(workspace: &str) -> Q {
    q(
        "SELECT name, description, created_at FROM groups WHERE workspace = ?1 ORDER BY name",
        vec![s(workspace)],
    )
}

fn insert_group_q(workspace: &str, g: &Group) -> Q {
    q(
        "INSERT INTO groups (workspace, name, description, created_at) VALUES (?1, ?2, ?3, ?4)",
        vec![s(workspace), s(&g.name), s(&g.description), n(g.created_at)],
    )
}

fn delete_group_q(workspace: &str, name: &str) -> Q {
    q(
        "DELETE FROM groups WHERE workspace = ?1 AND name = ?2",
        vec![s(workspace), s(name)],
    )
}

/// From the membership table, in key id order (its primary key), never reading the workspace's
/// other keys.
fn group_members_q(workspace: &str, name: &str, limit: u32) -> Q {
    q(
        format!(
            "SELECT {} FROM key_groups CROSS JOIN keys ON keys.id = key_groups.key_id WHERE key_groups.workspace = ?1 \
             AND key_groups.grp = ?2 AND keys.status != 'deleted' ORDER BY key_groups.key_id LIMIT ?3",
            keys_columns()
        ),
        vec![s(workspace), s(name), n(i64::from(limit))],
    )
}

fn list_audit_q(workspace: &str, before_id: Option<i64>, limit: u32) -> Q {
    q(
        "SELECT id, at, workspace, actor, action, key_id, detail FROM audit INDEXED BY audit_workspace \
         WHERE workspace = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        vec![s(workspace), n(before_id.unwrap_or(FAR_FUTURE)), n(i64::from(limit))],
    )
}

/// Every statement the store issues, with sample arguments, for `query_plans`.
fn every_statement() -> Vec<(&'static str, Q)> {
    let hash = KeyHash::of(&crate::core::key::ApiKey::generate(
        &Default::default(),
        Environment::Live,
        &[7; 32],
    ));
    let k = Key {
        id: "key_plan".into(),
        workspace: "plan".into(),
        name: "plan".into(),
        description: String::new(),
        hash,
        preview: "kw_live_...plan".into(),
        environment: Environment::Live,
        groups: vec!["ops".into()],
        scopes: ScopeSet::default(),
        metadata: Map::new(),
        created_at: 1,
        expires_at: None,
        grace_until: None,
        status: Status::Active,
        revoked_at: None,
        last_used_at: None,
        rotated_from: None,
        superseded_by: None,
        version: 2,
        ratelimit: None,
        credits: None,
    };
    let audit = AuditEntry {
        at: 1,
        workspace: "plan".into(),
        actor: "root".into(),
        action: "plan".into(),
        key_id: Some("key_plan".into()),
        detail: Value::Null,
    };
    let cursor = KeyCursor {
        created_at: 1,
        id: "key_plan".into(),
    };
    let preset = Preset {
        name: "plan".into(),
        description: String::new(),
        scopes: ScopeSet::default(),
    };
    let group = Group {
        name: "ops".into(),
        description: String::new(),
        created_at: 1,
    };
    let [members_out, members_in] = members_q("key_plan", Some("tok"));
    let [_, members_new] = members_q("key_plan", None);
    let mut out = vec![
        ("get_key", get_key_q("plan", "key_plan")),
        ("get_key_by_hash", get_key_by_hash_q(&hash.to_hex())),
        ("insert_key", insert_key_q(&k)),
        ("insert_key: memberships", members_new),
        ("update_key (also revoke, delete)", update_key_q(&k, 1, "tok")),
        ("update_key: memberships out", members_out),
        ("update_key: memberships in", members_in),
        ("rotate: successor", insert_successor_q(&k, "key_old", "tok")),
        (
            "audit insert after a key write",
            audit_q(
                &audit,
                AuditGuard::KeyWrite {
                    id: "key_plan",
                    token: "tok",
                },
            ),
        ),
        (
            "audit insert after a change",
            audit_q(&audit, AuditGuard::PreviousChanged),
        ),
    ];
    for (name, filter) in [
        ("list_keys", ListFilter::All),
        ("list_keys ?status=disabled", ListFilter::Disabled),
        ("list_keys ?status=revoked", ListFilter::Revoked),
        ("list_keys ?status=active", ListFilter::Active),
        ("list_keys ?status=expired", ListFilter::Expired),
    ] {
        for (i, stmt) in list_keys_q("plan", filter, Some(&cursor), 50, super::LIST_SCAN, 1)
            .into_iter()
            .enumerate()
        {
            out.push((if i == 0 { name } else { "list_keys: window end" }, stmt));
        }
    }
    out.extend([
        ("keys_after (reconcile)", keys_after_q("plan", "key_plan", 100)),
        ("touch_last_used", touch_last_used_q(&[(k.hash, 1), (k.hash, 2)])),
        ("list_presets", list_presets_q("plan")),
        ("get_preset", get_preset_q("plan", "plan")),
        ("insert_preset", insert_preset_q("plan", &preset, 1)),
        ("delete_preset", delete_preset_q("plan", "plan")),
        ("list_groups", list_groups_q("plan")),
        ("insert_group", insert_group_q("plan", &group)),
        ("delete_group", delete_group_q("plan", "ops")),
        ("group_members", group_members_q("plan", "ops", 100)),
        ("list_audit", list_audit_q("plan", Some(10), 51)),
    ]);
    out
}

/// SQLite's plan rows (id, parent, detail) as lines indented by depth, like the sqlite3 shell.
fn plan_lines(rows: &[PlanRow]) -> Vec<String> {
    fn walk(rows: &[PlanRow], parent: i64, depth: usize, out: &mut Vec<String>) {
        for r in rows.iter().filter(|r| r.parent == parent) {
            out.push(format!("{}{}", "  ".repeat(depth), r.detail));
            walk(rows, r.id, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(rows, 0, 0, &mut out);
    out
}

pub struct D1Records(D1Database);

impl D1Records {
    pub fn new(env: &Env) -> StoreResult<D1Records> {
        env.d1(BINDING)
            .map(D1Records)
            .map_err(|e| unavailable(format!("D1 binding {BINDING}: {e}")))
    }

    fn stmt(&self, query: Q) -> StoreResult<D1PreparedStatement> {
        self.0.prepare(&query.sql).bind(&query.args).map_err(d1_err)
    }

    fn stmts(&self, queries: impl IntoIterator<Item = Q>) -> StoreResult<Vec<D1PreparedStatement>> {
        queries.into_iter().map(|x| self.stmt(x)).collect()
    }

    async fn batch(&self, stmts: Vec<D1PreparedStatement>) -> StoreResult<Vec<worker::D1Result>> {
        self.0.batch(stmts).await.map_err(d1_err)
    }

    async fn rows<T: for<'de> Deserialize<'de>>(&self, query: Q) -> StoreResult<Vec<T>> {
        let res = self.stmt(query)?.all().await.map_err(d1_err)?;
        decode(&res)
    }

    async fn keys(&self, query: Q) -> StoreResult<Vec<Key>> {
        self.rows::<KeyRow>(query)
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

fn decode<T: for<'de> Deserialize<'de>>(res: &worker::D1Result) -> StoreResult<Vec<T>> {
    res.results::<T>()
        .map_err(|e| StoreError::Corrupt(format!("D1 row decode: {e}")))
}

impl Records for D1Records {
    async fn get_key(&self, workspace: &str, id: &str) -> StoreResult<Option<Key>> {
        Ok(self.keys(get_key_q(workspace, id)).await?.into_iter().next())
    }

    async fn get_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<Key>> {
        Ok(self.keys(get_key_by_hash_q(&hash.to_hex())).await?.into_iter().next())
    }

    async fn insert_key(&self, key: &Key, audit: &AuditEntry) -> StoreResult<()> {
        let [_, members] = members_q(&key.id, None);
        let stmts = self.stmts([insert_key_q(key), members, audit_q(audit, AuditGuard::Always)])?;
        self.batch(stmts).await.map(|_| ())
    }

    async fn update_key(&self, key: &Key, expected_version: u64, audit: &AuditEntry) -> StoreResult<Written> {
        let tok = token()?;
        let [out, into] = members_q(&key.id, Some(&tok));
        let stmts = self.stmts([
            update_key_q(key, expected_version, &tok),
            out,
            into,
            audit_q(
                audit,
                AuditGuard::KeyWrite {
                    id: &key.id,
                    token: &tok,
                },
            ),
        ])?;
        let results = self.batch(stmts).await?;
        Self::applied(&results)
    }

    async fn rotate(&self, old: &Key, expected_version: u64, new: &Key, audit: &AuditEntry) -> StoreResult<Written> {
        let tok = token()?;
        // The old row first: the partial unique index frees the name only once it is superseded.
        let [out, into] = members_q(&old.id, Some(&tok));
        // The successor exists only if the old row's update applied, so its memberships need no guard.
        let [_, new_members] = members_q(&new.id, None);
        let stmts = self.stmts([
            update_key_q(old, expected_version, &tok),
            insert_successor_q(new, &old.id, &tok),
            out,
            into,
            new_members,
            audit_q(
                audit,
                AuditGuard::KeyWrite {
                    id: &old.id,
                    token: &tok,
                },
            ),
        ])?;
        let results = self.batch(stmts).await?;
        Self::applied(&results)
    }

    async fn list_keys(
        &self,
        workspace: &str,
        filter: ListFilter,
        after: Option<&KeyCursor>,
        limit: u32,
        scan: u32,
        now: Millis,
    ) -> StoreResult<KeyPage> {
        let mut stmts = self.stmts(list_keys_q(workspace, filter, after, limit, scan, now))?;
        // One round trip either way; the batch also reads both statements from one snapshot.
        let results = if stmts.len() == 1 {
            vec![stmts.remove(0).all().await.map_err(d1_err)?]
        } else {
            self.batch(stmts).await?
        };
        let mut keys = match results.first() {
            Some(r) => decode::<KeyRow>(r)?
                .into_iter()
                .map(KeyRow::into_key)
                .collect::<StoreResult<Vec<Key>>>()?,
            None => Vec::new(),
        };
        let cursor = |k: &Key| KeyCursor {
            created_at: k.created_at,
            id: k.id.clone(),
        };
        let next = if keys.len() > limit as usize {
            keys.truncate(limit as usize);
            keys.last().map(cursor)
        } else {
            // The window's last key, when another active key follows it.
            match results.get(1).map(decode::<CursorRow>).transpose()? {
                Some(end) if end.len() == 2 => end.into_iter().next().map(|c| KeyCursor {
                    created_at: c.created_at,
                    id: c.id,
                }),
                _ => None,
            }
        };
        Ok(KeyPage { keys, next })
    }

    async fn keys_after(&self, workspace: &str, after_id: &str, limit: u32) -> StoreResult<Vec<Key>> {
        self.keys(keys_after_q(workspace, after_id, limit)).await
    }

    async fn touch_last_used(&self, uses: &[(KeyHash, Millis)]) -> StoreResult<()> {
        let stmts = self.stmts(uses.chunks(45).map(touch_last_used_q))?;
        if stmts.is_empty() {
            return Ok(());
        }
        self.batch(stmts).await.map(|_| ())
    }

    async fn list_presets(&self, workspace: &str) -> StoreResult<Vec<Preset>> {
        self.rows::<PresetRow>(list_presets_q(workspace))
            .await?
            .into_iter()
            .map(PresetRow::into_preset)
            .collect()
    }

    async fn get_preset(&self, workspace: &str, name: &str) -> StoreResult<Option<Preset>> {
        self.rows::<PresetRow>(get_preset_q(workspace, name))
            .await?
            .into_iter()
            .next()
            .map(PresetRow::into_preset)
            .transpose()
    }

    async fn insert_preset(&self, workspace: &str, p: &Preset, now: Millis, audit: &AuditEntry) -> StoreResult<()> {
        let stmts = self.stmts([insert_preset_q(workspace, p, now), audit_q(audit, AuditGuard::Always)])?;
        self.batch(stmts).await.map(|_| ())
    }

    async fn delete_preset(&self, workspace: &str, name: &str, audit: &AuditEntry) -> StoreResult<Written> {
        // The audit entry only if the preset existed: guarded by the changed-row count.
        let stmts = self.stmts([
            delete_preset_q(workspace, name),
            audit_q(audit, AuditGuard::PreviousChanged),
        ])?;
        let results = self.batch(stmts).await?;
        Self::applied(&results)
    }

    async fn list_groups(&self, workspace: &str) -> StoreResult<Vec<Group>> {
        Ok(self
            .rows::<GroupRow>(list_groups_q(workspace))
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
        let stmts = self.stmts([insert_group_q(workspace, g), audit_q(audit, AuditGuard::Always)])?;
        self.batch(stmts).await.map(|_| ())
    }

    async fn delete_group(&self, workspace: &str, name: &str, audit: &AuditEntry) -> StoreResult<Written> {
        let stmts = self.stmts([
            delete_group_q(workspace, name),
            audit_q(audit, AuditGuard::PreviousChanged),
        ])?;
        let results = self.batch(stmts).await?;
        Self::applied(&results)
    }

    async fn group_members(&self, workspace: &str, name: &str, limit: u32) -> StoreResult<Vec<Key>> {
        self.keys(group_members_q(workspace, name, limit)).await
    }

    async fn record_audit(&self, audit: &AuditEntry) -> StoreResult<()> {
        let stmts = self.stmts([audit_q(audit, AuditGuard::Always)])?;
        self.batch(stmts).await.map(|_| ())
    }

    async fn list_audit(&self, workspace: &str, before_id: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRow>> {
        Ok(self
            .rows::<AuditDbRow>(list_audit_q(workspace, before_id, limit))
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

    async fn query_plans(&self) -> StoreResult<Vec<QueryPlan>> {
        let mut out = Vec::new();
        for (name, stmt) in every_statement() {
            let sql = stmt.sql.clone();
            let rows = self
                .rows::<PlanRow>(q(format!("EXPLAIN QUERY PLAN {}", stmt.sql), stmt.args))
                .await?;
            out.push(QueryPlan {
                name,
                sql,
                plan: plan_lines(&rows),
            });
        }
        Ok(out)
    }
}
