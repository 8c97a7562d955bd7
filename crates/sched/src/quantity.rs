//! Kubernetes resource quantities (`k8s.io/apimachinery/pkg/api/resource`): `500m`, `1.5Gi`,
//! `2e3`, `+.5`. k8s-openapi keeps a `Quantity` as its string; this parses it exactly (no
//! floating point) into nano-units, and rounds up as the scheduler does (`MilliValue()` for CPU,
//! `Value()` for everything else).
//!
//! Grammar (from `quantity.go`):
//! `<signedNumber><suffix>` where the number is `digits`, `digits.digits`, `digits.` or `.digits`
//! with an optional `+`/`-`, and the suffix is one of the binary SI suffixes `Ki Mi Gi Ti Pi Ei`,
//! the decimal SI suffixes `n u m "" k M G T P E`, or a decimal exponent `e<int>`/`E<int>`.

use std::fmt;

/// Nano-units in one unit.
const NANO: i128 = 1_000_000_000;
/// Most significant digits accepted in the number (more cannot be held exactly).
const MAX_DIGITS: usize = 30;
/// Largest magnitude accepted, in nano-units (10^27 units: far beyond any real resource, and
/// sums of many stay within i128).
const MAX_NANOS: i128 = 1_000_000_000_000_000_000_000_000_000_000_000_000;

/// Why a quantity string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Empty string.
    #[error("quantity {0:?} is empty")]
    Empty(String),
    /// Not the quantity grammar.
    #[error(
        "quantity {0:?} is not a valid quantity (expected a number with an optional suffix such as 500m, 2, 1.5Gi or 1e3)"
    )]
    Syntax(String),
    /// Beyond what can be represented.
    #[error("quantity {0:?} is too large")]
    TooLarge(String),
}

/// A parsed quantity, exact to the nano-unit (finer fractions round up, as Kubernetes does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity {
    nanos: i128,
}

/// `ceil(a / b)` for `b > 0`.
fn div_ceil(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

impl Quantity {
    /// The quantity `n` nano-units.
    pub fn from_nanos(nanos: i128) -> Self {
        Quantity { nanos }
    }

    /// Nano-units.
    pub fn nanos(self) -> i128 {
        self.nanos
    }

    /// Thousandths, rounded up (Kubernetes' `MilliValue()`: CPU in millicores).
    pub fn milli(self) -> i128 {
        div_ceil(self.nanos, NANO / 1000)
    }

    /// Whole units, rounded up (Kubernetes' `Value()`: bytes, pods, extended resources).
    pub fn value(self) -> i128 {
        div_ceil(self.nanos, NANO)
    }

    /// Parse a quantity string.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::Empty(s.to_string()));
        }
        let syntax = || QuantityError::Syntax(s.to_string());
        let too_large = || QuantityError::TooLarge(s.to_string());
        let b = s.as_bytes();
        let mut i = 0;
        let negative = match b[0] {
            b'-' => {
                i = 1;
                true
            }
            b'+' => {
                i = 1;
                false
            }
            _ => false,
        };
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &s[int_start..i];
        let mut frac_digits = "";
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let f = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = &s[f..i];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(syntax());
        }
        // Leading zeros of the integer part and trailing zeros of the fraction carry nothing.
        let int_digits = int_digits.trim_start_matches('0');
        let frac_digits = frac_digits.trim_end_matches('0');
        if int_digits.len() + frac_digits.len() > MAX_DIGITS {
            return Err(too_large());
        }
        let mut mantissa: i128 = 0;
        for d in int_digits.bytes().chain(frac_digits.bytes()) {
            mantissa = mantissa * 10 + i128::from(d - b'0');
        }
        let frac = frac_digits.len() as i32;
        let suffix = &s[i..];
        // value = mantissa * 10^-frac * (2^bin) * 10^dec
        let (bin, dec): (u32, i32) = match suffix {
            "" => (0, 0),
            "n" => (0, -9),
            "u" => (0, -6),
            "m" => (0, -3),
            "k" => (0, 3),
            "M" => (0, 6),
            "G" => (0, 9),
            "T" => (0, 12),
            "P" => (0, 15),
            "E" => (0, 18),
            "Ki" => (10, 0),
            "Mi" => (20, 0),
            "Gi" => (30, 0),
            "Ti" => (40, 0),
            "Pi" => (50, 0),
            "Ei" => (60, 0),
            _ => {
                let Some(exp) = suffix.strip_prefix(['e', 'E']) else {
                    return Err(syntax());
                };
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if digits.is_empty() || !digits.bytes().all(|d| d.is_ascii_digit()) {
                    return Err(syntax());
                }
                let e: i32 = exp.parse().map_err(|_| too_large())?;
                if !(-60..=60).contains(&e) {
                    return Err(too_large());
                }
                (0, e)
            }
        };
        let scaled = mantissa.checked_mul(1i128 << bin).ok_or_else(too_large)?;
        // Power of ten to apply to reach nano-units.
        let p = dec + 9 - frac;
        let nanos = if p >= 0 {
            10i128
                .checked_pow(p as u32)
                .and_then(|m| scaled.checked_mul(m))
                .ok_or_else(too_large)?
        } else if -p > 38 {
            // Below one nano-unit: rounds up to 1 unless zero.
            i128::from(scaled != 0)
        } else {
            div_ceil(scaled, 10i128.pow((-p) as u32))
        };
        if nanos > MAX_NANOS {
            return Err(too_large());
        }
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
        })
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    /// Decimal units with the fraction trimmed (`2.5`, `0.001`, `3`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let n = self.nanos.unsigned_abs();
        let whole = n / NANO as u128;
        let frac = n % NANO as u128;
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let digits = format!("{frac:09}");
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn forms_kubernetes_accepts() {
        assert_eq!(q("500m").milli(), 500);
        assert_eq!(q("0.5").milli(), 500);
        assert_eq!(q(".5").milli(), 500);
        assert_eq!(q("5.").value(), 5);
        assert_eq!(q("+2").value(), 2);
        assert_eq!(q("1.5Gi").value(), 1_610_612_736);
        assert_eq!(q("1Ki").value(), 1024);
        assert_eq!(q("1Ei").value(), 1 << 60);
        assert_eq!(q("2k").value(), 2000);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1E3").value(), 1000);
        assert_eq!(q("1e-3").milli(), 1);
        assert_eq!(q("1E").value(), 1_000_000_000_000_000_000);
        assert_eq!(q("100n").nanos(), 100);
        assert_eq!(q("7u").nanos(), 7000);
        assert_eq!(q("0").value(), 0);
        assert_eq!(q("-1").value(), -1);
        assert_eq!(q("0001.2500").milli(), 1250);
    }

    #[test]
    fn rounding_is_up_as_the_scheduler_does() {
        // MilliValue() of 0.0001 cores is 1m; Value() of 1.1 bytes is 2.
        assert_eq!(q("0.0001").milli(), 1);
        assert_eq!(q("1.1").value(), 2);
        assert_eq!(q("1n").value(), 1);
        assert_eq!(q("0.0000000001").nanos(), 1);
        assert_eq!(q("-1.5").value(), -1);
    }

    #[test]
    fn malformed_strings_are_refused() {
        for s in [
            "", "m", "Ki", ".", "-", "+", "1.2.3", "1KiB", "1 Gi", " 1", "1e", "1e+", "1ee3", "1i",
            "1K", "abc", "1.5x", "--1", "1e3.5", "0x10",
        ] {
            assert!(Quantity::parse(s).is_err(), "{s:?} parsed");
        }
        assert!(matches!(
            Quantity::parse("1e99"),
            Err(QuantityError::TooLarge(_))
        ));
        assert!(matches!(
            Quantity::parse("99999999999999999999999999999999999"),
            Err(QuantityError::TooLarge(_))
        ));
        assert_eq!(
            Quantity::parse("2 cpus").unwrap_err().to_string(),
            "quantity \"2 cpus\" is not a valid quantity (expected a number with an optional suffix such as 500m, 2, 1.5Gi or 1e3)"
        );
    }

    #[test]
    fn display_is_decimal_units() {
        assert_eq!(q("2500m").to_string(), "2.5");
        assert_eq!(q("1m").to_string(), "0.001");
        assert_eq!(q("3").to_string(), "3");
        assert_eq!(q("-250m").to_string(), "-0.25");
    }

    const DECIMAL: [(&str, i32); 9] = [
        ("n", -9),
        ("u", -6),
        ("m", -3),
        ("", 0),
        ("k", 3),
        ("M", 6),
        ("G", 9),
        ("T", 12),
        ("P", 15),
    ];

    proptest! {
        /// An integer with a decimal suffix is that integer times the power of ten, exactly.
        #[test]
        fn integers_with_decimal_suffixes(n in 0i64..1_000_000_000, s in 0usize..DECIMAL.len()) {
            let (suffix, p) = DECIMAL[s];
            let got = q(&format!("{n}{suffix}")).nanos();
            let want = if p + 9 >= 0 { i128::from(n) * 10i128.pow((p + 9) as u32) } else { unreachable!() };
            prop_assert_eq!(got, want);
            // The exponent form means the same.
            prop_assert_eq!(q(&format!("{n}e{p}")).nanos(), want);
        }

        /// An integer with a binary suffix is that integer times the power of two, exactly.
        #[test]
        fn integers_with_binary_suffixes(n in 0i64..1_000_000, s in 0u32..5) {
            let suffix = ["Ki", "Mi", "Gi", "Ti", "Pi"][s as usize];
            prop_assert_eq!(q(&format!("{n}{suffix}")).value(), i128::from(n) << (10 * (s + 1)));
        }

        /// Millicores written as a decimal fraction of cores read back as the same millicores.
        #[test]
        fn decimal_cores_and_millicores_agree(m in 0i64..10_000_000) {
            let cores = format!("{}.{:03}", m / 1000, m % 1000);
            prop_assert_eq!(q(&cores).milli(), i128::from(m));
            prop_assert_eq!(q(&format!("{m}m")).milli(), i128::from(m));
            prop_assert_eq!(q(&format!("{m}m")), q(&cores));
        }

        /// Any string parses or is refused; it never panics, and what parses is within range.
        #[test]
        fn arbitrary_strings_never_panic(s in "[-+0-9.eEkKmMGiTPnu ]{0,24}") {
            if let Ok(v) = Quantity::parse(&s) {
                prop_assert!(v.nanos().abs() <= MAX_NANOS);
            }
        }

        /// Parsing agrees with floating point within rounding.
        #[test]
        fn close_to_floating_point(whole in 0u32..100_000, frac in 0u32..1000, s in 0usize..DECIMAL.len()) {
            let (suffix, p) = DECIMAL[s];
            let text = format!("{whole}.{frac:03}{suffix}");
            let want = (f64::from(whole) + f64::from(frac) / 1000.0) * 10f64.powi(p + 9);
            let got = q(&text).nanos() as f64;
            prop_assert!((got - want).abs() <= want.abs() * 1e-12 + 1.0, "{text}: {got} vs {want}");
        }
    }
}
