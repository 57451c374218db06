//! Reading the scripts' Redis replies as node answers for the
//! [`quorum`](crate::quorum) rules.
//!
//! A reply the scripts never give (a wrong type, a script from another
//! version) is not guessed at: it counts as a node that gave no answer, so
//! it can never tip a decision.

use redis::Value;

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

/// The extend, complete and release scripts' reply: 1 (did it) or 0.
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
