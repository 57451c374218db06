//! Unit tests of [`redlock`](super).

use super::*;

#[test]
fn tokens_are_128_bit_hex_and_differ() {
    let a = new_token();
    let b = new_token();
    assert_eq!(a.as_str().len(), 32);
    assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[test]
fn bad_urls_are_named_and_redacted() {
    let err = Redlock::new(RedlockConfig::with_urls(["http://user:hunter2@host/"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("http://user:***@host/"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let err = Redlock::new(RedlockConfig::with_urls(["redis://h/notadb"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("redis://h/notadb"), "{err}");
}

#[tokio::test]
async fn down_nodes_do_not_fail_construction() {
    let r = Redlock::new(RedlockConfig::with_urls([
        "redis://127.0.0.1:1/",
        "redis://127.0.0.1:2/",
        "redis://127.0.0.1:3/",
    ]))
    .expect("lazy");
    assert_eq!((r.node_count(), r.quorum()), (3, 2));
    let out = r.acquire(vec!["k".into()], Duration::from_secs(1)).await;
    assert!(
        matches!(&out[..], [AcquireOutcome::Unavailable(LockError::Unavailable(m))] if m.contains("127.0.0.1:1")),
        "{out:?}"
    );
}
