//! Go-style durations (`90s`, `5m`, `1h30m`, `1.5h`, `300ms`, `0`), as Go's `time.ParseDuration`
//! reads them: kubectl's `--timeout` takes them, and so does Karpenter's
//! `karpenter.sh/do-not-disrupt` annotation.

use std::time::Duration;

/// Why a text is not a duration. Every message names the text and ends with the forms accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// A leading `-`: a timeout or protection below zero has no useful meaning.
    #[error(
        "invalid duration {text:?} (negative durations are not allowed): use a number with a unit, like 90s, 5m, 1h30m or 0"
    )]
    Negative {
        /// The text given.
        text: String,
    },
    /// Nothing but blanks.
    #[error(
        "invalid duration {text:?} (empty): use a number with a unit, like 90s, 5m, 1h30m or 0"
    )]
    Empty {
        /// The text given.
        text: String,
    },
    /// A unit or a stray character where a number belongs.
    #[error(
        "invalid duration {text:?} (expected a number): use a number with a unit, like 90s, 5m, 1h30m or 0"
    )]
    ExpectedNumber {
        /// The text given.
        text: String,
    },
    /// A number without its unit (Go accepts a bare number only for `0`).
    #[error(
        "invalid duration {text:?} (missing unit): use a number with a unit, like 90s, 5m, 1h30m or 0"
    )]
    MissingUnit {
        /// The text given.
        text: String,
    },
    /// A unit other than ns, us, µs, ms, s, m, h.
    #[error(
        "invalid duration {text:?} (unknown unit {unit:?}): use a number with a unit, like 90s, 5m, 1h30m or 0"
    )]
    UnknownUnit {
        /// The text given.
        text: String,
        /// The unit found.
        unit: String,
    },
    /// More nanoseconds than 64 bits hold.
    #[error(
        "invalid duration {text:?} (too large: the longest duration is about 584 years): use a number with a unit, like 90s, 5m, 1h30m or 0"
    )]
    TooLarge {
        /// The text given.
        text: String,
    },
}

/// Parses a Go `time.ParseDuration` string. Negative values are refused: a drain timeout or a
/// protection below zero has no useful meaning. Like Go, the arithmetic is exact (integers, no
/// floating point), fractions are rounded down to the nanosecond, and a value beyond the largest
/// duration is an error.
pub fn parse_go_duration(text: &str) -> Result<Duration, DurationError> {
    let owned = || text.to_string();
    let mut rest = text.trim();
    if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    } else if rest.starts_with('-') {
        return Err(DurationError::Negative { text: owned() });
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(DurationError::Empty { text: owned() });
    }
    let too_large = || DurationError::TooLarge { text: owned() };
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (whole, after_whole) = split_digits(rest);
        let (fraction, after_number) = match after_whole.strip_prefix('.') {
            Some(after_dot) => split_digits(after_dot),
            None => ("", after_whole),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(DurationError::ExpectedNumber { text: owned() });
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
            "" => return Err(DurationError::MissingUnit { text: owned() }),
            _ => {
                return Err(DurationError::UnknownUnit {
                    text: owned(),
                    unit: unit.to_string(),
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Duration, String> {
        parse_go_duration(text).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse("2m3.5s").unwrap(), Duration::from_millis(123_500));
        assert_eq!(parse("+3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse("1µs1us1μs").unwrap(), Duration::from_micros(3));
    }

    #[test]
    fn refuses_malformed_with_the_cause() {
        for (bad, cause) in [
            ("", "(empty)"),
            ("5", "(missing unit)"),
            ("abc", "(expected a number)"),
            ("5x", "(unknown unit \"x\")"),
            ("1h30", "(missing unit)"),
            ("-1s", "(negative durations are not allowed)"),
            ("s", "(expected a number)"),
            ("1..5s", "(missing unit)"),
            (".", "(expected a number)"),
            ("banana", "(expected a number)"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(cause), "{bad}: {err}");
            assert!(err.ends_with("like 90s, 5m, 1h30m or 0"), "{bad}: {err}");
        }
    }

    #[test]
    fn exact_at_the_limits() {
        assert_eq!(
            parse("18446744073709551615ns").unwrap(),
            Duration::from_nanos(u64::MAX)
        );
        for huge in [
            "18446744073709551616ns",
            "5124096h",
            "99999999999999999999999h",
        ] {
            let err = parse(huge).unwrap_err();
            assert!(err.contains("too large"), "{huge}: {err}");
        }
        // Go rounds fractions down, and reads `.5s` and `5.s`.
        assert_eq!(parse("1.9999999999ns").unwrap(), Duration::from_nanos(1));
        assert_eq!(parse(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("5.s").unwrap(), Duration::from_secs(5));
        // A million hours and a millisecond: a floating-point sum is 64 ns off here.
        assert_eq!(
            parse("1000000h0m0.001s").unwrap(),
            Duration::from_nanos(3_600_000_000_001_000_000)
        );
    }

    #[test]
    fn errors_stay_on_one_line() {
        let err = parse("5\nx").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.starts_with(r#"invalid duration "5\nx" ("#), "{err}");
    }

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
            if let Err(err) = parse(&input) {
                check_error(&input, &err)?;
            }
        }

        #[test]
        fn near_misses_never_panic_and_errors_are_one_clear_line(
            input in "[ +\\-]?[0-9.]{0,25}(ns|us|µs|ms|s|m|h|x|)[0-9.]{0,25}(ns|s|m|h|hh|)"
        ) {
            if let Err(err) = parse(&input) {
                check_error(&input, &err)?;
            }
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
                Ok(nanos) => prop_assert_eq!(parse(&text), Ok(Duration::from_nanos(nanos)), "{}", text),
                Err(_) => {
                    let err = parse(&text).expect_err("too large");
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
                parse(&text),
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
            let err = parse(&input).expect_err("garbage is refused");
            check_error(&input, &err)?;
        }
    }
}
