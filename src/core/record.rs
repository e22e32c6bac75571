//! The record the edge reads: the KV value under the key's hash (and the shape D1 rows project
//! to). Versioned so a future format can be read next to this one during a rollout.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::key::Environment;
use super::ratelimit::RateLimit;
use super::scope::{Catalog, ScopeError, ScopeSet};
use super::time::Millis;

pub const RECORD_VERSION: u32 = 1;

pub use super::model::Status;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub v: u32,
    pub id: String,
    pub workspace: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<Millis>,
    pub status: Status,
    pub preview: String,
    /// Live or test; omitted for live keys (and absent from records written before it existed).
    #[serde(default, skip_serializing_if = "Environment::is_live")]
    pub env: Environment,
    /// Sharing groups; omitted when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// The system-of-record version this record was projected from (0 in records written before
    /// versions existed).
    #[serde(default)]
    pub ver: u64,
    /// The key's rate limit, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rl: Option<RateLimit>,
    /// The key's credit cap in the workspace's counter, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cr: Option<String>,
}

impl KeyRecord {
    pub fn from_json(s: &str) -> Result<KeyRecord, String> {
        let rec: KeyRecord = serde_json::from_str(s).map_err(|e| format!("undecodable key record: {e}"))?;
        if rec.v != RECORD_VERSION {
            return Err(format!("unsupported key record version {}", rec.v));
        }
        Ok(rec)
    }

    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and a JSON map cannot fail to serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// KV `expiration` (unix seconds) for this record, if it expires: no earlier than the key's
    /// own expiry, and at least 60 s ahead because KV refuses anything sooner. The edge checks
    /// `expires_at` itself, so a record that lingers past it is still refused; that is why an
    /// expiry beyond what workerd's KV accepts (a signed 32-bit count of seconds, 2038-01-19) is
    /// simply left out rather than refused. Tombstones never expire: they are what keeps a
    /// revoked key revoked.
    pub fn kv_expiration(&self, now: Millis) -> Option<u64> {
        if self.status != Status::Active {
            return None;
        }
        let exp = self.expires_at?;
        let at = (exp + 999).div_euclid(1000).max(now.div_euclid(1000) + 61);
        u64::try_from(at).ok().filter(|s| *s <= i32::MAX as u64)
    }

    pub fn is_tombstone(&self) -> bool {
        self.status.is_final()
    }
}

/// A record prepared for the hot path: scopes parsed and the identity header precomputed, so a
/// cache hit does no parsing or formatting; only what a request reads is kept (metadata as its
/// JSON text, parsed only by the verify API), which keeps the cache small at its bound.
#[derive(Debug)]
pub struct KeyEntry {
    pub id: Box<str>,
    pub workspace: Box<str>,
    pub name: Box<str>,
    pub expires_at: Option<Millis>,
    pub status: Status,
    pub scopes: ScopeSet,
    pub environment: Environment,
    /// `id\nworkspace\nscopes\nenvironment\ngroups` (scopes in the deployment's scope format,
    /// scopes and groups space separated): the five identity headers as one string, so forwarding
    /// hands JS one string instead of five, and the signature covers exactly what the origin reads.
    pub identity: Box<str>,
    pub meta_json: Box<str>,
    pub ratelimit: Option<RateLimit>,
    /// The key's credit cap (its name in the workspace's counter), if any.
    pub cap: Option<Box<str>>,
}

impl KeyEntry {
    /// The key's groups, one by one: the last line of `identity` (the X-Keyward-Groups value).
    /// Not a field of its own: a cached entry is kept per key, and the bytes of a second copy of
    /// the groups (and its pointer) pay for `cap`.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        let groups = self.identity.rsplit('\n').next().unwrap_or("");
        groups.split(' ').filter(|g| !g.is_empty())
    }

    pub fn new(record: KeyRecord, catalog: &Catalog) -> Result<KeyEntry, ScopeError> {
        let scopes = ScopeSet::parse(&record.scopes)?;
        let groups = record.groups.join(" ");
        let identity = format!(
            "{}\n{}\n{}\n{}\n{}",
            record.id,
            record.workspace,
            catalog.joined(&scopes),
            record.env.as_str(),
            groups
        )
        .into_boxed_str();
        let meta_json = if record.meta.is_empty() {
            "{}".into()
        } else {
            Value::Object(record.meta).to_string().into_boxed_str()
        };
        Ok(KeyEntry {
            ratelimit: record.rl,
            cap: record.cr.map(String::into_boxed_str),
            id: record.id.into_boxed_str(),
            workspace: record.workspace.into_boxed_str(),
            name: record.name.into_boxed_str(),
            expires_at: record.expires_at,
            status: record.status,
            scopes,
            environment: record.env,
            identity,
            meta_json,
        })
    }
}

#[cfg(test)]
pub(crate) fn sample_record(scopes: &[&str], expires_at: Option<Millis>) -> KeyRecord {
    KeyRecord {
        v: RECORD_VERSION,
        id: "key_test".into(),
        workspace: "acme".into(),
        name: "test key".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires_at,
        status: Status::Active,
        preview: "kw_live_...abcd".into(),
        env: Environment::Live,
        groups: Vec::new(),
        meta: Map::new(),
        ver: 1,
        rl: None,
        cr: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_version_check() {
        let rec = sample_record(&["projects:viewer"], Some(1_000));
        let json = rec.to_json();
        assert_eq!(KeyRecord::from_json(&json), Ok(rec));
        assert!(json.contains("\"v\":1"));
        let v2 = json.replace("\"v\":1", "\"v\":2");
        assert!(KeyRecord::from_json(&v2).unwrap_err().contains("version"));
        assert!(KeyRecord::from_json("{").is_err());
    }

    #[test]
    fn kv_expiration_is_never_sooner_than_60s_nor_before_expiry() {
        let now = 1_000_000_000;
        assert_eq!(sample_record(&[], None).kv_expiration(now), None);
        // Expiring in 5 s: KV cannot go below now + 60 s.
        assert_eq!(
            sample_record(&[], Some(now + 5_000)).kv_expiration(now),
            Some(1_000_061)
        );
        // Expiring in a day: rounded up to the next whole second.
        assert_eq!(
            sample_record(&[], Some(now + 86_400_500)).kv_expiration(now),
            Some(1_086_401)
        );
        // Past 2038 (workerd refuses expirations beyond i32 seconds): no KV expiration at all.
        let y2099 = crate::core::time::parse_rfc3339("2099-01-01T00:00:00Z").unwrap();
        assert_eq!(sample_record(&[], Some(y2099)).kv_expiration(now), None);
        let last_ok = i64::from(i32::MAX) * 1000;
        assert_eq!(
            sample_record(&[], Some(last_ok)).kv_expiration(now),
            Some(i32::MAX as u64)
        );
        let mut tomb = sample_record(&[], Some(now + 5_000));
        tomb.status = Status::Revoked;
        assert_eq!(tomb.kv_expiration(now), None, "tombstones never expire");
    }

    #[test]
    fn an_entry_reads_its_groups_and_cap_from_the_record() {
        let cat = crate::core::policy::Policy::from_json(include_str!("../../config/policy.json"))
            .unwrap()
            .catalog;
        let mut rec = sample_record(&["projects:viewer"], None);
        let e = KeyEntry::new(rec.clone(), &cat).unwrap();
        assert_eq!(e.group_names().count(), 0);
        assert!(e.identity.ends_with("\nlive\n"));
        assert_eq!(e.cap, None);
        rec.groups = vec!["ops".into(), "design".into()];
        rec.cr = Some("key_first".into());
        let e = KeyEntry::new(rec, &cat).unwrap();
        assert_eq!(e.group_names().collect::<Vec<_>>(), ["ops", "design"]);
        assert!(e.identity.ends_with("\nlive\nops design"));
        assert_eq!(e.cap.as_deref(), Some("key_first"));
    }
}
