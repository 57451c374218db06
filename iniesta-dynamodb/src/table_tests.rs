use super::*;

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .unwrap()
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

#[test]
fn the_right_key_has_no_problem() {
    let d = TableDescription::builder()
        .attribute_definitions(attribute("id", ScalarAttributeType::S))
        .key_schema(key("id", KeyType::Hash))
        .build();
    assert_eq!(key_schema_problem(&d), None);
}

#[test]
fn other_keys_are_described() {
    let numeric = TableDescription::builder()
        .attribute_definitions(attribute("id", ScalarAttributeType::N))
        .key_schema(key("id", KeyType::Hash))
        .build();
    assert_eq!(
        key_schema_problem(&numeric).as_deref(),
        Some("`id` HASH (N)")
    );

    let renamed = TableDescription::builder()
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .build();
    assert_eq!(
        key_schema_problem(&renamed).as_deref(),
        Some("`pk` HASH (S)")
    );

    let with_sort = TableDescription::builder()
        .attribute_definitions(attribute("id", ScalarAttributeType::S))
        .attribute_definitions(attribute("sk", ScalarAttributeType::S))
        .key_schema(key("id", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .build();
    assert_eq!(
        key_schema_problem(&with_sort).as_deref(),
        Some("`id` HASH (S), `sk` RANGE (S)")
    );

    let empty = TableDescription::builder().build();
    assert_eq!(key_schema_problem(&empty).as_deref(), Some("none"));
}

#[test]
fn errors_say_what_to_do() {
    let missing = TableError::Missing {
        table: "locks".into(),
    }
    .to_string();
    assert!(missing.contains("`locks` does not exist"), "{missing}");
    assert!(missing.contains("partition key `id`"), "{missing}");
    let wrong = TableError::KeySchema {
        table: "locks".into(),
        found: "`pk` HASH (S)".into(),
    }
    .to_string();
    assert!(wrong.contains("`pk` HASH (S)"), "{wrong}");
}
