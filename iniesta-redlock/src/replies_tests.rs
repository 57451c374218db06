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

/// A batch reply as a node sends it: the RESP bytes, parsed.
fn batch(resp: &[u8]) -> EntryReply {
    Ok(redis::parse_redis_value(resp).expect("valid RESP"))
}

#[test]
fn batch_replies_are_spread_one_per_key() {
    // Two calls: three keys (the second failed alone), then one key.
    let node: NodeReply = Ok(vec![
        batch(b"*3\r\n$8\r\nacquired\r\n-WRONGTYPE Operation against a key\r\n$4\r\nbusy\r\n"),
        batch(b"*1\r\n$4\r\ndone\r\n"),
    ]);
    let keys = per_key("n", node, &[3, 1]);
    let read = |i| answer("n", &keys, i, acquire_reply);
    assert_eq!(read(0), Ok(AcquireReply::Acquired));
    let err = read(1).unwrap_err();
    assert!(err.starts_with("n: ") && err.contains("WRONGTYPE"), "{err}");
    assert_eq!(read(2), Ok(AcquireReply::Busy));
    assert_eq!(read(3), Ok(AcquireReply::Done));
    assert_eq!(read(4), Err("n: missing reply".into()));
}

#[test]
fn a_failed_or_misshapen_call_fails_each_of_its_keys() {
    let node: NodeReply = Ok(vec![
        Err("n: NOSCRIPT".into()),
        // Two entries for a call of three keys: not trusted at all.
        batch(b"*2\r\n:1\r\n:1\r\n"),
        batch(b"*1\r\n:0\r\n"),
    ]);
    let keys = per_key("n", node, &[2, 3, 1]).expect("the node answered");
    assert_eq!(keys.len(), 6);
    assert_eq!(keys[0], Err("n: NOSCRIPT".into()));
    assert_eq!(keys[1], Err("n: NOSCRIPT".into()));
    for entry in &keys[2..5] {
        let e = entry.as_ref().unwrap_err();
        assert!(e.contains("unexpected reply to a batch of 3 keys"), "{e}");
    }
    assert_eq!(keys[5], Ok(Value::Int(0)));
    // A call missing from the pipeline's answer fails its keys too.
    let short = per_key("n", Ok(vec![batch(b"*1\r\n:1\r\n")]), &[1, 2]).unwrap();
    assert_eq!(short[1], Err("n: missing reply".into()));
    assert_eq!(short[2], Err("n: missing reply".into()));
    // A node that failed as a whole stays one failure.
    let down = per_key("n", Err("n: connection refused".into()), &[2]);
    assert_eq!(down, Err("n: connection refused".into()));
}
