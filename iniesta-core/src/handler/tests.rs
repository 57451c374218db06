use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::executor::block_on;

use super::*;
use crate::message::Attributes;
use crate::{HandlerRegistry, RegistryError};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct UserCreated {
    id: u64,
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn user(id: u64) -> Delivery {
    DeliveryBuilder::new("UserCreated.users")
        .json(&UserCreated { id })
        .unwrap()
        .build()
}

#[test]
fn extractors_read_the_delivery_and_the_state() {
    let seen = Seen::default();
    let mut r = HandlerRegistry::new();
    r.state(seen.clone()).state(41u64);
    r.on(
        "UserCreated.users",
        |Json(e): Json<UserCreated>,
         State(seen): State<Seen>,
         State(base): State<u64>,
         Key(key): Key,
         ReceiveCount(n): ReceiveCount,
         attrs: Attributes| async move {
            seen.push(format!("{} {} {key} {n} {}", e.id, base + 1, attrs.len()));
        },
    )
    .unwrap();
    r.check_state().unwrap();
    let d = DeliveryBuilder::new("UserCreated.users")
        .json(&UserCreated { id: 7 })
        .unwrap()
        .receive_count(3)
        .sns_message_id(Some("sns-9".into()))
        .attribute("version", "1")
        .build();
    block_on(r.run(d)).unwrap();
    assert_eq!(seen.all(), ["7 42 sns-9 3 2"]);
}

#[test]
fn a_payload_that_does_not_decode_is_a_permanent_failure() {
    let mut r = HandlerRegistry::new();
    r.on("UserCreated.users", |Json(_): Json<UserCreated>| async {})
        .unwrap();
    let d = DeliveryBuilder::new("UserCreated.users")
        .body("not json")
        .build();
    let e = block_on(r.run(d)).unwrap_err();
    assert_eq!(e.retry(), Retry::Never);
    let chain: Vec<String> = e.chain().iter().map(str::to_owned).collect();
    assert_eq!(chain.len(), 1, "{chain:?}");
    assert!(chain[0].contains("UserCreated.users"), "{chain:?}");
    assert!(chain[0].contains("tests::UserCreated"), "{chain:?}");
    assert!(chain[0].contains("not valid JSON"), "{chain:?}");
}

#[test]
fn a_decode_failure_never_quotes_the_payload() {
    let mut r = HandlerRegistry::new();
    r.on("UserCreated.users", |Json(_): Json<UserCreated>| async {})
        .unwrap();
    let d = DeliveryBuilder::new("UserCreated.users")
        .body(r#"{"id": "jo@example.com"}"#)
        .build();
    let e = block_on(r.run(d)).unwrap_err();
    let text = format!("{e:#}");
    assert!(!text.contains("jo@example.com"), "{text}");
    assert!(text.contains("values do not fit"), "{text}");
    let decode = e.error().downcast_ref::<DecodeError>().unwrap();
    assert!(decode.serde_error().to_string().contains("jo@example.com"));
}

#[test]
fn a_handler_that_needs_missing_state_is_refused_before_it_runs() {
    let mut r = HandlerRegistry::new();
    r.on("UserCreated.users", |State(_): State<Seen>| async {})
        .unwrap();
    match r.check_state() {
        Err(RegistryError::MissingState { type_name }) => {
            assert!(type_name.ends_with("Seen"), "{type_name}")
        }
        other => panic!("{other:?}"),
    }
    // Run anyway, it fails (and retries) rather than panicking.
    let e = block_on(r.run(user(1))).unwrap_err();
    assert_eq!(e.retry(), Retry::Backoff);
    r.state(Seen::default());
    assert_eq!(r.check_state(), Ok(()));
    assert!(block_on(r.run(user(1))).is_ok());
}

#[test]
fn wrapping_the_handlers_keeps_the_state_and_its_needs() {
    let mut r = HandlerRegistry::new();
    r.on("UserCreated.users", |State(_): State<Seen>| async {})
        .unwrap();
    let wrapped = r.map_handlers(|h| Arc::new(h.clone()));
    assert!(wrapped.check_state().is_err());
}

#[test]
fn handlers_return_unit_or_any_error_that_converts() {
    let mut r = HandlerRegistry::new();
    r.on("A.s", || async {}).unwrap();
    r.on("B.s", || async {
        Err::<(), _>(std::io::Error::other("disk"))
    })
    .unwrap();
    r.on("C.s", || async {
        Err::<(), _>(HandlerError::retry_after(Duration::from_secs(60), "later"))
    })
    .unwrap();
    r.on("D.s", || async { Err::<(), _>("text") }).unwrap();
    r.on_sync("E.s", |_d: Delivery| ()).unwrap();
    let run = |event: &str| block_on(r.run(DeliveryBuilder::new(event).build()));
    assert!(run("A.s").is_ok());
    assert!(run("E.s").is_ok());
    let b = run("B.s").unwrap_err();
    assert_eq!((b.retry(), b.to_string()), (Retry::Backoff, "disk".into()));
    assert_eq!(
        run("C.s").unwrap_err().retry(),
        Retry::After(Duration::from_secs(60))
    );
    assert_eq!(run("D.s").unwrap_err().to_string(), "text");
    assert!(run("Nobody.s").is_err(), "no handler is an error");
}

#[test]
fn a_named_async_fn_with_question_marks_needs_no_annotation() {
    async fn handle(Json(e): Json<UserCreated>, State(seen): State<Seen>) -> HandlerResult {
        let n: u64 = "12".parse::<u64>()?;
        seen.push((e.id + n).to_string());
        Ok(())
    }
    let seen = Seen::default();
    let mut r = HandlerRegistry::new();
    r.state(seen.clone());
    r.on("UserCreated.users", handle).unwrap();
    block_on(r.run(user(30))).unwrap();
    assert_eq!(seen.all(), ["42"]);
}

#[test]
fn the_builder_makes_raw_and_enveloped_deliveries() {
    let d = DeliveryBuilder::new("E.s")
        .sqs_message_id("sqs-1")
        .sns_message_id(None)
        .token(crate::LockToken::new("t-1"))
        .sent_timestamp(1_700_000_000_000)
        .build();
    assert_eq!(d.message.key(), "sqs-1");
    assert_eq!(d.token.as_str(), "t-1");
    assert_eq!(d.message.sent_timestamp, Some(1_700_000_000_000));
    assert_eq!(d.message.receive_count, 1);
    let d = DeliveryBuilder::new("E.s").state(5u8).build();
    assert_eq!(d.state.get::<u8>(), Some(5));
}
