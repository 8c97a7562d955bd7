//! Go-style durations (`90s`, `5m`, `1h30m`, `1.5h`, `300ms`, `0`), the syntax kubectl's
//! `--timeout` flag takes, so runbooks written for `kubectl drain` keep working.

use std::time::Duration;

/// Parses a Go `time.ParseDuration` string. Negative values are refused: a drain timeout
/// or skip threshold below zero has no useful meaning. Like Go, the arithmetic is exact
/// (integers, no floating point), and a value beyond the largest duration is an error.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    // `{:?}` keeps the message on one line whatever the input holds (newlines, control codes).
    let bad = |why: &str| {
        format!(
            "invalid duration {text:?} ({why}): use a number with a unit, like 90s, 5m, 1h30m or 0"
        )
    };
    let mut rest = text.trim();
    if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    } else if rest.starts_with('-') {
        return Err(bad("negative durations are not allowed"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let too_large = || bad("too large: the longest duration is about 584 years");
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (whole, after_whole) = split_digits(rest);
        let (fraction, after_number) = match after_whole.strip_prefix('.') {
            Some(after_dot) => split_digits(after_dot),
            None => ("", after_whole),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(bad("expected a number"));
        }
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let unit = &after_number[..unit_len];
        rest = &after_number[unit_len..];
        let nanos_per_unit: u64 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        };
        let mut value: u64 = 0;
        for digit in whole.bytes() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .ok_or_else(too_large)?;
        }
        let mut nanos = value.checked_mul(nanos_per_unit).ok_or_else(too_large)?;
        // The fraction in integers, rounded down like Go. Only its first 20 digits are read:
        // the rest is worth less than a nanosecond of an hour, and 10^20 times any unit still
        // fits in a u128.
        let (mut numerator, mut denominator) = (0u128, 1u128);
        for digit in fraction.bytes().take(20) {
            numerator = numerator * 10 + u128::from(digit - b'0');
            denominator *= 10;
        }
        let fraction_nanos = numerator * u128::from(nanos_per_unit) / denominator;
        nanos = u64::try_from(fraction_nanos)
            .ok()
            .and_then(|f| nanos.checked_add(f))
            .ok_or_else(too_large)?;
        total = total.checked_add(nanos).ok_or_else(too_large)?;
    }
    Ok(Duration::from_nanos(total))
}

/// Splits `text` after its leading ASCII digits.
fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
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
    fn parses_go_forms() {
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_go_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_go_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_go_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_go_duration("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("300ms").unwrap(),
            Duration::from_millis(300)
        );
        assert_eq!(
            parse_go_duration("2m3.5s").unwrap(),
            Duration::from_millis(123_500)
        );
        assert_eq!(parse_go_duration("+3s").unwrap(), Duration::from_secs(3));
    }

    #[test]
    fn refuses_malformed() {
        for bad in ["", "5", "abc", "5x", "1h30", "-1s", "s", "1..5s", "."] {
            let err = parse_go_duration(bad).unwrap_err();
            assert!(err.contains("90s, 5m, 1h30m"), "{bad}: {err}");
        }
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
    fn exact_at_the_limits() {
        assert_eq!(
            parse_go_duration("18446744073709551615ns").unwrap(),
            Duration::from_nanos(u64::MAX)
        );
        for huge in [
            "18446744073709551616ns",
            "5124096h",
            "99999999999999999999999h",
        ] {
            let err = parse_go_duration(huge).unwrap_err();
            assert!(err.contains("too large"), "{huge}: {err}");
        }
        // Go rounds fractions down, and reads `.5s` and `5.s`.
        assert_eq!(
            parse_go_duration("1.9999999999ns").unwrap(),
            Duration::from_nanos(1)
        );
        assert_eq!(
            parse_go_duration(".5s").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_go_duration("5.s").unwrap(), Duration::from_secs(5));
        // A million hours and a millisecond: a floating-point sum is 64 ns off here.
        assert_eq!(
            parse_go_duration("1000000h0m0.001s").unwrap(),
            Duration::from_nanos(3_600_000_000_001_000_000)
        );
    }

    #[test]
    fn errors_stay_on_one_line() {
        let err = parse_go_duration("5\nx").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.starts_with(r#"invalid duration "5\nx" ("#), "{err}");
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

        /// Every message names one of these causes.
        const CAUSES: [&str; 6] = [
            "(negative durations are not allowed)",
            "(empty)",
            "(expected a number)",
            "(missing unit)",
            "(unknown unit ",
            "(too large: ",
        ];

        const UNITS: [(&str, u64); 8] = [
            ("ns", 1),
            ("us", 1_000),
            ("µs", 1_000),
            ("μs", 1_000),
            ("ms", 1_000_000),
            ("s", 1_000_000_000),
            ("m", 60_000_000_000),
            ("h", 3_600_000_000_000),
        ];

        /// The most milliseconds a `Duration` built from u64 nanoseconds holds.
        const MAX_MS: u64 = u64::MAX / 1_000_000;

        fn check_error(input: &str, err: &str) -> Result<(), TestCaseError> {
            prop_assert!(err.starts_with("invalid duration "), "{input:?}: {err}");
            prop_assert!(
                err.ends_with("use a number with a unit, like 90s, 5m, 1h30m or 0"),
                "{input:?}: {err}"
            );
            prop_assert!(
                !err.contains('\n') && !err.contains('\r'),
                "{input:?}: {err}"
            );
            prop_assert!(
                CAUSES.iter().any(|c| err.contains(c)),
                "{input:?}: the message names no cause: {err}"
            );
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn arbitrary_text_never_panics_and_errors_are_one_clear_line(input in any::<String>()) {
                if let Err(err) = parse_go_duration(&input) {
                    check_error(&input, &err)?;
                }
            }

            #[test]
            fn near_misses_never_panic_and_errors_are_one_clear_line(
                input in "[ +\\-]?[0-9.]{0,25}(ns|us|µs|ms|s|m|h|x|)[0-9.]{0,25}(ns|s|m|h|hh|)"
            ) {
                if let Err(err) = parse_go_duration(&input) {
                    check_error(&input, &err)?;
                }
            }

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

            #[test]
            fn sums_of_parts_are_exact_or_too_large(
                parts in proptest::collection::vec((any::<u64>(), 0..UNITS.len()), 1..5)
            ) {
                let text: String = parts
                    .iter()
                    .map(|(n, u)| format!("{n}{}", UNITS[*u].0))
                    .collect();
                let expected: u128 = parts
                    .iter()
                    .map(|(n, u)| u128::from(*n) * u128::from(UNITS[*u].1))
                    .sum();
                match u64::try_from(expected) {
                    Ok(nanos) => prop_assert_eq!(
                        parse_go_duration(&text),
                        Ok(Duration::from_nanos(nanos)),
                        "{}", text
                    ),
                    Err(_) => {
                        let err = parse_go_duration(&text).expect_err("too large");
                        prop_assert!(err.contains("too large"), "{}: {}", text, err);
                    }
                }
            }

            #[test]
            fn fractions_round_down_like_go(
                whole in 0u64..1_000_000,
                fraction in "[0-9]{1,18}",
                unit in 0..UNITS.len(),
            ) {
                let (name, per_unit) = UNITS[unit];
                let text = format!("{whole}.{fraction}{name}");
                let scale = 10u128.pow(fraction.len() as u32);
                let digits: u128 = fraction.parse().expect("digits");
                let nanos = u128::from(whole) * u128::from(per_unit)
                    + digits * u128::from(per_unit) / scale;
                prop_assert_eq!(
                    parse_go_duration(&text),
                    Ok(Duration::from_nanos(u64::try_from(nanos).expect("fits"))),
                    "{}", text
                );
            }

            #[test]
            fn text_with_a_foreign_character_is_refused(
                valid in "[0-9]{1,4}(s|m|h)",
                foreign in "[^0-9.nsuµμmh+ \t\n\r\x0b\x0c]",
                at in any::<proptest::sample::Index>(),
            ) {
                let mut chars: Vec<char> = valid.chars().collect();
                let foreign = foreign.chars().next().expect("one char");
                prop_assume!(!foreign.is_whitespace());
                chars.insert(at.index(chars.len() + 1), foreign);
                let input: String = chars.into_iter().collect();
                let err = parse_go_duration(&input).expect_err("garbage is refused");
                check_error(&input, &err)?;
            }
        }
    }
}
