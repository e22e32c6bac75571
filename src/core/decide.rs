//! The verify decision: record (or none) + required scopes + now -> outcome. Pure, so every rule
//! is tested natively; the gateway and the verify API only translate the outcome.

use super::model::{liveness, Liveness};
use super::record::KeyEntry;
use super::scope::{Scope, ScopeSet};
use super::time::Millis;

#[derive(Debug, PartialEq)]
pub enum Outcome<'r> {
    Valid,
    /// Unknown or revoked: deliberately one case, so no caller can learn which.
    NotFound,
    Expired,
    InsufficientScope(Vec<&'r Scope>),
}

pub fn decide<'r>(entry: Option<&KeyEntry>, required: &'r ScopeSet, now: Millis) -> Outcome<'r> {
    let Some(entry) = entry else { return Outcome::NotFound };
    match liveness(entry.status, entry.expires_at, now) {
        Liveness::Live => {}
        Liveness::Expired => return Outcome::Expired,
        // Disabled, revoked and deleted answer exactly like unknown.
        Liveness::Disabled | Liveness::Revoked | Liveness::Deleted => return Outcome::NotFound,
    }
    if entry.scopes.covers(required) {
        return Outcome::Valid;
    }
    Outcome::InsufficientScope(entry.scopes.missing(required))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::{sample_record, Status};

    fn entry(scopes: &[&str], exp: Option<Millis>, status: Status) -> KeyEntry {
        let mut r = sample_record(scopes, exp);
        r.status = status;
        KeyEntry::new(r, &Default::default()).unwrap()
    }

    #[test]
    fn decision_table() {
        let need_view = ScopeSet::parse(&["projects:viewer"]).unwrap();
        let need_two = ScopeSet::parse(&["projects:viewer", "deploy:trigger"]).unwrap();
        let none = ScopeSet::default();
        let now = 1_000_000;
        let active = entry(&["projects:editor"], None, Status::Active);
        let expiring = entry(&["projects:editor"], Some(now), Status::Active);
        let later = entry(&["projects:editor"], Some(now + 1), Status::Active);
        let revoked = entry(&["*"], None, Status::Revoked);

        assert_eq!(decide(None, &need_view, now), Outcome::NotFound);
        assert_eq!(decide(Some(&revoked), &none, now), Outcome::NotFound);
        assert_eq!(decide(Some(&active), &need_view, now), Outcome::Valid);
        assert_eq!(decide(Some(&active), &none, now), Outcome::Valid);
        assert_eq!(
            decide(Some(&expiring), &need_view, now),
            Outcome::Expired,
            "expiry instant is exclusive"
        );
        assert_eq!(decide(Some(&expiring), &need_view, now - 1), Outcome::Valid);
        assert_eq!(decide(Some(&later), &need_view, now), Outcome::Valid);
        match decide(Some(&active), &need_two, now) {
            Outcome::InsufficientScope(m) => {
                assert_eq!(m.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ["deploy:trigger"])
            }
            other => panic!("unexpected {other:?}"),
        }
        // Expiry wins over scopes: an expired key never reveals what it lacks.
        assert_eq!(decide(Some(&expiring), &need_two, now), Outcome::Expired);
    }
}
