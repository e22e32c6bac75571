//! Per-key rate limits and failed-attempt throttling on the Workers Rate Limiting binding.
//!
//! The binding counts per location and approximately, over a period of 10 or 60 s, and its limit
//! is fixed in wrangler.toml (`[[ratelimits]] simple = { limit, period }`): a call cannot ask for
//! another limit. So a deployment declares tiers, one binding each, in config/policy.json
//! (mirroring wrangler.toml; a test keeps the two in step), and a key's `ratelimit` must name one
//! of them by its numbers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The platform's only periods, seconds.
pub const PERIODS: [u32; 2] = [10, 60];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub limit: u32,
    pub period: u32,
}

impl RateLimit {
    /// IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers): the policy, and the
    /// state when refused (nothing left; the window ends within `period`).
    pub fn policy_header(&self, name: &str) -> String {
        format!("\"{name}\";q={};w={}", self.limit, self.period)
    }

    pub fn exhausted_header(&self, name: &str) -> String {
        format!("\"{name}\";r=0;t={}", self.period)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The `[[ratelimits]] name` of the binding that counts this tier.
    pub binding: String,
    pub limit: u32,
    pub period: u32,
}

impl Tier {
    pub fn rate(&self) -> RateLimit {
        RateLimit {
            limit: self.limit,
            period: self.period,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if !PERIODS.contains(&self.period) {
            return Err(format!("tier {}: period must be 10 or 60", self.binding));
        }
        if self.limit == 0 {
            return Err(format!("tier {}: limit must be at least 1", self.binding));
        }
        let ok = !self.binding.is_empty()
            && self.binding.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            && self.binding.as_bytes()[0].is_ascii_alphabetic();
        if !ok {
            return Err(format!("tier binding '{}' is not a binding name", self.binding));
        }
        Ok(())
    }
}

/// The tiers a key may choose from.
#[derive(Debug, Clone, Default)]
pub struct Tiers(pub Vec<Tier>);

impl Tiers {
    pub fn binding_for(&self, rl: &RateLimit) -> Option<&str> {
        self.0.iter().find(|t| t.rate() == *rl).map(|t| t.binding.as_str())
    }

    fn offered(&self) -> String {
        if self.0.is_empty() {
            return "none is configured".into();
        }
        let list: Vec<String> = self.0.iter().map(|t| format!("{}/{}s", t.limit, t.period)).collect();
        format!("configured: {}", list.join(", "))
    }

    /// A key's `ratelimit` as the admin API receives it: `null` (none) or `{limit, period}`.
    pub fn parse(&self, v: &Value) -> Result<Option<RateLimit>, String> {
        if v.is_null() {
            return Ok(None);
        }
        let Some(obj) = v.as_object() else {
            return Err("ratelimit must be {\"limit\": n, \"period\": 10|60} or null".into());
        };
        if let Some(extra) = obj.keys().find(|k| *k != "limit" && *k != "period") {
            return Err(format!(
                "ratelimit has an unknown member '{}'",
                super::scope::printable(extra)
            ));
        }
        let num = |k: &str| obj.get(k).and_then(Value::as_i64);
        let period = num("period").ok_or("ratelimit.period must be 10 or 60")?;
        if period != 10 && period != 60 {
            return Err("ratelimit.period must be 10 or 60 (the platform's periods)".into());
        }
        let limit = num("limit").ok_or("ratelimit.limit must be a whole number")?;
        if limit <= 0 || limit > i64::from(u32::MAX) {
            return Err("ratelimit.limit must be at least 1".into());
        }
        let rl = RateLimit {
            limit: limit as u32,
            period: period as u32,
        };
        if self.binding_for(&rl).is_none() {
            return Err(format!(
                "no rate-limit tier of {limit} per {period}s is deployed ({})",
                self.offered()
            ));
        }
        Ok(Some(rl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tiers() -> Tiers {
        Tiers(vec![
            Tier {
                binding: "RL_100_60".into(),
                limit: 100,
                period: 60,
            },
            Tier {
                binding: "RL_5_10".into(),
                limit: 5,
                period: 10,
            },
        ])
    }

    #[test]
    fn parse_accepts_deployed_tiers_only() {
        let t = tiers();
        assert_eq!(t.parse(&json!(null)), Ok(None));
        assert_eq!(
            t.parse(&json!({"limit": 5, "period": 10})),
            Ok(Some(RateLimit { limit: 5, period: 10 }))
        );
        assert_eq!(t.binding_for(&RateLimit { limit: 100, period: 60 }), Some("RL_100_60"));
        for (bad, why) in [
            (json!({"limit": 5, "period": 30}), "10 or 60"),
            (json!({"limit": 0, "period": 10}), "at least 1"),
            (json!({"limit": -3, "period": 10}), "at least 1"),
            (json!({"limit": 7, "period": 10}), "configured: 100/60s, 5/10s"),
            (json!({"limit": 5}), "10 or 60"),
            (json!({"limit": "5", "period": 10}), "whole number"),
            (json!({"limit": 5, "period": 10, "burst": 1}), "unknown member"),
            (json!(5), "or null"),
        ] {
            let e = t.parse(&bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(Tiers::default()
            .parse(&json!({"limit": 5, "period": 10}))
            .unwrap_err()
            .contains("none is configured"));
    }

    #[test]
    fn headers_follow_the_ietf_draft() {
        let rl = RateLimit { limit: 100, period: 60 };
        assert_eq!(rl.policy_header("key"), "\"key\";q=100;w=60");
        assert_eq!(rl.exhausted_header("key"), "\"key\";r=0;t=60");
    }

    #[test]
    fn tiers_are_checked() {
        let mut t = tiers().0.remove(0);
        assert!(t.check().is_ok());
        t.period = 30;
        assert!(t.check().is_err());
        t.period = 60;
        t.binding = "rl-1".into();
        assert!(t.check().is_err());
    }
}

/// Failed attempts per client address, as this isolate sees them, and the addresses it refuses
/// until their window ends. A client's first few failures in a window are counted here only; from
/// `consult_at` on, each one is also counted on the throttle binding (shared by the location), so
/// an occasional typo costs no binding call while a client spreading failures over isolates is
/// still caught. Refusal is checked before any parsing, hashing or storage read, so a throttled
/// client gets the same answer whatever key it sends. Both maps are bounded.
pub struct Throttled {
    until: std::collections::HashMap<Box<str>, super::time::Millis>,
    /// (window start, failures in it)
    seen: std::collections::HashMap<Box<str>, (super::time::Millis, u32)>,
    max: usize,
}

/// What the glue does after a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Counted here; nothing else to do.
    Counted,
    /// Count it on the binding too (its verdict goes to `mark` when over budget).
    Consult,
    /// Over the whole budget in this isolate alone: refused from now on.
    Throttled,
}

impl Throttled {
    pub fn new(max: usize) -> Throttled {
        Throttled {
            until: std::collections::HashMap::new(),
            seen: std::collections::HashMap::new(),
            max: max.max(1),
        }
    }

    pub fn is_throttled(&self, client: &str, now: super::time::Millis) -> bool {
        !self.until.is_empty() && self.until.get(client).is_some_and(|u| now < *u)
    }

    /// One failed attempt by `client` under `tier` (the throttle's limit and period).
    pub fn failure(&mut self, client: &str, tier: &RateLimit, now: super::time::Millis) -> Failure {
        let window = i64::from(tier.period) * 1000;
        if self.seen.len() >= self.max && !self.seen.contains_key(client) {
            self.seen.retain(|_, (start, _)| now - *start < window);
            if self.seen.len() >= self.max {
                self.seen.clear();
            }
        }
        let entry = self.seen.entry(client.into()).or_insert((now, 0));
        if now - entry.0 >= window || now < entry.0 {
            *entry = (now, 0);
        }
        entry.1 += 1;
        let (start, count) = *entry;
        if count > tier.limit {
            self.mark(client, start + window, now);
            return Failure::Throttled;
        }
        if count >= (tier.limit / 4).max(1) {
            Failure::Consult
        } else {
            Failure::Counted
        }
    }

    pub fn mark(&mut self, client: &str, until: super::time::Millis, now: super::time::Millis) {
        if self.until.len() >= self.max && !self.until.contains_key(client) {
            self.until.retain(|_, u| *u > now);
            if self.until.len() >= self.max {
                if let Some(k) = self.until.iter().min_by_key(|(_, u)| **u).map(|(k, _)| k.clone()) {
                    self.until.remove(&k);
                }
            }
        }
        self.until.insert(client.into(), until);
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    #[test]
    fn throttles_until_the_window_ends_and_stays_bounded() {
        let mut t = Throttled::new(2);
        assert!(!t.is_throttled("a", 0));
        t.mark("a", 1_000, 0);
        assert!(t.is_throttled("a", 999));
        assert!(!t.is_throttled("a", 1_000));
        assert!(!t.is_throttled("b", 10), "only the client that failed");
        t.mark("b", 5_000, 10);
        t.mark("c", 6_000, 1_500);
        assert_eq!(t.len(), 2, "expired 'a' made room");
        t.mark("d", 9_000, 1_600);
        assert_eq!(t.len(), 2);
        assert!(!t.is_throttled("b", 1_600), "the one ending soonest went first");
        assert!(t.is_throttled("c", 1_600) && t.is_throttled("d", 1_600));
    }

    #[test]
    fn a_few_failures_stay_local_more_consult_the_binding_too_many_throttle() {
        let tier = RateLimit { limit: 20, period: 60 };
        let mut t = Throttled::new(100);
        let verdicts: Vec<Failure> = (0..22).map(|i| t.failure("a", &tier, i)).collect();
        assert!(verdicts[..4].iter().all(|v| *v == Failure::Counted), "{verdicts:?}");
        assert!(verdicts[4..20].iter().all(|v| *v == Failure::Consult), "{verdicts:?}");
        assert_eq!(verdicts[20], Failure::Throttled, "the 21st failure in one isolate");
        assert!(t.is_throttled("a", 21) && !t.is_throttled("a", 60_000));
        assert_eq!(t.failure("b", &tier, 30), Failure::Counted, "clients are counted apart");
        // A new window starts the count again.
        assert_eq!(t.failure("b", &tier, 100_000), Failure::Counted);
    }
}
