//! Unit tests of [`replies`](super).

use super::*;

fn one(v: Value) -> NodeReply {
    Ok(vec![Ok(v)])
}

#[test]
fn acquire_replies_are_read() {
    let read = |v: Value| answer("n", &one(v), 0, acquire_reply);
    assert_eq!(
        read(Value::BulkString(b"acquired".to_vec())),
        Ok(AcquireReply::Acquired)
    );
    assert_eq!(
        read(Value::SimpleString("busy".into())),
        Ok(AcquireReply::Busy)
    );
    assert_eq!(
        read(Value::BulkString(b"done".to_vec())),
        Ok(AcquireReply::Done)
    );
    let err = read(Value::Int(7)).unwrap_err();
    assert!(err.starts_with("n: unexpected reply"), "{err}");
    assert!(read(Value::BulkString(b"maybe".to_vec())).is_err());
}

#[test]
fn write_replies_are_read() {
    let read = |v: Value| answer("n", &one(v), 0, write_reply);
    assert_eq!(read(Value::Int(1)), Ok(true));
    assert_eq!(read(Value::Int(0)), Ok(false));
    assert!(read(Value::Int(2)).is_err());
    assert!(read(Value::Nil).is_err());
}

#[test]
fn failures_keep_their_reason() {
    let down: NodeReply = Err("n: connection refused".into());
    assert_eq!(
        answer("n", &down, 0, write_reply),
        Err("n: connection refused".into())
    );
    let failed: NodeReply = Ok(vec![Err("n: WRONGTYPE".into())]);
    assert_eq!(
        answer("n", &failed, 0, write_reply),
        Err("n: WRONGTYPE".into())
    );
    assert_eq!(
        answer("n", &one(Value::Int(1)), 1, write_reply),
        Err("n: missing reply".into())
    );
}
