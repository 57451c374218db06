use super::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn lifetimes_are_whole_milliseconds_within_bounds() {
    assert_eq!(lifetime_ms(Duration::from_micros(2_999)), 2);
    assert_eq!(lifetime_ms(Duration::ZERO), 1);
    assert_eq!(lifetime_ms(Duration::MAX), MAX_LIFETIME_MS);
    assert_eq!(lifetime_ms(Duration::from_secs(10)), 10_000);
}

#[test]
fn cleanup_is_in_seconds_rounded_up_and_late() {
    let grace = CLEANUP_GRACE.as_secs();
    assert_eq!(cleanup_at(1_000), 1 + grace);
    assert_eq!(cleanup_at(1_001), 2 + grace);
    assert_eq!(cleanup_at(0), grace);
    assert_eq!(cleanup_at(u64::MAX), u64::MAX.div_ceil(1000) + grace);
}

#[test]
fn epoch_ms_counts_from_the_unix_epoch() {
    assert_eq!(epoch_ms(UNIX_EPOCH), 0);
    assert_eq!(epoch_ms(UNIX_EPOCH + MS(1_234)), 1_234);
    assert_eq!(epoch_ms(UNIX_EPOCH - MS(5)), 0);
    // Later than 2020 on any sane machine.
    assert!(epoch_ms(SystemTime::now()) > 1_577_836_800_000);
}

#[test]
fn validity_subtracts_elapsed_and_drift() {
    assert_eq!(
        validity(MS(1_000), MS(0), DRIFT_FACTOR, DRIFT_MIN),
        Some(MS(988))
    );
    assert_eq!(
        validity(MS(2_000), MS(30), DRIFT_FACTOR, DRIFT_MIN),
        Some(MS(1_948))
    );
    // Exactly used up: not held.
    assert_eq!(validity(MS(1_000), MS(988), DRIFT_FACTOR, DRIFT_MIN), None);
    // Slower than the TTL: not held, no wrap-around.
    assert_eq!(validity(MS(10), MS(50), DRIFT_FACTOR, DRIFT_MIN), None);
    assert_eq!(validity(MS(2), MS(0), DRIFT_FACTOR, DRIFT_MIN), None);
}

#[test]
fn absurd_drift_settings_give_no_validity() {
    assert_eq!(validity(MS(1_000), MS(0), f64::NAN, DRIFT_MIN), None);
    assert_eq!(validity(MS(1_000), MS(0), -0.5, DRIFT_MIN), None);
    assert_eq!(validity(Duration::MAX, MS(0), 2.0, DRIFT_MIN), None);
    assert_eq!(drift(MS(1_000), 0.0, Duration::ZERO), Some(Duration::ZERO));
}
