//! The Lua scripts: every write checks the owner token on the node itself,
//! atomically, so a client whose lock expired can never change a lock or a
//! completion record that is someone else's. Acquire needs none (one
//! `SET … NX … GET` per key), and complete needs one only on a server
//! without `SET … IFEQ` (see `commands.rs`, which applies the same rules).
//!
//! Key states on a node: absent (free); a token (locked, with a TTL);
//! `done:` + token (a completion record, kept for the dedupe window).
//! Writes are idempotent for their owner, so a call retried after a lost
//! reply gives the same answer.
//!
//! [`MemoryNode`](crate::memory::MemoryNode) applies the same rules to a
//! map; a change here MUST be made there too (the real-Redis tests compare
//! the two).

use std::sync::LazyLock;

use redis::Script;

/// The prefix of a completion record's value.
pub const DONE_PREFIX: &str = "done:";

/// `KEYS[1]` lock key; `ARGV[1]` token; `ARGV[2]` TTL in ms.
/// Answers 1 when the lock was ours and now lives `ARGV[2]` ms, else 0.
pub static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#,
    )
});

/// A batch of completes: `KEYS` the lock keys; `ARGV[1]` how long to keep
/// the records, in ms; `ARGV[1 + i]` the token for `KEYS[i]`. Records, for
/// each key, that the work is done unless someone else may still be doing
/// it, and answers one entry per key, in order:
/// - free (never locked, expired, released), our lock, or our record →
///   our record for `ARGV[1]` ms, answers 1;
/// - another owner's record → unchanged, answers 1 (the work is recorded);
/// - another owner's lock → unchanged, answers 0;
/// - a value of another type → unchanged, answers the `WRONGTYPE` error.
///
/// A free key is taken because the caller's handler did finish: refusing
/// it (the lock expired during the work) would leave no record, and a
/// later duplicate of the event would run the handler again. Another
/// owner's lock is left alone: they may still fail, and then their message
/// must be redelivered.
///
/// One `MGET` reads the whole batch, then one `SET` per key that takes the
/// record: the token check needs the value before the write (Redis 7 has
/// no compare-and-set), and reading every key in one command keeps the
/// cost at one command per key plus two per batch. A key listed twice sees,
/// the second time, the record the first wrote (`wrote`), as one entry at
/// a time would. `MGET` answers nil for a value of another type as for a
/// missing key; `SET … NX` tells them apart (it writes only a missing key).
pub static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local keep = ARGV[1]
local values = redis.call('MGET', unpack(KEYS))
local wrote = {}
local out = {}
for i, key in ipairs(KEYS) do
  local token = ARGV[i + 1]
  local record = 'done:' .. token
  local v = wrote[key] or values[i]
  if not v then
    if redis.call('SET', key, record, 'NX', 'PX', keep) then
      wrote[key] = record
      out[i] = 1
    else
      out[i] = redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
    end
  elseif v == token or v == record then
    redis.call('SET', key, record, 'PX', keep)
    wrote[key] = record
    out[i] = 1
  elseif string.sub(v, 1, 5) == 'done:' then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"#,
    )
});

/// `KEYS[1]` lock key; `ARGV[1]` token. Deletes the key and answers 1 when
/// the lock is ours, else 0 (a completion record is never deleted).
pub static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#,
    )
});
