//! `GET /admin/v1/credits` (balance, usage and key caps) and `POST /admin/v1/credits` (top-up).
//!
//! The live count is the workspace's counter (a Durable Object); D1 keeps the audit log. A top-up
//! goes to the counter first, then the audit row: the counter applies each top-up `id` at most
//! once, so a caller who did not hear the answer retries with the same id and neither the credits
//! nor (after a successful retry) the audit row go missing.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Actor, Admin};
use crate::app::credits::{cap_json, unavailable};
use crate::core::credits::{self, Balance, Op, Reply};
use crate::http::plain::Response;
use crate::http::problem::{ApiError, ApiResult, FieldExt};
use crate::store::{Edge, Records};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopUpBody {
    amount: Value,
    id: Option<String>,
}

fn balance_json(workspace: &str, ws: &Balance) -> Value {
    json!({
        "workspace": workspace,
        "balance": ws.balance,
        "spent": ws.spent,
        "refused": ws.refused,
        "topped_up": ws.topped_up,
    })
}

pub async fn get<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    match a.app.credits.apply(&a.workspace, &Op::Read { caps: None }, a.now).await {
        Ok(Reply::State { ws, caps, .. }) => {
            let mut v = balance_json(&a.workspace, &ws);
            v["caps"] = Value::Array(
                caps.iter()
                    .map(|c| {
                        let mut j = cap_json(c);
                        j["counter"] = json!(c.id);
                        j
                    })
                    .collect(),
            );
            Ok(Response::json(200, &v))
        }
        Ok(other) => Err(ApiError::Internal(format!(
            "credit counter answered {other:?} to a read"
        ))),
        Err(_) => Err(unavailable("The credit counter could not be reached. Retry.")),
    }
}

fn top_up_id(id: Option<&str>) -> ApiResult<String> {
    match id {
        Some(s)
            if (1..=64).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(s.to_owned())
        }
        Some(_) => Err(ApiError::field("id", "1 to 64 characters: letters, digits, '-' or '_'")),
        None => {
            let mut b = [0u8; 12];
            getrandom::fill(&mut b).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
            Ok(format!(
                "topup_{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ))
        }
    }
}

/// Top-ups are for the root token only: credits stand for money, and a workspace's own admin
/// key must not be able to grant its workspace more.
pub async fn top_up<R: Records, E: Edge>(a: &Admin<'_, R, E>) -> ApiResult<Response> {
    if !matches!(a.actor, Actor::Root) {
        return Err(ApiError::RootOnly("Only the root token can top up credits."));
    }
    let body: TopUpBody = a.body()?;
    let amount = credits::amount(&body.amount, 1).field("amount")?;
    let id = top_up_id(body.id.as_deref())?;
    let op = Op::TopUp { amount, id: id.clone() };
    let (ws, applied) = match a.app.credits.apply(&a.workspace, &op, a.now).await {
        Ok(Reply::State { ws, applied, .. }) => (ws, applied),
        Ok(Reply::Invalid { reason }) => return Err(ApiError::field("amount", reason)),
        Ok(other) => {
            return Err(ApiError::Internal(format!(
                "credit counter answered {other:?} to a top-up"
            )))
        }
        Err(_) => {
            return Err(unavailable(&format!(
                "The credit counter did not confirm the top-up; it may or may not be applied. Retry with \"id\": \
                 \"{id}\" (a top-up id is applied at most once)."
            )))
        }
    };
    let detail = json!({"amount": amount, "id": id, "applied": applied, "balance": ws.balance});
    if a.app
        .records
        .record_audit(&a.audit("credits.topup", None, detail))
        .await
        .is_err()
    {
        return Err(ApiError::Unavailable {
            slug: "audit-write-failed",
            detail: format!(
                "The top-up is applied (balance {}), but its audit entry could not be written. Retry with \"id\": \
                 \"{id}\": it is not applied twice, and the retry writes the entry.",
                ws.balance
            ),
        });
    }
    let mut v = balance_json(&a.workspace, &ws);
    v["id"] = json!(id);
    v["applied"] = json!(applied);
    Ok(Response::json(if applied { 201 } else { 200 }, &v))
}
