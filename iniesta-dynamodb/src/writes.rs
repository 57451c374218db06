//! The conditional writes, one item per request, and what DynamoDB's
//! answers to them mean.
//!
//! Each write is a single-item conditional request: DynamoDB decides the
//! condition and applies the write atomically on the item, so no two
//! owners can both pass. The conditions (every one compares `expires_at`
//! with the caller's time, so an expired item counts as absent):
//!
//! | write | request | condition |
//! |---|---|---|
//! | lock | `PutItem` state `lock` | absent, or expired, or our own lock |
//! | record | `PutItem` state `done` | absent, or expired, or ours (lock or record) |
//! | extend | `UpdateItem` `expires_at`, `ttl` | our own lock, not expired |
//! | release | `DeleteItem` | our own lock, not expired |
//!
//! A refused lock or record asks DynamoDB for the item that refused it
//! (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), which tells a live
//! lock from a completion record without a second request. Every other
//! error (throttling, timeouts, a missing table, service errors) is
//! reported as text for an `Unavailable` answer: only a condition check
//! failure is a decided refusal.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use crate::item::{key_of, number, string, ItemState, StoredItem, LOCKED, NAMES};
use crate::timing::cleanup_at;

/// A lock is written when the key is absent, expired, or our own lock.
pub const ACQUIRE_IF: &str =
    "attribute_not_exists(#id) OR #exp < :now OR (#st = :lock AND #tok = :tok)";
/// A record is written when the key is absent, expired, or ours.
pub const COMPLETE_IF: &str = "attribute_not_exists(#id) OR #exp < :now OR #tok = :tok";
/// Extend and release act only on our own live lock.
pub const HELD_IF: &str = "#st = :lock AND #tok = :tok AND #exp >= :now";
/// What an extend changes.
const EXTEND_SET: &str = "SET #exp = :exp, #ttl = :ttl";

/// What became of one conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Write {
    /// The condition held and the write is done.
    Applied,
    /// The condition failed: nothing changed. Carries the item that
    /// refused the write when DynamoDB returned it.
    Refused(Option<StoredItem>),
}

/// A write's answer; `Err` is why DynamoDB could not decide.
pub(crate) type WriteResult = Result<Write, String>;

/// One table, seen through the conditional writes.
#[derive(Clone, Copy)]
pub(crate) struct Writes<'a> {
    pub client: &'a Client,
    pub table: &'a str,
}

impl Writes<'_> {
    /// Locks `key` with `token` until `now_ms + ttl_ms`.
    pub async fn lock(&self, key: &str, token: &str, now_ms: u64, ttl_ms: u64) -> WriteResult {
        let item = stored(key, token, ItemState::Locked, now_ms.saturating_add(ttl_ms));
        let result = self
            .client
            .put_item()
            .table_name(self.table)
            .set_item(Some(item.to_item()))
            .condition_expression(ACQUIRE_IF)
            .set_expression_attribute_names(Some(names(&["#id", "#exp", "#st", "#tok"])))
            .expression_attribute_values(":now", number(now_ms))
            .expression_attribute_values(":lock", string(LOCKED))
            .expression_attribute_values(":tok", string(token))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        put_answer(result, self.table, key)
    }

    /// Writes our completion record on `key`, kept until
    /// `now_ms + keep_ms`.
    pub async fn record(&self, key: &str, token: &str, now_ms: u64, keep_ms: u64) -> WriteResult {
        let item = stored(key, token, ItemState::Done, now_ms.saturating_add(keep_ms));
        let result = self
            .client
            .put_item()
            .table_name(self.table)
            .set_item(Some(item.to_item()))
            .condition_expression(COMPLETE_IF)
            .set_expression_attribute_names(Some(names(&["#id", "#exp", "#tok"])))
            .expression_attribute_values(":now", number(now_ms))
            .expression_attribute_values(":tok", string(token))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        put_answer(result, self.table, key)
    }

    /// Moves the end of our live lock on `key` to `now_ms + ttl_ms`.
    pub async fn extend(&self, key: &str, token: &str, now_ms: u64, ttl_ms: u64) -> WriteResult {
        let expires_at = now_ms.saturating_add(ttl_ms);
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .set_key(Some(key_of(key)))
            .condition_expression(HELD_IF)
            .update_expression(EXTEND_SET)
            .set_expression_attribute_names(Some(names(&["#st", "#tok", "#exp", "#ttl"])))
            .expression_attribute_values(":now", number(now_ms))
            .expression_attribute_values(":lock", string(LOCKED))
            .expression_attribute_values(":tok", string(token))
            .expression_attribute_values(":exp", number(expires_at))
            .expression_attribute_values(":ttl", number(cleanup_at(expires_at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Write::Applied),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Ok(Write::Refused(None))
                }
                _ => Err(unavailable("UpdateItem", self.table, key, &e)),
            },
        }
    }

    /// Deletes our live lock on `key`.
    pub async fn release(&self, key: &str, token: &str, now_ms: u64) -> WriteResult {
        let result = self
            .client
            .delete_item()
            .table_name(self.table)
            .set_key(Some(key_of(key)))
            .condition_expression(HELD_IF)
            .set_expression_attribute_names(Some(names(&["#st", "#tok", "#exp"])))
            .expression_attribute_values(":now", number(now_ms))
            .expression_attribute_values(":lock", string(LOCKED))
            .expression_attribute_values(":tok", string(token))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Write::Applied),
            Err(e) => match e.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => {
                    Ok(Write::Refused(None))
                }
                _ => Err(unavailable("DeleteItem", self.table, key, &e)),
            },
        }
    }
}

fn stored(key: &str, token: &str, state: ItemState, expires_at: u64) -> StoredItem {
    StoredItem {
        id: key.to_owned(),
        token: token.to_owned(),
        state,
        expires_at,
    }
}

/// The placeholders `used` with the attribute names they stand for
/// (DynamoDB refuses placeholders a request does not use).
fn names(used: &[&str]) -> HashMap<String, String> {
    used.iter()
        .map(|p| {
            let (_, name) = NAMES
                .iter()
                .find(|(placeholder, _)| placeholder == p)
                .expect("every placeholder used is in NAMES");
            ((*p).to_owned(), (*name).to_owned())
        })
        .collect()
}

/// A `PutItem`'s answer: applied, refused (with the refusing item when
/// DynamoDB returned it), or undecided.
fn put_answer<O, R>(
    result: Result<O, SdkError<PutItemError, R>>,
    table: &str,
    key: &str,
) -> WriteResult
where
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(Write::Applied),
        Err(e) => match e.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(refusal)) => {
                refused(refusal.item(), table, key)
            }
            _ => Err(unavailable("PutItem", table, key, &e)),
        },
    }
}

/// A refusal, read from the item DynamoDB returned with it.
pub(crate) fn refused(
    item: Option<&HashMap<String, AttributeValue>>,
    table: &str,
    key: &str,
) -> WriteResult {
    match item {
        None => Ok(Write::Refused(None)),
        Some(item) if item.is_empty() => Ok(Write::Refused(None)),
        Some(item) => StoredItem::from_item(item)
            .map(|s| Write::Refused(Some(s)))
            .map_err(|e| format!("the item of `{key}` in table `{table}` is not a lock item: {e}")),
    }
}

/// Why a request could not be decided, with the SDK's whole error chain
/// (the cause of a dispatch failure or a timeout is several levels down).
pub(crate) fn unavailable<E, R>(op: &str, table: &str, key: &str, e: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    format!(
        "DynamoDB {op} of `{key}` in table `{table}` failed: {}",
        DisplayErrorContext(e)
    )
}

#[cfg(test)]
#[path = "writes_tests.rs"]
mod tests;
