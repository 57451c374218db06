//! The checks themselves, one function per named rule, and what they share.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use iniesta_core::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};

use super::*;

pub(super) fn kind(outcome: &AcquireOutcome) -> &'static str {
    match outcome {
        AcquireOutcome::Acquired { .. } => "Acquired",
        AcquireOutcome::Busy => "Busy",
        AcquireOutcome::Done => "Done",
        AcquireOutcome::Unavailable(_) => "Unavailable",
    }
}

/// The token of an `Acquired` outcome with a sensible validity.
pub(super) fn acquired(
    what: &str,
    outcome: AcquireOutcome,
    ttl: Duration,
) -> Result<LockToken, String> {
    match outcome {
        AcquireOutcome::Acquired { token, validity } => {
            if validity.is_zero() || validity > ttl {
                Err(format!(
                    "{what}: validity {validity:?} is not within (0, {ttl:?}]"
                ))
            } else if token.as_str().is_empty() {
                Err(format!("{what}: the token is empty"))
            } else {
                Ok(token)
            }
        }
        other => Err(format!("{what} answered {other:?}; expected Acquired")),
    }
}

fn expect<T: fmt::Debug + PartialEq>(what: &str, got: T, want: T) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} answered {got:?}; expected {want:?}"))
    }
}

/// An extend must succeed with a validity within `(0, ttl]`.
fn extended(what: &str, got: Result<Duration, LockError>, ttl: Duration) -> Outcome {
    match got {
        Ok(v) if !v.is_zero() && v <= ttl => Ok(()),
        Ok(v) => Err(format!("{what}: validity {v:?} is not within (0, {ttl:?}]")),
        Err(e) => Err(format!("{what} answered Err({e:?}); expected Ok")),
    }
}

fn not_held<T: fmt::Debug>(what: &str, got: Result<T, LockError>) -> Outcome {
    match got {
        Err(LockError::NotHeld) => Ok(()),
        other => Err(format!("{what} answered {other:?}; expected Err(NotHeld)")),
    }
}

pub(super) async fn run_check<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    match c.check {
        "empty_batches" => empty_batches(c).await,
        "acquire_free_key" => acquire_free_key(c).await,
        "acquire_held_key_is_busy" => acquire_held_key_is_busy(c).await,
        "tokens_are_unique" => tokens_are_unique(c).await,
        "foreign_token_changes_nothing" => foreign_token_changes_nothing(c).await,
        "release_frees_key" => release_frees_key(c).await,
        "release_retried_is_harmless" => release_retried_is_harmless(c).await,
        "complete_turns_lock_into_record" => complete_turns_lock_into_record(c).await,
        "complete_retried_is_ok" => complete_retried_is_ok(c).await,
        "complete_on_free_key_writes_record" => complete_on_free_key_writes_record(c).await,
        "complete_refused_by_other_live_lock" => complete_refused_by_other_live_lock(c).await,
        "batch_acquire_in_request_order" => batch_acquire_in_request_order(c).await,
        "batch_complete_in_request_order" => batch_complete_in_request_order(c).await,
        "batch_with_same_key_twice_locks_once" => batch_with_same_key_twice_locks_once(c).await,
        "acquire_each_answers_every_key_once" => acquire_each_answers_every_key_once(c).await,
        "acquire_each_never_retries_busy" => acquire_each_never_retries_busy(c).await,
        "lock_expires_after_ttl" => lock_expires_after_ttl(c).await,
        "extend_keeps_lock" => extend_keeps_lock(c).await,
        "complete_after_expiry_writes_record" => complete_after_expiry_writes_record(c).await,
        "record_outlives_lock_for_keep_for" => record_outlives_lock_for_keep_for(c).await,
        "complete_keeps_other_record" => complete_keeps_other_record(c).await,
        other => Err(format!("there is no check called {other:?}")),
    }
}

/// Every `(index, outcome)` pair `acquire_each` hands over.
async fn acquire_each_pairs<L: LockBackend>(
    lock: &L,
    keys: Vec<LockKey>,
    ttl: Duration,
) -> Vec<(usize, AcquireOutcome)> {
    let mut pairs = Vec::new();
    lock.acquire_each(keys, ttl, &mut |group| pairs.extend(group))
        .await;
    pairs
}

// ---------------------------------------------------------------------------
// Checks that do not wait

async fn empty_batches<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let a = c.owner();
    expect(
        "acquire of no keys",
        a.acquire(Vec::new(), c.t.hold).await.len(),
        0,
    )?;
    expect(
        "complete of no entries",
        a.complete(Vec::new(), c.t.hold).await.len(),
        0,
    )?;
    let pairs = acquire_each_pairs(&a, Vec::new(), c.t.hold).await;
    expect(
        "acquire_each of no keys (answers handed over)",
        pairs.len(),
        0,
    )
}

async fn acquire_free_key<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let a = c.owner();
    c.take(&a, &c.key("k"), c.t.hold).await.map(drop)
}

async fn acquire_held_key_is_busy<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let k = c.key("k");
    let ta = c.take(&a, &k, c.t.hold).await?;
    let other = c.try_acquire(&b, &k, c.t.hold).await?;
    expect("acquire of a key another owner holds", kind(&other), "Busy")?;
    let again = c.try_acquire(&a, &k, c.t.hold).await?;
    expect(
        "a second acquire of a held key (a new attempt, a new owner)",
        kind(&again),
        "Busy",
    )?;
    extended(
        "the holder's extend after others were refused",
        a.extend(k, ta, c.t.hold).await,
        c.t.hold,
    )
}

async fn tokens_are_unique<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let mut tokens = BTreeSet::new();
    for (owner, name) in [(&a, "a"), (&b, "b"), (&a, "a2")] {
        let keys: Vec<LockKey> = (0..8).map(|i| c.key(&format!("{name}-{i}"))).collect();
        let out = owner.acquire(keys.clone(), c.t.hold).await;
        expect("number of outcomes of an 8-key acquire", out.len(), 8)?;
        for (key, outcome) in keys.iter().zip(out) {
            let token = acquired(&format!("acquire of free key `{key}`"), outcome, c.t.hold)?;
            if !tokens.insert(token.clone()) {
                return Err(format!("token {token:?} was given to two locks"));
            }
        }
    }
    Ok(())
}

async fn foreign_token_changes_nothing<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let (ka, kb) = (c.key("a"), c.key("b"));
    let ta = c.take(&a, &ka, c.t.hold).await?;
    let tb = c.take(&b, &kb, c.t.hold).await?;
    not_held(
        "extend of a's lock with b's token",
        b.extend(ka.clone(), tb.clone(), c.t.hold).await,
    )?;
    not_held(
        "release of a's lock with b's token",
        b.release(ka.clone(), tb.clone()).await,
    )?;
    not_held(
        "complete of a's lock with b's token",
        c.complete_one(&b, &ka, &tb, c.t.hold).await?,
    )?;
    not_held(
        "release of b's lock with a's token",
        a.release(kb.clone(), ta.clone()).await,
    )?;
    c.expect_state(&ka, "Busy", "a's lock must survive b's attempts")
        .await?;
    c.expect_state(&kb, "Busy", "b's lock must survive a's attempts")
        .await?;
    extended(
        "a's extend of its own lock",
        a.extend(ka.clone(), ta.clone(), c.t.hold).await,
        c.t.hold,
    )?;
    extended(
        "b's extend of its own lock",
        b.extend(kb, tb, c.t.hold).await,
        c.t.hold,
    )?;
    expect(
        "a's release of its own lock",
        a.release(ka, ta).await,
        Ok(()),
    )
}

async fn release_frees_key<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let k = c.key("k");
    let ta = c.take(&a, &k, c.t.hold).await?;
    expect(
        "release of our lock",
        a.release(k.clone(), ta).await,
        Ok(()),
    )?;
    c.take(&b, &k, c.t.hold).await.map(drop)
}

async fn release_retried_is_harmless<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let k = c.key("k");
    let ta = c.take(&a, &k, c.t.hold).await?;
    expect(
        "release of our lock",
        a.release(k.clone(), ta.clone()).await,
        Ok(()),
    )?;
    not_held(
        "the same release retried",
        a.release(k.clone(), ta.clone()).await,
    )?;
    let tb = c.take(&b, &k, c.t.hold).await?;
    not_held(
        "the old release retried after b took the key",
        a.release(k.clone(), ta.clone()).await,
    )?;
    not_held(
        "the old owner's extend",
        a.extend(k.clone(), ta, c.t.hold).await,
    )?;
    c.expect_state(&k, "Busy", "b's lock must survive the retried release")
        .await?;
    extended(
        "b's extend of its lock",
        b.extend(k, tb, c.t.hold).await,
        c.t.hold,
    )
}

async fn complete_turns_lock_into_record<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let a = c.owner();
    let k = c.key("k");
    let ta = c.take(&a, &k, c.t.hold).await?;
    expect(
        "complete of our lock",
        c.complete_one(&a, &k, &ta, c.t.hold).await?,
        Ok(()),
    )?;
    c.expect_state(&k, "Done", "a completed key holds a record")
        .await?;
    not_held(
        "extend of a record",
        a.extend(k.clone(), ta.clone(), c.t.hold).await,
    )?;
    not_held("release of a record", a.release(k.clone(), ta).await)?;
    c.expect_state(&k, "Done", "release never deletes a record")
        .await
}

async fn complete_retried_is_ok<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let (k, kb) = (c.key("k"), c.key("b"));
    let ta = c.take(&a, &k, c.t.hold).await?;
    expect(
        "complete of our lock",
        c.complete_one(&a, &k, &ta, c.t.hold).await?,
        Ok(()),
    )?;
    expect(
        "the same complete retried",
        c.complete_one(&a, &k, &ta, c.t.hold).await?,
        Ok(()),
    )?;
    let tb = c.take(&b, &kb, c.t.hold).await?;
    expect(
        "complete of a's record with b's token",
        c.complete_one(&b, &k, &tb, c.t.hold).await?,
        Ok(()),
    )?;
    c.expect_state(&k, "Done", "the record stays").await
}

async fn complete_on_free_key_writes_record<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let a = c.owner();
    let (never, released) = (c.key("never-locked"), c.key("released"));
    let ta = c.take(&a, &released, c.t.hold).await?;
    expect(
        "complete of a key nobody ever locked",
        c.complete_one(&a, &never, &ta, c.t.hold).await?,
        Ok(()),
    )?;
    c.expect_state(&never, "Done", "complete on a free key writes the record")
        .await?;
    expect(
        "release of our lock",
        a.release(released.clone(), ta.clone()).await,
        Ok(()),
    )?;
    expect(
        "complete after our release",
        c.complete_one(&a, &released, &ta, c.t.hold).await?,
        Ok(()),
    )?;
    c.expect_state(
        &released,
        "Done",
        "complete on a released key writes the record",
    )
    .await
}

async fn complete_refused_by_other_live_lock<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let (k, mine) = (c.key("k"), c.key("mine"));
    let tb = c.take(&b, &k, c.t.hold).await?;
    let ta = c.take(&a, &mine, c.t.hold).await?;
    not_held(
        "complete against another owner's live lock",
        c.complete_one(&a, &k, &ta, c.t.hold).await?,
    )?;
    c.expect_state(
        &k,
        "Busy",
        "the refused complete must leave b's lock, not a record",
    )
    .await?;
    extended(
        "b's extend after the refused complete",
        b.extend(k.clone(), tb.clone(), c.t.hold).await,
        c.t.hold,
    )?;
    expect(
        "b's own complete",
        c.complete_one(&b, &k, &tb, c.t.hold).await?,
        Ok(()),
    )?;
    c.expect_state(&k, "Done", "b completed").await
}

/// Keys in the states `[free, held by another, done, free]`, for the
/// batch checks.
async fn mixed_keys<L: LockBackend>(
    c: &Ctx<'_, L>,
    other: &L,
    tag: &str,
) -> Result<Vec<LockKey>, String> {
    let keys: Vec<LockKey> = ["free-1", "busy", "done", "free-2"]
        .iter()
        .map(|n| c.key(&format!("{tag}-{n}")))
        .collect();
    c.take(other, &keys[1], c.t.hold).await?;
    let td = c.take(other, &keys[2], c.t.hold).await?;
    expect(
        "complete of our lock",
        c.complete_one(other, &keys[2], &td, c.t.hold).await?,
        Ok(()),
    )?;
    Ok(keys)
}

async fn batch_acquire_in_request_order<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let keys = mixed_keys(c, &b, "x").await?;
    let out = a.acquire(keys.clone(), c.t.hold).await;
    let kinds: Vec<&str> = out.iter().map(kind).collect();
    expect(
        "acquire of [free, busy, done, free]",
        kinds,
        vec!["Acquired", "Busy", "Done", "Acquired"],
    )?;
    let reordered = vec![keys[2].clone(), c.key("free-3"), keys[1].clone()];
    let out = a.acquire(reordered, c.t.hold).await;
    let kinds: Vec<&str> = out.iter().map(kind).collect();
    expect(
        "acquire of [done, free, busy]",
        kinds,
        vec!["Done", "Acquired", "Busy"],
    )
}

async fn batch_complete_in_request_order<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let [mine, theirs, free, recorded] = ["mine", "theirs", "free", "recorded"].map(|n| c.key(n));
    let ta = c.take(&a, &mine, c.t.hold).await?;
    c.take(&b, &theirs, c.t.hold).await?;
    let tr = c.take(&b, &recorded, c.t.hold).await?;
    expect(
        "b's complete",
        c.complete_one(&b, &recorded, &tr, c.t.hold).await?,
        Ok(()),
    )?;
    let entries = [&mine, &theirs, &free, &recorded].map(|k| ((*k).clone(), ta.clone()));
    let out = a.complete(entries.to_vec(), c.t.hold).await;
    expect(
        "complete of [our lock, another's lock, a free key, another's record]",
        out,
        vec![Ok(()), Err(LockError::NotHeld), Ok(()), Ok(())],
    )?;
    c.expect_state(&mine, "Done", "our lock was completed")
        .await?;
    c.expect_state(&theirs, "Busy", "another's lock refuses complete")
        .await?;
    c.expect_state(&free, "Done", "a free key takes the record")
        .await?;
    c.expect_state(&recorded, "Done", "another's record stays")
        .await
}

async fn batch_with_same_key_twice_locks_once<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let a = c.owner();
    let k = c.key("k");
    let out = a.acquire(vec![k.clone(), k], c.t.hold).await;
    let mut kinds: Vec<&str> = out.iter().map(kind).collect();
    kinds.sort_unstable();
    expect(
        "acquire of [k, k] (in any order)",
        kinds,
        vec!["Acquired", "Busy"],
    )
}

async fn acquire_each_answers_every_key_once<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let keys = mixed_keys(c, &b, "each").await?;
    let pairs = acquire_each_pairs(&a, keys.clone(), c.t.hold).await;
    let mut seen: Vec<Option<AcquireOutcome>> = vec![None; keys.len()];
    for (i, outcome) in pairs {
        match seen.get_mut(i) {
            None => {
                return Err(format!(
                    "acquire_each answered index {i} of {} keys",
                    keys.len()
                ))
            }
            Some(Some(first)) => {
                return Err(format!(
                    "acquire_each answered index {i} twice: {first:?}, then {outcome:?}"
                ))
            }
            Some(slot) => *slot = Some(outcome),
        }
    }
    let mut kinds = Vec::new();
    for (i, outcome) in seen.into_iter().enumerate() {
        let outcome = outcome.ok_or_else(|| format!("acquire_each never answered index {i}"))?;
        kinds.push(kind(&outcome));
        if let AcquireOutcome::Acquired { token, .. } = outcome {
            extended(
                "extend of a lock acquire_each gave",
                a.extend(keys[i].clone(), token, c.t.hold).await,
                c.t.hold,
            )?;
        }
    }
    expect(
        "acquire_each of [free, busy, done, free]",
        kinds,
        vec!["Acquired", "Busy", "Done", "Acquired"],
    )
}

async fn acquire_each_never_retries_busy<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let (held, free) = (c.key("held"), c.key("free"));
    // Held for keep_for only: a backend that waited for the key to free
    // up would answer Acquired.
    let tb = c.take(&b, &held, c.t.keep_for).await?;
    let pairs = acquire_each_pairs(&a, vec![held.clone(), free], c.t.hold).await;
    let answers: Vec<&str> = pairs
        .iter()
        .filter(|(i, _)| *i == 0)
        .map(|(_, o)| kind(o))
        .collect();
    expect(
        "acquire_each's answers for a key another owner holds",
        answers,
        vec!["Busy"],
    )?;
    extended(
        "the holder's extend after acquire_each",
        b.extend(held, tb, c.t.hold).await,
        c.t.hold,
    )
}

// ---------------------------------------------------------------------------
// Checks that wait for expiry

async fn lock_expires_after_ttl<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let k = c.key("k");
    let ta = c.take(&a, &k, c.t.ttl).await?;
    c.pass(c.t.ttl + c.t.slack).await;
    let tb = c
        .take(&b, &k, c.t.hold)
        .await
        .map_err(|e| format!("after the TTL: {e}"))?;
    not_held(
        "the old owner's extend",
        a.extend(k.clone(), ta.clone(), c.t.hold).await,
    )?;
    not_held(
        "the old owner's release",
        a.release(k.clone(), ta.clone()).await,
    )?;
    not_held(
        "the old owner's complete over b's live lock",
        c.complete_one(&a, &k, &ta, c.t.hold).await?,
    )?;
    extended(
        "the new owner's extend",
        b.extend(k, tb, c.t.hold).await,
        c.t.hold,
    )
}

async fn extend_keeps_lock<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let a = c.owner();
    let k = c.key("k");
    let long = c.t.ttl.saturating_mul(3);
    let ta = c.take(&a, &k, c.t.ttl).await?;
    extended(
        "extend of our lock",
        a.extend(k.clone(), ta.clone(), long).await,
        long,
    )?;
    c.pass(c.t.ttl + c.t.slack).await;
    c.expect_state(
        &k,
        "Busy",
        "past the first TTL, the extended lock still holds",
    )
    .await?;
    c.pass(long - c.t.ttl).await;
    not_held(
        "extend after the extended TTL",
        a.extend(k.clone(), ta, c.t.hold).await,
    )?;
    c.expect_state(&k, "Acquired", "the extended lock has expired")
        .await
}

async fn complete_after_expiry_writes_record<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let a = c.owner();
    let k = c.key("k");
    let ta = c.take(&a, &k, c.t.ttl).await?;
    c.pass(c.t.ttl + c.t.slack).await;
    expect(
        "complete after our lock expired",
        c.complete_one(&a, &k, &ta, c.t.hold).await?,
        Ok(()),
    )?;
    c.expect_state(&k, "Done", "the work finished, so the record is written")
        .await
}

async fn record_outlives_lock_for_keep_for<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let a = c.owner();
    let k = c.key("k");
    let ta = c.take(&a, &k, c.t.ttl).await?;
    expect(
        "complete of our lock",
        c.complete_one(&a, &k, &ta, c.t.keep_for).await?,
        Ok(()),
    )?;
    c.pass(c.t.ttl + c.t.slack).await;
    c.expect_state(&k, "Done", "the record outlives the lock's TTL")
        .await?;
    c.pass(c.t.keep_for.saturating_sub(c.t.ttl)).await;
    c.expect_state(&k, "Acquired", "the record ends after keep_for")
        .await
}

async fn complete_keeps_other_record<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let (a, b) = (c.owner(), c.owner());
    let (k, kb) = (c.key("k"), c.key("b"));
    let ta = c.take(&a, &k, c.t.hold).await?;
    let tb = c.take(&b, &kb, c.t.hold).await?;
    expect(
        "a's complete",
        c.complete_one(&a, &k, &ta, c.t.keep_for).await?,
        Ok(()),
    )?;
    let longer = c.t.keep_for.saturating_mul(10);
    expect(
        "b's complete of a's record",
        c.complete_one(&b, &k, &tb, longer).await?,
        Ok(()),
    )?;
    c.pass(c.t.keep_for + c.t.slack).await;
    c.expect_state(
        &k,
        "Acquired",
        "a's record ends with a's keep_for; b's complete must not have replaced or renewed it",
    )
    .await
}
