//! Decoding of `DeleteOptions` from the body (JSON; protobuf bodies, D-0.5, reach here already
//! decoded by `api::protobuf`) or the query (G-1).

use axum::body::Bytes;
use serde_json::Value;

use super::Query;
use crate::error::{ApiError, ApiResult};
use crate::graceful::DeleteOptions;

/// Read DeleteOptions from the request: the body if present (JSON; a protobuf body was turned
/// into JSON by the dispatcher), else the query.
pub fn from_request(q: &Query, body: &Bytes) -> ApiResult<DeleteOptions> {
    if body.is_empty() {
        let grace =
            match q.non_empty("gracePeriodSeconds") {
                Some(g) => Some(g.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}"))
                })?),
                None => None,
            };
        return Ok(DeleteOptions {
            grace,
            uid: None,
            rv: None,
            dry_run: q.dry_run(),
            propagation: q.non_empty("propagationPolicy").map(String::from),
        });
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })?;
    DeleteOptions::from_json(&v)
}
