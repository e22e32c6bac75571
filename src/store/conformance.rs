//! One contract for every `Records` and `Edge` implementation: what the handlers rely on (guarded
//! updates, final statuses, unique names, all-or-nothing batches, paging, tombstones). Runs
//! natively against `memory` (`cargo test`) and, through a test-only admin route that the e2e
//! harness enables, inside the worker against local D1 and KV.

use serde_json::{json, Map};

use super::{AuditEntry, Edge, Group, KeyCursor, ListFilter, Preset, Records, StoreError, Written, LIST_SCAN};
use crate::core::hash::KeyHash;
use crate::core::key::ApiKey;
use crate::core::key::Environment;
use crate::core::model::{Key, Status};
use crate::core::scope::ScopeSet;
use crate::core::time::{Millis, DAY};

pub type Outcome = (&'static str, Result<(), String>);

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn err(e: StoreError) -> String {
    format!("store error: {e:?}")
}

fn random_hash(seed: &mut u64) -> KeyHash {
    // Distinct, not secret: the suite's keys are never handed to anyone.
    let mut b = [0u8; 32];
    for (i, x) in b.iter_mut().enumerate() {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *x = (*seed >> 33) as u8 ^ i as u8;
    }
    KeyHash::of(&ApiKey::generate(&Default::default(), Default::default(), &b))
}

struct Fixture {
    ws: String,
    now: Millis,
    seed: u64,
    n: u32,
}

impl Fixture {
    fn key(&mut self, name: &str) -> Key {
        self.n += 1;
        Key {
            id: format!("key_{}_{:04}", self.ws, self.n),
            workspace: self.ws.clone(),
            name: name.into(),
            description: String::new(),
            hash: random_hash(&mut self.seed),
            preview: "kw_live_...test".into(),
            environment: Environment::Live,
            groups: Vec::new(),
            scopes: ScopeSet::parse(&["projects:viewer"]).unwrap_or_default(),
            metadata: Map::new(),
            created_at: self.now + i64::from(self.n),
            expires_at: None,
            grace_until: None,
            status: Status::Active,
            revoked_at: None,
            last_used_at: None,
            rotated_from: None,
            superseded_by: None,
            ratelimit: None,
            credits: None,
            version: 1,
        }
    }

    fn audit(&self, action: &str, key: Option<&Key>) -> AuditEntry {
        AuditEntry {
            at: self.now,
            workspace: self.ws.clone(),
            actor: "root".into(),
            action: action.into(),
            key_id: key.map(|k| k.id.clone()),
            detail: json!({"conformance": true}),
        }
    }
}

async fn audit_count<R: Records>(r: &R, ws: &str, key_id: &str) -> Result<usize, String> {
    let rows = r.list_audit(ws, None, 100).await.map_err(err)?;
    Ok(rows
        .iter()
        .filter(|a| a.entry.key_id.as_deref() == Some(key_id))
        .count())
}

async fn keys_round_trip<R: Records>(r: &R, f: &mut Fixture) -> Result<(), String> {
    let mut k = f.key("round trip");
    k.metadata.insert("team".into(), json!("edge"));
    k.expires_at = Some(f.now + 90 * DAY);
    k.scopes = ScopeSet::parse(&["projects:editor", "deploy:trigger"]).unwrap_or_default();
    k.environment = Environment::Test;
    k.preview = "kw_test_...test".into();
    r.insert_key(&k, &f.audit("key.create", Some(&k))).await.map_err(err)?;
    let got = r.get_key(&f.ws, &k.id).await.map_err(err)?;
    check!(got.as_ref() == Some(&k), "get_key returned {got:?}");
    let by_hash = r.get_key_by_hash(&k.hash).await.map_err(err)?;
    check!(by_hash.as_ref() == Some(&k), "get_key_by_hash returned {by_hash:?}");
    check!(
        r.get_key("conf-elsewhere", &k.id).await.map_err(err)?.is_none(),
        "another workspace sees the key"
    );
    check!(
        r.get_key(&f.ws, "key_nope").await.map_err(err)?.is_none(),
        "an unknown id is found"
    );
    check!(
        audit_count(r, &f.ws, &k.id).await? == 1,
        "one audit entry for the insert"
    );
    Ok(())
}

async fn groups_and_members<R: Records>(r: &R, f: &mut Fixture) -> Result<(), String> {
    let now = f.now;
    let group = |name: &str| Group {
        name: name.into(),
        description: "team".into(),
        created_at: now,
    };
    let audit = f.audit("group.create", None);
    r.insert_group(&f.ws, &group("ops"), &audit).await.map_err(err)?;
    r.insert_group(&f.ws, &group("design"), &audit).await.map_err(err)?;
    let dup = r.insert_group(&f.ws, &group("ops"), &audit).await;
    check!(dup == Err(StoreError::NameTaken), "a second group named ops: {dup:?}");
    let names: Vec<String> = r
        .list_groups(&f.ws)
        .await
        .map_err(err)?
        .into_iter()
        .map(|g| g.name)
        .collect();
    check!(names == ["design", "ops"], "list_groups: {names:?}");
    check!(
        r.list_groups("conf-elsewhere").await.map_err(err)?.is_empty(),
        "groups leak across workspaces"
    );

    let mut a = f.key("in ops");
    a.groups = vec!["design".into(), "ops".into()];
    r.insert_key(&a, &f.audit("key.create", Some(&a))).await.map_err(err)?;
    let b = f.key("in none");
    r.insert_key(&b, &f.audit("key.create", Some(&b))).await.map_err(err)?;
    let got = r.get_key(&f.ws, &a.id).await.map_err(err)?;
    check!(got.as_ref() == Some(&a), "groups round trip: {got:?}");
    let members: Vec<String> = r
        .group_members(&f.ws, "ops", 10)
        .await
        .map_err(err)?
        .into_iter()
        .map(|k| k.id)
        .collect();
    check!(members == [a.id.clone()], "members of ops: {members:?}");
    // Not a prefix or substring match.
    r.insert_group(&f.ws, &group("op"), &audit).await.map_err(err)?;
    check!(
        r.group_members(&f.ws, "op", 10).await.map_err(err)?.is_empty(),
        "'op' matched 'ops'"
    );
    // Membership follows every write of the key: an update that joins or leaves, a rotation's
    // successor, a deletion; a stale update changes nothing.
    let ws = f.ws.clone();
    let ids = |v: Vec<Key>| v.into_iter().map(|k| k.id).collect::<Vec<_>>();
    let b2 = b.next(|k| k.groups = vec!["ops".into()]);
    check!(
        r.update_key(&b2, 1, &f.audit("key.update", Some(&b)))
            .await
            .map_err(err)?
            == Written::Applied,
        "join ops"
    );
    let stale = b.next(|k| k.groups = vec!["design".into()]);
    check!(
        r.update_key(&stale, 1, &f.audit("key.update", Some(&b)))
            .await
            .map_err(err)?
            == Written::Stale,
        "stale join"
    );
    check!(
        ids(r.group_members(&ws, "ops", 10).await.map_err(err)?) == [a.id.clone(), b.id.clone()],
        "after b joined ops"
    );
    check!(
        ids(r.group_members(&ws, "design", 10).await.map_err(err)?) == [a.id.clone()],
        "a stale write joined design"
    );
    let a2 = a.next(|k| k.groups = vec!["design".into()]);
    check!(
        r.update_key(&a2, 1, &f.audit("key.update", Some(&a)))
            .await
            .map_err(err)?
            == Written::Applied,
        "a leaves ops"
    );
    check!(
        ids(r.group_members(&ws, "ops", 10).await.map_err(err)?) == [b.id.clone()],
        "after a left ops"
    );
    let mut succ = f.key("in ops, rotated");
    succ.groups = b2.groups.clone();
    succ.rotated_from = Some(b.id.clone());
    let b3 = b2.next(|k| k.superseded_by = Some(succ.id.clone()));
    check!(
        r.rotate(&b3, 2, &succ, &f.audit("key.rotate", Some(&b)))
            .await
            .map_err(err)?
            == Written::Applied,
        "rotate b"
    );
    check!(
        ids(r.group_members(&ws, "ops", 10).await.map_err(err)?) == [b.id.clone(), succ.id.clone()],
        "after rotation"
    );
    let b4 = b3.next(|k| k.status = Status::Revoked);
    check!(
        r.update_key(&b4, 3, &f.audit("key.revoke", Some(&b)))
            .await
            .map_err(err)?
            == Written::Applied,
        "revoke b"
    );
    check!(
        ids(r.group_members(&ws, "ops", 10).await.map_err(err)?) == [b.id.clone(), succ.id.clone()],
        "a revoked key is still listed"
    );
    let b5 = b4.next(|k| k.status = Status::Deleted);
    check!(
        r.update_key(&b5, 4, &f.audit("key.delete", Some(&b)))
            .await
            .map_err(err)?
            == Written::Applied,
        "delete b"
    );
    check!(
        ids(r.group_members(&ws, "ops", 10).await.map_err(err)?) == [succ.id.clone()],
        "a deleted key is listed"
    );
    check!(
        ids(r.group_members(&ws, "ops", 1).await.map_err(err)?).len() == 1,
        "limit"
    );

    let gone = r
        .delete_group(&f.ws, "ops", &f.audit("group.delete", None))
        .await
        .map_err(err)?;
    check!(gone == Written::Applied, "delete_group: {gone:?}");
    let again = r
        .delete_group(&f.ws, "ops", &f.audit("group.delete", None))
        .await
        .map_err(err)?;
    check!(again == Written::Stale, "deleting a deleted group: {again:?}");
    let rows = r.list_audit(&f.ws, None, 100).await.map_err(err)?;
    let deletes = rows.iter().filter(|x| x.entry.action == "group.delete").count();
    check!(deletes == 1, "{deletes} audit rows for one group deletion");
    Ok(())
}

async fn names_unique_among_current_keys<R: Records>(r: &R, f: &mut Fixture) -> Result<(), String> {
    let a = f.key("same name");
    r.insert_key(&a, &f.audit("key.create", Some(&a))).await.map_err(err)?;
    let b = f.key("same name");
    let dup = r.insert_key(&b, &f.audit("key.create", Some(&b))).await;
    check!(
        dup == Err(StoreError::NameTaken),
        "a second current key with the name: {dup:?}"
    );
    check!(
        r.get_key(&f.ws, &b.id).await.map_err(err)?.is_none(),
        "the refused insert left a row"
    );
    check!(
        audit_count(r, &f.ws, &b.id).await? == 0,
        "the refused insert left an audit entry"
    );
    let revoked = a.next(|k| k.status = Status::Revoked);
    check!(
        r.update_key(&revoked, 1, &f.audit("key.revoke", Some(&a)))
            .await
            .map_err(err)?
            == Written::Applied,
        "revoke"
    );
    r.insert_key(&b, &f.audit("key.create", Some(&b)))
        .await
        .map_err(|e| format!("a revoked key's name is free: {e:?}"))?;
    // Renaming onto a taken name is refused and changes nothing.
    let c = f.key("other name");
    r.insert_key(&c, &f.audit("key.create", Some(&c))).await.map_err(err)?;
    let clash = c.next(|k| k.name = "same name".into());
    let res = r.update_key(&clash, 1, &f.audit("key.update", Some(&c))).await;
    check!(res == Err(StoreError::NameTaken), "rename onto a taken name: {res:?}");
    check!(
        r.get_key(&f.ws, &c.id).await.map_err(err)?.map(|k| k.version) == Some(1),
        "the refused rename changed the row"
    );
    check!(
        audit_count(r, &f.ws, &c.id).await? == 1,
        "the refused rename left an audit entry"
    );
    Ok(())
}

async fn updates_are_conditional<R: Records>(r: &R, f: &mut Fixture) -> Result<(), String> {
    let k = f.key("conditional");
    r.insert_key(&k, &f.audit("key.create", Some(&k))).await.map_err(err)?;
    let v2 = k.next(|k| k.description = "second".into());
    check!(
        r.update_key(&v2, 1, &f.audit("key.update", Some(&k)))
            .await
            .map_err(err)?
            == Written::Applied,
        "v1 -> v2"
    );
    let stale = k.next(|k| k.description = "lost update".into());
    check!(
        r.update_key(&stale, 1, &f.audit("key.update", Some(&k)))
            .await
            .map_err(err)?
            == Written::Stale,
        "a second writer from v1"
    );
    let mut skip = v2.next(|k| k.description = "jump".into());
    skip.version = 9;
    check!(
        r.update_key(&skip, 2, &f.audit("key.update", Some(&k)))
            .await
            .map_err(err)?
            == Written::Stale,
        "a version jump"
    );
    let got = r.get_key(&f.ws, &k.id).await.map_err(err)?.ok_or("row gone")?;
    check!(got == v2, "row after a stale write: {got:?}");
    check!(
        audit_count(r, &f.ws, &k.id).await? == 2,
        "audit entries only for writes that applied"
    );
    Ok(())
}

async fn final_statuses_stay_final<R: Records>(r: &R, f: &mut Fixture) -> Result<(), String> {
    let k = f.key("final");
    r.insert_key(&k, &f.audit("key.create", Some(&k))).await.map_err(err)?;
    let off = k.next(|k| k.status = Status::Disabled);
    check!(
        r.update_key(&off, 1, &f.audit("key.update", Some(&k)))
            .await
            .map_err(err)?
            == Written::Applied,
        "disable"
    );
    let on = off.next(|k| k.status = Status::Active);
    check!(
        r.update_key(&on, 2, &f.audit("key.update", Some(&k)))
            .await
            .map_err(err)?
            == Written::Applied,
        "re-enable"
    );
    let revoked = on.next(|k| {
        k.status = Status::Revoked;
        k.revoked_at = Some(f.now);
    });
    check!(
        r.update_key(&revoked, 3, &f.audit("key.revoke", Some(&k)))
            .await
            .map_err(err)?
            == Written::Applied,
        "revoke"
    );
    let back = revoked.next(|k| k.status = Status::Active);
    check!(
        r.update_key(&back, 4, &f.audit("key.update", Some(&k)))
            .await
            .map_err(err)?
            == Written::Stale,
        "revoked -> active applied"
    );
    let gone = revoked.next(|k| k.status = Status::Deleted);
    check!(
        r.update_key(&gone, 4, &f.audit("key.delete", Some(&k)))
            .await
            .map_err(err)?
            == Written::Applied,
        "revoked -> deleted"
    );
    let again = gone.next(|k| k.status = Status::Revoked);
    check!(
        r.update_key(&again, 5, &f.audit("key.revoke", Some(&k)))
            .await
            .map_err(err)?
            == Written::Stale,
        "deleted -> revoked applied"
    );
    let got = r
        .get_key(&f.ws, &k.id)
        .await
        .map_err(err)?
        .ok_or("a deleted key keeps its tombstone row")?;
    check!(got.status == Status::Deleted && got.version == 5, "{got:?}");
    Ok(())
}

async fn rotation_is_all_or_nothing<R: Records>(r: &R, f: &mut Fixture) -> Result<(), String> {
    let old = f.key("rotated");
    r.insert_key(&old, &f.audit("key.create", Some(&old)))
        .await
        .map_err(err)?;
    let mut new = f.key("rotated");
    new.rotated_from = Some(old.id.clone());
    let old_after = old.next(|k| {
        k.superseded_by = Some(new.id.clone());
        k.grace_until = Some(f.now + 60_000);
    });
    let mut stale_old = old_after.clone();
    stale_old.version = 7;
    check!(
        r.rotate(&stale_old, 6, &new, &f.audit("key.rotate", Some(&old)))
            .await
            .map_err(err)?
            == Written::Stale,
        "stale rotate"
    );
    check!(
        r.get_key(&f.ws, &new.id).await.map_err(err)?.is_none(),
        "a stale rotation inserted the successor"
    );
    check!(
        r.rotate(&old_after, 1, &new, &f.audit("key.rotate", Some(&old)))
            .await
            .map_err(err)?
            == Written::Applied,
        "rotate"
    );
    check!(
        r.get_key(&f.ws, &new.id).await.map_err(err)? == Some(new.clone()),
        "successor row"
    );
    check!(
        r.get_key(&f.ws, &old.id).await.map_err(err)? == Some(old_after.clone()),
        "old row after rotation"
    );
    check!(
        audit_count(r, &f.ws, &old.id).await? == 2,
        "one audit entry for the rotation"
    );
    Ok(())
}

async fn listing_pages_and_filters<R: Records>(r: &R, f: &mut Fixture) -> Result<(), String> {
    let ws = f.ws.clone();
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut k = f.key(&format!("listed {i}"));
        if i == 1 {
            k.expires_at = Some(f.now - 1);
        }
        r.insert_key(&k, &f.audit("key.create", Some(&k))).await.map_err(err)?;
        ids.push(k);
    }
    let revoked = ids[2].next(|k| k.status = Status::Revoked);
    r.update_key(&revoked, 1, &f.audit("key.revoke", Some(&ids[2])))
        .await
        .map_err(err)?;
    let deleted = ids[3].next(|k| k.status = Status::Deleted);
    r.update_key(&deleted, 1, &f.audit("key.delete", Some(&ids[3])))
        .await
        .map_err(err)?;
    let disabled = ids[4].next(|k| k.status = Status::Disabled);
    r.update_key(&disabled, 1, &f.audit("key.update", Some(&ids[4])))
        .await
        .map_err(err)?;
    let names = |v: &[Key]| v.iter().map(|k| k.name.clone()).collect::<Vec<_>>();
    let all = r
        .list_keys(&ws, ListFilter::All, None, 100, LIST_SCAN, f.now)
        .await
        .map_err(err)?;
    check!(all.next.is_none(), "a cursor after the last page: {:?}", all.next);
    let listed: Vec<String> = names(&all.keys)
        .into_iter()
        .filter(|n| n.starts_with("listed"))
        .collect();
    check!(
        listed == ["listed 4", "listed 2", "listed 1", "listed 0"],
        "newest first, deleted left out: {listed:?}"
    );
    let page1 = r
        .list_keys(&ws, ListFilter::All, None, 2, LIST_SCAN, f.now)
        .await
        .map_err(err)?;
    let last = page1.keys.last().ok_or("empty first page")?;
    let cursor = KeyCursor {
        created_at: last.created_at,
        id: last.id.clone(),
    };
    check!(
        page1.next.as_ref() == Some(&cursor),
        "next of a full page: {:?}",
        page1.next
    );
    let page2 = r
        .list_keys(&ws, ListFilter::All, Some(&cursor), 2, LIST_SCAN, f.now)
        .await
        .map_err(err)?;
    check!(page1.keys.len() == 2 && page2.keys.len() == 2, "pages of 2");
    check!(page2.keys.iter().all(|k| !page1.keys.contains(k)), "pages overlap");
    for (filter, want) in [
        (ListFilter::Active, "listed 0"),
        (ListFilter::Expired, "listed 1"),
        (ListFilter::Revoked, "listed 2"),
        (ListFilter::Disabled, "listed 4"),
    ] {
        let got = r
            .list_keys(&ws, filter, None, 100, LIST_SCAN, f.now)
            .await
            .map_err(err)?;
        let got: Vec<String> = names(&got.keys)
            .into_iter()
            .filter(|n| n.starts_with("listed"))
            .collect();
        check!(got == [want], "{filter:?}: {got:?}");
        // The SQL filter and core::model::liveness must agree.
    }
    let walked = r.keys_after(&ws, "", 100).await.map_err(err)?;
    check!(
        walked.windows(2).all(|w| w[0].id < w[1].id),
        "keys_after is ordered by id"
    );
    check!(
        walked.iter().any(|k| k.status == Status::Deleted),
        "keys_after includes tombstones"
    );
    let after = r.keys_after(&ws, &walked[0].id, 1).await.map_err(err)?;
    check!(after.len() == 1 && after[0].id == walked[1].id, "keys_after pages");
    Ok(())
}

/// The active and expired lists examine at most `scan` keys a call and go on from a cursor; walked
/// to the end with a tiny window they list exactly what one call with a large window lists.
async fn bounded_lists_resume<R: Records>(r: &R, f: &mut Fixture) -> Result<(), String> {
    // A workspace of its own: the window counts every active key, whatever its name.
    let ws = format!("{}-scan", f.ws);
    let mut made = Vec::new();
    for i in 0..7 {
        let mut k = f.key(&format!("scan {i}"));
        k.workspace = ws.clone();
        if i <= 1 {
            k.expires_at = Some(f.now - 1);
        }
        if i == 5 {
            k.status = Status::Disabled;
        }
        r.insert_key(&k, &f.audit("key.create", Some(&k))).await.map_err(err)?;
        made.push(k.name);
    }
    for (filter, want) in [
        (ListFilter::Expired, vec!["scan 1", "scan 0"]),
        (ListFilter::Active, vec!["scan 6", "scan 4", "scan 3", "scan 2"]),
        (ListFilter::Disabled, vec!["scan 5"]),
        (
            ListFilter::All,
            vec!["scan 6", "scan 5", "scan 4", "scan 3", "scan 2", "scan 1", "scan 0"],
        ),
    ] {
        let whole = r
            .list_keys(&ws, filter, None, 100, LIST_SCAN, f.now)
            .await
            .map_err(err)?;
        let whole: Vec<String> = whole.keys.into_iter().map(|k| k.name).collect();
        check!(whole == want, "{filter:?} in one call: {whole:?}");
        let (mut walked, mut pages, mut after) = (Vec::new(), 0, None);
        loop {
            let page = r
                .list_keys(&ws, filter, after.as_ref(), 1, 2, f.now)
                .await
                .map_err(err)?;
            pages += 1;
            check!(page.keys.len() <= 1, "{filter:?}: a page over its limit");
            walked.extend(page.keys.into_iter().map(|k| k.name));
            match page.next {
                Some(c) if pages < 20 => after = Some(c),
                Some(_) => return Err(format!("{filter:?}: the cursor chain does not end")),
                None => break,
            }
        }
        check!(walked == want, "{filter:?} walked with a window of 2: {walked:?}");
    }
    // Windows of two: the first expired-list call examines the two newest active keys (both live),
    // so its page is empty and still has a cursor.
    let first = r
        .list_keys(&ws, ListFilter::Expired, None, 10, 2, f.now)
        .await
        .map_err(err)?;
    check!(
        first.keys.is_empty() && first.next.is_some(),
        "an empty window must still lead on: {first:?}"
    );
    Ok(())
}

async fn last_used_only_rises<R: Records>(r: &R, f: &mut Fixture) -> Result<(), String> {
    let k = f.key("used");
    r.insert_key(&k, &f.audit("key.create", Some(&k))).await.map_err(err)?;
    let other = f.key("used too");
    r.insert_key(&other, &f.audit("key.create", Some(&other)))
        .await
        .map_err(err)?;
    r.touch_last_used(&[(k.hash, f.now + 5), (other.hash, f.now + 9)])
        .await
        .map_err(err)?;
    r.touch_last_used(&[(k.hash, f.now + 1)]).await.map_err(err)?;
    let got = r.get_key(&f.ws, &k.id).await.map_err(err)?.ok_or("row")?;
    check!(
        got.last_used_at == Some(f.now + 5),
        "last_used_at {:?}",
        got.last_used_at
    );
    let got = r.get_key(&f.ws, &other.id).await.map_err(err)?.ok_or("row")?;
    check!(
        got.last_used_at == Some(f.now + 9),
        "each key its own time: {:?}",
        got.last_used_at
    );
    check!(got.version == 1, "last-used writes do not bump the version");
    Ok(())
}

async fn presets_and_audit<R: Records>(r: &R, f: &mut Fixture) -> Result<(), String> {
    let p = Preset {
        name: "conf-preset".into(),
        description: "d".into(),
        scopes: ScopeSet::parse(&["events:write"]).unwrap_or_default(),
    };
    r.insert_preset(&f.ws, &p, f.now, &f.audit("preset.create", None))
        .await
        .map_err(err)?;
    let dup = r.insert_preset(&f.ws, &p, f.now, &f.audit("preset.create", None)).await;
    check!(dup == Err(StoreError::NameTaken), "duplicate preset: {dup:?}");
    check!(
        r.get_preset(&f.ws, "conf-preset").await.map_err(err)? == Some(p.clone()),
        "get_preset"
    );
    check!(
        r.list_presets(&f.ws).await.map_err(err)? == vec![p.clone()],
        "list_presets"
    );
    check!(
        r.get_preset("conf-elsewhere", "conf-preset")
            .await
            .map_err(err)?
            .is_none(),
        "preset isolation"
    );
    let before = r.list_audit(&f.ws, None, 100).await.map_err(err)?.len();
    check!(
        r.delete_preset(&f.ws, "conf-preset", &f.audit("preset.delete", None))
            .await
            .map_err(err)?
            == Written::Applied,
        "delete"
    );
    check!(
        r.delete_preset(&f.ws, "conf-preset", &f.audit("preset.delete", None))
            .await
            .map_err(err)?
            == Written::Stale,
        "delete twice"
    );
    let rows = r.list_audit(&f.ws, None, 100).await.map_err(err)?;
    check!(
        rows.len() == before + 1,
        "an audit entry only for the delete that applied"
    );
    check!(rows.windows(2).all(|w| w[0].id > w[1].id), "audit newest first");
    let page = r.list_audit(&f.ws, Some(rows[0].id), 1).await.map_err(err)?;
    check!(page.len() == 1 && page[0].id == rows[1].id, "audit paging");
    check!(
        r.list_audit("conf-elsewhere", None, 10).await.map_err(err)?.is_empty(),
        "audit isolation"
    );
    Ok(())
}

async fn edge_records<E: Edge>(e: &E, f: &mut Fixture) -> Result<(), String> {
    let mut k = f.key("edge");
    k.expires_at = Some(4_070_908_800_000); // 2099-01-01: past what KV's expiration accepts
    let h = k.hash;
    check!(e.get(&h).await.map_err(err)?.is_none(), "absent record found");
    e.put(&h, &k.edge_record(), f.now).await.map_err(err)?;
    check!(e.get(&h).await.map_err(err)? == Some(k.edge_record()), "round trip");
    let tomb = k.next(|k| k.status = Status::Revoked).edge_record();
    e.put(&h, &tomb, f.now).await.map_err(err)?;
    let got = e.get(&h).await.map_err(err)?.ok_or("tombstone gone")?;
    check!(got.is_tombstone() && got == tomb, "tombstone round trip: {got:?}");
    e.delete(&h).await.map_err(err)?;
    check!(e.get(&h).await.map_err(err)?.is_none(), "deleted record found");
    Ok(())
}

/// Runs the whole contract in workspace `ws` (use a fresh one: the suite leaves its rows behind).
pub async fn run<R: Records, E: Edge>(r: &R, e: &E, ws: &str, now: Millis) -> Vec<Outcome> {
    let mut f = Fixture {
        ws: ws.to_owned(),
        now,
        seed: now as u64,
        n: 0,
    };
    vec![
        ("keys_round_trip", keys_round_trip(r, &mut f).await),
        ("groups_and_members", groups_and_members(r, &mut f).await),
        (
            "names_unique_among_current_keys",
            names_unique_among_current_keys(r, &mut f).await,
        ),
        ("updates_are_conditional", updates_are_conditional(r, &mut f).await),
        ("final_statuses_stay_final", final_statuses_stay_final(r, &mut f).await),
        (
            "rotation_is_all_or_nothing",
            rotation_is_all_or_nothing(r, &mut f).await,
        ),
        ("listing_pages_and_filters", listing_pages_and_filters(r, &mut f).await),
        ("bounded_lists_resume", bounded_lists_resume(r, &mut f).await),
        ("last_used_only_rises", last_used_only_rises(r, &mut f).await),
        ("presets_and_audit", presets_and_audit(r, &mut f).await),
        ("edge_records", edge_records(e, &mut f).await),
    ]
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::app::tests::block_on;
    use crate::store::memory::{Faults, MemEdge, MemRecords};

    #[test]
    fn the_memory_stores_keep_the_contract() {
        let faults = Faults::new();
        let (r, e) = (MemRecords::new(Rc::clone(&faults)), MemEdge::new(faults));
        let results = block_on(run(&r, &e, "conf-mem", 1_800_000_000_000));
        assert_eq!(results.len(), 11);
        for (name, res) in results {
            assert_eq!(res, Ok(()), "{name}");
        }
    }
}
