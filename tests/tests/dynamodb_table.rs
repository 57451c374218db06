//! The lock table functions against moto_server's DynamoDB: creating the
//! table is idempotent, and checking it tells a missing table, a table
//! with another key, and a table without TTL clean-up apart.

mod common;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use iniesta_dynamodb::item::{ID, TTL};
use iniesta_dynamodb::{check_table, create_table, DynamoLock, TableError, DEFAULT_TABLE};
use iniesta_tests::servers::moto::MotoServer;

use common::dynamodb::client;

#[tokio::test]
async fn creating_the_table_is_idempotent_and_checked() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let client = client(&moto.endpoint());
    let missing = check_table(&client, DEFAULT_TABLE).await.unwrap_err();
    assert!(
        matches!(&missing, TableError::Missing { table } if table == DEFAULT_TABLE),
        "{missing}"
    );

    let first = create_table(&client, DEFAULT_TABLE).await.expect("create");
    assert_eq!(first.table, DEFAULT_TABLE);
    assert_eq!(first.status, "ACTIVE");
    assert_eq!(first.ttl_attribute.as_deref(), Some(TTL));
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    let second = create_table(&client, DEFAULT_TABLE)
        .await
        .expect("create again");
    assert_eq!(first, second);
    let lock = DynamoLock::new(client.clone(), DEFAULT_TABLE);
    assert_eq!(lock.check().await.expect("check"), first);

    let described = client
        .describe_table()
        .table_name(DEFAULT_TABLE)
        .send()
        .await
        .unwrap();
    let billing = described
        .table()
        .and_then(|t| t.billing_mode_summary())
        .and_then(|b| b.billing_mode());
    assert_eq!(billing, Some(&BillingMode::PayPerRequest));
}

#[tokio::test]
async fn a_table_with_another_key_is_refused() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let client = client(&moto.endpoint());
    client
        .create_table()
        .table_name("wrong")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create a table with another key");
    for err in [
        check_table(&client, "wrong").await.unwrap_err(),
        create_table(&client, "wrong").await.unwrap_err(),
    ] {
        assert!(
            matches!(&err, TableError::KeySchema { found, .. } if found == "`pk` HASH (S)"),
            "{err}"
        );
    }
    // A table without TTL clean-up works, with a warning.
    client
        .create_table()
        .table_name("no-ttl")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(ID)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(ID)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create a table without TTL");
    let report = check_table(&client, "no-ttl").await.expect("usable");
    assert_eq!(report.ttl_attribute, None);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("no TTL clean-up")),
        "{:?}",
        report.warnings
    );
}
