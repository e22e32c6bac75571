//! `GET /openapi.json`: the OpenAPI 3.1 description of the admin and verify APIs and of the
//! gateway's refusals (docs/openapi.json, bundled at build time). Public: it holds no secret and
//! tells nothing a caller could not learn from docs/api.md. The native and end-to-end tests
//! validate every answer they see against it, so the document cannot drift from the code.

use crate::http::plain::Response;
use crate::http::problem::{ApiError, ApiResult};

pub const PATH: &str = "/openapi.json";
pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub fn handle(method: &str) -> ApiResult<Response> {
    if method != "GET" {
        return Err(ApiError::MethodNotAllowed("GET".into()));
    }
    Ok(Response {
        status: 200,
        headers: vec![
            ("content-type", "application/json".into()),
            // Changes only with a deploy; a few minutes of staleness is harmless.
            ("cache-control", "public, max-age=300".into()),
        ],
        body: DOCUMENT.to_owned(),
    })
}
