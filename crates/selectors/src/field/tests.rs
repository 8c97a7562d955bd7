//! Unit and property tests for field selector parsing, escaping, display and matching.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn term(key: &str, op: FieldOp, value: &str) -> FieldTerm {
    FieldTerm {
        key: key.to_string(),
        op,
        value: value.to_string(),
    }
}

fn parse_err(s: &str) -> String {
    match FieldSelector::parse(s) {
        Ok(sel) => panic!("{s:?} parsed as {sel:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn grammar_and_canonical_form() {
    use FieldOp::{Equals, NotEquals};
    let cases: &[(&str, &[FieldTerm], &str)] = &[
        ("", &[], ""),
        (",,", &[], ""),
        (
            "spec.nodeName=node-1",
            &[term("spec.nodeName", Equals, "node-1")],
            "spec.nodeName=node-1",
        ),
        ("a==b", &[term("a", Equals, "b")], "a=b"),
        ("a!=b", &[term("a", NotEquals, "b")], "a!=b"),
        ("a=", &[term("a", Equals, "")], "a="),
        ("a!=", &[term("a", NotEquals, "")], "a!="),
        ("=v", &[term("", Equals, "v")], "=v"),
        (
            "b=2,a=1",
            &[term("a", Equals, "1"), term("b", Equals, "2")],
            "a=1,b=2",
        ),
        (",a=1,,", &[term("a", Equals, "1")], "a=1"),
        ("a=b\\,c", &[term("a", Equals, "b,c")], "a=b\\,c"),
        ("a=b\\=c", &[term("a", Equals, "b=c")], "a=b\\=c"),
        ("a=b\\\\c", &[term("a", Equals, "b\\c")], "a=b\\\\c"),
        ("a=x!y", &[term("a", Equals, "x!y")], "a=x!y"),
        ("a!b=c", &[term("a!b", Equals, "c")], "a!b=c"),
        (
            "metadata.name=ü",
            &[term("metadata.name", Equals, "ü")],
            "metadata.name=ü",
        ),
        // No trimming: whitespace belongs to the key and the value.
        (" a = b ", &[term(" a ", Equals, " b ")], " a = b "),
        (
            "status.phase!=Running,spec.nodeName=n1",
            &[
                term("spec.nodeName", Equals, "n1"),
                term("status.phase", NotEquals, "Running"),
            ],
            "spec.nodeName=n1,status.phase!=Running",
        ),
    ];
    for (input, terms, display) in cases {
        let sel = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.terms(), *terms, "{input:?}");
        assert_eq!(sel.to_string(), *display, "{input:?}");
        assert_eq!(
            FieldSelector::parse(display).unwrap(),
            sel,
            "{input:?} round trip"
        );
        assert_eq!(
            input.parse::<FieldSelector>().unwrap(),
            sel,
            "FromStr {input:?}"
        );
    }
    assert!(FieldSelector::parse("").unwrap().is_everything());
    assert_eq!(
        FieldSelector::parse("").unwrap(),
        FieldSelector::everything()
    );
}

#[test]
fn errors_have_apimachinery_texts() {
    assert_eq!(
        parse_err("abc"),
        "invalid selector: 'abc'; can't understand 'abc'"
    );
    // Terms are checked in sorted order; the message names the whole selector and the bad term.
    assert_eq!(
        parse_err("x=1,abc"),
        "invalid selector: 'x=1,abc'; can't understand 'abc'"
    );
    assert_eq!(
        parse_err(" "),
        "invalid selector: ' '; can't understand ' '"
    );
    assert_eq!(
        FieldSelector::parse("a b"),
        Err(FieldSelectorError::Syntax {
            selector: "a b".into(),
            term: "a b".into()
        })
    );
    assert_eq!(
        parse_err("a=b=c"),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        parse_err("a===b"),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        parse_err("a=b\\!c"),
        "invalid field selector: invalid escape sequence: \\!"
    );
    assert_eq!(
        parse_err("a=b\\"),
        "invalid field selector: invalid escape sequence: \\"
    );
    assert_eq!(
        FieldSelector::parse("a=\\x"),
        Err(FieldSelectorError::InvalidEscape("\\x".into()))
    );
}

#[test]
fn escaping() {
    assert_eq!(escape_value("a,b=c\\d"), "a\\,b\\=c\\\\d");
    assert_eq!(unescape_value("a\\,b\\=c\\\\d").unwrap(), "a,b=c\\d");
    assert_eq!(unescape_value("plain!").unwrap(), "plain!");
    assert_eq!(
        unescape_value("a,b"),
        Err(FieldSelectorError::UnescapedCharacter(','))
    );
    assert_eq!(
        FieldSelector::equals("spec.nodeName", "a,b").to_string(),
        "spec.nodeName=a\\,b"
    );
}

#[test]
fn matching_treats_unset_fields_as_empty() {
    let pod: BTreeMap<&str, &str> =
        BTreeMap::from([("metadata.name", "web-1"), ("status.phase", "Running")]);
    let get = |k: &str| pod.get(k).map(|v| v.to_string());
    let check = |sel: &str| FieldSelector::parse(sel).unwrap().matches(get);
    assert!(check(""));
    assert!(check("metadata.name=web-1"));
    assert!(check("metadata.name==web-1"));
    assert!(!check("metadata.name!=web-1"));
    assert!(check("status.phase!=Pending"));
    assert!(check("metadata.name=web-1,status.phase=Running"));
    assert!(!check("metadata.name=web-1,status.phase=Failed"));
    // spec.nodeName is unset: `spec.nodeName=` matches unscheduled pods, `!=` excludes them.
    assert!(check("spec.nodeName="));
    assert!(!check("spec.nodeName!="));
    assert!(!check("spec.nodeName=node-1"));
    assert!(check("spec.nodeName!=node-1"));
    // Some("") and None are the same.
    let sel = FieldSelector::parse("spec.nodeName=").unwrap();
    assert!(sel.matches(|_| Some(String::new())));
    assert!(sel.matches(|_| None));
    assert!(!sel.matches(|_| Some("n".into())));
}

#[test]
fn equals_value_for_index_lookups() {
    let sel = FieldSelector::parse("spec.nodeName!=x,spec.nodeName=n1,metadata.name=a").unwrap();
    assert_eq!(sel.equals_value("spec.nodeName"), Some("n1"));
    assert_eq!(sel.equals_value("metadata.name"), Some("a"));
    assert_eq!(sel.equals_value("status.phase"), None);
    let only_ne = FieldSelector::parse("spec.nodeName!=x").unwrap();
    assert_eq!(only_ne.equals_value("spec.nodeName"), None);
    assert_eq!(
        FieldSelector::parse("spec.nodeName=")
            .unwrap()
            .equals_value("spec.nodeName"),
        Some("")
    );
}

#[test]
fn check_keys_reports_the_unsupported_label() {
    let pod_fields = [
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "status.phase",
    ];
    let ok = FieldSelector::parse("spec.nodeName=n,status.phase!=Failed").unwrap();
    assert_eq!(ok.check_keys(&pod_fields), Ok(()));
    assert_eq!(FieldSelector::everything().check_keys(&[]), Ok(()));
    let bad = FieldSelector::parse("spec.nodeName=n,spec.foo=bar").unwrap();
    let err = bad.check_keys(&pod_fields).unwrap_err();
    assert_eq!(err.to_string(), "field label not supported: spec.foo");
    assert_eq!(err, FieldSelectorError::UnsupportedKey("spec.foo".into()));
    let spaced = FieldSelector::parse(" spec.nodeName=n").unwrap();
    assert_eq!(
        spaced.check_keys(&pod_fields).unwrap_err().to_string(),
        "field label not supported:  spec.nodeName"
    );
}

fn term_strategy() -> impl Strategy<Value = FieldTerm> {
    let value = prop_oneof![
        3 => "\\PC{0,12}",
        2 => prop::collection::vec(
            prop_oneof![Just("\\"), Just(","), Just("="), Just("!"), Just("!="), Just("=="), Just("a")],
            0..6
        ).prop_map(|v| v.concat()),
    ];
    ("[A-Za-z0-9._/-]{0,12}", any::<bool>(), value).prop_map(|(key, ne, value)| FieldTerm {
        key,
        op: if ne {
            FieldOp::NotEquals
        } else {
            FieldOp::Equals
        },
        value,
    })
}

fn selector_like_string() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("\\".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just("==".to_string()),
        Just("!=".to_string()),
        Just("!".to_string()),
        Just(" ".to_string()),
        "[a-z.]{1,4}",
        "\\PC",
    ];
    prop::collection::vec(token, 0..14).prop_map(|t| t.concat())
}

proptest! {
    #[test]
    fn display_then_parse_round_trips(terms in prop::collection::vec(term_strategy(), 0..6)) {
        let sel = FieldSelector::from_terms(terms);
        let text = sel.to_string();
        prop_assert_eq!(FieldSelector::parse(&text), Ok(sel), "text: {:?}", text);
    }

    #[test]
    fn escape_then_unescape_is_identity(value in "\\PC{0,30}") {
        prop_assert_eq!(unescape_value(&escape_value(&value)), Ok(value));
    }

    #[test]
    fn parse_never_panics_on_arbitrary_strings(s in "\\PC{0,40}") {
        let _ = FieldSelector::parse(&s);
    }

    #[test]
    fn whatever_parses_is_stable_through_display(s in selector_like_string()) {
        if let Ok(sel) = FieldSelector::parse(&s) {
            let text = sel.to_string();
            prop_assert_eq!(FieldSelector::parse(&text), Ok(sel), "input {:?} -> {:?}", s, text);
        }
    }
}
