//! The clock: virtual time moves only forward and saturates, real time is
//! monotonic and cannot be advanced, a source clock follows its source
//! (never back) and waits with its sleep, and a move wakes listeners.

use super::*;

#[test]
fn virtual_clock_moves_only_forward() {
    let clock = Clock::manual();
    assert!(clock.is_virtual());
    assert_eq!(clock.now(), Time::ZERO);
    clock.advance(Duration::from_millis(1500));
    assert_eq!(clock.now(), Time::from_millis(1500));
    clock.set(Time::from_millis(1000));
    assert_eq!(clock.now(), Time::from_millis(1500));
    clock.set(Time::from_millis(4000));
    assert_eq!(clock.now(), Time::from_millis(4000));
    let shared = clock.clone();
    shared.advance(Duration::from_secs(1));
    assert_eq!(clock.now(), Time::from_millis(5000));
}

#[test]
fn virtual_clock_saturates_instead_of_overflowing() {
    let clock = Clock::virtual_clock();
    clock.advance(Duration::MAX);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        clock.now().since_origin(),
        Duration::from_nanos(u64::MAX),
        "clock must stay at its latest instant"
    );
}

#[test]
fn real_clock_is_monotonic() {
    let clock = Clock::real();
    assert!(!clock.is_virtual());
    let a = clock.now();
    let b = clock.now();
    assert!(b >= a);
}

#[test]
#[should_panic(expected = "wall time cannot be moved")]
fn advancing_a_real_clock_panics() {
    Clock::real().advance(Duration::from_secs(1));
}

#[test]
fn moving_the_clock_wakes_listeners() {
    let clock = Clock::virtual_clock();
    let listener = clock.listen();
    clock.advance(Duration::from_millis(1));
    // Completes only because the advance notified it.
    futures::executor::block_on(listener);
    let listener = clock.listen();
    clock.set(Time::from_millis(5));
    futures::executor::block_on(listener);
}

/// A source clock on a counter the test moves, and the durations its sleep
/// was asked for (the sleep itself completes at once without moving time).
fn counter_clock() -> (Clock, Arc<AtomicU64>, Arc<std::sync::Mutex<Vec<Duration>>>) {
    let nanos = Arc::new(AtomicU64::new(0));
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (read, log) = (nanos.clone(), asked.clone());
    let clock = Clock::from_source(
        move || Duration::from_nanos(read.load(Ordering::SeqCst)),
        move |d| {
            log.lock().unwrap().push(d);
            futures::future::ready(()).boxed()
        },
    );
    (clock, nanos, asked)
}

#[test]
fn source_clock_reads_its_source_and_never_goes_back() {
    let (clock, nanos, _) = counter_clock();
    assert!(!clock.is_virtual());
    assert_eq!(clock.now(), Time::ZERO);
    nanos.store(2_000_000_000, Ordering::SeqCst);
    assert_eq!(clock.now(), Time::from_millis(2000));
    nanos.store(500_000_000, Ordering::SeqCst);
    assert_eq!(
        clock.now(),
        Time::from_millis(2000),
        "a reading earlier than one already seen must not move the clock back"
    );
    nanos.store(3_000_000_000, Ordering::SeqCst);
    assert_eq!(clock.clone().now(), Time::from_millis(3000));
}

#[test]
fn source_clock_waits_with_its_sleep() {
    let (clock, _, asked) = counter_clock();
    futures::executor::block_on(clock.sleep(Duration::from_secs(7)));
    assert_eq!(*asked.lock().unwrap(), vec![Duration::from_secs(7)]);
}

#[test]
#[should_panic(expected = "move the source instead")]
fn advancing_a_source_clock_panics() {
    let (clock, _, _) = counter_clock();
    clock.advance(Duration::from_secs(1));
}

#[test]
fn a_virtual_sleep_ends_only_when_the_clock_has_moved_far_enough() {
    let clock = Clock::virtual_clock();
    let mut sleep = clock.sleep(Duration::from_secs(10));
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(sleep.as_mut().poll(&mut cx).is_pending());
    clock.advance(Duration::from_secs(9));
    assert!(sleep.as_mut().poll(&mut cx).is_pending(), "9 s of 10");
    clock.advance(Duration::from_secs(1));
    assert!(sleep.as_mut().poll(&mut cx).is_ready());
}

#[test]
fn a_real_sleep_waits_on_wall_time() {
    let clock = Clock::real();
    let before = clock.now();
    futures::executor::block_on(clock.sleep(Duration::from_millis(5)));
    assert!(clock.now() >= before + Duration::from_millis(5));
}

#[test]
fn debug_names_the_mode() {
    assert!(format!("{:?}", Clock::virtual_clock()).contains("\"virtual\""));
    assert!(format!("{:?}", Clock::real()).contains("\"real\""));
    assert!(format!("{:?}", counter_clock().0).contains("\"source\""));
}
