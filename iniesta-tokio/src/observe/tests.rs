use std::sync::Arc;

use iniesta_core::{Event, Observer};
use tracing::Level;

use super::{FanOut, TracingObserver};

#[test]
fn operator_levels() {
    use iniesta_core::BackendError;
    assert_eq!(
        TracingObserver::level(&Event::ShutdownStarted { in_flight: 0 }),
        Level::INFO
    );
    assert_eq!(
        TracingObserver::level(&Event::ReceiveFailed {
            error: BackendError::message("x"),
            retry_in: std::time::Duration::ZERO
        }),
        Level::WARN
    );
    assert_eq!(
        TracingObserver::level(&Event::Returned {
            sqs_message_id: "m".into(),
            delay: std::time::Duration::ZERO
        }),
        Level::DEBUG
    );
}

#[test]
fn fan_out_reaches_every_observer_in_order() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (a, b) = (seen.clone(), seen.clone());
    let mut fan = FanOut::new()
        .with(move |_e: &Event| a.lock().unwrap().push("a"))
        .with(move |_e: &Event| b.lock().unwrap().push("b"));
    fan.on_event(&Event::Stopped);
    fan.on_event(&Event::Stopped);
    assert_eq!(*seen.lock().unwrap(), vec!["a", "b", "a", "b"]);
}
