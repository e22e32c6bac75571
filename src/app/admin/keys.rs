//! Key lifecycle: create, list, get, update, revoke, delete, rotate. Every write goes through
//! app::sync, which orders the record and edge writes so that no failure or race leaves the edge
//! granting more than the record.

use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

use super::{groups, presets, Admin};
use crate::app::{credits as app_credits, sync};
use crate::core::credits::{self, KeyCredits, Op, Refill, Reply, Stamp};
use crate::core::hash::KeyHash;
use crate::core::key::{ApiKey, Environment, RANDOM_BYTES};
use crate::core::model::{Key, Liveness, Status};
use crate::core::scope::{Catalog, ScopeSet};
use crate::core::time::{format_rfc3339, Millis};
use crate::core::validate::{self, MAX_SCOPES};
use crate::http::plain::Response;
use crate::http::problem::{ApiError, ApiResult, FieldExt};
use crate::store::{Edge, KeyCursor, ListFilter, Records, LIST_SCAN};

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
    #[serde(default, deserialize_with = "present")]
    ratelimit: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    environment: Option<Value>,
    groups: Option<Vec<String>>,
    /// `{remaining, refill: {amount, interval} | null}` or null: a cap on top of the workspace's.
    #[serde(default, deserialize_with = "present")]
    credits: Option<Value>,
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
    #[serde(default, deserialize_with = "present")]
    ratelimit: Option<Value>,
    /// Refused with a clear message: the environment is part of the secret's prefix.
    #[serde(default, deserialize_with = "present")]
    environment: Option<Value>,
    groups: Option<Vec<String>>,
    /// A new cap (replacing the count), or null to remove it.
    #[serde(default, deserialize_with = "present")]
    credits: Option<Value>,
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
struct EmptyBody {}

pub fn key_json(k: &Key, now: Millis, catalog: &Catalog) -> Value {
    json!({
        "id": k.id,
        "workspace": k.workspace,
        "name": k.name,
        "description": k.description,
        "scopes": catalog.strings(&k.scopes),
        "environment": k.environment.as_str(),
        "groups": k.groups,
        "preview": k.preview,
        "status": k.status_label(now),
        "created_at": format_rfc3339(k.created_at),
        "expires_at": k.expires_at.map(format_rfc3339),
        "grace_until": k.grace_until.map(format_rfc3339),
        "valid_until": k.effective_expiry().map(format_rfc3339),
        "last_used_at": k.last_used_at.map(format_rfc3339),
        "revoked_at": k.revoked_at.map(format_rfc3339),
        "metadata": k.metadata,
        "rotated_from": k.rotated_from,
        "superseded_by": k.superseded_by,
        "ratelimit": k.ratelimit,
    })
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

/// A freshly minted secret (with the deployment's prefix), its hash and a new id; the plaintext
/// leaves this process only in the response.
fn mint<R, E>(a: &Admin<'_, R, E>, environment: Environment) -> ApiResult<(ApiKey<'static>, KeyHash, String)> {
    let key = a
        .app
        .st
        .config
        .keys
        .generate(environment, &random_bytes::<RANDOM_BYTES>()?);
    let hash = KeyHash::of(&key);
    Ok((key, hash, new_id()?))
}

/// Scopes to grant, in the deployment's scope format, checked against the catalogue (unknown
/// resource, role or permission: 400), aliases and implied roles expanded.
fn parse_scopes<R, E>(a: &Admin<'_, R, E>, raw: &[String]) -> ApiResult<ScopeSet> {
    Ok(a.app.st.policy.catalog.parse_grant(raw).field("scopes")?)
}

/// Key objects, with `credits` ({remaining, refill, refill_at}) for keys that have a cap: one
/// counter read for all of them, and none when no key has a cap.
async fn objects<R: Records, E: Edge>(a: &Admin<'_, R, E>, keys: &[Key]) -> Vec<Value> {
    let counters: Vec<String> = keys
        .iter()
        .filter_map(|k| k.credits.as_ref().map(|c| c.counter.clone()))
        .collect();
    let caps = if counters.is_empty() {
        Some(Vec::new())
    } else {
        app_credits::read_caps(a.app.credits, &a.workspace, counters, a.now).await
    };
    keys.iter()
        .map(|k| {
            let mut v = key_json(k, a.now, &a.app.st.policy.catalog);
            if let Some(c) = &k.credits {
                v["credits"] = app_credits::credits_field(&c.counter, caps.as_deref());
            }
            v
        })
        .collect()
}

async fn json_of<R: Records, E: Edge>(a: &Admin<'_, R, E>, k: &Key) -> Value {
    objects(a, std::slice::from_ref(k)).await.pop().unwrap_or(Value::Null)
}

/// Sets the cap `k` names to `remaining`, stamped with `k`'s record write (the counter ignores a
/// change older than the one that set the cap, so it ends with the newest record write's whatever
/// order the calls arrive in; `applied: false` then means a newer write already set it, which
/// leaves this call's write applied and superseded, not failed).
///
/// On create it runs before the record exists: the cap is named after the new key, so until the
/// record names it nothing uses it, and a create that fails afterwards leaves an unused cap. On
/// PATCH it runs after the record write: run before, a PATCH that then lost its conditional
/// record write (409) would still have replaced the count.
async fn set_cap<R: Records, E: Edge>(
    a: &Admin<'_, R, E>,
    k: &Key,
    remaining: i64,
    refill: Option<Refill>,
    unreachable: &str,
) -> ApiResult<()> {
    let Some(c) = &k.credits else { return Ok(()) };
    let op = Op::SetCap {
        cap: c.counter.clone(),
        remaining,
        refill,
        stamp: Stamp {
            created_at: k.created_at,
            version: k.version,
        },
    };
    match a.app.credits.apply(&a.workspace, &op, a.now).await {
        Ok(Reply::State { .. }) => Ok(()),
        Ok(Reply::Invalid { reason }) => Err(ApiError::field("credits", reason)),
        Ok(other) => Err(ApiError::Internal(format!(
            "credit counter answered {other:?} to a cap"
        ))),
        Err(_) => Err(app_credits::unavailable(unreachable)),
    }
}

/// Whether `k` was rotated into a successor that exists and is not revoked or deleted (a
/// rotation that failed after writing `superseded_by` leaves none).
async fn live_successor<R: Records, E: Edge>(a: &Admin<'_, R, E>, k: &Key) -> ApiResult<bool> {
    let Some(successor) = &k.superseded_by else {
        return Ok(false);
    };
    Ok(a.app
        .records
        .get_key(&a.workspace, successor)
        .await?
        .is_some_and(|s| !s.status.is_final()))
}

fn parse_credits(v: &Value) -> ApiResult<Option<(i64, Option<Refill>)>> {
    match v {
        Value::Null => Ok(None),
        v => Ok(Some(credits::parse_cap(v).field("credits")?)),
    }
}

fn credits_detail(cap: Option<(i64, Option<Refill>)>) -> Value {
    cap.map_or(
        Value::Null,
        |(remaining, refill)| json!({"remaining": remaining, "refill": refill}),
    )
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

fn metadata(v: Option<&Value>) -> ApiResult<Map<String, Value>> {
    match v {
        None => Ok(Map::new()),
        Some(v) => Ok(validate::metadata(v).field("metadata")?),
    }
}

/// A key of this workspace that was not deleted; anything else answers exactly like an unknown id.
async fn load<R: Records, E: Edge>(a: &Admin<'_, R, E>, id: &str) -> ApiResult<Key> {
    match a.app.records.get_key(&a.workspace, id).await? {
        Some(k) if k.status != Status::Deleted => Ok(k),
        _ => Err(ApiError::NotFound("key")),
    }
}

async fn created<R: Records, E: Edge>(
    a: &Admin<'_, R, E>,
    k: &Key,
    secret: &ApiKey<'_>,
    warning: Option<String>,
) -> Response {
    let mut v = json_of(a, k).await;
    v["key"] = json!(secret.expose_secret());
    if let Some(w) = warning {
        v["warning"] = json!(w);
    }
    Response::json_no_store(201, &v)
}

fn revoked_conflict(what: &str) -> ApiError {
    ApiError::Conflict {
        slug: "key-revoked",
        detail: format!("A revoked key cannot be {what}."),
    }
}

pub async fn create<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    let body: CreateBody = a.body()?;
    let name = validate::key_name(&body.name).field("name")?;
    let description = validate::description(&body.description).field("description")?;
    let mut scopes = parse_scopes(a, body.scopes.as_deref().unwrap_or_default())?;
    if let Some(p) = &body.preset {
        scopes = scopes.union(&presets::resolve(a, p).await?);
    }
    check_scope_count(&scopes)?;
    a.ensure_can_grant(&scopes)?;
    let expires_at = match &body.expires {
        None => None,
        Some(v) => validate::expires(v, a.now).field("expires")?,
    };
    a.ensure_expiry_within(expires_at)?;
    let metadata = metadata(body.metadata.as_ref())?;
    let ratelimit = match &body.ratelimit {
        None => None,
        Some(v) => a.app.st.policy.tiers.parse(v).field("ratelimit")?,
    };
    let environment = match &body.environment {
        None => Environment::Live,
        Some(v) => v
            .as_str()
            .and_then(Environment::parse)
            .ok_or_else(|| ApiError::field("environment", "must be \"live\" or \"test\""))?,
    };
    a.ensure_can_issue(environment)?;
    let cap = match &body.credits {
        None => None,
        Some(v) => parse_credits(v)?,
    };
    let groups = validate::groups(body.groups.as_deref().unwrap_or_default()).field("groups")?;
    a.ensure_member_of(&groups)?;
    groups::check_exist(a, &groups).await?;

    let (secret, hash, id) = mint(a, environment)?;
    // The cap is named after the key it is first set on.
    let cap_counter = id.clone();
    let key = Key {
        id,
        workspace: a.workspace.clone(),
        name,
        description,
        hash,
        preview: secret.preview(),
        environment,
        groups,
        scopes,
        metadata,
        created_at: a.now,
        expires_at,
        grace_until: None,
        status: Status::Active,
        revoked_at: None,
        last_used_at: None,
        rotated_from: None,
        superseded_by: None,
        ratelimit,
        credits: cap.map(|(_, refill)| KeyCredits {
            counter: cap_counter.clone(),
            refill,
        }),
        version: 1,
    };
    let mut detail = json!({
        "name": key.name,
        "scopes": a.show_scopes(&key.scopes),
        "environment": environment.as_str(),
        "groups": key.groups,
        "expires_at": expires_at.map(format_rfc3339),
    });
    if let Some((remaining, refill)) = cap {
        detail["credits"] = credits_detail(cap);
        set_cap(
            a,
            &key,
            remaining,
            refill,
            "The credit counter could not be reached; no key was created. Retry.",
        )
        .await?;
    }
    sync::create(a.app, &key, &a.audit("key.create", Some(&key.id), detail), a.now).await?;
    groups::ensure_groups_exist(a, &key).await?;
    Ok(created(a, &key, &secret, None).await)
}

pub async fn list<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    let limit = a.limit()?;
    let filter = match a.param("status") {
        None => ListFilter::All,
        Some("active") => ListFilter::Active,
        Some("disabled") => ListFilter::Disabled,
        Some("revoked") => ListFilter::Revoked,
        Some("expired") => ListFilter::Expired,
        Some(_) => {
            return Err(ApiError::field(
                "status",
                "must be active, disabled, revoked or expired",
            ))
        }
    };
    let cursor = match a.param("cursor") {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| ApiError::field("cursor", "not a cursor from a previous page"))?),
    };
    let page = a
        .app
        .records
        .list_keys(&a.workspace, filter, cursor.as_ref(), limit, LIST_SCAN, a.now)
        .await?;
    let next = page.next.map(|c| format!("{}.{}", c.created_at, c.id));
    let items: Vec<Value> = objects(a, &page.keys).await;
    Ok(Response::json(200, &json!({"items": items, "next_cursor": next})))
}

fn parse_cursor(c: &str) -> Option<KeyCursor> {
    let (t, id) = c.split_once('.')?;
    let ok_id = id.starts_with("key_") && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok_id.then_some(())?;
    Some(KeyCursor {
        created_at: t.parse().ok()?,
        id: id.to_owned(),
    })
}

pub async fn get<R: Records, E: Edge>(a: &Admin<'_, R, E>, id: &str) -> ApiResult<Response> {
    let key = load(a, id).await?;
    Ok(Response::json(200, &json_of(a, &key).await))
}

pub async fn update<R: Records, E: Edge>(a: &Admin<'_, R, E>, id: &str) -> ApiResult<Response> {
    let body: UpdateBody = a.body()?;
    if body.environment.is_some() {
        return Err(ApiError::field(
            "environment",
            "cannot be changed (it is part of the key's prefix); issue a key in the other environment instead",
        ));
    }
    let before = load(a, id).await?;
    a.ensure_can_manage(&before)?;
    if before.status == Status::Revoked {
        return Err(revoked_conflict("edited"));
    }
    let mut changed = Vec::new();
    let mut after = before.next(|_| {});
    if let Some(n) = &body.name {
        after.name = validate::key_name(n).field("name")?;
        changed.push("name");
    }
    if let Some(d) = &body.description {
        after.description = validate::description(d).field("description")?;
        changed.push("description");
    }
    if let Some(s) = &body.scopes {
        let set = parse_scopes(a, s)?;
        check_scope_count(&set)?;
        a.ensure_can_grant(&set)?;
        after.scopes = set;
        changed.push("scopes");
    }
    if let Some(e) = &body.expires {
        // An expired key stays expired: moving its expiry would bring a dead key back.
        if before.liveness(a.now) == Liveness::Expired {
            return Err(ApiError::Conflict {
                slug: "key-expired",
                detail: "An expired key cannot be given a new expiry; issue or rotate a key instead.".into(),
            });
        }
        after.expires_at = validate::expires(e, a.now).field("expires")?;
        a.ensure_expiry_within(after.effective_expiry())?;
        changed.push("expires");
    }
    if let Some(m) = &body.metadata {
        after.metadata = metadata(Some(m))?;
        changed.push("metadata");
    }
    if let Some(v) = &body.ratelimit {
        after.ratelimit = a.app.st.policy.tiers.parse(v).field("ratelimit")?;
        changed.push("ratelimit");
    }
    if let Some(g) = &body.groups {
        let groups = validate::groups(g).field("groups")?;
        let touched: Vec<String> = groups
            .iter()
            .filter(|x| !before.groups.contains(x))
            .chain(before.groups.iter().filter(|x| !groups.contains(x)))
            .cloned()
            .collect();
        a.ensure_member_of(&touched)?;
        groups::check_exist(a, &groups).await?;
        after.groups = groups;
        changed.push("groups");
    }
    let mut cap = None;
    if let Some(v) = &body.credits {
        cap = parse_credits(v)?;
        if before.credits.is_some() && live_successor(a, &before).await? {
            return Err(ApiError::Conflict {
                slug: "already-rotated",
                detail: "This key shares its credit cap with its successor; change the cap on the successor.".into(),
            });
        }
        after.credits = cap.map(|(_, refill)| KeyCredits {
            // The cap keeps its name in the counter (a rotated key shares its predecessor's).
            counter: before
                .credits
                .as_ref()
                .map_or_else(|| before.id.clone(), |c| c.counter.clone()),
            refill,
        });
        changed.push("credits");
    }
    if changed.is_empty() {
        return Err(ApiError::field(
            "body",
            "nothing to change: give name, description, scopes, expires, metadata, ratelimit, groups or credits",
        ));
    }
    let mut detail = json!({"changed": changed, "scopes": a.show_scopes(&after.scopes), "groups": after.groups, "expires_at": after.expires_at.map(format_rfc3339)});
    if body.credits.is_some() {
        detail["credits"] = credits_detail(cap);
    }
    sync::update(
        a.app,
        &before,
        &after,
        &a.audit("key.update", Some(&after.id), detail),
        a.now,
    )
    .await?;
    if let Some((remaining, refill)) = cap {
        set_cap(
            a,
            &after,
            remaining,
            refill,
            "The key is changed, but the credit counter did not confirm its new count: until it does, \
             the key spends its previous cap (or, for a new cap, its metered requests are refused). Retry \
             the PATCH.",
        )
        .await?;
    }
    groups::ensure_groups_exist(a, &after).await?;
    Ok(Response::json(200, &json_of(a, &after).await))
}

/// Deactivate (`Disabled`) or reactivate (`Active`) a key: reversible, unlike revoke. A disabled
/// key answers at the edge exactly like an unknown one.
pub async fn set_active<R: Records, E: Edge>(a: &Admin<'_, R, E>, id: &str, active: bool) -> ApiResult<Response> {
    let _: EmptyBody = a.optional_body()?;
    let before = load(a, id).await?;
    a.ensure_can_manage(&before)?;
    if before.status == Status::Revoked {
        return Err(revoked_conflict(if active { "reactivated" } else { "deactivated" }));
    }
    let want = if active { Status::Active } else { Status::Disabled };
    if before.status == want {
        return Ok(Response::json(200, &json_of(a, &before).await));
    }
    let after = before.next(|k| k.status = want);
    let action = if active { "key.reactivate" } else { "key.deactivate" };
    sync::update(
        a.app,
        &before,
        &after,
        &a.audit(action, Some(&after.id), json!({"name": after.name})),
        a.now,
    )
    .await?;
    Ok(Response::json(200, &json_of(a, &after).await))
}

pub async fn revoke<R: Records, E: Edge>(a: &Admin<'_, R, E>, id: &str) -> ApiResult<Response> {
    let _: EmptyBody = a.optional_body()?;
    let row = load(a, id).await?;
    a.ensure_can_manage(&row)?;
    let audit = a.audit("key.revoke", Some(&row.id), json!({"name": row.name}));
    // Also for a key the record already calls revoked: a retry after a failed edge write must
    // still take it off the edge.
    let done = sync::finalize(a.app, &row, Status::Revoked, &audit, a.now).await?;
    Ok(Response::json(200, &json_of(a, &done).await))
}

pub async fn delete<R: Records, E: Edge>(a: &Admin<'_, R, E>, id: &str) -> ApiResult<Response> {
    let row = match a.app.records.get_key(&a.workspace, id).await? {
        Some(k) => k,
        None => return Err(ApiError::NotFound("key")),
    };
    a.ensure_can_manage(&row)?;
    let audit = a.audit("key.delete", Some(&row.id), json!({"name": row.name}));
    let was_deleted = row.status == Status::Deleted;
    // A key already deleted still has its tombstone re-asserted (a retry after a failed edge
    // write), then answers like an unknown id.
    sync::finalize(a.app, &row, Status::Deleted, &audit, a.now).await?;
    if was_deleted {
        return Err(ApiError::NotFound("key"));
    }
    Ok(Response::no_content())
}

pub async fn rotate<R: Records, E: Edge>(a: &Admin<'_, R, E>, id: &str) -> ApiResult<Response> {
    let body: RotateBody = a.optional_body()?;
    let old = load(a, id).await?;
    a.ensure_can_manage(&old)?;
    if old.status == Status::Revoked {
        return Err(revoked_conflict("rotated"));
    }
    // A successor that never came to be (its rotation failed after the record was written) does
    // not block a new rotation; a real one does.
    if live_successor(a, &old).await? {
        return Err(ApiError::Conflict {
            slug: "already-rotated",
            detail: "This key was already rotated; rotate its successor.".into(),
        });
    }
    // The new secret carries the old key's powers and groups, so the caller must hold them.
    a.ensure_can_grant(&old.scopes)?;
    a.ensure_member_of(&old.groups)?;
    // Some only when the caller asked for a grace period.
    let grace =
        validate::grace_deadline(body.grace_until.as_deref(), body.grace_seconds, None, a.now).field("grace")?;
    let new_expiry = match &body.expires {
        None => validate::successor_expiry(old.created_at, old.expires_at, a.now),
        Some(Value::Null) if old.expires_at.is_some() => {
            return Err(ApiError::field(
                "expires",
                "the old key expires, so its successor must too",
            ));
        }
        Some(v) => validate::expires(v, a.now).field("expires")?,
    };
    a.ensure_expiry_within(new_expiry)?;

    let (secret, hash, new_id) = mint(a, old.environment)?;
    let old_after = old.next(|k| {
        k.superseded_by = Some(new_id.clone());
        if let Some(g) = grace {
            // Only ever shortens: the effective expiry is min(own expiry, grace).
            k.grace_until = Some(k.grace_until.map_or(g, |prev| prev.min(g)));
        }
    });
    let new = Key {
        id: new_id,
        hash,
        preview: secret.preview(),
        created_at: a.now,
        expires_at: new_expiry,
        grace_until: None,
        status: Status::Active,
        revoked_at: None,
        last_used_at: None,
        rotated_from: Some(old.id.clone()),
        superseded_by: None,
        version: 1,
        ..old.clone()
    };
    let detail = json!({"new_key_id": new.id, "old_valid_until": old_after.effective_expiry().map(format_rfc3339)});
    let warning = sync::rotate(
        a.app,
        &old,
        &old_after,
        &new,
        &a.audit("key.rotate", Some(&old.id), detail),
        a.now,
    )
    .await?;
    groups::ensure_groups_exist(a, &new).await?;
    Ok(created(a, &new, &secret, warning).await)
}
