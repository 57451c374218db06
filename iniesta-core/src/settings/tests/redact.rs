//! Redaction: every shape of secret in a URL, and no secret in `Debug` or
//! in an error.

use super::load;
use crate::settings::redact::redact_text;
use crate::settings::{redact_url, vars};

/// `(url, redacted)`.
const SHAPES: &[(&str, &str)] = &[
    // Nothing to hide.
    ("redis://localhost:6379/1", "redis://localhost:6379/1"),
    ("redis://host?db=1#f", "redis://host?db=1#f"),
    ("redis://user:@host", "redis://user:@host"),
    ("redis://@host", "redis://@host"),
    ("not a url", "not a url"),
    ("", ""),
    // A password.
    ("redis://:secret@host", "redis://:***@host"),
    (
        "rediss://user:secret@host:6380/2",
        "rediss://user:***@host:6380/2",
    ),
    ("redis://u:p@h:1/2", "redis://u:***@h:1/2"),
    ("redis://u:p:q@h", "redis://u:***@h"),
    // A password with `@`, `/`, `?` or `#` in it is hidden whole.
    ("redis://:p@ss/w@rd@host/1", "redis://:***@host/1"),
    ("redis://u:p@ss@h/", "redis://u:***@h/"),
    ("redis://u:p?a#b@h/0", "redis://u:***@h/0"),
    // User information alone may be a token.
    ("redis://user@host", "redis://***@host"),
    ("redis://token@host:6379/0", "redis://***@host:6379/0"),
    ("redis://token@h/", "redis://***@h/"),
    // Passwords in the query.
    (
        "redis://u:p@h/?protocol=3&pass=x#f",
        "redis://u:***@h/?protocol=3&pass=***#f",
    ),
    (
        "unix:///tmp/r.sock?db=1&pass=secret",
        "unix:///tmp/r.sock?db=1&pass=***",
    ),
    (
        "redis+unix:///tmp/r.sock?PASSWORD=secret&db=2",
        "redis+unix:///tmp/r.sock?PASSWORD=***&db=2",
    ),
    ("redis://h/?passwords=kept", "redis://h/?passwords=kept"),
    // Not a URL: whatever precedes the last `@` may be a secret.
    ("not a url:secret@host", "***@host"),
    ("hunter2@localhost", "***@localhost"),
];

#[test]
fn redact_url_hides_every_shape_of_secret() {
    for &(url, redacted) in SHAPES {
        assert_eq!(redact_url(url), redacted, "redacting {url:?}");
        // Redacting twice changes nothing more.
        assert_eq!(redact_url(redacted), redacted, "redacting {redacted:?}");
    }
}

#[test]
fn redact_text_redacts_each_url_of_a_list() {
    assert_eq!(
        redact_text(r#"["redis://:a@h1", "redis://:b@h2"]"#),
        r#"["redis://:***@h1", "redis://:***@h2"]"#
    );
    assert_eq!(
        redact_text("redis://token@h1, redis://h2?password=p"),
        "redis://***@h1, redis://h2?password=***"
    );
}

#[test]
fn debug_hides_tokens_and_query_passwords() {
    let s = load(&[
        (
            vars::CACHES,
            "redis://hunter2@a/1, rediss://b/2?password=hunter2&db=2",
        ),
        (vars::SNS_ENDPOINT_URL, "http://hunter2@localhost:4566"),
    ])
    .unwrap();
    let debug = format!("{s:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(
        debug.contains(r#"caches: ["redis://***@a/1", "rediss://b/2?password=***&db=2"]"#),
        "{debug}"
    );
    assert!(
        debug.contains(r#"sns_endpoint_url: Some("http://***@localhost:4566")"#),
        "{debug}"
    );
    assert!(debug.contains("sqs_endpoint_url: None"), "{debug}");
}

#[test]
fn secrets_never_reach_debug_or_errors() {
    let s = load(&[
        (
            vars::CACHES,
            "redis://:hunter2@a/1,rediss://admin:hunter2@b/1",
        ),
        (vars::SQS_ENDPOINT_URL, "http://key:hunter2@localhost:4566"),
    ])
    .unwrap();
    let debug = format!("{s:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("redis://:***@a/1"), "{debug}");
    assert!(debug.contains("http://key:***@localhost:4566"), "{debug}");
    // The real URLs are kept for connecting.
    assert_eq!(s.caches[0], "redis://:hunter2@a/1");

    for (var, value) in [
        (vars::CACHES, "http://:hunter2@a/1"),
        (vars::CACHES, "redis://:hunter2@a/1, redis://:hunter2@a/1"),
        (vars::CACHES, r#"["redis://:hunter2@a/1""#),
        (vars::SQS_ENDPOINT_URL, "ftp://:hunter2@a"),
    ] {
        let e = load(&[(var, value)]).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        assert!(e.to_string().contains(":***@"), "{e}");
    }
}
