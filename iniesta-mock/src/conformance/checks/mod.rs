//! The checks themselves, one function per named rule, and what they share.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use iniesta_core::{AcquireOutcome, LockBackend, LockError, LockKey, LockToken};

use super::*;

mod batch;
mod single;
mod timed;

use batch::*;
use single::*;
use timed::*;

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
