//! Unit tests of [`sqs`](super).

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn rounds_up_to_whole_seconds() {
    for (d, secs) in [
        (Duration::ZERO, 0),
        (Duration::from_nanos(1), 1),
        (ms(480), 1),
        (ms(800), 1),
        (ms(1000), 1),
        (ms(1001), 2),
        (ms(1999), 2),
        (ms(2000), 2),
        (ms(2500), 3),
        (Duration::new(59, 999_999_999), 60),
    ] {
        assert_eq!(visibility_seconds(d), secs, "{d:?}");
        assert_eq!(visibility(d), Duration::from_secs(u64::from(secs)), "{d:?}");
    }
}

#[test]
fn never_shorter_than_asked_within_the_limit() {
    let mut d = Duration::ZERO;
    while d <= MAX_VISIBILITY {
        let applied = visibility(d);
        assert!(applied >= d, "{d:?} became {applied:?}");
        assert!(
            applied - d < Duration::from_secs(1),
            "{d:?} became {applied:?}"
        );
        d += Duration::from_millis(997) * 131;
    }
}

#[test]
fn clamps_to_twelve_hours() {
    assert_eq!(visibility_seconds(MAX_VISIBILITY), 43_200);
    assert_eq!(visibility_seconds(MAX_VISIBILITY - ms(1)), 43_200);
    assert_eq!(visibility_seconds(MAX_VISIBILITY + ms(1)), 43_200);
    assert_eq!(visibility_seconds(Duration::from_secs(1 << 40)), 43_200);
    assert_eq!(visibility_seconds(Duration::MAX), 43_200);
    assert_eq!(visibility(Duration::MAX), MAX_VISIBILITY);
}

#[test]
fn limits_are_sqs_limits() {
    assert_eq!(MAX_VISIBILITY, Duration::from_secs(43_200));
    assert_eq!(MAX_BATCH, 10);
    assert_eq!(MAX_WAIT_TIME, Duration::from_secs(20));
}
