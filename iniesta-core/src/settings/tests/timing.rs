//! Durations that depend on each other: the lock timeout, the heartbeat,
//! the visibility extension and the failure backoff, as SQS applies them.

use std::time::Duration;

use super::{load, secs, TOPIC};
use crate::settings::{vars, MAX_VISIBILITY};

#[test]
fn cross_checks_use_the_lock_timeout() {
    // Shorter than a longer lock timeout is fine.
    let s = load(&[(vars::LOCK_TIMEOUT, "30"), (vars::HEARTBEAT_INTERVAL, "10")]).unwrap();
    assert_eq!(s.heartbeat(), secs(10));
    // The derived heartbeat is 0.6 × the lock timeout.
    let s = load(&[(vars::LOCK_TIMEOUT, "2.5")]).unwrap();
    assert_eq!(s.heartbeat(), Duration::from_millis(1500));
    let e = load(&[(vars::HEARTBEAT_INTERVAL, "10s")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"INIESTA_HEARTBEAT_INTERVAL="10s": expected a duration shorter than the lock timeout (10s)"#
    );
    // A bad lock timeout is reported alone, not as a heartbeat problem too.
    let e = load(&[(vars::LOCK_TIMEOUT, "x"), (vars::HEARTBEAT_INTERVAL, "20")]).unwrap_err();
    assert_eq!(e.problems().len(), 1);
    // Visibility extension must outlast the derived heartbeat (6s).
    assert!(load(&[(vars::VISIBILITY_EXTENSION, "7")]).is_ok());
    assert!(load(&[(vars::VISIBILITY_EXTENSION, "6")])
        .unwrap_err()
        .to_string()
        .contains("heartbeat interval (6s)"));
    // Concurrent receives up to max in flight.
    assert!(load(&[
        (vars::MAX_IN_FLIGHT, "20"),
        (vars::CONCURRENT_RECEIVES, "11")
    ])
    .is_ok());
}

#[test]
fn sub_second_lock_timeout_extends_visibility_by_a_whole_second() {
    let s = load(&[
        (vars::LOCK_TIMEOUT, "0.8"),
        (vars::GLOBAL_TOPIC_ARN, TOPIC),
        (vars::CONSUMER_FILTERS, "A.x"),
        (vars::QUEUE_NAME, "q"),
    ])
    .unwrap();
    assert_eq!(s.lock_timeout, Duration::from_millis(800));
    assert_eq!(s.heartbeat(), Duration::from_millis(480));
    // 0.8 s as SQS applies it; truncated it would be 0, and the message
    // would be visible again while its handler runs.
    assert_eq!(s.visibility_extension_or_default(), secs(1));
    assert!(s.visibility_extension_or_default() > s.heartbeat());
    s.validate_for_event_polling().unwrap();
}

#[test]
fn visibility_extension_is_checked_as_sqs_applies_it() {
    // 1.5 s applies as 2 s, which outlasts a 1.8 s heartbeat: accepted,
    // and held as the 2 s SQS will apply.
    let s = load(&[
        (vars::LOCK_TIMEOUT, "3"),
        (vars::HEARTBEAT_INTERVAL, "1.8"),
        (vars::VISIBILITY_EXTENSION, "1.5"),
    ])
    .unwrap();
    assert_eq!(s.visibility_extension, Some(secs(2)));
    assert_eq!(s.visibility_extension_or_default(), secs(2));

    // 1.5 s applies as 2 s, which does not outlast a 2 s heartbeat. The
    // error names the variable and the value as written.
    let e = load(&[
        (vars::LOCK_TIMEOUT, "3"),
        (vars::HEARTBEAT_INTERVAL, "2"),
        (vars::VISIBILITY_EXTENSION, "1.5"),
    ])
    .unwrap_err();
    assert_eq!(e.problems().len(), 1, "{e}");
    assert_eq!(
        e.to_string(),
        "INIESTA_VISIBILITY_EXTENSION=\"1.5\": expected a duration longer than the \
         heartbeat interval (2s) once rounded up to whole seconds as SQS applies it \
         (this one applies as 2s), or the message becomes visible between heartbeats"
    );

    // A whole-second extension is kept as it is.
    let s = load(&[(vars::VISIBILITY_EXTENSION, "7")]).unwrap();
    assert_eq!(s.visibility_extension, Some(secs(7)));
}

#[test]
fn failure_backoff_is_in_whole_seconds() {
    // A base under 1 s becomes 1 s, so that the doublings stay whole.
    let s = load(&[
        (vars::FAILURE_BACKOFF_BASE, "300ms"),
        (vars::FAILURE_BACKOFF_MAX, "2.5"),
    ])
    .unwrap();
    assert_eq!(s.failure_backoff_base, Some(secs(1)));
    assert_eq!(s.failure_backoff_max, secs(3));
}

#[test]
fn backoff_max_is_bounded_by_sqs() {
    let ok = load(&[(vars::FAILURE_BACKOFF_MAX, "12h")]).unwrap();
    assert_eq!(ok.failure_backoff_max, MAX_VISIBILITY);
    let e = load(&[(vars::FAILURE_BACKOFF_MAX, "43201")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"INIESTA_FAILURE_BACKOFF_MAX="43201": expected a duration from 0s to 12h"#
    );
}

#[test]
fn a_failure_backoff_base_of_zero_means_none() {
    let zero = load(&[(vars::FAILURE_BACKOFF_BASE, "0")]).unwrap();
    assert_eq!(zero.failure_backoff_base, None);
    let s = load(&[
        (vars::FAILURE_BACKOFF_BASE, "2"),
        (vars::FAILURE_BACKOFF_MAX, "30"),
    ])
    .unwrap();
    assert_eq!(s.failure_backoff_base, Some(secs(2)));
    assert_eq!(s.failure_backoff_max, secs(30));
}
