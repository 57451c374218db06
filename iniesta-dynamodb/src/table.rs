//! The lock table: creating it for development and checking it at start-up.
//!
//! The table needs one thing to be right: partition key `id` of type
//! String, and no sort key. [`check_table`] verifies that (a verify step
//! fails on anything else) and reports whether DynamoDB's TTL clean-up is
//! on for the `ttl` attribute (a warning when it is not: expired items then
//! stay in the table, though they never count). [`create_table`] makes such
//! a table (on-demand billing, TTL on `ttl`) and is idempotent: an existing
//! table is checked instead.

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;

use crate::item::{ID, TTL};

/// The table name used when none is configured.
pub const DEFAULT_TABLE: &str = "iniesta-locks";

/// How long [`create_table`] waits for a new table to become active.
pub const CREATE_WAIT: Duration = Duration::from_secs(120);

/// A lock table that passed [`check_table`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableReport {
    /// The table's name.
    pub table: String,
    /// Its status (`ACTIVE`, `CREATING`, …).
    pub status: String,
    /// The attribute DynamoDB's TTL clean-up reads, when it is enabled.
    pub ttl_attribute: Option<String>,
    /// Things that work but deserve attention.
    pub warnings: Vec<String>,
}

/// Why a lock table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// No such table.
    #[error("DynamoDB table `{table}` does not exist; create it with partition key `id` (String), e.g. with iniesta_dynamodb::create_table")]
    Missing {
        /// The table's name.
        table: String,
    },
    /// The table's key is not partition key `id` (String) alone.
    #[error("DynamoDB table `{table}` has key {found}; a lock table needs partition key `id` of type String and no sort key")]
    KeySchema {
        /// The table's name.
        table: String,
        /// The key the table has.
        found: String,
    },
    /// A request failed (credentials, network, permissions, throttling).
    #[error("DynamoDB {operation} of table `{table}` failed: {message}")]
    Request {
        /// The table's name.
        table: String,
        /// The request that failed.
        operation: &'static str,
        /// Why, with the SDK's whole error chain.
        message: String,
    },
}

/// Checks that `table` exists with partition key `id` (String) and no sort
/// key, and reports its status and TTL clean-up.
pub async fn check_table(client: &Client, table: &str) -> Result<TableReport, TableError> {
    let description = describe_table(client, table).await?;
    if let Some(found) = key_schema_problem(&description) {
        return Err(TableError::KeySchema {
            table: table.to_owned(),
            found,
        });
    }
    let status = description
        .table_status()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| "UNKNOWN".to_owned());
    let mut warnings = Vec::new();
    if description.table_status() != Some(&TableStatus::Active) {
        warnings.push(format!("table `{table}` is {status}, not ACTIVE yet"));
    }
    let ttl_attribute = ttl_attribute(client, table).await?;
    match ttl_attribute.as_deref() {
        Some(TTL) => {}
        Some(other) => warnings.push(format!(
            "table `{table}` has TTL clean-up on `{other}`, not `{TTL}`: expired lock items are not cleaned up (they never count, but stay stored)"
        )),
        None => warnings.push(format!(
            "table `{table}` has no TTL clean-up: expired lock items are not deleted (they never count, but stay stored); enable TTL on `{TTL}`"
        )),
    }
    Ok(TableReport {
        table: table.to_owned(),
        status,
        ttl_attribute,
        warnings,
    })
}

/// Creates `table` for development: partition key `id` (String),
/// on-demand billing (`PAY_PER_REQUEST`), TTL clean-up on `ttl`; waits
/// until it is active and returns [`check_table`]'s report. An existing
/// table is left as it is (TTL is enabled on it when it has none) and
/// checked, so calling this again is harmless.
pub async fn create_table(client: &Client, table: &str) -> Result<TableReport, TableError> {
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(ID)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(ID)
                .key_type(KeyType::Hash)
                .build()
                .expect("name and type are set"),
        )
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!(table, "created DynamoDB lock table"),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) =>
        {
            tracing::debug!(table, "DynamoDB lock table exists already")
        }
        Err(e) => return Err(request_error(table, "CreateTable", &e)),
    }
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(CREATE_WAIT)
        .await
        .map_err(|e| request_error(table, "DescribeTable (waiting for the table)", &e))?;
    // Before anything else: a table with another key must not get TTL on.
    let description = describe_table(client, table).await?;
    if let Some(found) = key_schema_problem(&description) {
        return Err(TableError::KeySchema {
            table: table.to_owned(),
            found,
        });
    }
    if ttl_attribute(client, table).await?.is_none() {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL)
                    .build()
                    .expect("name and flag are set"),
            )
            .send()
            .await
            .map_err(|e| request_error(table, "UpdateTimeToLive", &e))?;
    }
    check_table(client, table).await
}

/// `DescribeTable`, with a missing table told apart.
pub async fn describe_table(client: &Client, table: &str) -> Result<TableDescription, TableError> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => out.table.ok_or_else(|| TableError::Request {
            table: table.to_owned(),
            operation: "DescribeTable",
            message: "the answer has no table description".to_owned(),
        }),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(DescribeTableError::ResourceNotFoundException(_))
            ) =>
        {
            Err(TableError::Missing {
                table: table.to_owned(),
            })
        }
        Err(e) => Err(request_error(table, "DescribeTable", &e)),
    }
}

/// What is wrong with a table's key for a lock table, or `None` when it is
/// partition key `id` of type String and nothing else.
pub fn key_schema_problem(description: &TableDescription) -> Option<String> {
    let keys = description.key_schema();
    let id_type = description
        .attribute_definitions()
        .iter()
        .find(|a| a.attribute_name() == ID)
        .map(|a| a.attribute_type().clone());
    let right = keys.len() == 1
        && keys[0].attribute_name() == ID
        && keys[0].key_type() == &KeyType::Hash
        && id_type == Some(ScalarAttributeType::S);
    if right {
        return None;
    }
    let describe = keys
        .iter()
        .map(|k| {
            let kind = description
                .attribute_definitions()
                .iter()
                .find(|a| a.attribute_name() == k.attribute_name())
                .map(|a| a.attribute_type().as_str().to_owned())
                .unwrap_or_else(|| "?".to_owned());
            format!(
                "`{}` {} ({kind})",
                k.attribute_name(),
                k.key_type().as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Some(if describe.is_empty() {
        "none".to_owned()
    } else {
        describe
    })
}

/// The attribute TTL clean-up is enabled (or being enabled) on.
async fn ttl_attribute(client: &Client, table: &str) -> Result<Option<String>, TableError> {
    let out = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| request_error(table, "DescribeTimeToLive", &e))?;
    Ok(out
        .time_to_live_description()
        .and_then(|d| match d.time_to_live_status() {
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
                d.attribute_name().map(str::to_owned)
            }
            _ => None,
        }))
}

fn request_error<E: std::error::Error + 'static>(
    table: &str,
    operation: &'static str,
    e: &E,
) -> TableError {
    TableError::Request {
        table: table.to_owned(),
        operation,
        message: DisplayErrorContext(e).to_string(),
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
