//! Credits at the gateway and in the APIs: the one counter call a metered request makes, and how
//! the counter's state is shown. The counting itself is `core::credits`; the counter is a
//! `store::Credits` (the workspace's Durable Object in production).

use serde_json::{json, Value};

use crate::core::credits::{CapView, Exhausted, Op, Reply};
use crate::core::time::{format_rfc3339, Millis};
use crate::http::problem::{ApiError, ApiResult};
use crate::store::Credits;

/// The counter could not be reached or did not answer. Metered routes fail closed: letting
/// requests through unmetered while the counter is away would make the overspend unbounded (every
/// isolate could spend without limit), which is exactly what the counter exists to prevent.
pub fn unavailable(detail: &str) -> ApiError {
    ApiError::Unavailable {
        slug: "credits-unavailable",
        detail: detail.to_owned(),
    }
}

pub fn exhausted(e: &Exhausted, now: Millis) -> ApiError {
    ApiError::CreditsExhausted {
        limit: e.limit.as_str(),
        remaining: e.remaining,
        cost: e.cost,
        refill_at: e.refill_at.map(format_rfc3339),
        // Whole seconds until the refill, rounded up (at least 1).
        retry_after: e.refill_at.map(|at| ((at - now).max(1) as u64).div_ceil(1000)),
    }
}

/// A metered request spends `cost` from its workspace (and from the key's cap, if any): one
/// counter call. Ok = spent, forward it. Never called for cost 0 (unmetered routes never touch
/// the counter).
pub async fn charge(
    credits: &dyn Credits,
    workspace: &str,
    cap: Option<&str>,
    cost: i64,
    now: Millis,
) -> ApiResult<()> {
    let op = Op::Spend {
        cost,
        cap: cap.map(str::to_owned),
    };
    match credits.apply(workspace, &op, now).await {
        Ok(Reply::Granted { .. }) => Ok(()),
        Ok(Reply::Refused(e)) => Err(exhausted(&e, now)),
        Ok(other) => Err(ApiError::Internal(format!(
            "credit counter answered {other:?} to a spend"
        ))),
        Err(e) => {
            crate::log::error(
                "credits-unavailable",
                &format!("credit counter for a metered request: {e:?}"),
            );
            Err(unavailable(
                "The credit counter could not be reached; metered routes are refused until it answers (nothing \
                 was forwarded). Retry.",
            ))
        }
    }
}

/// A cap as the key object and the verify API show it.
pub fn cap_json(c: &CapView) -> Value {
    json!({
        "remaining": c.remaining,
        "refill": c.refill,
        "refill_at": c.refill_at.map(format_rfc3339),
    })
}

/// The caps named, read in one counter call: None for a cap the counter could not be asked
/// about (the object then shows `remaining: null` rather than failing the whole answer).
pub async fn read_caps(credits: &dyn Credits, workspace: &str, ids: Vec<String>, now: Millis) -> Option<Vec<CapView>> {
    if ids.is_empty() {
        return Some(Vec::new());
    }
    match credits.apply(workspace, &Op::Read { caps: Some(ids) }, now).await {
        Ok(Reply::State { caps, .. }) => Some(caps),
        Ok(other) => {
            crate::log::error(
                "credits-read-failed",
                &format!("credit counter answered {other:?} to a read"),
            );
            None
        }
        Err(e) => {
            crate::log::error("credits-read-failed", &format!("credit counter read: {e:?}"));
            None
        }
    }
}

/// `credits` of a key object: its cap from `caps` (None: the counter did not answer).
pub fn credits_field(counter: &str, caps: Option<&[CapView]>) -> Value {
    match caps.and_then(|cs| cs.iter().find(|c| c.id == counter)) {
        Some(c) => cap_json(c),
        // A cap the counter does not know is refused at the gateway (0 left); say so.
        None if caps.is_some() => json!({"remaining": 0, "refill": null, "refill_at": null}),
        None => json!({"remaining": null, "error": "the credit counter did not answer"}),
    }
}
