//! The mocks on a clock that follows an outside time source: long polls wait
//! with the source's sleep (for the end of their wait time or the next
//! visibility timeout, whichever is first), and visibility timeouts and lock
//! TTLs pass as the source moves. The source here behaves like a paused
//! async runtime clock: each wait moves it ahead by exactly the time waited.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::executor::block_on;
use futures::future::FutureExt;
use iniesta_core::{AcquireOutcome, Queue, ReceiveRequest, Time};
use iniesta_mock::{Clock, MockLock, MockQueue};

/// A clock whose time jumps ahead by every wait asked of it, and the waits
/// asked, in order.
fn auto_advancing_clock() -> (Clock, Arc<Mutex<Vec<Duration>>>) {
    let nanos = Arc::new(AtomicU64::new(0));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let (read, wait, log) = (nanos.clone(), nanos, asked.clone());
    let clock = Clock::from_source(
        move || Duration::from_nanos(read.load(Ordering::SeqCst)),
        move |d| {
            log.lock().unwrap().push(d);
            let d = u64::try_from(d.as_nanos()).unwrap();
            wait.fetch_add(d, Ordering::SeqCst);
            futures::future::ready(()).boxed()
        },
    );
    (clock, asked)
}

fn long_poll(wait_secs: u64) -> ReceiveRequest {
    ReceiveRequest {
        max_messages: 10,
        wait_time: Duration::from_secs(wait_secs),
        visibility_timeout: None,
    }
}

#[test]
fn a_long_poll_waits_with_the_source_until_its_wait_time_or_the_next_visibility() {
    let (clock, asked) = auto_advancing_clock();
    let queue = MockQueue::new("q", &clock);
    queue.send("x", BTreeMap::new());
    let first = queue.receive_now(1, None);
    assert_eq!(first.len(), 1, "hidden for the default 30 s from now on");

    // Nothing visible: the poll waits out its 20 s and comes back empty.
    let got = block_on(queue.receive(long_poll(20))).unwrap();
    assert!(got.is_empty(), "still hidden at 20 s: {got:?}");
    assert_eq!(clock.now(), Time::from_millis(20_000));

    // The next poll wakes when the visibility timeout ends, at 30 s, not at
    // the end of its own wait at 40 s.
    let got = block_on(queue.receive(long_poll(20))).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].receive_count(), 2, "redelivered");
    assert_eq!(clock.now(), Time::from_millis(30_000));
    assert_eq!(
        *asked.lock().unwrap(),
        vec![Duration::from_secs(20), Duration::from_secs(10)],
        "one wait for the poll's wait time, one up to the visibility timeout"
    );
}

#[test]
fn a_long_poll_with_a_visible_message_does_not_wait() {
    let (clock, asked) = auto_advancing_clock();
    let queue = MockQueue::new("q", &clock);
    queue.send("x", BTreeMap::new());
    let got = block_on(queue.receive(long_poll(20))).unwrap();
    assert_eq!(got.len(), 1);
    assert!(asked.lock().unwrap().is_empty(), "no wait was needed");
    assert_eq!(clock.now(), Time::ZERO);
}

#[test]
fn a_lock_expires_as_the_source_moves() {
    let (clock, _) = auto_advancing_clock();
    let lock = MockLock::new(&clock);
    let ttl = Duration::from_secs(10);
    assert!(matches!(
        lock.acquire_now("k", ttl),
        AcquireOutcome::Acquired { .. }
    ));
    block_on(clock.sleep(Duration::from_secs(9)));
    assert_eq!(
        lock.acquire_now("k", ttl),
        AcquireOutcome::Busy,
        "9 s of 10"
    );
    block_on(clock.sleep(Duration::from_secs(1)));
    assert!(
        matches!(lock.acquire_now("k", ttl), AcquireOutcome::Acquired { .. }),
        "expired after its TTL on the source's time"
    );
}
