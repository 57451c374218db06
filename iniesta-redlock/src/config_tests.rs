//! Unit tests of [`config`](super).

use super::*;

#[test]
fn debug_hides_passwords() {
    let c = RedlockConfig::with_urls([
        "redis://u:hunter2@h/",
        "redis://hunter2@h2/",
        "unix:///tmp/r.sock?db=1&pass=hunter2",
    ]);
    let text = format!("{c:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("redis://u:***@h/"), "{text}");
    assert!(text.contains("redis://***@h2/"), "{text}");
    assert!(text.contains("unix:///tmp/r.sock?db=1&pass=***"), "{text}");
}

#[test]
fn settings_are_checked() {
    assert_eq!(
        RedlockConfig::with_urls(Vec::<String>::new()).validate_settings(),
        Err(RedlockError::NoUrls)
    );
    assert!(RedlockConfig::default().validate_settings().is_ok());
    let dup = RedlockConfig::with_urls(["redis://:pw@a/", "redis://:pw@a/"]);
    let err = dup.validate_settings().unwrap_err().to_string();
    assert!(err.contains("listed twice") && !err.contains("pw"), "{err}");
    let c = RedlockConfig {
        retry_delay_min: Duration::from_millis(10),
        retry_delay_max: Duration::from_millis(5),
        ..RedlockConfig::default()
    };
    assert!(matches!(
        c.validate_settings(),
        Err(RedlockError::InvalidConfig(_))
    ));
    for bad in [f64::NAN, -0.1, 1.0, f64::INFINITY] {
        let c = RedlockConfig {
            drift_factor: bad,
            ..RedlockConfig::default()
        };
        assert!(
            matches!(c.validate_settings(), Err(RedlockError::InvalidConfig(_))),
            "{bad}"
        );
    }
    let c = RedlockConfig {
        node_timeout: Duration::ZERO,
        ..RedlockConfig::default()
    };
    assert!(matches!(
        c.validate_settings(),
        Err(RedlockError::InvalidConfig(_))
    ));
}
