//! The record the edge reads: the KV value under the key's hash (and the shape D1 rows project
//! to). Versioned so a future format can be read next to this one during a rollout.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::scope::{ScopeError, ScopeSet};
use super::time::Millis;

pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Revoked,
}

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
    #[serde(default)]
    pub meta: Map<String, Value>,
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
    /// `expires_at` itself, so a record that lingers past it is still refused.
    pub fn kv_expiration(&self, now: Millis) -> Option<u64> {
        let exp = self.expires_at?;
        let at = (exp + 999).div_euclid(1000).max(now.div_euclid(1000) + 61);
        u64::try_from(at).ok()
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
    /// `id\nworkspace\nscopes` (scopes space separated): the three identity headers as one
    /// string, so forwarding hands JS one string instead of three.
    pub identity: Box<str>,
    pub meta_json: Box<str>,
}

impl KeyEntry {
    pub fn new(record: KeyRecord) -> Result<KeyEntry, ScopeError> {
        let scopes = ScopeSet::parse(&record.scopes)?;
        let identity = format!("{}\n{}\n{}", record.id, record.workspace, scopes.joined()).into_boxed_str();
        let meta_json = if record.meta.is_empty() {
            "{}".into()
        } else {
            Value::Object(record.meta).to_string().into_boxed_str()
        };
        Ok(KeyEntry {
            id: record.id.into_boxed_str(),
            workspace: record.workspace.into_boxed_str(),
            name: record.name.into_boxed_str(),
            expires_at: record.expires_at,
            status: record.status,
            scopes,
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
        meta: Map::new(),
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
    }
}
