//! The trials, in run order, and checks shared between them. Each trial uses its own workspace(s)
//! and unique paths, so trials only share the worker, the origin's record and the log.

use libtest_mimic::Failed;

use crate::client::{Ctx, Resp};
use crate::origin::Recorded;
use crate::TestResult;

mod admin;
mod authz;
mod browser;
mod contract;
mod credits;
mod environments;
mod feed;
mod gateway;
mod hardening;
mod ops;
mod secrets;
mod verify;

pub type Case = fn(&Ctx) -> TestResult;

pub const ALL: &[(&str, Case)] = &[
    ("gateway::proxies_valid_key", gateway::proxies_valid_key),
    ("gateway::streams_chunked_body", gateway::streams_chunked_body),
    (
        "gateway::concurrent_first_requests_for_new_keys",
        gateway::concurrent_first_requests_for_new_keys,
    ),
    ("gateway::missing_credentials_401", gateway::missing_credentials_401),
    ("gateway::invalid_request_400", gateway::invalid_request_400),
    (
        "gateway::invalid_tokens_identical_401",
        gateway::invalid_tokens_identical_401,
    ),
    ("gateway::insufficient_scope_403", gateway::insufficient_scope_403),
    ("gateway::no_route_404", gateway::no_route_404),
    ("gateway::expiry_takes_effect", gateway::expiry_takes_effect),
    (
        "verify::valid_and_insufficient_scope",
        verify::valid_and_insufficient_scope,
    ),
    ("verify::not_found_variants", verify::not_found_variants),
    ("verify::bad_requests_400", verify::bad_requests_400),
    ("admin::auth_required", admin::auth_required),
    ("admin::create_and_get", admin::create_and_get),
    ("admin::list_paginates_newest_first", admin::list_paginates_newest_first),
    ("admin::patch", admin::patch),
    ("admin::revoke_and_delete", admin::revoke_and_delete),
    ("admin::rotate_without_grace", admin::rotate_without_grace),
    ("admin::rotate_with_grace", admin::rotate_with_grace),
    ("admin::presets", admin::presets),
    ("admin::audit_log", admin::audit_log),
    ("admin::reconcile", admin::reconcile),
    ("admin::bad_input", admin::bad_input),
    ("admin::last_used_at_recorded", admin::last_used_at_recorded),
    ("authz::workspace_isolation", authz::workspace_isolation),
    ("authz::no_privilege_escalation", authz::no_privilege_escalation),
    (
        "authz::revoke_refused_by_next_request",
        authz::revoke_refused_by_next_request,
    ),
    ("authz::scope_removal_immediate", authz::scope_removal_immediate),
    ("authz::deactivate_and_reactivate", authz::deactivate_and_reactivate),
    (
        "feed::revocation_reaches_a_second_instance_within_the_bound",
        feed::revocation_reaches_a_second_instance_within_the_bound,
    ),
    ("environments::live_and_test_keys", environments::live_and_test_keys),
    ("environments::sharing_groups", environments::sharing_groups),
    (
        "hardening::paths_an_origin_reads_differently",
        hardening::paths_an_origin_reads_differently,
    ),
    (
        "hardening::lookalike_and_override_headers_never_reach_the_origin",
        hardening::lookalike_and_override_headers_never_reach_the_origin,
    ),
    (
        "hardening::tokens_in_the_query_in_any_spelling",
        hardening::tokens_in_the_query_in_any_spelling,
    ),
    (
        "hardening::public_routes_need_no_key_and_carry_no_identity",
        hardening::public_routes_need_no_key_and_carry_no_identity,
    ),
    (
        "hardening::bodies_are_limited_before_they_are_read",
        hardening::bodies_are_limited_before_they_are_read,
    ),
    ("hardening::expiries_past_2038", hardening::expiries_past_2038),
    ("hardening::per_key_rate_limits", hardening::per_key_rate_limits),
    (
        "hardening::forwarded_requests_are_signed",
        hardening::forwarded_requests_are_signed,
    ),
    (
        "hardening::failed_attempts_are_throttled_per_client",
        hardening::failed_attempts_are_throttled_per_client,
    ),
    (
        "hardening::store_conformance_on_d1_and_kv",
        hardening::store_conformance_on_d1_and_kv,
    ),
    (
        "hardening::concurrent_admin_calls_never_revive_a_key",
        hardening::concurrent_admin_calls_never_revive_a_key,
    ),
    (
        "credits::concurrent_spending_is_exact",
        credits::concurrent_spending_is_exact,
    ),
    (
        "credits::exhaustion_top_up_and_refill",
        credits::exhaustion_top_up_and_refill,
    ),
    (
        "browser::admin_page_headers_and_paths",
        browser::admin_page_headers_and_paths,
    ),
    ("browser::admin_page_in_chromium", browser::admin_page_in_chromium),
    (
        "ops::request_ids_on_answers_and_at_the_origin",
        ops::request_ids_on_answers_and_at_the_origin,
    ),
    (
        "ops::a_500_is_logged_under_its_request_id",
        ops::a_500_is_logged_under_its_request_id,
    ),
    (
        "ops::store_failures_are_logged_under_their_request_id",
        ops::store_failures_are_logged_under_their_request_id,
    ),
    ("ops::admin_queries_use_indexes", ops::admin_queries_use_indexes),
    (
        "contract::document_is_served_without_auth",
        contract::document_is_served_without_auth,
    ),
    (
        "contract::schemathesis_finds_nothing",
        contract::schemathesis_finds_nothing,
    ),
    // Must stay last: it checks the log and the origin's record for every secret of the run.
    ("secrets::never_logged_or_forwarded", secrets::never_logged_or_forwarded),
];

pub const INVALID_TOKEN_CHALLENGE: &str =
    r#"Bearer realm="keyward", error="invalid_token", error_description="The access token is invalid""#;

/// The one 401 answer for malformed, bad-checksum, unknown, revoked and expired keys.
pub fn expect_invalid_token(resp: &Resp) -> TestResult {
    resp.expect_problem(401, Some("invalid-token"))?;
    ensure_eq!(
        resp.www_authenticate()?,
        INVALID_TOKEN_CHALLENGE,
        "WWW-Authenticate of {}",
        resp.request
    );
    Ok(())
}

/// A gateway answer that came from the echo origin, and the one request the origin got for `path`.
pub fn expect_forwarded(ctx: &Ctx, resp: &Resp, path: &str) -> Result<Recorded, Failed> {
    resp.expect_status(200)?;
    ensure!(
        resp.header("x-echo-origin") == Some("keyward-e2e"),
        "the answer did not come from the origin (no x-echo-origin header)\n{}",
        resp.describe()
    );
    let mut got = ctx.origin.requests_to(path);
    ensure_eq!(got.len(), 1, "requests the origin received for {path}");
    Ok(got.remove(0))
}

/// The signed identity lines (docs/origin-signing.md) rebuilt from the headers the origin received.
pub fn identity_of(got: &Recorded) -> Result<String, Failed> {
    let mut lines = Vec::new();
    for h in ["key-id", "workspace", "scopes", "environment", "groups"] {
        lines.push(got.header(&format!("x-keyward-{h}"))?.unwrap_or("").to_owned());
    }
    Ok(lines.join("\n"))
}

/// The origin must not have seen `path` (the request was refused).
pub fn expect_not_forwarded(ctx: &Ctx, path: &str) -> TestResult {
    let got = ctx.origin.requests_to(path);
    ensure!(got.is_empty(), "a refused request reached the origin: {got:?}");
    Ok(())
}

/// A syntactically plausible but altered copy of `key`: one character in the middle changed (a typo
/// that a checksum must catch).
pub fn typo_of(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    if chars.is_empty() {
        return "x".into();
    }
    let i = chars.len().saturating_sub(8);
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}
