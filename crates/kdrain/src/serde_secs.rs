//! Serializes `std::time::Duration` as fractional seconds, as the JSON output promises.

use std::time::Duration;

use serde::Serializer;

/// Serialize a duration as seconds (`f64`).
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The same for `Option<Duration>` (`None` becomes `null`).
pub mod option {
    use super::*;

    /// Serialize an optional duration as seconds or `null`.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}
