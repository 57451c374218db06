//! Tests that need no Redis: the validity arithmetic and configuration
//! checks (URL validation and password redaction).

use std::time::Duration;

use iniesta_redlock::{drift, redact_url, validity, Redlock, RedlockConfig, RedlockError};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn validity_subtracts_elapsed_and_drift() {
    // drift = 10 000 × 0.01 + 2 = 102 ms
    assert_eq!(drift(ms(10_000), 0.01, ms(2)), Some(ms(102)));
    assert_eq!(validity(ms(10_000), ms(0), 0.01, ms(2)), Some(ms(9_898)));
    assert_eq!(validity(ms(10_000), ms(30), 0.01, ms(2)), Some(ms(9_868)));
    assert_eq!(validity(ms(1_000), ms(0), 0.0, ms(0)), Some(ms(1_000)));
}

#[test]
fn validity_is_none_at_or_below_zero() {
    // Exactly used up: zero is not a validity.
    assert_eq!(validity(ms(1_000), ms(988), 0.01, ms(2)), None);
    assert_eq!(validity(ms(1_000), ms(987), 0.01, ms(2)), Some(ms(1)));
    // Slower than the TTL itself.
    assert_eq!(validity(ms(1_000), ms(5_000), 0.01, ms(2)), None);
    assert_eq!(validity(ms(100), Duration::MAX, 0.01, ms(2)), None);
    // A TTL no longer than the fixed drift can never be held.
    assert_eq!(validity(ms(2), ms(0), 0.01, ms(2)), None);
    assert_eq!(validity(Duration::ZERO, Duration::ZERO, 0.01, ms(2)), None);
}

#[test]
fn validity_never_overflows() {
    // Huge TTLs: no panic, no wrap-around.
    let v = validity(Duration::MAX, ms(1), 0.01, ms(2)).expect("huge ttl still valid");
    assert!(v < Duration::MAX);
    assert_eq!(validity(ms(10_000), ms(0), 0.01, Duration::MAX), None);
    assert_eq!(validity(Duration::MAX, ms(0), 0.5, Duration::MAX), None);
    // Nonsense drift factors are refused, not computed.
    for bad in [f64::NAN, f64::INFINITY, -0.01] {
        assert_eq!(drift(ms(10_000), bad, ms(2)), None, "{bad}");
        assert_eq!(validity(ms(10_000), ms(0), bad, ms(2)), None, "{bad}");
    }
    // A factor so large the product overflows Duration.
    assert_eq!(drift(Duration::MAX, 1e300, ms(0)), None);
}

#[test]
fn default_config_is_the_originals() {
    let c = RedlockConfig::default();
    assert_eq!(
        c.urls,
        [
            "redis://localhost:6379/1",
            "redis://localhost:6379/2",
            "redis://localhost:6379/3"
        ]
    );
    assert_eq!(c.retry_count, 1);
    assert!(c.retry_delay_min <= c.retry_delay_max);
    assert_eq!(c.drift_factor, 0.01);
    assert_eq!(c.drift_min, ms(2));
    // Lazy: building it needs no server.
    let r = Redlock::new(c).expect("default config is valid");
    assert_eq!((r.node_count(), r.quorum()), (3, 2));
}

#[test]
fn quorum_is_a_majority() {
    for (n, q) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)] {
        let urls: Vec<String> = (0..n).map(|i| format!("redis://127.0.0.1:1/{i}")).collect();
        let r = Redlock::new(RedlockConfig::with_urls(urls)).unwrap();
        assert_eq!(r.quorum(), q, "n = {n}");
    }
}

#[test]
fn bad_urls_are_named_with_password_redacted() {
    for bad in [
        "http://user:hunter2@host:6379/",
        "redis://:hunter2@host:6379/notanumber",
        "redis://:hunter2@:6379/",
        "hunter2@localhost",
        "",
    ] {
        let err =
            Redlock::new(RedlockConfig::with_urls(["redis://127.0.0.1:1/", bad])).expect_err(bad);
        let RedlockError::InvalidUrl { url, .. } = &err else {
            panic!("{bad:?} gave {err:?}");
        };
        assert_eq!(url, &redact_url(bad));
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "password leaked: {text}");
        assert!(text.contains("expected redis://"), "no hint: {text}");
    }
}

#[test]
fn empty_and_duplicate_url_lists_are_refused() {
    assert_eq!(
        Redlock::new(RedlockConfig::with_urls(Vec::<String>::new())).unwrap_err(),
        RedlockError::NoUrls
    );
    let err = Redlock::new(RedlockConfig::with_urls([
        "redis://:pw1@a:1/",
        "redis://b:1/",
        "redis://:pw1@a:1/",
    ]))
    .unwrap_err();
    assert!(matches!(err, RedlockError::InvalidUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("pw1"), "{err}");
}

#[test]
fn debug_output_redacts_passwords() {
    let r = Redlock::new(RedlockConfig::with_urls([
        "redis://u:hunter2@127.0.0.1:1/",
        "redis://:hunter2@127.0.0.1:2/",
        "redis://127.0.0.1:3/?pass=hunter2",
    ]))
    .unwrap();
    let text = format!("{r:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("127.0.0.1:2"), "{text}");
}
