//! Label selectors: the `labelSelector=` query grammar, `metav1.LabelSelector` conversion (PDB semantics) and
//! matching against an object's labels, following `k8s.io/apimachinery/pkg/labels`.

mod parser;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::validation::{
    aggregate, field_invalid, go_quote, go_string_slice, label_value_errors, qualified_name_errors,
};

/// Why a label selector could not be parsed or built. The messages are apimachinery's, word for word, so a
/// simulated API server can return them unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelSelectorError {
    /// The selector string has a token where another was expected, e.g. `found ',', expected: identifier after ','`.
    #[error("{0}")]
    Syntax(String),
    /// One requirement of the selector string is malformed or invalid (bad key, bad value, missing operator).
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// A requirement built from structured parts (matchLabels / matchExpressions) failed validation.
    #[error("{0}")]
    InvalidRequirement(String),
    /// A matchExpressions operator other than `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    InvalidOperator(String),
}

/// How a requirement compares a label with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// `k`: the label is present (any value).
    Exists,
    /// `!k`: the label is absent.
    DoesNotExist,
    /// `k=v` or `k==v`: the label is present with exactly this value.
    Equals,
    /// `k!=v`: the label is absent or has another value.
    NotEquals,
    /// `k in (a,b)`: the label is present with one of the values.
    In,
    /// `k notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `k>N`: the label is present, an integer, and greater than N.
    GreaterThan,
    /// `k<N`: the label is present, an integer, and less than N.
    LessThan,
}

/// One condition on one label key; a selector is the AND of its requirements.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The label key (a qualified name, optionally with a DNS subdomain prefix and `/`).
    pub key: String,
    /// The comparison.
    pub op: Operator,
    /// The values, sorted and without duplicates when built by this crate; empty for `Exists`/`DoesNotExist`,
    /// exactly one for `=`, `!=`, `>` and `<`.
    pub values: Vec<String>,
}

impl Requirement {
    /// Validates and builds a requirement like apimachinery's `labels.NewRequirement`: the key must be a
    /// qualified name, every value a label value, the number of values must fit the operator, and `>`/`<` need an
    /// integer. Values are then sorted and de-duplicated.
    pub fn new(
        key: impl Into<String>,
        op: Operator,
        values: Vec<String>,
    ) -> Result<Self, LabelSelectorError> {
        let key = key.into();
        build_requirement(&key, op, values, "").map_err(LabelSelectorError::InvalidRequirement)
    }

    /// Whether a set of labels satisfies this requirement. `!=` and `notin` also match when the key is absent;
    /// `>` and `<` never match a missing or non-integer label.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(label) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [bound] = self.values.as_slice() else {
                    return false;
                };
                let Ok(bound) = bound.parse::<i64>() else {
                    return false;
                };
                if self.op == Operator::GreaterThan {
                    label > bound
                } else {
                    label < bound
                }
            }
        }
    }
}

/// `labels.NewRequirement` with apimachinery's validation messages. `path` is the field path the Go code reports
/// errors under: empty for none (`key`, `values[0][k]`), which is what both the parser and
/// `LabelSelectorAsSelector` use. On failure returns the aggregated message.
pub(crate) fn build_requirement(
    key: &str,
    op: Operator,
    mut values: Vec<String>,
    path: &str,
) -> Result<Requirement, String> {
    let child = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    let mut errs = Vec::new();
    let key_errs = qualified_name_errors(key);
    if !key_errs.is_empty() {
        errs.push(field_invalid(
            &child("key"),
            &go_quote(key),
            &key_errs.join("; "),
        ));
    }
    let values_path = child("values");
    match op {
        Operator::In | Operator::NotIn => {
            if values.is_empty() {
                errs.push(field_invalid(
                    &values_path,
                    &go_string_slice(&values),
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
        }
        Operator::Equals | Operator::NotEquals => {
            if values.len() != 1 {
                errs.push(field_invalid(
                    &values_path,
                    &go_string_slice(&values),
                    "exact-match compatibility requires one single value",
                ));
            }
        }
        Operator::Exists | Operator::DoesNotExist => {
            if !values.is_empty() {
                errs.push(field_invalid(
                    &values_path,
                    &go_string_slice(&values),
                    "values set must be empty for exists and does not exist",
                ));
            }
        }
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errs.push(field_invalid(
                    &values_path,
                    &go_string_slice(&values),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(field_invalid(
                        &format!("{values_path}[{i}]"),
                        &go_quote(v),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let value_errs = label_value_errors(v);
        if !value_errs.is_empty() {
            errs.push(field_invalid(
                &format!("{values_path}[{i}][{key}]"),
                &go_quote(v),
                &value_errs.join("; "),
            ));
        }
    }
    if let Some(message) = aggregate(errs) {
        return Err(message);
    }
    values.sort();
    values.dedup();
    Ok(Requirement {
        key: key.to_string(),
        op,
        values,
    })
}

impl fmt::Display for Operator {
    /// The operator as written in a selector string (`exists` and `!` for the unary ones, as apimachinery names them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::Equals => "=",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        })
    }
}

impl fmt::Display for Requirement {
    /// The canonical query-string form (`!k`, `k`, `k=v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k>1`, `k<1`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = || self.values.join(",");
        match self.op {
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::Equals => write!(f, "{}={}", self.key, joined()),
            Operator::NotEquals => write!(f, "{}!={}", self.key, joined()),
            Operator::GreaterThan => write!(f, "{}>{}", self.key, joined()),
            Operator::LessThan => write!(f, "{}<{}", self.key, joined()),
            Operator::In => write!(f, "{} in ({})", self.key, joined()),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, joined()),
        }
    }
}

/// A parsed label selector: the AND of its requirements, or the special selector that matches nothing
/// (what a PodDisruptionBudget with a nil selector uses).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// Parses the `labelSelector=` query grammar (`k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
    /// `k notin (a,b)`, `k>N`, `k<N`, comma-separated, whitespace allowed). The empty string selects everything.
    /// Errors carry apimachinery's messages.
    pub fn parse(s: &str) -> Result<Self, LabelSelectorError> {
        let requirements = parser::parse(s)?;
        Ok(Self::from_requirements(requirements))
    }

    /// The selector that matches every object (empty selector).
    pub fn everything() -> Self {
        Self::default()
    }

    /// The selector that matches no object, used for a nil `metav1.LabelSelector` (e.g. a PDB without selector;
    /// apimachinery's `LabelSelectorAsSelector(nil)`).
    ///
    /// Like apimachinery's `labels.Nothing()`, it displays as the empty string, which would parse back as
    /// *everything*: check [`LabelSelector::is_nothing`] before sending it anywhere as a query string.
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Builds a selector from requirements (ANDed), sorted by key like apimachinery's `Selector.Add`.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Self {
            requirements,
            nothing: false,
        }
    }

    /// True for the selector that matches every object (no requirements), false for [`LabelSelector::nothing`].
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches no object.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// Whether an object with these labels is selected: all requirements hold, and the selector is not
    /// [`LabelSelector::nothing`].
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The requirements, sorted by key (empty for everything and for nothing).
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Builds a selector from the parts of a **present** `metav1.LabelSelector`, with apimachinery's
    /// `LabelSelectorAsSelector` semantics as PodDisruptionBudgets use them.
    ///
    /// * A **nil** selector (no `selector` field, or `null`) is not handled here: use [`LabelSelector::nothing`],
    ///   which matches no pod.
    /// * A present selector with neither `matchLabels` entries nor expressions (`{}`, whether `matchLabels` is
    ///   absent (`None`) or empty) gives [`LabelSelector::everything`], which matches every pod.
    /// * Otherwise each `matchLabels` entry becomes `key=value` and each expression `(key, operator, values)`
    ///   (operator `"In"`, `"NotIn"`, `"Exists"` or `"DoesNotExist"`) a requirement; all are ANDed.
    ///
    /// ```
    /// # use std::collections::BTreeMap;
    /// # use selectors::LabelSelector;
    /// // spec.selector: {}            -> every pod
    /// assert!(LabelSelector::from_parts(None, &[]).unwrap().is_everything());
    /// // spec.selector absent / null -> no pod
    /// assert!(LabelSelector::nothing().is_nothing());
    /// let ml = BTreeMap::from([("app".to_string(), "web".to_string())]);
    /// let sel = LabelSelector::from_parts(Some(&ml), &[("tier".into(), "Exists".into(), vec![])]).unwrap();
    /// assert_eq!(sel.to_string(), "app=web,tier");
    /// ```
    pub fn from_parts(
        match_labels: Option<&BTreeMap<String, String>>,
        expressions: &[(String, String, Vec<String>)],
    ) -> Result<Self, LabelSelectorError> {
        let empty = BTreeMap::new();
        let match_labels = match_labels.unwrap_or(&empty);
        let mut requirements = Vec::with_capacity(match_labels.len() + expressions.len());
        for (key, value) in match_labels {
            requirements.push(
                build_requirement(key, Operator::Equals, vec![value.clone()], "")
                    .map_err(LabelSelectorError::InvalidRequirement)?,
            );
        }
        for (key, operator, values) in expressions {
            let op = match operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(LabelSelectorError::InvalidOperator(other.to_string())),
            };
            requirements.push(
                build_requirement(key, op, values.clone(), "")
                    .map_err(LabelSelectorError::InvalidRequirement)?,
            );
        }
        Ok(Self::from_requirements(requirements))
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical query-string form: requirements joined by `,` (empty for everything, and, as in
    /// apimachinery, also for nothing). Parsing it gives back an equal selector (except for nothing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = LabelSelectorError;

    /// Same as [`LabelSelector::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
