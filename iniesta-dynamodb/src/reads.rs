//! Reading items back, many keys per request.
//!
//! A refused write normally carries the item that refused it. When a
//! DynamoDB-compatible service leaves it out, the keys in question are read
//! afterwards, all in one strongly consistent `BatchGetItem` (up to 100
//! keys a request), to tell a live lock (`Busy`, `NotHeld`) from a
//! completion record (`Done`, `Ok`).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;

use crate::item::{key_of, StoredItem, ID};

/// The most keys one `BatchGetItem` may ask for.
pub const MAX_BATCH_GET: usize = 100;

/// How often keys DynamoDB left unprocessed are asked for again.
const UNPROCESSED_ROUNDS: usize = 3;

/// What a key holds, as read: absent keys are missing from the map; an
/// item this crate cannot read maps to the reason.
pub(crate) type Items = HashMap<String, Result<StoredItem, String>>;

/// Reads `keys` from `table` with strongly consistent reads. `Err` when a
/// request failed or DynamoDB kept leaving keys unprocessed.
pub(crate) async fn read_items(
    client: &Client,
    table: &str,
    keys: &[&str],
) -> Result<Items, String> {
    let mut unique: Vec<&str> = keys.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut items = Items::new();
    for chunk in unique.chunks(MAX_BATCH_GET) {
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(chunk.iter().map(|k| key_of(k)).collect()))
            .consistent_read(true)
            .build()
            .map_err(|e| format!("building a BatchGetItem for table `{table}`: {e}"))?;
        let mut rounds = 0;
        loop {
            let out = client
                .batch_get_item()
                .request_items(table, pending.clone())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "DynamoDB BatchGetItem of {} keys in table `{table}` failed: {}",
                        chunk.len(),
                        DisplayErrorContext(&e)
                    )
                })?;
            let found = out.responses().and_then(|r| r.get(table));
            for item in found.into_iter().flatten() {
                add(&mut items, item);
            }
            match out.unprocessed_keys().and_then(|u| u.get(table)) {
                Some(left) if !left.keys().is_empty() => {
                    rounds += 1;
                    if rounds >= UNPROCESSED_ROUNDS {
                        return Err(format!(
                            "DynamoDB left {} keys of table `{table}` unprocessed {rounds} times (throttled)",
                            left.keys().len()
                        ));
                    }
                    pending = left.clone();
                }
                _ => break,
            }
        }
    }
    Ok(items)
}

fn add(items: &mut Items, item: &HashMap<String, AttributeValue>) {
    let Some(AttributeValue::S(id)) = item.get(ID) else {
        return;
    };
    items.insert(id.clone(), StoredItem::from_item(item));
}
