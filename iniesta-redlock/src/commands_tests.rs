use redis::Value;

use super::*;

fn bulk(s: &str) -> EntryReply {
    Ok(Value::BulkString(s.as_bytes().to_vec()))
}

fn status_of(reply: EntryReply) -> String {
    match reply.expect("an answer") {
        Value::SimpleString(s) => s,
        other => panic!("not a status: {other:?}"),
    }
}

#[test]
fn acquire_reads_what_held_the_key_as_the_script_did() {
    assert_eq!(status_of(acquire_answer(Ok(Value::Nil), "t1")), "acquired");
    assert_eq!(status_of(acquire_answer(bulk("t1"), "t1")), "acquired");
    assert_eq!(status_of(acquire_answer(bulk("done:t0"), "t1")), "done");
    assert_eq!(status_of(acquire_answer(bulk("done:t1"), "t1")), "done");
    assert_eq!(status_of(acquire_answer(bulk("t2"), "t1")), "busy");
    assert_eq!(
        acquire_answer(Err("n: WRONGTYPE".into()), "t1"),
        Err("n: WRONGTYPE".into())
    );
    assert!(acquire_answer(Ok(Value::Int(3)), "t1").is_err());
}

#[test]
fn complete_reads_what_held_the_key_as_the_script_did() {
    // Our lock, now our record.
    assert_eq!(
        complete_answer(bulk("t1"), "t1"),
        Found::Answer(Ok(Value::Int(1)))
    );
    // Our record already (a retry): recorded, and renewed. Another
    // owner's record: recorded, left alone.
    assert_eq!(complete_answer(bulk("done:t1"), "t1"), Found::OurRecord);
    assert_eq!(
        complete_answer(bulk("done:t2"), "t1"),
        Found::Answer(Ok(Value::Int(1)))
    );
    // Another owner's lock: left alone.
    assert_eq!(
        complete_answer(bulk("t2"), "t1"),
        Found::Answer(Ok(Value::Int(0)))
    );
    // Free: decided by the second command.
    assert_eq!(complete_answer(Ok(Value::Nil), "t1"), Found::Free);
    assert_eq!(
        complete_answer(Err("n: WRONGTYPE".into()), "t1"),
        Found::Answer(Err("n: WRONGTYPE".into()))
    );

    // The second command: written, or what took the key meanwhile.
    assert_eq!(
        complete_free_answer(Ok(Value::Nil), "t1"),
        Ok(Value::Int(1))
    );
    assert_eq!(
        complete_free_answer(bulk("done:t2"), "t1"),
        Ok(Value::Int(1))
    );
    assert_eq!(complete_free_answer(bulk("t2"), "t1"), Ok(Value::Int(0)));
}

#[test]
fn the_commands_name_the_token_check_and_the_expiry() {
    let entries = [("k".to_owned(), "t1".to_owned())];
    let words = |cmd: &Cmd| -> Vec<String> {
        cmd.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => "<not text>".into(),
            })
            .collect()
    };
    assert_eq!(
        words(&acquire(&entries, "500")[0]),
        ["SET", "k", "t1", "NX", "PX", "500", "GET"]
    );
    assert_eq!(
        words(&complete(&entries, "9000")[0]),
        ["SET", "k", "done:t1", "IFEQ", "t1", "PX", "9000", "GET"]
    );
    assert_eq!(
        words(&complete_free("k", "t1", "9000")),
        ["SET", "k", "done:t1", "NX", "PX", "9000", "GET"]
    );
    assert_eq!(
        words(&renew_record("k", "t1", "9000")),
        ["SET", "k", "done:t1", "IFEQ", "done:t1", "PX", "9000"]
    );
}
