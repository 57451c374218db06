//! Checks that wait for a lock or a record to expire.

use super::*;

pub(super) async fn lock_expires_after_ttl<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn extend_keeps_lock<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn complete_after_expiry_writes_record<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn record_outlives_lock_for_keep_for<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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

pub(super) async fn complete_keeps_other_record<L: LockBackend>(c: &Ctx<'_, L>) -> Outcome {
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
