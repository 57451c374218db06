//! The clock: virtual time moves only forward and saturates, real time is
//! monotonic and cannot be advanced, and a move wakes listeners.

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
