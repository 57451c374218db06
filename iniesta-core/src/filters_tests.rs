//! Filters and the policy built from them: its JSON, comparison as a set,
//! invalid filters and matching.

use super::*;

#[test]
fn builds_the_original_policy() {
    let p = FilterPolicy::from_filters("iniesta_pass", ["UserCreated.users", "Order.*"]).unwrap();
    let v = p.to_json();
    let list = v["iniesta_pass"].as_array().unwrap();
    assert!(list.contains(&serde_json::json!("UserCreated.users")));
    assert!(list.contains(&serde_json::json!({"prefix": "Order."})));
    assert_eq!(list.len(), 2);
}

#[test]
fn comparison_ignores_order_and_spacing() {
    let p = FilterPolicy::from_filters("iniesta_pass", ["A.x", "B.*"]).unwrap();
    assert!(p.same_as_json(r#"{ "iniesta_pass" : [ {"prefix":"B."}, "A.x" ] }"#));
    assert!(p.same_as_json(r#"{"iniesta_pass":["A.x",{"prefix":"B."},"A.x"]}"#));
    assert!(!p.same_as_json(r#"{"iniesta_pass":["A.x"]}"#));
    assert!(!p.same_as_json(r#"{"other":["A.x",{"prefix":"B."}]}"#));
    assert!(!p.same_as_json("not json"));
}

#[test]
fn invalid_filters_are_errors() {
    assert_eq!(Filter::parse(""), Err(FilterError::Empty));
    assert!(matches!(
        Filter::parse("a b"),
        Err(FilterError::Whitespace(_))
    ));
    assert!(matches!(
        Filter::parse("*"),
        Err(FilterError::MisplacedWildcard(_))
    ));
    assert!(matches!(
        Filter::parse("A*"),
        Err(FilterError::MisplacedWildcard(_))
    ));
    assert!(matches!(
        Filter::parse("A.*.b"),
        Err(FilterError::MisplacedWildcard(_))
    ));
    assert_eq!(
        FilterPolicy::from_filters::<&str>("k", []),
        Err(FilterError::NoFilters)
    );
}

#[test]
fn matching() {
    let p = FilterPolicy::from_filters("iniesta_pass", ["A.x", "B.*"]).unwrap();
    let attrs =
        |v: &str| BTreeMap::from([("iniesta_pass".to_string(), AttributeValue::String(v.into()))]);
    assert!(p.matches(&attrs("A.x")));
    assert!(p.matches(&attrs("B.anything")));
    assert!(!p.matches(&attrs("A.y")));
    assert!(!p.matches(&attrs("Bx")));
    assert!(!p.matches(&BTreeMap::new()));
}
