//! Key lifecycle: create, list, get, update, revoke, delete, rotate.
//! Write order: create/update/rotate go to D1 first, then KV; revoke/delete go to KV first (the
//! edge stops accepting at once), then D1. Every change evicts this isolate's cache entry.

use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

use super::{presets, Admin};
use crate::core::hash::KeyHash;
use crate::core::key::{ApiKey, RANDOM_BYTES};
use crate::core::record::{KeyRecord, Status, RECORD_VERSION};
use crate::core::scope::ScopeSet;
use crate::core::time::{format_rfc3339, Millis};
use crate::core::validate::{self, MAX_SCOPES};
use crate::http::problem::{ApiError, ApiResult};
use crate::http::response;
use crate::store::d1::{KeyRow, StatusFilter};
use crate::store::kv;

/// Distinguishes an absent field (None) from an explicit `null` (Some(Null)).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
    scopes: Option<Vec<String>>,
    preset: Option<String>,
    #[serde(default, deserialize_with = "present")]
    expires: Option<Value>,
    metadata: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    expires: Option<Value>,
    metadata: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    grace_until: Option<String>,
    grace_seconds: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    expires: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeBody {}

fn status_of(row: &KeyRow, now: Millis) -> &'static str {
    if row.revoked_at.is_some() {
        "revoked"
    } else if row.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

fn scopes_of(row: &KeyRow) -> ApiResult<Vec<String>> {
    serde_json::from_str(&row.scopes).map_err(|e| ApiError::Internal(format!("key {} scopes column: {e}", row.id)))
}

fn metadata_of(row: &KeyRow) -> ApiResult<Map<String, Value>> {
    serde_json::from_str(&row.metadata).map_err(|e| ApiError::Internal(format!("key {} metadata column: {e}", row.id)))
}

pub fn key_json(row: &KeyRow, now: Millis) -> ApiResult<Value> {
    Ok(json!({
        "id": row.id,
        "workspace": row.workspace,
        "name": row.name,
        "description": row.description,
        "scopes": scopes_of(row)?,
        "preview": row.preview,
        "status": status_of(row, now),
        "created_at": format_rfc3339(row.created_at),
        "expires_at": row.expires_at.map(format_rfc3339),
        "last_used_at": row.last_used_at.map(format_rfc3339),
        "revoked_at": row.revoked_at.map(format_rfc3339),
        "metadata": metadata_of(row)?,
        "rotated_from": row.rotated_from,
        "superseded_by": row.superseded_by,
        "grace_until": row.grace_until.map(format_rfc3339),
    }))
}

/// The KV projection of a D1 row.
pub fn record_of(row: &KeyRow) -> ApiResult<KeyRecord> {
    Ok(KeyRecord {
        v: RECORD_VERSION,
        id: row.id.clone(),
        workspace: row.workspace.clone(),
        name: row.name.clone(),
        scopes: scopes_of(row)?,
        expires_at: row.expires_at,
        status: if row.revoked_at.is_some() {
            Status::Revoked
        } else {
            Status::Active
        },
        preview: row.preview.clone(),
        meta: metadata_of(row)?,
    })
}

pub fn hash_of(row: &KeyRow) -> ApiResult<KeyHash> {
    KeyHash::from_hex(&row.hash).ok_or_else(|| ApiError::Internal(format!("key {} has a malformed hash", row.id)))
}

fn random_bytes<const N: usize>() -> ApiResult<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(b)
}

fn new_id() -> ApiResult<String> {
    let b: [u8; 12] = random_bytes()?;
    Ok(format!(
        "key_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

fn parse_scopes(a: &Admin<'_>, raw: &[String]) -> ApiResult<ScopeSet> {
    let set = ScopeSet::parse(raw).map_err(|e| ApiError::field("scopes", e.0))?;
    a.st.policy
        .catalog
        .check_all(&set)
        .map_err(|e| ApiError::field("scopes", e.0))?;
    Ok(set)
}

fn check_scope_count(set: &ScopeSet) -> ApiResult<()> {
    if set.is_empty() {
        return Err(ApiError::field(
            "scopes",
            "a key needs at least one scope (give scopes or a preset)",
        ));
    }
    if set.len() > MAX_SCOPES {
        return Err(ApiError::field("scopes", format!("at most {MAX_SCOPES} scopes")));
    }
    Ok(())
}

fn metadata_json(v: Option<&Value>) -> ApiResult<String> {
    match v {
        None => Ok("{}".into()),
        Some(v) => Ok(Value::Object(validate::metadata(v).map_err(|m| ApiError::field("metadata", m))?).to_string()),
    }
}

async fn load(a: &Admin<'_>, id: &str) -> ApiResult<KeyRow> {
    // Another workspace's id answers exactly like an unknown one.
    a.db.get_key(&a.workspace, id).await?.ok_or(ApiError::NotFound("key"))
}

fn evict(a: &Admin<'_>, hash: &KeyHash) {
    a.st.cache.borrow_mut().evict(hash);
}

/// A freshly minted key and its row; the plaintext leaves this process only in the response.
fn mint() -> ApiResult<(ApiKey<'static>, KeyHash, String)> {
    let key = ApiKey::generate(&random_bytes::<RANDOM_BYTES>()?);
    let hash = KeyHash::of(&key);
    Ok((key, hash, new_id()?))
}

fn created_response(
    row: &KeyRow,
    key: &ApiKey<'_>,
    now: Millis,
    extra: Option<(&str, Value)>,
) -> ApiResult<web_sys::Response> {
    let mut v = key_json(row, now)?;
    v["key"] = json!(key.expose_secret());
    if let Some((k, val)) = extra {
        v[k] = val;
    }
    Ok(response::json_no_store(201, &v))
}

pub async fn create(a: &mut Admin<'_>) -> ApiResult<web_sys::Response> {
    let body: CreateBody = a.body().await?;
    let name = validate::key_name(&body.name).map_err(|m| ApiError::field("name", m))?;
    let description = validate::description(&body.description).map_err(|m| ApiError::field("description", m))?;
    let mut scopes = parse_scopes(a, body.scopes.as_deref().unwrap_or_default())?;
    if let Some(p) = &body.preset {
        scopes = scopes.union(&presets::resolve(a, p).await?);
    }
    check_scope_count(&scopes)?;
    a.ensure_can_grant(&scopes)?;
    let expires_at = match &body.expires {
        None => None,
        Some(v) => validate::expires(v, a.now).map_err(|m| ApiError::field("expires", m))?,
    };
    let metadata = metadata_json(body.metadata.as_ref())?;

    let (key, hash, id) = mint()?;
    let row = KeyRow {
        id,
        workspace: a.workspace.clone(),
        name,
        description,
        hash: hash.to_hex(),
        preview: key.preview(),
        scopes: json!(scopes.to_strings()).to_string(),
        metadata,
        created_at: a.now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        rotated_from: None,
        superseded_by: None,
        grace_until: None,
    };
    let detail = json!({"name": row.name, "scopes": scopes.to_strings(), "expires_at": expires_at.map(format_rfc3339)});
    a.db.insert_key(&row, &a.audit("key.create", Some(&row.id), detail))
        .await?;
    if let Err(e) = kv::put(a.env, &hash, &record_of(&row)?, a.now).await {
        worker::console_error!("KV put for new key {} failed: {e}", row.id);
        // The secret was never handed out, so removing the row loses nothing.
        let rollback = a.db.remove_key(&a.workspace, &row.id).await;
        return Err(ApiError::Unavailable {
            slug: "kv-write-failed",
            detail: if rollback.is_ok() {
                "The key store could not be written; no key was created. Retry.".into()
            } else {
                "The key store could not be written; the key was not handed out and will never be usable. Retry.".into()
            },
        });
    }
    evict(a, &hash);
    created_response(&row, &key, a.now, None)
}

pub async fn list(a: &Admin<'_>) -> ApiResult<web_sys::Response> {
    let limit = a.limit()?;
    let status = match a.param("status") {
        None => None,
        Some("active") => Some(StatusFilter::Active),
        Some("revoked") => Some(StatusFilter::Revoked),
        Some("expired") => Some(StatusFilter::Expired),
        Some(_) => return Err(ApiError::field("status", "must be active, revoked or expired")),
    };
    let cursor = match a.param("cursor") {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| ApiError::field("cursor", "not a cursor from a previous page"))?),
    };
    let mut rows =
        a.db.list_keys(
            &a.workspace,
            status,
            cursor.as_ref().map(|(t, id)| (*t, id.as_str())),
            limit + 1,
            a.now,
        )
        .await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| format!("{}.{}", r.created_at, r.id))
    } else {
        None
    };
    let items = rows.iter().map(|r| key_json(r, a.now)).collect::<ApiResult<Vec<_>>>()?;
    Ok(response::json(200, &json!({"items": items, "next_cursor": next})))
}

fn parse_cursor(c: &str) -> Option<(Millis, String)> {
    let (t, id) = c.split_once('.')?;
    let ok_id = id.starts_with("key_") && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok_id.then_some(())?;
    Some((t.parse().ok()?, id.to_owned()))
}

pub async fn get(a: &Admin<'_>, id: &str) -> ApiResult<web_sys::Response> {
    let row = load(a, id).await?;
    Ok(response::json(200, &key_json(&row, a.now)?))
}

pub async fn update(a: &mut Admin<'_>, id: &str) -> ApiResult<web_sys::Response> {
    let body: UpdateBody = a.body().await?;
    let mut row = load(a, id).await?;
    if row.revoked_at.is_some() {
        return Err(ApiError::Conflict {
            slug: "key-revoked",
            detail: "A revoked key cannot be edited.".into(),
        });
    }
    let mut changed = Vec::new();
    if let Some(n) = &body.name {
        row.name = validate::key_name(n).map_err(|m| ApiError::field("name", m))?;
        changed.push("name");
    }
    if let Some(d) = &body.description {
        row.description = validate::description(d).map_err(|m| ApiError::field("description", m))?;
        changed.push("description");
    }
    if let Some(s) = &body.scopes {
        let set = parse_scopes(a, s)?;
        check_scope_count(&set)?;
        row.scopes = json!(set.to_strings()).to_string();
        changed.push("scopes");
    }
    if let Some(e) = &body.expires {
        row.expires_at = validate::expires(e, a.now).map_err(|m| ApiError::field("expires", m))?;
        changed.push("expires");
    }
    if let Some(m) = &body.metadata {
        row.metadata = metadata_json(Some(m))?;
        changed.push("metadata");
    }
    if changed.is_empty() {
        return Err(ApiError::field(
            "body",
            "nothing to change: give name, description, scopes, expires or metadata",
        ));
    }
    // Changing what a key can do or how long it lives counts as granting its scopes.
    if body.scopes.is_some() || body.expires.is_some() {
        a.ensure_can_grant(&ScopeSet::parse(&scopes_of(&row)?).map_err(|e| ApiError::Internal(e.0))?)?;
    }
    let detail =
        json!({"changed": changed, "scopes": scopes_of(&row)?, "expires_at": row.expires_at.map(format_rfc3339)});
    a.db.update_key(&row, &a.audit("key.update", Some(&row.id), detail))
        .await?;
    let hash = hash_of(&row)?;
    evict(a, &hash);
    if let Err(e) = kv::put(a.env, &hash, &record_of(&row)?, a.now).await {
        worker::console_error!("KV put after update of {} failed: {e}", row.id);
        return Err(ApiError::Unavailable {
            slug: "kv-write-failed",
            detail: "The change is saved but not yet live at the edge; POST /admin/v1/reconcile applies it.".into(),
        });
    }
    Ok(response::json(200, &key_json(&row, a.now)?))
}

/// Revoke and delete start here: the key leaves this isolate's cache and KV, so the edge stops
/// accepting it before D1 records why. `if_failed` tells the caller what state a KV failure left.
async fn take_off_edge(a: &Admin<'_>, row: &KeyRow, if_failed: &str) -> ApiResult<()> {
    let hash = hash_of(row)?;
    evict(a, &hash);
    kv::delete(a.env, &hash).await.map_err(|e| {
        worker::console_error!("KV delete for {} failed: {e}", row.id);
        ApiError::Unavailable {
            slug: "kv-write-failed",
            detail: if_failed.to_owned(),
        }
    })
}

pub async fn revoke(a: &mut Admin<'_>, id: &str) -> ApiResult<web_sys::Response> {
    let _: RevokeBody = a.optional_body().await?;
    let mut row = load(a, id).await?;
    if row.revoked_at.is_some() {
        return Ok(response::json(200, &key_json(&row, a.now)?));
    }
    take_off_edge(
        a,
        &row,
        "The key store could not be written; the key is NOT revoked. Retry.",
    )
    .await?;
    row.revoked_at = Some(a.now);
    a.db.update_key(&row, &a.audit("key.revoke", Some(&row.id), json!({"name": row.name})))
        .await
        .map_err(|_| ApiError::Unavailable {
            slug: "d1-write-failed",
            detail: "The key no longer works at the edge, but the revocation is not recorded yet. Retry the revoke."
                .into(),
        })?;
    Ok(response::json(200, &key_json(&row, a.now)?))
}

pub async fn delete(a: &Admin<'_>, id: &str) -> ApiResult<web_sys::Response> {
    let row = load(a, id).await?;
    take_off_edge(
        a,
        &row,
        "The key store could not be written; nothing was deleted. Retry.",
    )
    .await?;
    a.db.delete_key(
        &a.workspace,
        &row.id,
        &a.audit("key.delete", Some(&row.id), json!({"name": row.name})),
    )
    .await?;
    Ok(response::no_content())
}

pub async fn rotate(a: &mut Admin<'_>, id: &str) -> ApiResult<web_sys::Response> {
    let body: RotateBody = a.optional_body().await?;
    let old = load(a, id).await?;
    if old.revoked_at.is_some() {
        return Err(ApiError::Conflict {
            slug: "key-revoked",
            detail: "A revoked key cannot be rotated.".into(),
        });
    }
    if old.superseded_by.is_some() {
        return Err(ApiError::Conflict {
            slug: "already-rotated",
            detail: "This key was already rotated; rotate its successor.".into(),
        });
    }
    let scopes = ScopeSet::parse(&scopes_of(&old)?).map_err(|e| ApiError::Internal(e.0))?;
    // The new secret carries the old key's powers, so the caller must hold them.
    a.ensure_can_grant(&scopes)?;
    let deadline = validate::grace_deadline(body.grace_until.as_deref(), body.grace_seconds, old.expires_at, a.now)
        .map_err(|m| ApiError::field("grace", m))?;
    let new_expiry = match &body.expires {
        None => validate::successor_expiry(old.created_at, old.expires_at, a.now),
        Some(Value::Null) if old.expires_at.is_some() => {
            return Err(ApiError::field(
                "expires",
                "the old key expires, so its successor must too",
            ));
        }
        Some(v) => validate::expires(v, a.now).map_err(|m| ApiError::field("expires", m))?,
    };

    let (key, hash, new_id) = mint()?;
    let mut old_after = old.clone();
    old_after.superseded_by = Some(new_id.clone());
    old_after.expires_at = deadline;
    old_after.grace_until = if body.grace_until.is_some() || body.grace_seconds.is_some() {
        deadline
    } else {
        None
    };
    let new = KeyRow {
        id: new_id,
        hash: hash.to_hex(),
        preview: key.preview(),
        created_at: a.now,
        expires_at: new_expiry,
        revoked_at: None,
        last_used_at: None,
        rotated_from: Some(old.id.clone()),
        superseded_by: None,
        grace_until: None,
        ..old.clone()
    };
    let detail = json!({"new_key_id": new.id, "old_valid_until": deadline.map(format_rfc3339)});
    a.db.rotate(&old_after, &new, &a.audit("key.rotate", Some(&old.id), detail))
        .await?;
    if let Err(e) = kv::put(a.env, &hash, &record_of(&new)?, a.now).await {
        worker::console_error!("KV put for rotated key {} failed: {e}", new.id);
        let _ = a.db.unrotate(&old, &new.id).await;
        return Err(ApiError::Unavailable {
            slug: "kv-write-failed",
            detail: "The key store could not be written; the key was not rotated. Retry.".into(),
        });
    }
    evict(a, &hash);
    let old_hash = hash_of(&old)?;
    evict(a, &old_hash);
    let mut warning = None;
    if old_after.expires_at != old.expires_at {
        if let Err(e) = kv::put(a.env, &old_hash, &record_of(&old_after)?, a.now).await {
            worker::console_error!("KV put for grace deadline of {} failed: {e}", old.id);
            warning = Some((
                "warning",
                json!("The old key's grace deadline is saved but not yet live at the edge; POST /admin/v1/reconcile applies it."),
            ));
        }
    }
    created_response(&new, &key, a.now, warning)
}
