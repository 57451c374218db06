//! Checks of one key at a time that do not wait for expiry.

use super::*;

pub(super) async fn empty_batches<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn acquire_free_key<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
    let a = c.owner();
    c.take(&a, &c.key("k"), c.t.hold).await.map(drop)
}

pub(super) async fn acquire_held_key_is_busy<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn tokens_are_unique<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn foreign_token_changes_nothing<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn release_frees_key<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn release_retried_is_harmless<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn complete_turns_lock_into_record<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn complete_retried_is_ok<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn complete_on_free_key_writes_record<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn complete_refused_by_other_live_lock<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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
