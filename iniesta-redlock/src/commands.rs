//! Acquire and complete as plain commands, one per key, pipelined: what a
//! message costs Redis when the server can compare and set.
//!
//! **Acquire**, on every server: `SET key token NX PX ttl GET` (Redis 7.0
//! allows `NX` with `GET`) takes a free key and tells what held it
//! otherwise, in one atomic step, with the rules of the acquire script it
//! replaced: free → `"acquired"`; our own token (the pipeline was sent
//! again after a lost reply) → `"acquired"` (the TTL set by the first send
//! already covers the validity counted from before it); a completion
//! record → `"done"`; another owner's token → `"busy"`; a value of another
//! type → that key's `WRONGTYPE` error.
//!
//! **Complete**, on a server that takes `SET … IFEQ` (Redis 8.4, Valkey
//! 8.1): `SET key done:token IFEQ token PX keep GET` turns our lock into our
//! record and tells what was there, in one atomic step: the token check
//! happens on the node, before the write, as in the
//! [`COMPLETE`](crate::scripts::COMPLETE) script. What was there decides
//! the answer as the script does: our lock → written, 1; our record (a
//! retry) or another owner's record → 1 (the work is recorded); another
//! owner's lock → unchanged, 0; a value of another type → `WRONGTYPE`. A
//! free key (the lock expired during the work) is not written by `IFEQ`;
//! it costs a second command, `SET key done:token NX PX keep GET`, whose
//! answer reads the same way (a free key written → 1); our record (a
//! retried complete) is renewed by a second command too, as the script
//! renews it. Both are rare, so a message costs one command per node here,
//! against one per key plus two per batch for the script.

use redis::{Cmd, Value};

use crate::node::EntryReply;
use crate::scripts::DONE_PREFIX;

/// `SET key token NX PX ttl GET` for each `(key, token)`.
pub(crate) fn acquire(entries: &[(String, String)], ttl_ms: &str) -> Vec<Cmd> {
    entries
        .iter()
        .map(|(key, token)| set(key, token, &["NX", "PX", ttl_ms, "GET"]))
        .collect()
}

/// The acquire script's answer for a key, from its `SET … NX … GET` reply.
pub(crate) fn acquire_answer(reply: EntryReply, token: &str) -> EntryReply {
    let held = match reply? {
        Value::Nil => return Ok(status("acquired")),
        other => other,
    };
    match text(&held) {
        Some(t) if t == token => Ok(status("acquired")),
        Some(t) if t.starts_with(DONE_PREFIX) => Ok(status("done")),
        Some(_) => Ok(status("busy")),
        None => Err(format!("unexpected reply to SET NX GET: {held:?}")),
    }
}

/// `SET key done:token IFEQ token PX keep GET` for each `(key, token)`.
pub(crate) fn complete(entries: &[(String, String)], keep_ms: &str) -> Vec<Cmd> {
    entries
        .iter()
        .map(|(key, token)| set(key, &record(token), &["IFEQ", token, "PX", keep_ms, "GET"]))
        .collect()
}

/// `SET key done:token NX PX keep GET`: the record on a key found free.
pub(crate) fn complete_free(key: &str, token: &str, keep_ms: &str) -> Cmd {
    set(key, &record(token), &["NX", "PX", keep_ms, "GET"])
}

/// `SET key done:token IFEQ done:token PX keep`: renews a record of ours,
/// as the complete script does for a retried complete.
pub(crate) fn renew_record(key: &str, token: &str, keep_ms: &str) -> Cmd {
    let record = record(token);
    set(key, &record, &["IFEQ", &record, "PX", keep_ms])
}

/// What a complete's first command found.
#[derive(Debug, PartialEq)]
pub(crate) enum Found {
    /// Decided: the complete script's entry for the key (1 or 0), or the
    /// key's error.
    Answer(EntryReply),
    /// Our record already (a retried complete): answered 1, and renewed
    /// by [`renew_record`].
    OurRecord,
    /// The key was free: not written by `IFEQ`; [`complete_free`] decides.
    Free,
}

/// Reads the reply of [`complete`]'s command for a key.
pub(crate) fn complete_answer(reply: EntryReply, token: &str) -> Found {
    match reply {
        Ok(Value::Nil) => Found::Free,
        Ok(ref v) if text(v).is_some_and(|t| t == record(token)) => Found::OurRecord,
        other => Found::Answer(written(other, token)),
    }
}

/// Reads the reply of [`complete_free`]: nil means it wrote the record.
pub(crate) fn complete_free_answer(reply: EntryReply, token: &str) -> EntryReply {
    match reply? {
        Value::Nil => Ok(Value::Int(1)),
        other => written(Ok(other), token),
    }
}

/// 1 when what the key held was our lock or any record, 0 for another
/// owner's lock.
fn written(reply: EntryReply, token: &str) -> EntryReply {
    let held = reply?;
    match text(&held) {
        Some(t) if t == token || t.starts_with(DONE_PREFIX) => Ok(Value::Int(1)),
        Some(_) => Ok(Value::Int(0)),
        None => Err(format!("unexpected reply to SET GET: {held:?}")),
    }
}

/// `SET key value` followed by `options`.
fn set(key: &str, value: &str, options: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    for option in options {
        cmd.arg(*option);
    }
    cmd
}

fn record(token: &str) -> String {
    format!("{DONE_PREFIX}{token}")
}

fn status(s: &str) -> Value {
    Value::SimpleString(s.to_owned())
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
