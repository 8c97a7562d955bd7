//! Field selectors: the `fieldSelector=` query grammar and matching, following
//! `k8s.io/apimachinery/pkg/fields` (`ParseSelector`, `EscapeValue`, `UnescapeValue`).

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

/// Why a field selector could not be parsed or is not supported, with apimachinery's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// A term has no `=`, `==` or `!=` operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Syntax {
        /// The whole selector string as received.
        selector: String,
        /// The offending comma-separated term.
        term: String,
    },
    /// A value contains a backslash escape other than `\\`, `\,` and `\=` (or ends with a lone backslash).
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A value contains an unescaped `,` or `=`; Go prints the character as its code point number.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
    /// The key is not a selectable field of the resource kind.
    #[error("field label not supported: {0}")]
    UnsupportedKey(String),
}

/// The comparison a field term makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOp {
    /// `key=value` or `key==value`.
    Equals,
    /// `key!=value`.
    NotEquals,
}

/// One `key=value` / `key!=value` condition; a field selector is the AND of its terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldTerm {
    /// The field path, e.g. `spec.nodeName` (not validated by the parser; see [`FieldSelector::check_keys`]).
    pub key: String,
    /// The comparison.
    pub op: FieldOp,
    /// The unescaped value to compare with.
    pub value: String,
}

impl FieldTerm {
    /// Whether the object's value for this field (`""` when unset) satisfies the term.
    pub fn matches(&self, object_value: &str) -> bool {
        match self.op {
            FieldOp::Equals => object_value == self.value,
            FieldOp::NotEquals => object_value != self.value,
        }
    }
}

impl fmt::Display for FieldTerm {
    /// `key=value` or `key!=value`, with `\`, `,` and `=` in the value escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            FieldOp::Equals => "=",
            FieldOp::NotEquals => "!=",
        };
        write!(f, "{}{}{}", self.key, op, escape_value(&self.value))
    }
}

/// A parsed field selector: the AND of its terms. The default (no terms) selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// Operators in the order apimachinery tries them at each position (`==` before `=` so no `=` is left on the value).
const TERM_OPERATORS: [(&str, FieldOp); 3] = [
    ("!=", FieldOp::NotEquals),
    ("==", FieldOp::Equals),
    ("=", FieldOp::Equals),
];

impl FieldSelector {
    /// Parses the `fieldSelector=` grammar: comma-separated `k=v`, `k==v` or `k!=v` terms (ANDed), with `\,`,
    /// `\=` and `\\` escapes in values. The key is everything before the first operator; no whitespace is
    /// trimmed. The empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, FieldSelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((key, op, raw_value)) = split_term(part) else {
                return Err(FieldSelectorError::Syntax {
                    selector: s.to_string(),
                    term: part.to_string(),
                });
            };
            terms.push(FieldTerm {
                key: key.to_string(),
                op,
                value: unescape_value(raw_value)?,
            });
        }
        Ok(Self::from_terms(terms))
    }

    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Builds a selector from terms (ANDed), kept in a canonical order so that equal selectors compare equal.
    pub fn from_terms(mut terms: Vec<FieldTerm>) -> Self {
        terms.sort_by_cached_key(ToString::to_string);
        Self { terms }
    }

    /// A selector with the single term `key=value` (e.g. `spec.nodeName=<node>`).
    pub fn equals(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::from_terms(vec![FieldTerm {
            key: key.into(),
            op: FieldOp::Equals,
            value: value.into(),
        }])
    }

    /// True when the selector has no terms and so matches every object.
    pub fn is_everything(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, in canonical order.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// The value required by the first `key=value` term for `key`, if any; lets a store use an index (e.g. pods
    /// by `spec.nodeName`) instead of scanning.
    pub fn equals_value(&self, key: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.key == key && t.op == FieldOp::Equals)
            .map(|t| t.value.as_str())
    }

    /// Whether an object is selected. `get(key)` returns the object's value for a field; `None` counts as `""`
    /// (so `spec.nodeName=` matches unscheduled pods).
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms
            .iter()
            .all(|t| t.matches(get(&t.key).as_deref().unwrap_or("")))
    }

    /// Checks every key against the fields a resource kind supports; the first unknown one gives
    /// `field label not supported: <key>` (the API server answers 400 with it).
    pub fn check_keys(&self, supported: &[&str]) -> Result<(), FieldSelectorError> {
        match self
            .terms
            .iter()
            .find(|t| !supported.contains(&t.key.as_str()))
        {
            Some(t) => Err(FieldSelectorError::UnsupportedKey(t.key.clone())),
            None => Ok(()),
        }
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical query-string form: terms joined by `,`, values escaped; parses back to an equal selector
    /// (for keys without `,`, `=`, `\` or a trailing `!`, which the grammar cannot express).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = FieldSelectorError;

    /// Same as [`FieldSelector::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Splits on commas that are not escaped by a backslash (the backslash stays in the term).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at the first operator occurrence: key, operator, raw (still escaped) value.
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let remaining = &term[i..];
        for (symbol, op) in TERM_OPERATORS {
            if let Some(value) = remaining.strip_prefix(symbol) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}

/// Escapes a literal value for use in a field selector (`\` → `\\`, `,` → `\,`, `=` → `\=`).
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reverses [`escape_value`]; rejects unknown escapes and unescaped `,` or `=`.
pub fn unescape_value(raw: &str) -> Result<String, FieldSelectorError> {
    if !raw.contains(['\\', ',', '=']) {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut in_slash = false;
    for c in raw.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(FieldSelectorError::InvalidEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(FieldSelectorError::UnescapedCharacter(c)),
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(FieldSelectorError::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}
