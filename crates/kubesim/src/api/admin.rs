//! The simulator's own endpoints under `/kubesim/`: request counters, the invariant log and
//! the fault rules, the open snapshots of paged lists and the open watch streams.

use axum::body::Bytes;
use axum::http::Method;
use axum::response::Response;
use serde_json::json;

use super::{error_response, json_response};
use crate::error::ApiError;
use crate::faults::Fault;
use crate::sim::Shared;

/// Serve `/kubesim/<path>`.
pub fn handle(shared: &Shared, method: &Method, path: &str, body: &Bytes) -> Response {
    match (method.as_str(), path) {
        ("GET", "requests") => json_response(200, &json!(shared.ledger.requests())),
        ("DELETE", "requests") => {
            shared.ledger.reset_requests();
            json_response(200, &json!([]))
        }
        ("GET", "violations") => json_response(200, &json!(shared.ledger.violations())),
        ("GET", "faults") => json_response(200, &json!(shared.faults.get())),
        ("PUT", "faults") => match serde_json::from_slice::<Vec<Fault>>(body) {
            Ok(f) => {
                shared.faults.set(f);
                json_response(200, &json!(shared.faults.get()))
            }
            Err(e) => error_response(&ApiError::bad_request(format!("invalid fault list: {e}"))),
        },
        ("GET", "list-snapshots") => json_response(200, &json!({"open": shared.snapshots.len()})),
        ("DELETE", "list-snapshots") => {
            json_response(200, &json!({"expired": shared.snapshots.expire_all()}))
        }
        ("GET", "watches") => json_response(
            200,
            &json!({"open": shared.open_watches.load(std::sync::atomic::Ordering::SeqCst)}),
        ),
        ("GET", "healthz") => json_response(200, &json!({"ok": true})),
        _ => error_response(&ApiError::path_not_found()),
    }
}
