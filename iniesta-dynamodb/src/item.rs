//! The lock table's items: one per lock key, holding either a lock or a
//! completion record.
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `id` | S (partition key) | the lock key (`sqs:event:…`) |
//! | `token` | S | the owner's token (128-bit random hex) |
//! | `state` | S | `lock` or `done` (a completion record) |
//! | `expires_at` | N | epoch **milliseconds**: the item is dead once the time is past it |
//! | `ttl` | N | epoch **seconds**, for DynamoDB's TTL clean-up only |
//!
//! An item whose `expires_at` has passed counts as absent everywhere: every
//! condition compares it with the caller's time, because DynamoDB's TTL
//! deletes expired items only eventually (often hours late).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::timing::cleanup_at;

/// The partition key attribute: the lock key.
pub const ID: &str = "id";
/// The owner's token.
pub const TOKEN: &str = "token";
/// `lock` or `done`.
pub const STATE: &str = "state";
/// Epoch milliseconds after which the item is dead.
pub const EXPIRES_AT: &str = "expires_at";
/// Epoch seconds, for DynamoDB's TTL (clean-up only).
pub const TTL: &str = "ttl";

/// The `state` of a lock.
pub const LOCKED: &str = "lock";
/// The `state` of a completion record.
pub const DONE: &str = "done";

/// The attribute names the conditions use, as expression placeholders
/// (`state`, `token` and `ttl` are DynamoDB reserved words).
pub(crate) const NAMES: [(&str, &str); 5] = [
    ("#id", ID),
    ("#tok", TOKEN),
    ("#st", STATE),
    ("#exp", EXPIRES_AT),
    ("#ttl", TTL),
];

/// What an item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    /// A lock.
    Locked,
    /// A completion record.
    Done,
}

/// One item of the lock table, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    /// The lock key.
    pub id: String,
    /// The owner's token.
    pub token: String,
    /// Lock or completion record.
    pub state: ItemState,
    /// Epoch milliseconds after which the item is dead.
    pub expires_at: u64,
}

impl StoredItem {
    /// Reads an item as DynamoDB returns it. An item missing an attribute
    /// or holding an unknown `state` is an error naming what is wrong: the
    /// table holds something this crate did not write.
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<StoredItem, String> {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => Ok(s.clone()),
            Some(other) => Err(format!("attribute `{name}` is not a string: {other:?}")),
            None => Err(format!("attribute `{name}` is missing")),
        };
        let state = match text(STATE)?.as_str() {
            LOCKED => ItemState::Locked,
            DONE => ItemState::Done,
            other => {
                return Err(format!(
                    "attribute `{STATE}` is {other:?}, not `lock` or `done`"
                ))
            }
        };
        let expires_at = match item.get(EXPIRES_AT) {
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| format!("attribute `{EXPIRES_AT}` is not a whole number: {n:?}"))?,
            Some(other) => {
                return Err(format!(
                    "attribute `{EXPIRES_AT}` is not a number: {other:?}"
                ))
            }
            None => return Err(format!("attribute `{EXPIRES_AT}` is missing")),
        };
        Ok(StoredItem {
            id: text(ID)?,
            token: text(TOKEN)?,
            state,
            expires_at,
        })
    }

    /// Whether the item is still in force at `now_ms` (it lives through
    /// its last millisecond, as the conditions' `expires_at < :now` say).
    pub fn live_at(&self, now_ms: u64) -> bool {
        now_ms <= self.expires_at
    }

    /// The item as written to the table.
    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        let state = match self.state {
            ItemState::Locked => LOCKED,
            ItemState::Done => DONE,
        };
        HashMap::from([
            (ID.to_owned(), AttributeValue::S(self.id.clone())),
            (TOKEN.to_owned(), AttributeValue::S(self.token.clone())),
            (STATE.to_owned(), AttributeValue::S(state.to_owned())),
            (EXPIRES_AT.to_owned(), number(self.expires_at)),
            (TTL.to_owned(), number(cleanup_at(self.expires_at))),
        ])
    }
}

/// A DynamoDB number.
pub(crate) fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// A DynamoDB string.
pub(crate) fn string(s: &str) -> AttributeValue {
    AttributeValue::S(s.to_owned())
}

/// The key of `id`'s item.
pub(crate) fn key_of(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(ID.to_owned(), string(id))])
}

#[cfg(test)]
#[path = "item_tests.rs"]
mod tests;
