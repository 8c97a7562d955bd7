//! Unit and property tests for label selector parsing, display, conversion and matching.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn req(key: &str, op: Operator, values: &[&str]) -> Requirement {
    Requirement {
        key: key.to_string(),
        op,
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn parse_err(s: &str) -> String {
    match LabelSelector::parse(s) {
        Ok(sel) => panic!("{s:?} parsed as {sel:?}"),
        Err(e) => e.to_string(),
    }
}

const NAME_PART_ERR: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const BINARY_OPS: &str = "in, notin, =, ==, !=, gt, lt";

#[test]
fn grammar_accepts_every_form_and_canonicalises() {
    let cases: &[(&str, &[Requirement], &str)] = &[
        ("x", &[req("x", Operator::Exists, &[])], "x"),
        ("!x", &[req("x", Operator::DoesNotExist, &[])], "!x"),
        ("x=y", &[req("x", Operator::Equals, &["y"])], "x=y"),
        ("x==y", &[req("x", Operator::Equals, &["y"])], "x=y"),
        ("x!=y", &[req("x", Operator::NotEquals, &["y"])], "x!=y"),
        (
            "x in (b,a)",
            &[req("x", Operator::In, &["a", "b"])],
            "x in (a,b)",
        ),
        (
            "x notin (b,a,b)",
            &[req("x", Operator::NotIn, &["a", "b"])],
            "x notin (a,b)",
        ),
        ("x in(a)", &[req("x", Operator::In, &["a"])], "x in (a)"),
        (
            "x notin(a)",
            &[req("x", Operator::NotIn, &["a"])],
            "x notin (a)",
        ),
        ("x>1", &[req("x", Operator::GreaterThan, &["1"])], "x>1"),
        ("x<20", &[req("x", Operator::LessThan, &["20"])], "x<20"),
        ("x=", &[req("x", Operator::Equals, &[""])], "x="),
        ("x==", &[req("x", Operator::Equals, &[""])], "x="),
        ("x!=", &[req("x", Operator::NotEquals, &[""])], "x!="),
        ("x in ()", &[req("x", Operator::In, &[""])], "x in ()"),
        ("x in (,)", &[req("x", Operator::In, &[""])], "x in ()"),
        (
            "x in (,a)",
            &[req("x", Operator::In, &["", "a"])],
            "x in (,a)",
        ),
        (
            "x in (a,)",
            &[req("x", Operator::In, &["", "a"])],
            "x in (,a)",
        ),
        (
            "x in (a,,b)",
            &[req("x", Operator::In, &["", "a", "b"])],
            "x in (,a,b)",
        ),
        // `in` and `notin` are ordinary identifiers where a key or a value is expected.
        ("in", &[req("in", Operator::Exists, &[])], "in"),
        (
            "notin=in",
            &[req("notin", Operator::Equals, &["in"])],
            "notin=in",
        ),
        (
            "in in (in,notin)",
            &[req("in", Operator::In, &["in", "notin"])],
            "in in (in,notin)",
        ),
        (
            "!notin",
            &[req("notin", Operator::DoesNotExist, &[])],
            "!notin",
        ),
        (
            "example.com/app=web",
            &[req("example.com/app", Operator::Equals, &["web"])],
            "example.com/app=web",
        ),
        (
            "b=1,a=2,!c",
            &[
                req("a", Operator::Equals, &["2"]),
                req("b", Operator::Equals, &["1"]),
                req("c", Operator::DoesNotExist, &[]),
            ],
            "a=2,b=1,!c",
        ),
        (
            " \t x = y ,\n z notin ( a , b ) , ! w \r",
            &[
                req("w", Operator::DoesNotExist, &[]),
                req("x", Operator::Equals, &["y"]),
                req("z", Operator::NotIn, &["a", "b"]),
            ],
            "!w,x=y,z notin (a,b)",
        ),
        // Same key twice: both requirements kept, in input order.
        (
            "a,!a",
            &[
                req("a", Operator::Exists, &[]),
                req("a", Operator::DoesNotExist, &[]),
            ],
            "a,!a",
        ),
    ];
    for (input, expected, display) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.requirements(), *expected, "{input:?}");
        assert_eq!(sel.to_string(), *display, "{input:?}");
        assert_eq!(
            LabelSelector::parse(display).unwrap(),
            sel,
            "{input:?} round trip"
        );
        assert_eq!(
            input.parse::<LabelSelector>().unwrap(),
            sel,
            "FromStr {input:?}"
        );
    }
}

#[test]
fn empty_and_blank_selectors_select_everything() {
    for s in ["", " ", "\t\n\r "] {
        let sel = LabelSelector::parse(s).unwrap();
        assert!(sel.is_everything());
        assert!(!sel.is_nothing());
        assert_eq!(sel, LabelSelector::everything());
        assert_eq!(sel, LabelSelector::default());
        assert_eq!(sel.to_string(), "");
        assert!(sel.matches(&labels(&[])));
        assert!(sel.matches(&labels(&[("a", "b")])));
    }
}

#[test]
fn syntax_errors_have_apimachinery_texts() {
    let cases = [
        ("x,", "found '', expected: identifier after ','".to_string()),
        (
            "x,,y",
            "found ',', expected: identifier after ','".to_string(),
        ),
        (
            ",x",
            "found ',', expected: !, identifier, or 'end of string'".to_string(),
        ),
        (
            ")",
            "found ')', expected: !, identifier, or 'end of string'".to_string(),
        ),
        (
            "=x",
            "found '=', expected: !, identifier, or 'end of string'".to_string(),
        ),
        (
            "x=a b",
            "found 'b', expected: ',' or 'end of string'".to_string(),
        ),
        (
            "!x=y",
            "found '=', expected: ',' or 'end of string'".to_string(),
        ),
        (
            "x in (a) b",
            "found 'b', expected: ',' or 'end of string'".to_string(),
        ),
        (
            "x y",
            format!("unable to parse requirement: found 'y', expected: {BINARY_OPS}"),
        ),
        (
            "x!",
            format!("unable to parse requirement: found '!', expected: {BINARY_OPS}"),
        ),
        (
            "x(",
            format!("unable to parse requirement: found '(', expected: {BINARY_OPS}"),
        ),
        (
            "!",
            "unable to parse requirement: found '', expected: identifier".to_string(),
        ),
        (
            "!!x",
            "unable to parse requirement: found '!', expected: identifier".to_string(),
        ),
        (
            "!=x",
            "found '!=', expected: !, identifier, or 'end of string'".to_string(),
        ),
        (
            "x in a",
            "unable to parse requirement: found 'a' expected: '('".to_string(),
        ),
        (
            "x notin",
            "unable to parse requirement: found '' expected: '('".to_string(),
        ),
        (
            "x in (a",
            "unable to parse requirement: found '', expected: ',' or ')'".to_string(),
        ),
        (
            "x in (a b)",
            "unable to parse requirement: found 'b', expected: ',' or ')'".to_string(),
        ),
        (
            "x in (=)",
            "unable to parse requirement: found '=', expected: ',', ')' or identifier".to_string(),
        ),
        // Two commas in a row consume a third token: apimachinery rejects "(,,)" and "(a,,)".
        (
            "x in (,,)",
            "unable to parse requirement: found ')', expected: ',', or identifier".to_string(),
        ),
        (
            "x in (a,,)",
            "unable to parse requirement: found ')', expected: ',', or identifier".to_string(),
        ),
        (
            "x in (a,=)",
            "unable to parse requirement: found '=', expected: ',', or identifier".to_string(),
        ),
        (
            "x=(",
            "unable to parse requirement: found '(', expected: identifier".to_string(),
        ),
        (
            "x>=1",
            "unable to parse requirement: found '=', expected: identifier".to_string(),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(parse_err(input), expected, "{input:?}");
    }
}

#[test]
fn validation_errors_name_the_offending_input() {
    assert_eq!(
        parse_err("-x"),
        format!("unable to parse requirement: <nil>: Invalid value: \"-x\": {NAME_PART_ERR}")
    );
    // Seen verbatim from real API servers (`kubectl get pods -l "app: nginx"`).
    assert_eq!(
        parse_err("app: nginx"),
        format!("unable to parse requirement: <nil>: Invalid value: \"app:\": {NAME_PART_ERR}")
    );
    assert_eq!(
        parse_err("a/b/c ?=? def"),
        "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    );
    assert_eq!(
        parse_err("app.kubernetes_io/name=x"),
        "unable to parse requirement: <nil>: Invalid value: \"app.kubernetes_io/name\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    assert_eq!(
        parse_err(&format!("{}=v", "k".repeat(64))),
        format!(
            "unable to parse requirement: <nil>: Invalid value: \"{}\": name part must be no more than 63 characters",
            "k".repeat(64)
        )
    );
    assert_eq!(
        parse_err("app=demo-{nginx}"),
        format!(
            "unable to parse requirement: values[0][app]: Invalid value: \"demo-{{nginx}}\": {LABEL_VALUE_ERR}"
        )
    );
    assert_eq!(
        parse_err("x in (ok,-bad)"),
        format!(
            "unable to parse requirement: values[0][x]: Invalid value: \"-bad\": {LABEL_VALUE_ERR}"
        )
    );
    assert_eq!(
        parse_err(&format!("x={}", "v".repeat(64))),
        format!(
            "unable to parse requirement: values[0][x]: Invalid value: \"{}\": must be no more than 63 characters",
            "v".repeat(64)
        )
    );
    assert_eq!(
        parse_err("environment>qa"),
        "unable to parse requirement: values[0]: Invalid value: \"qa\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert_eq!(
        parse_err("x<"),
        "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert_eq!(
        parse_err("x>a-"),
        format!(
            "unable to parse requirement: [values[0]: Invalid value: \"a-\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][x]: Invalid value: \"a-\": {LABEL_VALUE_ERR}]"
        )
    );
    assert_eq!(
        parse_err("x=é"),
        format!(
            "unable to parse requirement: values[0][x]: Invalid value: \"é\": {LABEL_VALUE_ERR}"
        )
    );
}

#[test]
fn error_variants_are_structured() {
    assert!(matches!(
        LabelSelector::parse("x,"),
        Err(LabelSelectorError::Syntax(_))
    ));
    assert!(matches!(
        LabelSelector::parse("x y"),
        Err(LabelSelectorError::Requirement(_))
    ));
}

#[test]
fn nul_byte_ends_the_token_like_the_go_lexer() {
    // A NUL at the start of a token ends the input; inside an identifier it only ends that identifier.
    assert!(LabelSelector::parse("\0x y").unwrap().is_everything());
    assert_eq!(LabelSelector::parse("a,b\0").unwrap().to_string(), "a,b");
    assert_eq!(
        parse_err("a\0b"),
        format!("unable to parse requirement: found 'b', expected: {BINARY_OPS}")
    );
    assert_eq!(LabelSelector::parse("a=\0b").unwrap().to_string(), "a=b");
}

#[test]
fn equality_and_set_matching() {
    let web = labels(&[("app", "web"), ("tier", "front")]);
    let db = labels(&[("app", "db")]);
    let none = labels(&[]);
    let table: &[(&str, [bool; 3])] = &[
        ("app", [true, true, false]),
        ("!app", [false, false, true]),
        ("tier", [true, false, false]),
        ("!tier", [false, true, true]),
        ("app=web", [true, false, false]),
        ("app==web", [true, false, false]),
        ("app!=web", [false, true, true]),
        ("tier!=front", [false, true, true]),
        ("app in (web,api)", [true, false, false]),
        ("app notin (web,api)", [false, true, true]),
        ("tier notin (back)", [true, true, true]),
        ("tier in (front)", [true, false, false]),
        ("app=web,tier=front", [true, false, false]),
        ("app,!tier", [false, true, false]),
        ("app=", [false, false, false]),
        ("app!=", [true, true, true]),
        ("app in (,db)", [false, true, false]),
    ];
    for (sel, expected) in table {
        let s = LabelSelector::parse(sel).unwrap();
        let got = [s.matches(&web), s.matches(&db), s.matches(&none)];
        assert_eq!(&got, expected, "{sel}");
    }
    // An empty label value is a value: `app=` matches it, `app` (exists) too.
    let empty_value = labels(&[("app", "")]);
    assert!(LabelSelector::parse("app=").unwrap().matches(&empty_value));
    assert!(LabelSelector::parse("app").unwrap().matches(&empty_value));
    assert!(!LabelSelector::parse("app!=").unwrap().matches(&empty_value));
}

#[test]
fn numeric_comparisons_need_an_integer_label() {
    let gt = LabelSelector::parse("n>5").unwrap();
    let lt = LabelSelector::parse("n<5").unwrap();
    let cases = [
        ("6", true, false),
        ("5", false, false),
        ("4", false, true),
        ("-10", false, true),
        ("+7", true, false),
        ("0005", false, false),
        ("10000000000", true, false),
        ("x", false, false),
        ("", false, false),
        ("5.5", false, false),
        ("99999999999999999999", false, false),
    ];
    for (value, want_gt, want_lt) in cases {
        let l = labels(&[("n", value)]);
        assert_eq!(gt.matches(&l), want_gt, "n={value} > 5");
        assert_eq!(lt.matches(&l), want_lt, "n={value} < 5");
    }
    assert!(!gt.matches(&labels(&[])));
    assert!(!lt.matches(&labels(&[])));
    // A hand-built requirement with a bad bound never matches.
    let bad = LabelSelector::from_requirements(vec![req("n", Operator::GreaterThan, &["x"])]);
    assert!(!bad.matches(&labels(&[("n", "6")])));
    let two = LabelSelector::from_requirements(vec![req("n", Operator::LessThan, &["1", "9"])]);
    assert!(!two.matches(&labels(&[("n", "6")])));
}

#[test]
fn nothing_matches_no_object_and_is_distinct() {
    let nothing = LabelSelector::nothing();
    assert!(nothing.is_nothing());
    assert!(!nothing.is_everything());
    assert_ne!(nothing, LabelSelector::everything());
    assert!(nothing.requirements().is_empty());
    assert!(!nothing.matches(&labels(&[])));
    assert!(!nothing.matches(&labels(&[("app", "web")])));
    // apimachinery's Nothing() prints as "" as well.
    assert_eq!(nothing.to_string(), "");
}

#[test]
fn from_parts_follows_label_selector_as_selector() {
    let empty = BTreeMap::new();
    // A present selector without parts ({}, with or without an empty matchLabels) selects everything; a nil
    // selector is LabelSelector::nothing(), not something from_parts builds.
    assert_eq!(
        LabelSelector::from_parts(None, &[]).unwrap(),
        LabelSelector::everything()
    );
    assert!(!LabelSelector::from_parts(None, &[]).unwrap().is_nothing());
    assert_eq!(
        LabelSelector::from_parts(Some(&empty), &[]).unwrap(),
        LabelSelector::everything()
    );

    let ml = labels(&[("tier", "front"), ("app", "web")]);
    let exprs = vec![
        (
            "env".to_string(),
            "In".to_string(),
            vec!["prod".to_string(), "canary".to_string()],
        ),
        ("debug".to_string(), "DoesNotExist".to_string(), vec![]),
        (
            "zone".to_string(),
            "NotIn".to_string(),
            vec!["b".to_string()],
        ),
        ("team".to_string(), "Exists".to_string(), vec![]),
    ];
    let sel = LabelSelector::from_parts(Some(&ml), &exprs).unwrap();
    assert_eq!(
        sel.to_string(),
        "app=web,!debug,env in (canary,prod),team,tier=front,zone notin (b)"
    );
    assert_eq!(LabelSelector::parse(&sel.to_string()).unwrap(), sel);
    let pod = labels(&[
        ("app", "web"),
        ("tier", "front"),
        ("env", "prod"),
        ("team", "x"),
    ]);
    assert!(sel.matches(&pod));
    let mut debug_pod = pod.clone();
    debug_pod.insert("debug".into(), "1".into());
    assert!(!sel.matches(&debug_pod));
    let mut zone_b = pod.clone();
    zone_b.insert("zone".into(), "b".into());
    assert!(!sel.matches(&zone_b));

    // Expressions without matchLabels still form a (present) selector.
    let only_exprs = LabelSelector::from_parts(None, &exprs[..1]).unwrap();
    assert_eq!(only_exprs.to_string(), "env in (canary,prod)");
    assert!(only_exprs.matches(&labels(&[("env", "canary")])));
}

#[test]
fn from_parts_errors() {
    let expr = |k: &str, op: &str, vals: &[&str]| {
        vec![(
            k.to_string(),
            op.to_string(),
            vals.iter().map(|v| v.to_string()).collect(),
        )]
    };
    let err = |ml: Option<&BTreeMap<String, String>>, e: Vec<(String, String, Vec<String>)>| {
        LabelSelector::from_parts(ml, &e).unwrap_err()
    };
    assert_eq!(
        err(None, expr("a", "Gt", &["1"])).to_string(),
        "\"Gt\" is not a valid label selector operator"
    );
    assert_eq!(
        err(None, expr("a", "in", &["1"])),
        LabelSelectorError::InvalidOperator("in".into())
    );
    assert_eq!(
        err(None, expr("a", "In", &[])).to_string(),
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        err(None, expr("a", "Exists", &["x", "y"])).to_string(),
        "values: Invalid value: []string{\"x\", \"y\"}: values set must be empty for exists and does not exist"
    );
    assert_eq!(
        err(None, expr("-a", "Exists", &[])).to_string(),
        format!("key: Invalid value: \"-a\": {NAME_PART_ERR}")
    );
    assert_eq!(
        err(None, expr("a", "NotIn", &["ok", "b@d"])).to_string(),
        format!("values[1][a]: Invalid value: \"b@d\": {LABEL_VALUE_ERR}")
    );
    let bad_labels = labels(&[("app", "demo-{nginx}")]);
    assert_eq!(
        err(Some(&bad_labels), vec![]).to_string(),
        format!("values[0][app]: Invalid value: \"demo-{{nginx}}\": {LABEL_VALUE_ERR}")
    );
    let empty_key = labels(&[("", "v")]);
    assert_eq!(
        err(Some(&empty_key), vec![]).to_string(),
        format!("key: Invalid value: \"\": name part must be non-empty; {NAME_PART_ERR}")
    );
}

#[test]
fn requirement_new_validates_and_normalises() {
    let r = Requirement::new("k", Operator::In, vec!["b".into(), "a".into(), "b".into()]).unwrap();
    assert_eq!(r, req("k", Operator::In, &["a", "b"]));
    assert_eq!(r.to_string(), "k in (a,b)");
    assert_eq!(
        Requirement::new("k", Operator::Equals, vec![])
            .unwrap_err()
            .to_string(),
        "values: Invalid value: []string(nil): exact-match compatibility requires one single value"
    );
    assert_eq!(
        Requirement::new("k", Operator::GreaterThan, vec!["1".into(), "2".into()])
            .unwrap_err()
            .to_string(),
        "values: Invalid value: []string{\"1\", \"2\"}: for 'Gt', 'Lt' operators, exactly one value is required"
    );
    assert!(Requirement::new("k", Operator::LessThan, vec!["-1".into()]).is_err());
    assert!(Requirement::new("k", Operator::LessThan, vec!["12".into()]).is_ok());
}

#[test]
fn operator_display() {
    let all = [
        (Operator::Exists, "exists"),
        (Operator::DoesNotExist, "!"),
        (Operator::Equals, "="),
        (Operator::NotEquals, "!="),
        (Operator::In, "in"),
        (Operator::NotIn, "notin"),
        (Operator::GreaterThan, ">"),
        (Operator::LessThan, "<"),
    ];
    for (op, text) in all {
        assert_eq!(op.to_string(), text);
    }
}

fn key_strategy() -> impl Strategy<Value = String> {
    let name = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?";
    prop_oneof![
        6 => name.prop_map(|s| s),
        2 => ("[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?(\\.[a-z0-9]{1,4}){0,2}", name)
            .prop_map(|(p, n)| format!("{p}/{n}")),
        1 => prop_oneof![Just("in".to_string()), Just("notin".to_string())],
    ]
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "([A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?)?",
        1 => prop_oneof![Just("in".to_string()), Just("notin".to_string())],
    ]
}

fn requirement_strategy() -> impl Strategy<Value = Requirement> {
    let values = prop::collection::vec(value_strategy(), 1..4);
    (key_strategy(), 0..8u8, values, 0..=i64::MAX).prop_map(|(key, op, values, n)| {
        let (op, values) = match op {
            0 => (Operator::Exists, vec![]),
            1 => (Operator::DoesNotExist, vec![]),
            2 => (Operator::Equals, values[..1].to_vec()),
            3 => (Operator::NotEquals, values[..1].to_vec()),
            4 => (Operator::In, values),
            5 => (Operator::NotIn, values),
            6 => (Operator::GreaterThan, vec![n.to_string()]),
            _ => (Operator::LessThan, vec![n.to_string()]),
        };
        Requirement::new(key, op, values).expect("generated requirement is valid")
    })
}

/// Token soup close to the grammar, so that the parser's error paths get exercised, not just the lexer's.
fn selector_like_string() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("in".to_string()),
        Just("notin".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just("==".to_string()),
        Just("!=".to_string()),
        Just("!".to_string()),
        Just(">".to_string()),
        Just("<".to_string()),
        Just(" ".to_string()),
        Just("\0".to_string()),
        "[a-z0-9]{1,3}",
        "[a-z]{1,3}/[a-z]{1,3}",
        "[0-9]{1,3}",
        "\\PC",
    ];
    prop::collection::vec(token, 0..14).prop_map(|t| t.concat())
}

proptest! {
    #[test]
    fn display_then_parse_round_trips(reqs in prop::collection::vec(requirement_strategy(), 0..6)) {
        let sel = LabelSelector::from_requirements(reqs);
        let text = sel.to_string();
        let back = LabelSelector::parse(&text);
        prop_assert_eq!(back.as_ref(), Ok(&sel), "text: {:?}", text);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_strings(s in "\\PC{0,40}") {
        let _ = LabelSelector::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        let _ = LabelSelector::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn whatever_parses_is_stable_through_display(s in selector_like_string()) {
        if let Ok(sel) = LabelSelector::parse(&s) {
            let text = sel.to_string();
            prop_assert_eq!(LabelSelector::parse(&text), Ok(sel), "input {:?} -> {:?}", s, text);
        }
    }

    #[test]
    fn not_operators_are_complements(
        key in key_strategy(),
        values in prop::collection::vec(value_strategy(), 1..4),
        present in prop::option::of(value_strategy()),
    ) {
        let mut l = BTreeMap::new();
        if let Some(v) = present {
            l.insert(key.clone(), v);
        }
        let pos = Requirement::new(key.clone(), Operator::In, values.clone()).unwrap();
        let neg = Requirement::new(key.clone(), Operator::NotIn, values.clone()).unwrap();
        prop_assert_ne!(pos.matches(&l), neg.matches(&l));
        let eq = Requirement::new(key.clone(), Operator::Equals, values[..1].to_vec()).unwrap();
        let ne = Requirement::new(key.clone(), Operator::NotEquals, values[..1].to_vec()).unwrap();
        prop_assert_ne!(eq.matches(&l), ne.matches(&l));
        let ex = Requirement::new(key.clone(), Operator::Exists, vec![]).unwrap();
        let dne = Requirement::new(key, Operator::DoesNotExist, vec![]).unwrap();
        prop_assert_ne!(ex.matches(&l), dne.matches(&l));
    }
}
