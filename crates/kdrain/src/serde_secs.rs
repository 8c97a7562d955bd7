//! Serializes durations and times as the JSON output promises: seconds as numbers rounded to the
//! millisecond, times as RFC 3339 UTC strings with milliseconds (`2026-01-02T03:04:05.678Z`).

use std::time::Duration;

use serde::Serializer;

/// Seconds rounded to the millisecond (`19.381744842` becomes `19.382`).
pub fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// Serialize a duration as seconds (`f64`, to the millisecond).
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round_ms(d.as_secs_f64()))
}

/// The same for `Option<Duration>` (`None` becomes `null`).
pub mod option {
    use super::*;

    /// Serialize an optional duration as seconds or `null`.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(round_ms(d.as_secs_f64())),
            None => s.serialize_none(),
        }
    }
}

/// Fractional seconds kept as `f64`, serialized to the millisecond.
pub mod ms {
    use super::*;

    /// Serialize seconds rounded to the millisecond.
    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(round_ms(*x))
    }

    /// The same for `Option<f64>`.
    pub mod option {
        use super::*;

        /// Serialize optional seconds rounded to the millisecond, or `null`.
        pub fn serialize<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
            match x {
                Some(x) => s.serialize_f64(round_ms(*x)),
                None => s.serialize_none(),
            }
        }
    }
}

/// Timestamps as RFC 3339 UTC with exactly three fractional digits.
pub mod time {
    use super::*;

    /// `2026-01-02T03:04:05.678Z`: rounded to the millisecond, always three digits.
    pub fn format(t: &jiff::Timestamp) -> String {
        let rounded = t.round(jiff::Unit::Millisecond).unwrap_or(*t);
        format!("{rounded:.3}")
    }

    /// Serialize a timestamp to the millisecond.
    pub fn serialize<S: Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// The same for `Option<Timestamp>`.
    pub mod option {
        use super::*;

        /// Serialize an optional timestamp to the millisecond, or `null`.
        pub fn serialize<S: Serializer>(
            t: &Option<jiff::Timestamp>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&format(t)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_to_the_millisecond() {
        assert_eq!(round_ms(19.381744842), 19.382);
        assert_eq!(
            serde_json::to_string(&round_ms(19.381744842)).unwrap(),
            "19.382"
        );
        assert_eq!(round_ms(0.0004), 0.0);
    }

    #[test]
    fn times_have_three_fractional_digits_in_utc() {
        let t: jiff::Timestamp = "2026-01-02T03:04:05.6789Z".parse().unwrap();
        assert_eq!(time::format(&t), "2026-01-02T03:04:05.679Z");
        let whole: jiff::Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(time::format(&whole), "2026-01-02T03:04:05.000Z");
    }
}
