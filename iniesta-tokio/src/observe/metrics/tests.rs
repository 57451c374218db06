//! The observer on hand-made events, against a recorder local to each test.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use iniesta_core::machine::AbortReason;
use iniesta_core::{
    parse, AttributeValue, BackendError, DeliveryMode, DispatchOutcome, Event, Observer,
    ParseConfig, ReceiptHandle, ReceivedMessage, SharedMessage, SystemAttributes,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use super::labels::{error_kind, EventLabels};
use super::{epoch_millis, names, MetricsObserver};

fn message(sqs_id: &str, event: &str, sent_ms: Option<u64>) -> SharedMessage {
    let raw = ReceivedMessage {
        sqs_message_id: sqs_id.into(),
        receipt_handle: ReceiptHandle::new(format!("rh-{sqs_id}")),
        body: "{}".into(),
        attributes: SystemAttributes {
            receive_count: Some(1),
            sent_timestamp: sent_ms,
            ..SystemAttributes::default()
        },
        message_attributes: [(
            "iniesta_pass".to_owned(),
            AttributeValue::String(event.into()),
        )]
        .into_iter()
        .collect::<BTreeMap<_, _>>()
        .into(),
    };
    let config = ParseConfig {
        mode: DeliveryMode::Raw,
        event_key: "iniesta_pass".into(),
        topic_arn: None,
    };
    Arc::new(parse(&raw, &config).expect("a valid raw message"))
}

fn started(m: &SharedMessage) -> Event {
    Event::HandlerStarted { message: m.clone() }
}

fn failed(m: &SharedMessage, outcome: DispatchOutcome) -> Event {
    Event::Failed {
        message: m.clone(),
        elapsed: Duration::from_millis(20),
        outcome,
    }
}

/// Every series of the snapshot as `name{label=value,…}` (labels sorted).
fn read(snapshotter: &Snapshotter) -> BTreeMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

fn gauge(series: &BTreeMap<String, DebugValue>, name: &str) -> f64 {
    match series.get(name) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("no gauge {name}: {other:?} in {series:?}"),
    }
}

/// Runs `f` against a fresh recorder and returns the series it left.
fn recorded(f: impl FnOnce()) -> BTreeMap<String, DebugValue> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, f);
    read(&snapshotter)
}

#[test]
fn labels_are_routes_or_default() {
    let labels = EventLabels::new(["UserCreated.users", "Order.*", "Order.paid.*", "bad name"]);
    assert_eq!(&**labels.of("UserCreated.users"), "UserCreated.users");
    assert_eq!(&**labels.of("Order.placed"), "Order.*");
    assert_eq!(
        &**labels.of("Order.paid.eu"),
        "Order.paid.*",
        "longest prefix"
    );
    assert_eq!(&**labels.of("UserDeleted.users"), "default");
    assert_eq!(&**labels.of("bad name"), "default", "not a route");
    let mut all: Vec<&str> = labels.all().map(|l| &**l).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        ["Order.*", "Order.paid.*", "UserCreated.users", "default"]
    );
}

#[test]
fn own_route_wins_over_prefix_as_in_the_registry() {
    let labels = EventLabels::new(["Order.*", "Order.placed"]);
    assert_eq!(&**labels.of("Order.placed"), "Order.placed");
    assert_eq!(&**labels.of("Order.paid"), "Order.*");
}

#[test]
fn receive_errors_are_sorted_into_few_kinds() {
    let kind = |code: Option<&str>| {
        error_kind(&BackendError {
            code: code.map(str::to_owned),
            message: "x".into(),
        })
    };
    assert_eq!(kind(Some("ThrottlingException")), "throttled");
    assert_eq!(
        kind(Some("AWS.SimpleQueueService.RequestThrottled")),
        "throttled"
    );
    assert_eq!(kind(Some("ExpiredToken")), "credentials");
    assert_eq!(kind(Some("InvalidClientTokenId")), "credentials");
    assert_eq!(kind(Some("AccessDenied")), "access_denied");
    assert_eq!(
        kind(Some("AWS.SimpleQueueService.NonExistentQueue")),
        "queue_missing"
    );
    assert_eq!(kind(None), "network");
    assert_eq!(kind(Some("InternalError")), "other");
    for code in [Some("Whatever"), Some(""), Some("Throttling"), None] {
        assert!(names::RECEIVE_FAILURE_KINDS.contains(&kind(code)));
    }
}

#[test]
fn in_flight_counts_until_the_handler_has_stopped() {
    let a = message("m-a", "Order.placed", None);
    let b = message("m-b", "Order.paid", None);
    let series = recorded(|| {
        let mut o = MetricsObserver::for_routes(["Order.*"]);
        o.on_event(&started(&a));
        o.on_event(&started(&b));
        // An abort is only asked for: the handler still runs.
        o.on_event(&Event::Aborting {
            message: a.clone(),
            reason: AbortReason::LockLost,
        });
        o.on_event(&failed(&b, DispatchOutcome::Panicked("boom".into())));
        std::mem::forget(o); // keep what it counted on the gauge
    });
    let in_flight = format!("{}{{event=Order.*}}", names::IN_FLIGHT);
    assert_eq!(gauge(&series, &in_flight), 1.0, "{series:?}");
}

#[test]
fn in_flight_cannot_drift() {
    let a = message("m-a", "Order.placed", None);
    let b = message("m-b", "Other.x", None);
    let series = recorded(|| {
        let mut o = MetricsObserver::for_routes(["Order.*"]);
        // An end without a start (the observer came late) changes nothing.
        o.on_event(&failed(&a, DispatchOutcome::Aborted));
        o.on_event(&Event::Succeeded {
            message: b.clone(),
            elapsed: Duration::ZERO,
        });
        // Two copies of one message running at once; each end counts once.
        o.on_event(&started(&a));
        o.on_event(&started(&a));
        o.on_event(&failed(&a, DispatchOutcome::Aborted));
        o.on_event(&failed(&a, DispatchOutcome::Aborted));
        o.on_event(&failed(&a, DispatchOutcome::Aborted));
        std::mem::forget(o);
    });
    assert_eq!(
        gauge(&series, &format!("{}{{event=Order.*}}", names::IN_FLIGHT)),
        0.0,
        "{series:?}"
    );
    assert_eq!(
        gauge(&series, &format!("{}{{event=default}}", names::IN_FLIGHT)),
        0.0,
        "{series:?}"
    );
}

#[test]
fn in_flight_comes_down_when_the_consumer_stops_or_the_observer_goes() {
    let a = message("m-a", "Order.placed", None);
    let in_flight = format!("{}{{event=Order.*}}", names::IN_FLIGHT);
    let stopped = recorded(|| {
        let mut o = MetricsObserver::for_routes(["Order.*"]);
        o.on_event(&started(&a));
        o.on_event(&Event::Stopped);
        std::mem::forget(o);
    });
    assert_eq!(gauge(&stopped, &in_flight), 0.0, "{stopped:?}");
    let dropped = recorded(|| {
        let mut o = MetricsObserver::for_routes(["Order.*"]);
        o.on_event(&started(&a));
        o.on_event(&started(&a));
        drop(o);
    });
    assert_eq!(gauge(&dropped, &in_flight), 0.0, "{dropped:?}");
}

#[test]
fn age_is_now_minus_sent_and_never_negative() {
    let old = message("m-old", "Order.placed", Some(10_000));
    let future = message("m-future", "Order.placed", Some(99_000));
    let unknown = message("m-unknown", "Order.placed", None);
    let series = recorded(|| {
        let mut o = MetricsObserver::for_routes(["Order.*"]).with_wall_clock(|| 12_500);
        for m in [&old, &future, &unknown] {
            o.on_event(&started(m));
        }
    });
    let ages = match series.get(&format!("{}{{event=Order.*}}", names::MESSAGE_AGE_SECONDS)) {
        Some(DebugValue::Histogram(v)) => v.iter().map(|v| v.into_inner()).collect::<Vec<_>>(),
        other => panic!("no age histogram: {other:?}"),
    };
    assert_eq!(ages, [2.5, 0.0], "no age without a SentTimestamp");
}

#[test]
fn buckets_rise() {
    for (name, buckets) in names::HISTOGRAM_BUCKETS {
        assert!(
            buckets.windows(2).all(|w| w[0] < w[1]) && buckets[0] > 0.0,
            "{name}: {buckets:?}"
        );
    }
}

#[test]
fn age_is_read_on_the_wall_clock_by_default() {
    // Stamped as SQS does: ms since the Unix epoch, here 5 s ago.
    let sent = epoch_millis() - 5_000;
    let m = message("m-1", "Order.placed", Some(sent));
    let series = recorded(|| {
        let mut o = MetricsObserver::for_routes(["Order.*"]);
        o.on_event(&started(&m));
    });
    let ages = match series.get(&format!("{}{{event=Order.*}}", names::MESSAGE_AGE_SECONDS)) {
        Some(DebugValue::Histogram(v)) => v.iter().map(|v| v.into_inner()).collect::<Vec<_>>(),
        other => panic!("no age histogram: {other:?}"),
    };
    assert_eq!(ages.len(), 1, "{ages:?}");
    assert!((5.0..65.0).contains(&ages[0]), "{ages:?}");
}
