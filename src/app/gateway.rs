//! The gateway's decision, pure: bearer -> key format -> route -> hash, then (once the record
//! is known) status, expiry and scopes. The glue (src/wasm) does the cache/KV lookup and the
//! forward; malformed keys are refused here before any hashing or storage read.

use std::rc::Rc;

use crate::core::decide::{decide, Outcome};
use crate::core::hash::KeyHash;
use crate::core::key::KeyFormat;
use crate::core::policy::{Policy, Route};
use crate::core::record::KeyEntry;
use crate::core::signing::Signer;
use crate::core::time::Millis;
use crate::http::bearer::{bearer, overrides_method};
use crate::http::head::Head;
use crate::http::problem::{ApiError, ApiResult};

pub enum Prepared<'p> {
    /// A public route: forwarded without a key and without identity headers.
    Public(&'p Route),
    /// A key to look up, and the route whose scopes it must hold.
    Keyed(KeyHash, &'p Route),
}

pub fn prepare<'p>(policy: &'p Policy, keys: &KeyFormat, head: &Head) -> ApiResult<Prepared<'p>> {
    let route = policy
        .route(head.method(), head.path())
        .map_err(|_| ApiError::AmbiguousPath)?;
    if overrides_method(head.url()) {
        return Err(ApiError::MethodOverride);
    }
    // The token-in-query check runs for public routes too: a leaked token must not be
    // forwarded to the origin's logs whatever the route.
    let credentials = bearer(head.auth(), head.url());
    if let Some(r) = route {
        if r.public {
            return match credentials {
                Err(e @ ApiError::InvalidAuthRequest(_)) => Err(e),
                _ => Ok(Prepared::Public(r)),
            };
        }
    }
    let token = credentials?;
    let key = keys.parse(token).map_err(|_| ApiError::InvalidToken)?;
    let route = route.ok_or(ApiError::NoRoute)?;
    Ok(Prepared::Keyed(KeyHash::of(&key), route))
}

/// The X-Keyward-Signature value for a forwarded request, when signing is on: over the time, the
/// method, the target exactly as forwarded (path and query) and the identity lines ("" on a public
/// route). See docs/origin-signing.md.
pub fn signature(signer: Option<&Signer>, now: Millis, head: &Head, identity: &str) -> String {
    match signer {
        None => String::new(),
        Some(s) => s.signature(now.div_euclid(1000), head.method(), head.target(), identity),
    }
}

/// The decision once the record (or its absence) is known.
pub fn authorize(route: &Route, entry: Option<Rc<KeyEntry>>, now: Millis) -> ApiResult<Rc<KeyEntry>> {
    match (decide(entry.as_deref(), &route.scopes, now), entry) {
        (Outcome::Valid, Some(e)) => match route.environment {
            Some(accepted) if accepted != e.environment => Err(ApiError::WrongEnvironment { accepted }),
            _ => Ok(e),
        },
        (Outcome::InsufficientScope(_), _) => Err(ApiError::InsufficientScope {
            scope_attr: route.scope_attr.clone(),
        }),
        _ => Err(ApiError::InvalidToken),
    }
}
