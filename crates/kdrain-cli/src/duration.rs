//! Go-style durations (`90s`, `5m`, `1h30m`, `1.5h`, `300ms`, `0`), the syntax kubectl's
//! `--timeout` flag takes, so runbooks written for `kubectl drain` keep working.

use std::time::Duration;

/// Parses a Go `time.ParseDuration` string with the engine's parser (negative values refused,
/// exact arithmetic), the error as the one line clap and the config loader print.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    kdrain::duration::parse_go_duration(text).map_err(|e| e.to_string())
}

/// Formats a duration the way Go's `time.Duration.String` does for whole and fractional
/// seconds (`5s`, `1.5s`, `1m30s`, `0s`), as kubectl prints it in its retry lines.
pub fn format_go_duration(duration: Duration) -> String {
    let total_ms = duration.as_millis();
    if total_ms == 0 {
        return "0s".to_string();
    }
    if total_ms < 1000 {
        return format!("{total_ms}ms");
    }
    let hours = total_ms / 3_600_000;
    let minutes = (total_ms / 60_000) % 60;
    let millis_in_minute = total_ms % 60_000;
    let seconds = if millis_in_minute.is_multiple_of(1000) {
        format!("{}s", millis_in_minute / 1000)
    } else {
        let text = format!("{:.3}", millis_in_minute as f64 / 1000.0);
        format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
    };
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h{minutes}m"));
    } else if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&seconds);
    out
}

/// A compact human duration for progress lines and tables (`850ms`, `12s`, `3m05s`).
pub fn format_short(seconds: f64) -> String {
    if !seconds.is_finite() || seconds <= 0.0 {
        return "0s".to_string();
    }
    if seconds < 1.0 {
        return format!("{}ms", (seconds * 1000.0).round() as u64);
    }
    if seconds < 10.0 {
        return format!("{seconds:.1}s");
    }
    let whole = seconds.round() as u64;
    if whole < 60 {
        format!("{whole}s")
    } else if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_are_the_engine_messages() {
        assert_eq!(parse_go_duration("5m").unwrap(), Duration::from_secs(300));
        let err = parse_go_duration("5").unwrap_err();
        assert_eq!(
            err,
            r#"invalid duration "5" (missing unit): use a number with a unit, like 90s, 5m, 1h30m or 0"#
        );
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
        assert_eq!(format_go_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn short_format() {
        assert_eq!(format_short(0.25), "250ms");
        assert_eq!(format_short(2.34), "2.3s");
        assert_eq!(format_short(42.0), "42s");
        assert_eq!(format_short(185.0), "3m05s");
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::super::*;

        /// The most milliseconds a `Duration` built from u64 nanoseconds holds.
        const MAX_MS: u64 = u64::MAX / 1_000_000;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn formatted_durations_parse_back_exactly(ms in 0..=MAX_MS) {
                let duration = Duration::from_millis(ms);
                let text = format_go_duration(duration);
                prop_assert_eq!(parse_go_duration(&text), Ok(duration), "{}", text);
            }

            #[test]
            fn formatting_keeps_the_milliseconds(nanos in any::<u64>()) {
                let duration = Duration::from_nanos(nanos);
                let text = format_go_duration(duration);
                let truncated = Duration::from_millis(duration.as_millis() as u64);
                prop_assert_eq!(parse_go_duration(&text), Ok(truncated), "{}", text);
            }
        }
    }
}
