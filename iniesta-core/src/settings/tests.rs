//! Reading the environment: defaults, every variable, the shapes of
//! values, and the problems reported.

mod group;
mod modes;
mod redact;
mod timing;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::table::settings_table;
use super::values::DURATION_EXPECTED;
use super::*;

fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    let map: HashMap<&str, &str> = pairs.iter().copied().collect();
    move |name| map.get(name).map(|v| v.to_string())
}

fn load(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    Settings::from_lookup(lookup(pairs))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:global-events";

#[test]
fn defaults_are_the_originals() {
    let s = load(&[]).unwrap();
    assert_eq!(s, Settings::default());
    assert!(s.initialization_types.is_empty());
    assert_eq!(s.topic_arn, None);
    assert!(s.consumer_filters.is_empty());
    assert_eq!(s.queue_name, None);
    assert_eq!(s.queue_name_template, "iniesta-{env}-{service_name}");
    assert_eq!(s.event_key, "iniesta_pass");
    assert_eq!(
        s.caches,
        [
            "redis://localhost:6379/1",
            "redis://localhost:6379/2",
            "redis://localhost:6379/3"
        ]
    );
    assert_eq!(s.lock_timeout, secs(10));
    assert_eq!(s.lock_retry_count, 1);
    assert_eq!(s.receive_max_messages, 10);
    assert_eq!(s.receive_wait_time, secs(20));
    assert!(s.assert_filter_policies);
    assert!(!s.dry_run);
    assert_eq!(s.sqs_endpoint_url, None);
    assert_eq!(s.sns_endpoint_url, None);
    assert_eq!(s.lock_backend, LockBackend::Redlock);
    assert_eq!(s.dynamodb_table, "iniesta-locks");
    assert_eq!(s.dynamodb_endpoint_url, None);
    assert_eq!(s.service_name, None);
    assert_eq!(s.environment, "development");
    assert_eq!(s.max_in_flight, 10);
    assert_eq!(s.concurrent_receives, None);
    assert_eq!(s.dedupe_window, secs(24 * 3600));
    assert_eq!(s.heartbeat_interval, None);
    assert_eq!(s.visibility_extension, None);
    assert_eq!(s.failure_backoff_base, None);
    assert_eq!(s.failure_backoff_max, secs(15 * 60));
    assert_eq!(s.handler_timeout, None);
    assert_eq!(s.prefetch, None);
    assert!(!s.delete_permanent_failures);
    assert_eq!(s.shutdown_grace, secs(30));
    assert!(s.return_unstarted_on_shutdown);
    assert_eq!(s.lock_key_prefix, "sqs:event:");
    assert_eq!(s.raw_delivery, None);
    assert!(!s.delete_unmatched_events);
    assert_eq!(s.heartbeat(), secs(6));
    assert_eq!(s.visibility_extension_or_default(), secs(10));
}

#[test]
fn empty_and_blank_values_mean_unset() {
    let pairs: Vec<(&str, &str)> = vars::ALL.iter().map(|v| (*v, "  ")).collect();
    assert_eq!(load(&pairs).unwrap(), Settings::default());
    let pairs: Vec<(&str, &str)> = vars::ALL.iter().map(|v| (*v, "")).collect();
    assert_eq!(load(&pairs).unwrap(), Settings::default());
}

#[test]
fn every_variable_is_read() {
    let s = load(&[
        (vars::INITIALIZATION_TYPE, "EVENT_POLLING,SNS_PRODUCER"),
        (vars::GLOBAL_TOPIC_ARN, TOPIC),
        (vars::CONSUMER_FILTERS, "UserCreated.users, Order.*"),
        (vars::QUEUE_NAME, "my-queue"),
        (vars::QUEUE_NAME_TEMPLATE, "q-{service_name}-{env}"),
        (vars::EVENT_KEY, "event_name"),
        (vars::CACHES, "redis://a:6379/0,rediss://:pw@b:6380"),
        (vars::LOCK_TIMEOUT, "30"),
        (vars::LOCK_RETRY_COUNT, "3"),
        (vars::RECEIVE_MAX_MESSAGES, "5"),
        (vars::RECEIVE_WAIT_TIME, "0"),
        (vars::ASSERT_FILTER_POLICIES, "false"),
        (vars::DRY_RUN, "yes"),
        (vars::SQS_ENDPOINT_URL, "http://localhost:5000"),
        (vars::SNS_ENDPOINT_URL, "https://sns.example"),
        (vars::LOCK_BACKEND, "DynamoDB"),
        (vars::DYNAMODB_TABLE, "my.locks_table-1"),
        (vars::DYNAMODB_ENDPOINT_URL, "http://localhost:4566"),
        (vars::SERVICE_NAME, "billing"),
        (vars::ENVIRONMENT, "production"),
        (vars::MAX_IN_FLIGHT, "64"),
        (vars::CONCURRENT_RECEIVES, "4"),
        (vars::DEDUPE_WINDOW, "2h"),
        (vars::HEARTBEAT_INTERVAL, "5s"),
        (vars::VISIBILITY_EXTENSION, "1m"),
        (vars::FAILURE_BACKOFF_BASE, "500ms"),
        (vars::FAILURE_BACKOFF_MAX, "1h 30m"),
        (vars::HANDLER_TIMEOUT, "90s"),
        (vars::PREFETCH, "0"),
        (vars::DELETE_PERMANENT_FAILURES, "yes"),
        (vars::SHUTDOWN_GRACE, "0"),
        (vars::RETURN_UNSTARTED_ON_SHUTDOWN, "OFF"),
        (vars::LOCK_KEY_PREFIX, "app:lock:"),
        (vars::RAW_DELIVERY, "True"),
        (vars::DELETE_UNMATCHED_EVENTS, "on"),
    ])
    .unwrap();
    assert_eq!(
        s.initialization_types,
        BTreeSet::from([
            InitializationType::EventPolling,
            InitializationType::SnsProducer
        ])
    );
    assert!(s.wants(InitializationType::SnsProducer));
    assert!(!s.wants(InitializationType::QueuePolling));
    assert_eq!(s.topic_arn.as_deref(), Some(TOPIC));
    assert_eq!(s.consumer_filters, ["UserCreated.users", "Order.*"]);
    assert_eq!(s.queue_name.as_deref(), Some("my-queue"));
    assert_eq!(s.queue_name_template, "q-{service_name}-{env}");
    assert_eq!(s.event_key, "event_name");
    assert_eq!(s.caches, ["redis://a:6379/0", "rediss://:pw@b:6380"]);
    assert_eq!(s.lock_timeout, secs(30));
    assert_eq!(s.lock_retry_count, 3);
    assert_eq!(s.receive_max_messages, 5);
    assert_eq!(s.receive_wait_time, Duration::ZERO);
    assert!(!s.assert_filter_policies);
    assert!(s.dry_run);
    assert_eq!(s.sqs_endpoint_url.as_deref(), Some("http://localhost:5000"));
    assert_eq!(s.sns_endpoint_url.as_deref(), Some("https://sns.example"));
    assert_eq!(s.lock_backend, LockBackend::DynamoDb);
    assert_eq!(s.dynamodb_table, "my.locks_table-1");
    assert_eq!(
        s.dynamodb_endpoint_url.as_deref(),
        Some("http://localhost:4566")
    );
    assert_eq!(s.service_name.as_deref(), Some("billing"));
    assert_eq!(s.environment, "production");
    assert_eq!(s.max_in_flight, 64);
    assert_eq!(s.concurrent_receives, Some(4));
    assert_eq!(s.dedupe_window, secs(7200));
    assert_eq!(s.heartbeat_interval, Some(secs(5)));
    assert_eq!(s.heartbeat(), secs(5));
    assert_eq!(s.visibility_extension, Some(secs(60)));
    assert_eq!(s.visibility_extension_or_default(), secs(60));
    // 500ms as SQS applies it: whole seconds, rounded up.
    assert_eq!(s.failure_backoff_base, Some(secs(1)));
    assert_eq!(s.failure_backoff_max, secs(5400));
    assert_eq!(s.handler_timeout, Some(secs(90)));
    assert_eq!(s.prefetch, Some(0));
    assert!(s.delete_permanent_failures);
    assert_eq!(s.shutdown_grace, Duration::ZERO);
    assert!(!s.return_unstarted_on_shutdown);
    assert_eq!(s.lock_key_prefix, "app:lock:");
    assert_eq!(s.raw_delivery, Some(true));
    assert!(s.delete_unmatched_events);
    assert_eq!(s.resolved_queue_name().unwrap(), "my-queue");
}

#[test]
fn lists_are_comma_separated_or_json() {
    let comma = load(&[
        (
            vars::INITIALIZATION_TYPE,
            " event_polling , QUEUE_POLLING, ",
        ),
        (vars::CONSUMER_FILTERS, "A.x,B.*,,"),
        (vars::CACHES, "redis://h1, redis://h2"),
    ])
    .unwrap();
    let json = load(&[
        (
            vars::INITIALIZATION_TYPE,
            r#"["EVENT_POLLING", "QUEUE_POLLING"]"#,
        ),
        (vars::CONSUMER_FILTERS, r#"["A.x", "B.*"]"#),
        (vars::CACHES, r#"[ "redis://h1", "redis://h2" ]"#),
    ])
    .unwrap();
    assert_eq!(comma, json);
    assert_eq!(
        json.initialization_types,
        BTreeSet::from([
            InitializationType::EventPolling,
            InitializationType::QueuePolling
        ])
    );
    assert_eq!(json.consumer_filters, ["A.x", "B.*"]);
    assert_eq!(json.caches, ["redis://h1", "redis://h2"]);

    let empty_json = load(&[(vars::CONSUMER_FILTERS, "[]")]).unwrap();
    assert!(empty_json.consumer_filters.is_empty());
}

#[test]
fn durations() {
    let d = |v: &str| load(&[(vars::SHUTDOWN_GRACE, v)]).map(|s| s.shutdown_grace);
    assert_eq!(d("10").unwrap(), secs(10));
    assert_eq!(d("2.5").unwrap(), Duration::from_millis(2500));
    assert_eq!(d(".5").unwrap(), Duration::from_millis(500));
    assert_eq!(d("0.1").unwrap(), Duration::from_millis(100));
    assert_eq!(d("3.").unwrap(), secs(3));
    assert_eq!(d("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(d("2m").unwrap(), secs(120));
    assert_eq!(d("1h 30m").unwrap(), secs(5400));
    for bad in [
        "-1",
        "-0.5",
        "NaN",
        "inf",
        "ten",
        ".",
        "1.2.3",
        "5 parsecs",
        "1e3",
    ] {
        let e = d(bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("INIESTA_SHUTDOWN_GRACE={bad:?}: {DURATION_EXPECTED}"),
            "{bad}"
        );
    }
}

#[test]
fn the_documented_error_line() {
    let e = load(&[(vars::LOCK_TIMEOUT, "ten")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"INIESTA_LOCK_TIMEOUT="ten": expected a duration in seconds (e.g. 10, 2.5) or with a unit (500ms, 2m)"#
    );
}

#[test]
fn booleans_accept_every_spelling() {
    for (text, expected) in [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("Yes", true),
        ("on", true),
        ("false", false),
        ("False", false),
        ("0", false),
        ("NO", false),
        ("off", false),
    ] {
        let s = load(&[(vars::DRY_RUN, text)]).unwrap();
        assert_eq!(s.dry_run, expected, "{text}");
    }
    assert_eq!(
        load(&[(vars::RAW_DELIVERY, "auto")]).unwrap().raw_delivery,
        None
    );
    assert_eq!(
        load(&[(vars::RAW_DELIVERY, "0")]).unwrap().raw_delivery,
        Some(false)
    );
}

/// Every variable with a value it must reject.
const BAD_VALUES: &[(&str, &str)] = &[
    (vars::INITIALIZATION_TYPE, "EVENT_POLING"),
    (vars::INITIALIZATION_TYPE, "[\"EVENT_POLLING\""),
    (vars::GLOBAL_TOPIC_ARN, "global-events"),
    (
        vars::GLOBAL_TOPIC_ARN,
        "arn:aws:sqs:eu-west-1:123456789012:q",
    ),
    (vars::GLOBAL_TOPIC_ARN, "arn:aws:sns:eu-west-1:acct:topic"),
    (
        vars::GLOBAL_TOPIC_ARN,
        "arn:aws:sns:eu-west-1:123456789012:",
    ),
    (vars::CONSUMER_FILTERS, "A*"),
    (vars::CONSUMER_FILTERS, "[1, 2]"),
    (vars::QUEUE_NAME, "my queue"),
    (vars::QUEUE_NAME, "a.b"),
    (vars::QUEUE_NAME_TEMPLATE, "iniesta-{stage}"),
    (vars::QUEUE_NAME_TEMPLATE, "iniesta-{env"),
    (vars::QUEUE_NAME_TEMPLATE, "iniesta-env}"),
    (vars::EVENT_KEY, "AWS.event"),
    (vars::EVENT_KEY, "event key"),
    (vars::EVENT_KEY, "a..b"),
    (vars::CACHES, "http://localhost:6379"),
    (vars::CACHES, "redis://"),
    (vars::CACHES, "[]"),
    (vars::LOCK_TIMEOUT, "ten"),
    (vars::LOCK_TIMEOUT, "0"),
    (vars::LOCK_TIMEOUT, "13h"),
    (vars::LOCK_RETRY_COUNT, "0"),
    (vars::LOCK_RETRY_COUNT, "-1"),
    (vars::LOCK_RETRY_COUNT, "two"),
    (vars::RECEIVE_MAX_MESSAGES, "0"),
    (vars::RECEIVE_MAX_MESSAGES, "11"),
    (vars::RECEIVE_WAIT_TIME, "21"),
    (vars::RECEIVE_WAIT_TIME, "2.5"),
    (vars::RECEIVE_WAIT_TIME, "soon"),
    (vars::ASSERT_FILTER_POLICIES, "maybe"),
    (vars::DRY_RUN, "2"),
    (vars::SQS_ENDPOINT_URL, "localhost:4566"),
    (vars::SNS_ENDPOINT_URL, "ftp://localhost"),
    (vars::SNS_ENDPOINT_URL, "http://"),
    (vars::LOCK_BACKEND, "redis"),
    (vars::LOCK_BACKEND, "dynamo"),
    (vars::DYNAMODB_TABLE, "ab"),
    (vars::DYNAMODB_TABLE, "locks/table"),
    (vars::DYNAMODB_ENDPOINT_URL, "localhost:8000"),
    (vars::MAX_IN_FLIGHT, "0"),
    (vars::MAX_IN_FLIGHT, "many"),
    (vars::CONCURRENT_RECEIVES, "0"),
    (vars::CONCURRENT_RECEIVES, "11"),
    (vars::DEDUPE_WINDOW, "0"),
    (vars::DEDUPE_WINDOW, "a day"),
    (vars::HEARTBEAT_INTERVAL, "10"),
    (vars::HEARTBEAT_INTERVAL, "0"),
    (vars::VISIBILITY_EXTENSION, "0.5"),
    (vars::VISIBILITY_EXTENSION, "6"),
    (vars::VISIBILITY_EXTENSION, "13h"),
    (vars::FAILURE_BACKOFF_BASE, "-1"),
    (vars::FAILURE_BACKOFF_MAX, "13h"),
    (vars::FAILURE_BACKOFF_MAX, "forever"),
    (vars::SHUTDOWN_GRACE, "NaN"),
    (vars::DELETE_BATCH_WINDOW, "11s"),
    (vars::DELETE_BATCH_WINDOW, "-5ms"),
    (vars::RETURN_UNSTARTED_ON_SHUTDOWN, "sometimes"),
    (vars::RAW_DELIVERY, "raw"),
    (vars::DELETE_UNMATCHED_EVENTS, "sometimes"),
    (vars::PREFETCH, "-1"),
    (vars::PREFETCH, "lots"),
    (vars::HANDLER_TIMEOUT, "soon"),
    (vars::HANDLER_TIMEOUT, "-1s"),
    (vars::DELETE_PERMANENT_FAILURES, "maybe"),
    (vars::SNS_FIFO_GROUP, "orders"),
    (vars::SNS_FIFO_GROUP, "fixed:a b"),
    (vars::SNS_FIFO_GROUP, "json:id"),
];

#[test]
fn every_bad_value_is_named_with_its_value() {
    let mut rejected = BTreeSet::new();
    for &(var, value) in BAD_VALUES {
        let e = load(&[(var, value)]).expect_err(&format!("{var}={value:?} was accepted"));
        assert_eq!(e.problems().len(), 1, "{var}={value:?}: {e}");
        let p = &e.problems()[0];
        assert_eq!(p.variable, var);
        assert!(p.expected.contains("expected"), "{}", p.expected);
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with(var), "{line}");
        if value != "[]" {
            let shown = p.value.as_deref().unwrap();
            assert!(value.contains(shown), "{line}");
            assert!(line.contains(&format!("{shown:?}")), "{line}");
        }
        rejected.insert(var);
    }
    // Every variable that can be wrong has a bad value above.
    let free_text = [vars::SERVICE_NAME, vars::ENVIRONMENT, vars::LOCK_KEY_PREFIX];
    for var in vars::ALL {
        assert!(
            rejected.contains(var) || free_text.contains(var),
            "no bad value tested for {var}"
        );
    }
}

#[test]
fn an_unknown_lock_backend_names_the_variable_and_value() {
    let e = load(&[(vars::LOCK_BACKEND, "etcd")]).unwrap_err();
    let line = e.to_string();
    assert!(
        line.starts_with(r#"INIESTA_LOCK_BACKEND="etcd": "#),
        "{line}"
    );
    assert!(line.contains("redlock or dynamodb"), "{line}");
    for name in ["redlock", "REDLOCK", " dynamodb "] {
        let s = load(&[(vars::LOCK_BACKEND, name)]).unwrap();
        assert_eq!(s.lock_backend.as_str(), name.trim().to_lowercase());
    }
}

#[test]
fn several_bad_values_are_reported_together() {
    let e = load(&[
        (vars::LOCK_TIMEOUT, "ten"),
        (vars::DRY_RUN, "maybe"),
        (vars::CONSUMER_FILTERS, "Good.x, bad filter, C*"),
        (vars::RECEIVE_MAX_MESSAGES, "50"),
        (vars::SERVICE_NAME, "fine"),
    ])
    .unwrap_err();
    let lines: Vec<String> = e.to_string().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5, "{e}");
    assert!(lines
        .iter()
        .any(|l| l.starts_with(r#"INIESTA_LOCK_TIMEOUT="ten": "#)));
    assert!(lines
        .iter()
        .any(|l| l.starts_with(r#"INIESTA_DRY_RUN="maybe": "#)));
    assert!(lines.iter().any(
        |l| l.starts_with(r#"INIESTA_SQS_CONSUMER_FILTERS="bad filter": "#)
            && l.ends_with("(item 2 of 3)")
    ));
    assert!(lines
        .iter()
        .any(|l| l.starts_with(r#"INIESTA_SQS_CONSUMER_FILTERS="C*": "#)));
    assert!(lines.iter().any(|l| l.starts_with(
        r#"INIESTA_SQS_RECEIVE_MESSAGE_MAX_NUMBER_OF_MESSAGES="50": expected a whole number from 1 to 10"#
    )));
    assert!(e.mentions(vars::DRY_RUN));
    assert!(!e.mentions(vars::SERVICE_NAME));
}

#[test]
fn delete_unmatched_events_is_a_boolean_shown_in_debug() {
    let s = load(&[(vars::DELETE_UNMATCHED_EVENTS, "TRUE")]).unwrap();
    assert!(s.delete_unmatched_events);
    assert!(format!("{s:?}").contains("delete_unmatched_events: true"));
    let e = load(&[(vars::DELETE_UNMATCHED_EVENTS, "delete")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"INIESTA_DELETE_UNMATCHED_EVENTS="delete": expected true or false (also 1/0, yes/no, on/off)"#
    );
}

#[test]
fn caches_must_be_distinct() {
    let e = load(&[(vars::CACHES, "redis://a/1, redis://b/1, redis://a/1")]).unwrap_err();
    assert_eq!(e.problems().len(), 1);
    assert!(e
        .to_string()
        .starts_with(r#"INIESTA_CACHES="redis://a/1": listed twice"#));
}

#[test]
fn problems_stay_on_one_line() {
    // A line break inside a value is escaped; only the ends are trimmed.
    let e = load(&[(vars::DRY_RUN, "\ta\nb\n")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"INIESTA_DRY_RUN="a\nb": expected true or false (also 1/0, yes/no, on/off)"#
    );
}

/// The doc table of the module docs, as generated from the table.
const DOC_TABLE: &str = settings_table!(doc);

/// The doc table's rows: variable, default, meaning.
fn doc_rows() -> Vec<[&'static str; 3]> {
    DOC_TABLE
        .lines()
        .skip(2)
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 3, "{line}");
            [cells[0].trim_matches('`'), cells[1], cells[2]]
        })
        .collect()
}

#[test]
fn the_doc_table_has_a_row_per_variable() {
    let named: Vec<&str> = doc_rows().iter().map(|[name, ..]| *name).collect();
    assert_eq!(named, vars::ALL);
    let distinct: BTreeSet<&str> = vars::ALL.iter().copied().collect();
    assert_eq!(distinct.len(), vars::ALL.len());
    assert!(DOC_TABLE.starts_with("| variable | default | meaning |\n|---|---|---|\n"));
}

#[test]
fn documented_defaults_read_as_the_defaults() {
    // A default shown as a value (`10`, `24h`, `true`, …) is one: setting
    // the variable to it changes nothing.
    let mut checked = 0;
    for [name, default, _] in doc_rows() {
        let value = default.strip_suffix(" (s)").unwrap_or(default);
        let Some(value) = value.strip_prefix('`').and_then(|v| v.strip_suffix('`')) else {
            continue;
        };
        if value.contains('`') {
            continue;
        }
        assert_eq!(
            load(&[(name, value)]),
            Ok(Settings::default()),
            "{name}={value}"
        );
        checked += 1;
    }
    assert!(checked >= 15, "{checked}");
}

#[test]
fn debug_has_every_field_in_the_order_of_the_table() {
    let debug = format!("{:?}", Settings::default());
    let mut at = 0;
    for field in [
        "initialization_types: {}",
        "topic_arn: None",
        "caches: [\"redis://localhost:6379/1\"",
        "lock_timeout: 10s",
        "sqs_endpoint_url: None",
        "environment: \"development\"",
        "failure_backoff_max: 900s",
        "delete_unmatched_events: false",
    ] {
        let found = debug[at..]
            .find(field)
            .unwrap_or_else(|| panic!("{field} in {debug}"));
        at += found + field.len();
    }
    assert_eq!(debug.matches(": ").count(), vars::ALL.len(), "{debug}");
}
