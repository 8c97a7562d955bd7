//! Label key and value validation with the exact wording of apimachinery's
//! `util/validation` and `util/validation/field` packages.
//!
//! The API server answers bad selectors with these texts, and clients (kubectl, tests) compare them, so the
//! wording, punctuation and even the doubled spaces in the examples are kept as the Go code produces them.

use std::fmt::Write as _;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_MAX_LENGTH: usize = 63;

const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MAX_LENGTH: usize = 63;

const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

/// `validation.RegexError`: the message, the examples and the regular expression used.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        let _ = write!(out, "'{example}', ");
    }
    let _ = write!(out, "regex used for validation is '{fmt}')");
    out
}

fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

const EMPTY_ERROR: &str = "must be non-empty";

/// Matches `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Matches the RFC 1123 subdomain expression: dot-separated labels of `[a-z0-9-]`, alphanumeric at both ends.
fn is_dns1123_subdomain_format(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                edge(first) && edge(last) && b.iter().all(|c| edge(c) || *c == b'-')
            }
            _ => false,
        }
    })
}

/// `validation.IsDNS1123Subdomain`: the problems found, empty when valid.
pub(crate) fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !is_dns1123_subdomain_format(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `validation.IsQualifiedName`: the problems found with a label key, empty when valid.
pub(crate) fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {EMPTY_ERROR}"));
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {EMPTY_ERROR}"));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `validation.IsValidLabelValue`: the problems found with a label value, empty when valid.
pub(crate) fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !(value.is_empty() || is_qualified_name_part(value)) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Whether `key` is a valid label key (a qualified name with an optional DNS subdomain prefix).
pub fn is_valid_label_key(key: &str) -> bool {
    qualified_name_errors(key).is_empty()
}

/// Whether `value` is a valid label value (at most 63 characters, alphanumeric at both ends, `-_.` inside, or empty).
pub fn is_valid_label_value(value: &str) -> bool {
    label_value_errors(value).is_empty()
}

/// Go's `strconv.Quote` (what `%q` prints): double quotes, backslash escapes for quotes, backslashes and
/// non-printable characters.
///
/// Printability is approximated (see `go_is_print`); Go's full Unicode tables are not reproduced.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if !go_is_print(c) => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint` without Unicode tables: control characters, whitespace other than the
/// ASCII space, the common format characters (soft hyphen, zero-width and bidi controls, BOM) and private-use
/// characters are not printable.
fn go_is_print(c: char) -> bool {
    let code = u32::from(c);
    !(c.is_control()
        || (c.is_whitespace() && c != ' ')
        || code == 0xAD
        || (0x200B..=0x200F).contains(&code)
        || (0x202A..=0x202E).contains(&code)
        || (0x2060..=0x206F).contains(&code)
        || code == 0xFEFF
        || (0xFFF9..=0xFFFB).contains(&code)
        || (0xE000..=0xF8FF).contains(&code)
        || (0xF0000..=0x10FFFF).contains(&code))
}

/// Go's `%#v` of a `[]string` (`[]string{"a", "b"}`), used when a whole value list is reported invalid.
///
/// An empty list prints as Go's nil slice, `[]string(nil)`, because that is what `LabelSelectorAsSelector`
/// passes for an expression without values.
pub(crate) fn go_string_slice(values: &[String]) -> String {
    if values.is_empty() {
        return "[]string(nil)".to_string();
    }
    let inner: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", inner.join(", "))
}

/// `field.Invalid(path, value, detail).Error()`: `<path>: Invalid value: <value>: <detail>`.
pub(crate) fn field_invalid(path: &str, value_repr: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {value_repr}: {detail}")
}

/// `utilerrors.NewAggregate(..).Error()` over already-formatted messages: duplicates dropped, one message as
/// is, several inside `[..]` joined with `, `.
pub(crate) fn aggregate(messages: Vec<String>) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for m in messages {
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_accepted() {
        for key in [
            "a",
            "app",
            "A-b_c.d9",
            "example.com/name",
            "kubernetes.io/os",
            "a.b-c.d/x",
            &"x".repeat(63),
        ] {
            assert!(qualified_name_errors(key).is_empty(), "{key}");
        }
    }

    #[test]
    fn qualified_names_rejected_with_go_texts() {
        assert_eq!(
            qualified_name_errors("-a"),
            vec![
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert_eq!(
            qualified_name_errors("/a"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(
            qualified_name_errors("Example.com/a"),
            vec![
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        let long = "x".repeat(64);
        assert_eq!(
            qualified_name_errors(&long),
            vec!["name part must be no more than 63 characters"]
        );
        let empty = qualified_name_errors("a/");
        assert_eq!(empty.len(), 2);
        assert_eq!(empty[0], "name part must be non-empty");
        assert!(qualified_name_errors("a/b/c")[0].starts_with("a qualified name must consist"));
        assert!(qualified_name_errors("a/b/c")[0].ends_with(
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ));
        assert_eq!(
            dns1123_subdomain_errors(&"a".repeat(254))[0],
            "must be no more than 253 characters"
        );
    }

    #[test]
    fn label_values() {
        for ok in ["", "a", "a.b_c-d", "123", &"v".repeat(63)] {
            assert!(is_valid_label_value(ok), "{ok}");
        }
        for bad in ["-a", "a-", "a b", "é", "a/b", &"v".repeat(64)] {
            assert!(!is_valid_label_value(bad), "{bad}");
        }
        assert_eq!(
            label_value_errors(&format!("{}-", "v".repeat(63))),
            vec![
                "must be no more than 63 characters".to_string(),
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string(),
            ]
        );
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("abc"), "\"abc\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("\n\t\u{1}\u{7f}"), "\"\\n\\t\\x01\\x7f\"");
        assert_eq!(go_quote("é\u{a0}"), "\"é\\u00a0\"");
        assert_eq!(go_quote("a\u{200b}\u{feff}"), "\"a\\u200b\\ufeff\"");
        assert_eq!(go_quote("\u{10fffd}"), "\"\\U0010fffd\"");
        assert_eq!(go_quote("日本 ✓"), "\"日本 ✓\"");
        assert_eq!(
            go_string_slice(&["a".into(), "b".into()]),
            "[]string{\"a\", \"b\"}"
        );
        assert_eq!(go_string_slice(&[]), "[]string(nil)");
    }

    #[test]
    fn aggregation() {
        assert_eq!(aggregate(vec![]), None);
        assert_eq!(aggregate(vec!["x".into()]).as_deref(), Some("x"));
        assert_eq!(
            aggregate(vec!["x".into(), "y".into(), "x".into()]).as_deref(),
            Some("[x, y]")
        );
    }
}
