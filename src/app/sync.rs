//! The write protocol between the system of record and the edge. The platform has no
//! compare-and-swap on KV and no transaction spanning D1 and KV, so every admin write follows
//! these rules (each one covered by the fault tables and interleaving tests in tests.rs):
//!
//! 1. Records are only changed by conditional writes (the version read, and a status that may
//!    make the transition); a write that loses a race changes nothing and says so.
//! 2. Anything that takes power away reaches the edge *before* the record: a revocation or
//!    deletion as a tombstone, a narrowing edit as the meet of old and new. So no failure in
//!    between leaves the edge granting more than the record.
//! 3. Anything that adds power (a new key, a wider edit) reaches the edge *after* the record,
//!    except a brand-new secret, which nobody knows until the response carries it.
//! 4. After writing a projection, the writer reads the record again; if another writer
//!    overtook it, it projects what the record says now (so a late write never revives a
//!    revoked key). If that cannot be confirmed, the key is taken off the edge (fail closed)
//!    until a retry or reconcile puts it back.
//! 5. An edge tombstone is a revocation that must stand: reconcile completes it in the record
//!    rather than writing the key back.
//! 6. What takes power away is announced on the revocation feed (core::feed) *before* anything
//!    is written, so a failed announcement is a failed call that changed nothing. An
//!    announcement whose change then fails only makes followers evict the key and cap it (a
//!    spurious re-read, or a narrower grant until the retention ends), never grant more.

use super::App;
use crate::core::feed::{Change, ChangeKind};
use crate::core::hash::KeyHash;
use crate::core::model::{Key, Status};
use crate::core::record::KeyRecord;
use crate::core::time::Millis;
use crate::http::problem::ApiError;
use crate::store::{AuditEntry, Edge, Records, StoreError, Written};

const CONFIRM_ROUNDS: usize = 3;

fn unavailable(slug: &'static str, detail: &str) -> ApiError {
    ApiError::Unavailable {
        slug,
        detail: detail.to_owned(),
    }
}

pub fn key_changed() -> ApiError {
    ApiError::Conflict {
        slug: "key-changed",
        detail:
            "The key was changed by another request while this one ran; nothing was applied. Read it again and retry."
                .into(),
    }
}

/// Announces a change that takes power away from `before` (rule 6).
async fn announce<R, E>(
    app: App<'_, R, E>,
    before: &Key,
    kind: ChangeKind,
    cap: KeyRecord,
    now: Millis,
) -> Result<(), ApiError> {
    let change = Change {
        hash: before.hash,
        kind,
        ver: before.version + 1,
        cap,
    };
    app.feed.append(&change, now).await.map(|_| ()).map_err(|e| {
        crate::log::error(
            "feed-append-failed",
            &format!("{:?} of {}: {e:?}", kind, &before.hash.to_hex()[..16]),
        );
        unavailable(
            "feed-unavailable",
            "The revocation feed could not be written, so the change was not made and the key still works as \
             before. Retry. (If the feed did record it, keyward may already refuse the key, or apply the narrower \
             grant, in some places until the retry or for up to REVOCATION_RETENTION_S.)",
        )
    })
}

/// A narrowing edit's announcement: a deactivation, or anything else that takes power away.
async fn announce_narrowing<R, E>(app: App<'_, R, E>, before: &Key, after: &Key, now: Millis) -> Result<(), ApiError> {
    let kind = if before.status == Status::Active && after.status == Status::Disabled {
        ChangeKind::Deactivate
    } else {
        ChangeKind::Narrow
    };
    announce(app, before, kind, before.meet(after).edge_record(), now).await
}

fn evict<R, E>(app: App<'_, R, E>, hash: &KeyHash) {
    app.st.cache.borrow_mut().evict(hash);
}

async fn put<R, E: Edge>(
    app: App<'_, R, E>,
    hash: &KeyHash,
    record: &KeyRecord,
    now: Millis,
) -> Result<(), StoreError> {
    // Evicted before and after: a lookup in between (another request in this isolate) must not
    // keep the old record.
    evict(app, hash);
    let r = app.edge.put(hash, record, now).await;
    evict(app, hash);
    r
}

async fn take_off<R, E: Edge>(app: App<'_, R, E>, hash: &KeyHash) {
    evict(app, hash);
    if let Err(e) = app.edge.delete(hash).await {
        crate::log::error(
            "edge-delete-failed",
            &format!("edge delete of {}: {e:?}", &hash.to_hex()[..16]),
        );
    }
    evict(app, hash);
}

/// The tombstone of `key` with the given final status.
fn tombstone(key: &Key, status: Status) -> KeyRecord {
    key.next(|k| k.status = status).edge_record()
}

/// Projects `written` (just written to the record) to the edge and confirms that no other
/// writer overtook it (rule 4).
pub async fn settle<R: Records, E: Edge>(app: App<'_, R, E>, written: &Key, now: Millis) -> Result<(), ApiError> {
    let not_live = "The change is saved, but the edge could not be updated: it still answers as before the change \
                    (never more permissive). Retry the request, or POST /admin/v1/reconcile.";
    put(app, &written.hash, &written.edge_record(), now)
        .await
        .map_err(|_| unavailable("edge-write-failed", not_live))?;
    let mut last = written.version;
    for _ in 0..CONFIRM_ROUNDS {
        match app.records.get_key(&written.workspace, &written.id).await {
            Ok(Some(cur)) if cur.version == last => return Ok(()),
            Ok(Some(cur)) => {
                last = cur.version;
                if put(app, &cur.hash, &cur.edge_record(), now).await.is_err() {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    take_off(app, &written.hash).await;
    Err(unavailable(
        "edge-unconfirmed",
        "The change is saved, but whether another request changed the key meanwhile could not be confirmed, so \
         the key is off the edge (refused) until you retry the request or POST /admin/v1/reconcile.",
    ))
}

/// Best effort after a write that did not apply: make the edge match the record again (a
/// narrowing pre-write may have left it narrower than the record).
async fn resync<R: Records, E: Edge>(app: App<'_, R, E>, key: &Key, now: Millis) {
    if let Ok(Some(cur)) = app.records.get_key(&key.workspace, &key.id).await {
        let _ = settle(app, &cur, now).await;
    }
}

/// A new key: the edge first (its secret is unknown to anyone until the response), then the
/// record. A record failure leaves a tombstone, so even a record write that did take effect
/// unseen is read by reconcile as "never created".
pub async fn create<R: Records, E: Edge>(
    app: App<'_, R, E>,
    key: &Key,
    audit: &AuditEntry,
    now: Millis,
) -> Result<(), ApiError> {
    if put(app, &key.hash, &key.edge_record(), now).await.is_err() {
        take_off(app, &key.hash).await;
        return Err(unavailable(
            "edge-write-failed",
            "The key store could not be written; no key was created. Retry.",
        ));
    }
    match app.records.insert_key(key, audit).await {
        Ok(()) => Ok(()),
        Err(StoreError::NameTaken) => {
            take_off(app, &key.hash).await;
            Err(StoreError::NameTaken.into())
        }
        Err(_) => {
            abandon(app, key, audit, now).await;
            Err(unavailable(
                "store-unavailable",
                "The key database could not be written; no key was created (its secret was never handed out). Retry.",
            ))
        }
    }
}

/// A new key whose record write failed (it may have taken effect unseen): its secret was never
/// handed out, so it is deleted for good: a tombstone at the edge (which reconcile completes in
/// the record), and the record itself marked deleted if it exists, which also frees its name for
/// the caller's retry.
async fn abandon<R: Records, E: Edge>(app: App<'_, R, E>, key: &Key, audit: &AuditEntry, now: Millis) {
    let _ = put(app, &key.hash, &tombstone(key, Status::Deleted), now).await;
    let gone = key.next(|k| k.status = Status::Deleted);
    let mut entry = audit.clone();
    entry.action = "key.delete".into();
    entry.key_id = Some(key.id.clone());
    entry.detail = serde_json::json!({"name": key.name, "reason": "its creation could not be confirmed"});
    let _ = app.records.update_key(&gone, key.version, &entry).await;
}

/// An edit of an existing key (`before` as read, `after` = before.next(..)).
pub async fn update<R: Records, E: Edge>(
    app: App<'_, R, E>,
    before: &Key,
    after: &Key,
    audit: &AuditEntry,
    now: Millis,
) -> Result<(), ApiError> {
    let narrows = before.narrows_to(after);
    if narrows {
        announce_narrowing(app, before, after, now).await?;
    }
    if narrows
        && put(app, &before.hash, &before.meet(after).edge_record(), now)
            .await
            .is_err()
    {
        resync(app, before, now).await;
        return Err(unavailable(
            "edge-write-failed",
            "The key store could not be written; nothing was changed. Retry.",
        ));
    }
    match app.records.update_key(after, before.version, audit).await {
        Ok(Written::Applied) => settle(app, after, now).await,
        Ok(Written::Stale) => {
            resync(app, before, now).await;
            Err(key_changed())
        }
        Err(e) => {
            if narrows {
                resync(app, before, now).await;
            }
            Err(match e {
                StoreError::NameTaken => e.into(),
                _ => unavailable(
                    "store-unavailable",
                    "The key database could not confirm the change; it may or may not be saved. Retry the request \
                     (applying it twice is harmless).",
                ),
            })
        }
    }
}

/// A rotation: `old_after` supersedes `old` (and may cut its life short), `new` is the successor.
/// Once the record transaction applied, the new secret must reach the caller whatever happens
/// to the old key's edge record, so that part comes back as a warning, not an error.
pub async fn rotate<R: Records, E: Edge>(
    app: App<'_, R, E>,
    old: &Key,
    old_after: &Key,
    new: &Key,
    audit: &AuditEntry,
    now: Millis,
) -> Result<Option<String>, ApiError> {
    let nothing = "The key store could not be written; the key was not rotated. Retry.";
    if old.narrows_to(old_after) {
        announce_narrowing(app, old, old_after, now).await?;
    }
    if put(app, &new.hash, &new.edge_record(), now).await.is_err() {
        take_off(app, &new.hash).await;
        return Err(unavailable("edge-write-failed", nothing));
    }
    if old.narrows_to(old_after)
        && put(app, &old.hash, &old.meet(old_after).edge_record(), now)
            .await
            .is_err()
    {
        take_off(app, &new.hash).await;
        resync(app, old, now).await;
        return Err(unavailable("edge-write-failed", nothing));
    }
    match app.records.rotate(old_after, old.version, new, audit).await {
        Ok(Written::Applied) => {}
        Ok(Written::Stale) => {
            take_off(app, &new.hash).await;
            resync(app, old, now).await;
            return Err(key_changed());
        }
        Err(e) => {
            abandon(app, new, audit, now).await;
            resync(app, old, now).await;
            return Err(match e {
                StoreError::NameTaken => e.into(),
                _ => unavailable(
                    "store-unavailable",
                    "The key database could not be written; the key was not rotated (the new secret was never \
                     handed out). Retry.",
                ),
            });
        }
    }
    Ok(settle(app, old_after, now).await.err().map(|_| {
        "The old key's new deadline could not be confirmed at the edge, so the old key is refused until \
         POST /admin/v1/reconcile runs."
            .to_owned()
    }))
}

/// Revoke (status Revoked) or delete (status Deleted): permanent. The tombstone reaches the edge
/// first, then the record (retried over concurrent edits), then the tombstone once more, since a
/// concurrent edit may have put its record back in between.
pub async fn finalize<R: Records, E: Edge>(
    app: App<'_, R, E>,
    row: &Key,
    status: Status,
    audit: &AuditEntry,
    now: Millis,
) -> Result<Key, ApiError> {
    let (verb, kind) = if status == Status::Deleted {
        ("deletion", ChangeKind::Delete)
    } else {
        ("revocation", ChangeKind::Revoke)
    };
    // Also when the record is final already: a retry must reach the followers too.
    announce(app, row, kind, tombstone(row, status), now).await?;
    put(app, &row.hash, &tombstone(row, status), now).await.map_err(|_| {
        unavailable(
            "edge-write-failed",
            &format!(
                "The key store could not be written; the {verb} did not happen and the key may still work. Retry."
            ),
        )
    })?;
    let unrecorded = || {
        unavailable(
            "store-unavailable",
            &format!(
                "The key no longer works at the edge, but the {verb} is not recorded yet. Retry (POST \
                 /admin/v1/reconcile also completes it; it never brings the key back)."
            ),
        )
    };
    let mut cur = row.clone();
    let mut done = cur.status == status || cur.status == Status::Deleted;
    for _ in 0..CONFIRM_ROUNDS {
        if done {
            break;
        }
        let after = cur.next(|k| {
            k.status = status;
            k.revoked_at.get_or_insert(now);
        });
        match app.records.update_key(&after, cur.version, audit).await {
            Ok(Written::Applied) => {
                cur = after;
                done = true;
            }
            Ok(Written::Stale) => match app.records.get_key(&cur.workspace, &cur.id).await {
                Ok(Some(k)) => {
                    done = k.status == status || k.status == Status::Deleted;
                    cur = k;
                }
                Ok(None) => done = true,
                Err(_) => return Err(unrecorded()),
            },
            Err(_) => return Err(unrecorded()),
        }
    }
    if !done {
        return Err(unrecorded());
    }
    let last = if cur.status.is_final() {
        cur.edge_record()
    } else {
        tombstone(&cur, status)
    };
    put(app, &row.hash, &last, now).await.map_err(|_| {
        unavailable(
            "edge-write-failed",
            &format!(
                "The {verb} is recorded, but the edge could not be confirmed. Retry (POST /admin/v1/reconcile also \
                 completes it)."
            ),
        )
    })?;
    Ok(cur)
}

/// Reconcile of one key: completes a revocation an edge tombstone stands for, else projects the
/// record when the edge differs. Returns what it did.
pub enum Reconciled {
    Unchanged,
    Written,
    Completed,
}

pub async fn reconcile_key<R: Records, E: Edge>(
    app: App<'_, R, E>,
    key: &Key,
    audit: impl Fn(Status) -> AuditEntry,
    now: Millis,
) -> Result<(Key, Reconciled), ()> {
    let edge = app.edge.get(&key.hash).await.map_err(|_| ())?;
    if let Some(t) = edge.as_ref().filter(|r| r.is_tombstone()) {
        if !key.status.is_final() {
            let done = finalize(app, key, t.status, &audit(t.status), now)
                .await
                .map_err(|_| ())?;
            return Ok((done, Reconciled::Completed));
        }
    }
    if edge.as_ref() == Some(&key.edge_record()) {
        return Ok((key.clone(), Reconciled::Unchanged));
    }
    put(app, &key.hash, &key.edge_record(), now).await.map_err(|_| ())?;
    Ok((key.clone(), Reconciled::Written))
}
