//! The Lua scripts: every write checks the owner token on the node itself,
//! atomically, so a client whose lock expired can never change a lock or a
//! completion record that is someone else's.
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
/// Answers `"acquired"` (free, or already ours: TTL renewed), `"done"` (a
/// completion record exists) or `"busy"`.
pub static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 'acquired'
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 'acquired'
end
if string.sub(v, 1, 5) == 'done:' then
  return 'done'
end
return 'busy'
"#,
    )
});

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

/// `KEYS[1]` lock key; `ARGV[1]` token; `ARGV[2]` how long to keep the
/// record, in ms. Records that the work is done unless someone else may
/// still be doing it:
/// - free (never locked, expired, released), our lock, or our record →
///   our record for `ARGV[2]` ms, answers 1;
/// - another owner's record → unchanged, answers 1 (the work is recorded);
/// - another owner's lock → unchanged, answers 0.
///
/// A free key is taken because the caller's handler did finish: refusing
/// it (the lock expired during the work) would leave no record, and a
/// later duplicate of the event would run the handler again. Another
/// owner's lock is left alone: they may still fail, and then their message
/// must be redelivered.
pub static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local v = redis.call('GET', KEYS[1])
local record = 'done:' .. ARGV[1]
if v and v ~= ARGV[1] and v ~= record then
  if string.sub(v, 1, 5) == 'done:' then
    return 1
  end
  return 0
end
redis.call('SET', KEYS[1], record, 'PX', ARGV[2])
return 1
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
