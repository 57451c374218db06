//! Checks of batch calls: answers in request order, a key twice, `acquire_each`.

use super::*;

/// Keys in the states `[free, held by another, done, free]`, for the
/// batch checks.
pub(super) async fn mixed_keys<L: LockBackend>(
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

pub(super) async fn batch_acquire_in_request_order<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn batch_complete_in_request_order<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn batch_with_same_key_twice_locks_once<L: LockBackend>(
    c: &Ctx<'_, L>,
) -> Outcome {
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

pub(super) async fn acquire_each_answers_every_key_once<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn acquire_each_never_retries_busy<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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
