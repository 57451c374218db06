//! Reading the scripts' Redis replies as node answers for the
//! [`quorum`](crate::quorum) rules.
//!
//! A reply the scripts never give (a wrong type, a script from another
//! version) is not guessed at: it counts as a node that gave no answer, so
//! it can never tip a decision.

use redis::{RedisError, Value};

use crate::node::EntryReply;
use crate::quorum::{AcquireReply, NodeAnswer};

/// One node's whole answer to a pipeline: a reply per call, or why the
/// node as a whole failed.
pub(crate) type NodeReply = Result<Vec<EntryReply>, String>;

/// The answer of the node labelled `label` to call `i` of its pipeline,
/// read by `read`.
pub(crate) fn answer<R>(
    label: &str,
    reply: &NodeReply,
    i: usize,
    read: fn(&Value) -> Option<R>,
) -> NodeAnswer<R> {
    let value = match reply {
        Err(e) => return Err(e.clone()),
        Ok(entries) => match entries.get(i) {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(e.clone()),
            None => return Err(format!("{label}: missing reply")),
        },
    };
    read(value).ok_or_else(|| format!("{label}: unexpected reply {value:?}"))
}

/// A node's replies to batch script calls (call `c` covered `sizes[c]`
/// keys and answered one entry per key), as one reply per key, in order,
/// so that [`answer`] reads key `i` at position `i`.
///
/// A call that failed as a whole fails each of its keys with its reason; an
/// entry the script set to an error (one key's `WRONGTYPE`) fails that key
/// alone; a reply of another shape fails each key of its call.
pub(crate) fn per_key(label: &str, reply: NodeReply, sizes: &[usize]) -> NodeReply {
    let calls = reply?;
    let mut keys = Vec::with_capacity(sizes.iter().sum());
    for (i, &size) in sizes.iter().enumerate() {
        match calls.get(i) {
            Some(Ok(Value::Array(items))) if items.len() == size => {
                keys.extend(items.iter().map(|item| match item {
                    Value::ServerError(e) => {
                        Err(format!("{label}: {}", RedisError::from(e.clone())))
                    }
                    other => Ok(other.clone()),
                }));
            }
            Some(Err(e)) => keys.extend(std::iter::repeat(Err(e.clone())).take(size)),
            Some(Ok(other)) => {
                let e = format!("{label}: unexpected reply to a batch of {size} keys: {other:?}");
                keys.extend(std::iter::repeat(Err(e)).take(size));
            }
            None => {
                let e = format!("{label}: missing reply");
                keys.extend(std::iter::repeat(Err(e)).take(size));
            }
        }
    }
    Ok(keys)
}

/// The acquire script's reply: `"acquired"`, `"busy"` or `"done"`.
pub(crate) fn acquire_reply(value: &Value) -> Option<AcquireReply> {
    let text = match value {
        Value::BulkString(b) => std::str::from_utf8(b).ok()?,
        Value::SimpleString(s) => s.as_str(),
        _ => return None,
    };
    match text {
        "acquired" => Some(AcquireReply::Acquired),
        "busy" => Some(AcquireReply::Busy),
        "done" => Some(AcquireReply::Done),
        _ => None,
    }
}

/// The extend and release scripts' reply, and the complete script's entry
/// for one key: 1 (did it) or 0.
pub(crate) fn write_reply(value: &Value) -> Option<bool> {
    match value {
        Value::Int(1) => Some(true),
        Value::Int(0) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[path = "replies_tests.rs"]
mod tests;
