//! The key as the system of record knows it, and the one rule that says whether a key is live.
//! Pure: the admin API, reconcile, the stores and the edge decision all ask here, so "is this key
//! usable" has exactly one answer.

use serde_json::{Map, Value};

use super::credits::KeyCredits;
use super::hash::KeyHash;
use super::key::Environment;
use super::ratelimit::RateLimit;
use super::record::{KeyRecord, RECORD_VERSION};
use super::scope::ScopeSet;
use super::time::Millis;

/// What an admin made of a key. `Expired` is not here: it follows from the clock (`Liveness`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    /// Deactivated; can be reactivated.
    Disabled,
    /// Permanent: no transition leads out of it except to Deleted.
    Revoked,
    /// Permanent tombstone: the row stays so that no late write can bring the key back.
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
            Status::Revoked => "revoked",
            Status::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Active, Status::Disabled, Status::Revoked, Status::Deleted]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    /// Revoked and Deleted are final: a write that would leave them (other than Revoked ->
    /// Deleted) is refused by both stores, whatever the caller read.
    pub fn may_become(self, next: Status) -> bool {
        match self {
            Status::Deleted => next == Status::Deleted,
            Status::Revoked => matches!(next, Status::Revoked | Status::Deleted),
            Status::Active | Status::Disabled => true,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Revoked | Status::Deleted)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Live,
    Expired,
    Disabled,
    Revoked,
    Deleted,
}

/// THE liveness rule, for a stored key and for an edge record alike. The expiry instant is
/// exclusive: at `expires_at` the key is already expired.
pub fn liveness(status: Status, effective_expiry: Option<Millis>, now: Millis) -> Liveness {
    match status {
        Status::Deleted => Liveness::Deleted,
        Status::Revoked => Liveness::Revoked,
        Status::Disabled => Liveness::Disabled,
        Status::Active if effective_expiry.is_some_and(|e| now >= e) => Liveness::Expired,
        Status::Active => Liveness::Live,
    }
}

fn min_expiry(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// A key in the system of record. The secret is never here: only its hash and a preview.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub id: String,
    pub workspace: String,
    pub name: String,
    pub description: String,
    pub hash: KeyHash,
    pub preview: String,
    /// Live or test: fixed when the key is issued (it is part of the secret's prefix).
    pub environment: Environment,
    pub scopes: ScopeSet,
    /// Sharing groups the key belongs to (sorted, validated names of the workspace's groups):
    /// forwarded as X-Keyward-Groups, so the origin can give them access to what the key creates.
    pub groups: Vec<String>,
    pub metadata: Map<String, Value>,
    pub created_at: Millis,
    /// The key's own expiry, as set on create or PATCH.
    pub expires_at: Option<Millis>,
    /// Set by a rotation with grace: the old key stops at min(expires_at, grace_until).
    pub grace_until: Option<Millis>,
    pub status: Status,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub rotated_from: Option<String>,
    pub superseded_by: Option<String>,
    /// Per-key rate limit (one of the deployed tiers), if any.
    pub ratelimit: Option<RateLimit>,
    /// Per-key credit cap (configuration; the count is in the workspace's counter), if any.
    pub credits: Option<KeyCredits>,
    /// Bumped by every write; every update is conditional on the version it read.
    pub version: u64,
}

impl Key {
    pub fn effective_expiry(&self) -> Option<Millis> {
        min_expiry(self.expires_at, self.grace_until)
    }

    pub fn liveness(&self, now: Millis) -> Liveness {
        liveness(self.status, self.effective_expiry(), now)
    }

    pub fn is_live(&self, now: Millis) -> bool {
        self.liveness(now) == Liveness::Live
    }

    /// The status shown to admins: the stored status, or `expired` once the clock says so.
    pub fn status_label(&self, now: Millis) -> &'static str {
        match self.liveness(now) {
            Liveness::Expired => "expired",
            _ => self.status.as_str(),
        }
    }

    /// The edge projection. Revoked and deleted keys project to a tombstone that carries no
    /// scopes: it answers like an unknown key, and reconcile reads it as a revocation that must
    /// stand even if the record write that should follow it failed.
    pub fn edge_record(&self) -> KeyRecord {
        let tomb = self.status.is_final();
        KeyRecord {
            v: RECORD_VERSION,
            id: self.id.clone(),
            workspace: self.workspace.clone(),
            name: if tomb { String::new() } else { self.name.clone() },
            scopes: if tomb { Vec::new() } else { self.scopes.to_strings() },
            expires_at: if tomb { None } else { self.effective_expiry() },
            status: self.status,
            preview: self.preview.clone(),
            env: self.environment,
            groups: if tomb { Vec::new() } else { self.groups.clone() },
            meta: if tomb { Map::new() } else { self.metadata.clone() },
            rl: if tomb { None } else { self.ratelimit },
            cr: if tomb {
                None
            } else {
                self.credits.as_ref().map(|c| c.counter.clone())
            },
            ver: self.version,
        }
    }

    /// The next version of this key with `change` applied; the version is bumped here only.
    pub fn next(&self, change: impl FnOnce(&mut Key)) -> Key {
        let mut k = self.clone();
        change(&mut k);
        k.version = self.version + 1;
        k
    }

    /// Does `after` take anything away that `self` grants at the edge? Such a change is written
    /// to the edge (as the meet of both) before the record, so that no failure in between leaves
    /// the edge granting more than the record.
    pub fn narrows_to(&self, after: &Key) -> bool {
        // Leaving a group takes away what the origin grants through it.
        let left_group = self.groups.iter().any(|g| !after.groups.contains(g));
        let expiry_earlier = match (self.effective_expiry(), after.effective_expiry()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => b < a,
        };
        // A cap added is a limit added (removing one, or changing its refill, only widens or
        // leaves the edge as it is).
        let cap_added = after.credits.is_some() && self.credits.is_none();
        after.status != Status::Active
            || !after.scopes.covers(&self.scopes)
            || expiry_earlier
            || left_group
            || cap_added
    }

    /// What both `self` and `after` grant: scopes implied by both sets, the earlier expiry, and
    /// the stricter status. Never grants more than either.
    pub fn meet(&self, after: &Key) -> Key {
        let mut m = after.clone();
        m.scopes = self.scopes.meet(&after.scopes);
        m.groups = self
            .groups
            .iter()
            .filter(|g| after.groups.contains(g))
            .cloned()
            .collect();
        m.expires_at = min_expiry(self.effective_expiry(), after.effective_expiry());
        m.grace_until = None;
        m.credits = after.credits.clone().or_else(|| self.credits.clone());
        if self.status != Status::Active {
            m.status = if after.status.is_final() {
                after.status
            } else {
                self.status
            };
        }
        // Not a new version: the meet is only ever written to the edge, ahead of `after`.
        m.version = self.version;
        m
    }
}

/// For tests: a live key with the given scopes.
#[cfg(test)]
pub(crate) fn sample_key(id: &str, scopes: &[&str], now: Millis) -> Key {
    Key {
        id: id.into(),
        workspace: "acme".into(),
        name: format!("name {id}"),
        description: String::new(),
        hash: KeyHash::from_hex(&format!(
            "{:0>64}",
            id.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        ))
        .unwrap_or_else(|| KeyHash::from_hex(&"0".repeat(64)).unwrap()),
        preview: "kw_live_...abcd".into(),
        environment: Environment::Live,
        groups: Vec::new(),
        scopes: ScopeSet::parse(scopes).unwrap(),
        metadata: Map::new(),
        created_at: now,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_table() {
        let now = 1_000;
        assert_eq!(liveness(Status::Active, None, now), Liveness::Live);
        assert_eq!(liveness(Status::Active, Some(now + 1), now), Liveness::Live);
        assert_eq!(liveness(Status::Active, Some(now), now), Liveness::Expired);
        assert_eq!(liveness(Status::Disabled, None, now), Liveness::Disabled);
        assert_eq!(liveness(Status::Revoked, Some(now + 9), now), Liveness::Revoked);
        assert_eq!(liveness(Status::Deleted, None, now), Liveness::Deleted);
        assert_eq!(liveness(Status::Disabled, Some(0), now), Liveness::Disabled);
    }

    #[test]
    fn final_statuses_are_final() {
        use Status::*;
        for s in [Active, Disabled, Revoked, Deleted] {
            for n in [Active, Disabled, Revoked, Deleted] {
                let want = match s {
                    Deleted => n == Deleted,
                    Revoked => n == Revoked || n == Deleted,
                    _ => true,
                };
                assert_eq!(s.may_become(n), want, "{s:?} -> {n:?}");
            }
        }
    }

    #[test]
    fn grace_cuts_but_never_extends_and_both_stay_visible() {
        let mut k = sample_key("k1", &["projects:viewer"], 0);
        k.expires_at = Some(100);
        k.grace_until = Some(50);
        assert_eq!(k.effective_expiry(), Some(50));
        assert_eq!(k.status_label(50), "expired");
        k.grace_until = Some(500);
        assert_eq!(k.effective_expiry(), Some(100));
        k.expires_at = None;
        assert_eq!(k.effective_expiry(), Some(500));
    }

    #[test]
    fn tombstones_carry_nothing_usable() {
        let k = sample_key("k1", &["*"], 0).next(|k| k.status = Status::Revoked);
        let r = k.edge_record();
        assert_eq!(r.status, Status::Revoked);
        assert!(r.scopes.is_empty() && r.name.is_empty() && r.meta.is_empty());
        assert_eq!(r.ver, 2);
    }

    #[test]
    fn narrowing_and_meet() {
        let a = sample_key("k1", &["projects:editor", "events:write"], 0);
        let wider = a.next(|k| k.scopes = ScopeSet::parse(&["projects:owner", "events:write"]).unwrap());
        assert!(!a.narrows_to(&wider));
        let renamed = a.next(|k| k.name = "x".into());
        assert!(!a.narrows_to(&renamed));
        let fewer = a.next(|k| k.scopes = ScopeSet::parse(&["projects:viewer", "deploy:trigger"]).unwrap());
        assert!(a.narrows_to(&fewer));
        let m = a.meet(&fewer);
        assert_eq!(m.scopes.to_strings(), ["projects:viewer"]);
        let sooner = a.next(|k| k.expires_at = Some(10));
        assert!(a.narrows_to(&sooner));
        assert_eq!(a.meet(&sooner).effective_expiry(), Some(10));
        let later = sooner.next(|k| k.expires_at = Some(20));
        assert!(!sooner.narrows_to(&later));
        assert_eq!(sooner.meet(&later).effective_expiry(), Some(10));
        let off = a.next(|k| k.status = Status::Disabled);
        assert!(a.narrows_to(&off));
        assert_eq!(off.meet(&a).status, Status::Disabled, "meet keeps the stricter status");
    }
}
