//! End-to-end correctness of `iniesta consume` against a `moto_server` and
//! three `redis-server` processes that each test starts for itself:
//!
//! - several services subscribed to one topic, sharing the lock servers,
//!   each handle every event;
//! - a lock timeout under a second keeps slow handlers' messages invisible
//!   (SQS takes whole seconds), so nothing reaches the dead-letter queue;
//! - an event outside the consumer's own filters, sent straight to its
//!   queue, is never handled: it is reported, and left in the queue or
//!   deleted as configured;
//! - a prefix filter (`Order.*`) takes the events it names and no others.
//!
//! What a consumer handled is read from the JSON line its built-in handler
//! prints per successful dispatch. Every wait has a deadline; when one
//! passes, the test still checks and prints what it saw.

mod common;

use std::collections::BTreeSet;

use common::world::*;
use common::{poll_until, Consumer};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Tests

#[test]
fn every_service_on_the_topic_handles_every_event_when_services_share_the_lock_servers() {
    let Some(world) = World::start("fanout") else {
        return;
    };
    // Two services, same filters, envelope delivery, one set of Redis
    // servers: SNS gives both queues the same SNS message id per event.
    let services = [
        world.service(
            "iniesta-test-fanout-billing",
            "billing",
            "InvoicePaid.sales",
        ),
        world.service(
            "iniesta-test-fanout-shipping",
            "shipping",
            "InvoicePaid.sales",
        ),
    ];
    for service in &services {
        let out = service.provision(&["--visibility-timeout", "5"]);
        assert!(out.contains("SNS envelope"), "envelope delivery: {out}");
    }
    let urls: Vec<String> = services.iter().map(Service::url).collect();
    let mut consumers = [
        services[0].consume("billing", &[], &[]),
        services[1].consume("shipping", &[], &[]),
    ];

    let events: Vec<(&str, String)> = (0..60)
        .map(|n| ("InvoicePaid.sales", format!(r#"{{"n":{n}}}"#)))
        .collect();
    let published: BTreeSet<String> = world.publish(&events).into_iter().collect();
    assert_eq!(published.len(), 60, "SNS ids are unique");

    // Done when each service handled every event, or when both queues are
    // empty (nothing more will be handled).
    let settled = poll_until(SETTLE, || {
        let all_handled = consumers.iter().all(|c| {
            let seen: BTreeSet<String> = sns_ids(&c.handled()).into_iter().collect();
            seen.is_superset(&published)
        });
        all_handled || urls.iter().all(|url| world.counts(url).total() == 0)
    });
    for c in &mut consumers {
        let exit = c.terminate();
        assert_eq!(exit.code(), Some(0), "{}: {}", c.name, c.stderr_text());
    }

    let mut report = Vec::new();
    let mut ok = true;
    for (c, url) in consumers.iter().zip(&urls) {
        let count = id_counts(&c.handled());
        let handled: BTreeSet<String> = count.keys().cloned().collect();
        let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
        let missing: Vec<_> = published.difference(&handled).collect();
        let foreign: Vec<_> = handled.difference(&published).collect();
        ok &= twice.is_empty() && missing.is_empty() && foreign.is_empty();
        report.push(format!(
            "{}: handled {} of {} events; {} missing {}; twice {twice:?}; \
             not published {foreign:?}; queue now {:?}; {}",
            c.name,
            handled.len(),
            published.len(),
            missing.len(),
            some(&missing),
            world.counts(url),
            summary(c),
        ));
    }
    let report = report.join("\n");
    eprintln!("{report}");
    assert!(
        ok,
        "each service must handle each of the {} events exactly once \
         (settled within {SETTLE:?}: {settled}):\n{report}",
        published.len()
    );
}

#[test]
fn a_lock_timeout_under_a_second_keeps_slow_messages_out_of_the_dead_letter_queue() {
    let Some(world) = World::start("sublock") else {
        return;
    };
    let service = world.service("iniesta-test-sublock", "billing", "InvoicePaid.billing");
    // A long queue visibility timeout: only the consumer's own visibility
    // changes can make a message visible while its handler runs.
    let out = service.provision(&["--visibility-timeout", "5", "--dead-letter-after", "2"]);
    assert!(out.contains("dead letters:"), "a dead-letter queue: {out}");
    let url = service.url();
    let dlq_url = world.queue_url(&format!("{}-dlq", service.queue));

    // Handlers take 2.5 s, three times the 0.8 s lock: they live on the
    // heartbeat's lock and visibility extensions.
    let mut c = service.consume(
        "slow",
        &["--sleep-ms", "2500"],
        &[("INIESTA_LOCK_TIMEOUT", "0.8")],
    );
    let events: Vec<(&str, String)> = (0..5)
        .map(|n| ("InvoicePaid.billing", format!(r#"{{"n":{n}}}"#)))
        .collect();
    let published: BTreeSet<String> = world.publish(&events).into_iter().collect();
    assert_eq!(published.len(), 5);

    // Done when every event is handled and the queue is empty, or when
    // every message is in the dead-letter queue.
    let settled = poll_until(SETTLE, || {
        c.assert_running();
        let seen: BTreeSet<String> = sns_ids(&c.handled()).into_iter().collect();
        (seen.is_superset(&published) && world.counts(&url).total() == 0)
            || world.counts(&dlq_url).total() >= published.len() as u64
    });
    let exit = c.terminate();
    assert_eq!(exit.code(), Some(0), "{}", c.stderr_text());

    let count = id_counts(&c.handled());
    let handled: BTreeSet<String> = count.keys().cloned().collect();
    let (queue, dlq) = (world.counts(&url), world.counts(&dlq_url));
    let seen = format!(
        "settled within {SETTLE:?}: {settled}; handled {} of {}; queue {queue:?}; \
         dead-letter queue {dlq:?}; {}",
        handled.len(),
        published.len(),
        summary(&c)
    );
    eprintln!("{seen}");
    assert_eq!(
        dlq.total(),
        0,
        "no message may reach the dead-letter queue while its handler runs \
         (dead letters {:?}): {seen}",
        world.receive_ids(&dlq_url)
    );
    assert_eq!(handled, published, "every event is handled: {seen}");
    assert!(
        count.values().all(|n| *n == 1),
        "each event handled once: {count:?}"
    );
    assert_eq!(queue.total(), 0, "every message is deleted: {seen}");
}

/// The consumer's summary counts at least `at_least` events outside its
/// filters.
fn assert_unmatched_counted(consumer: &Consumer, at_least: u64) {
    let counted = summary_count(consumer, "unmatched");
    assert!(
        counted.is_some_and(|n| n >= at_least),
        "the summary counts the events outside the filters (at least {at_least}), \
         got {counted:?}: {}",
        summary(consumer)
    );
}

/// Filters `UserCreated.users`, raw delivery. Straight to the queue: an
/// event outside the filters and one inside; through the topic: another
/// one inside. Only the two inside are handled; the one outside is reported
/// and, as `delete_unmatched` says, deleted or left in the queue.
fn event_outside_the_filters(name: &str, delete_unmatched: bool) {
    let Some(world) = World::start(name) else {
        return;
    };
    let service = world.service(
        &format!("iniesta-test-{name}"),
        "users",
        "UserCreated.users",
    );
    let out = service.provision(&["--raw-delivery", "--visibility-timeout", "2"]);
    assert!(out.contains("raw"), "raw delivery: {out}");
    let url = service.url();
    let env: &[(&str, &str)] = if delete_unmatched {
        &[("INIESTA_DELETE_UNMATCHED_EVENTS", "true")]
    } else {
        &[]
    };
    let mut c = service.consume("users", &[], env);

    let foreign = world.send_raw(&url, "Secret.other", r#"{"via":"queue","secret":true}"#);
    let straight = world.send_raw(&url, "UserCreated.users", r#"{"via":"queue"}"#);
    let published = world.publish(&[("UserCreated.users", r#"{"via":"topic"}"#.to_owned())]);
    let wanted = BTreeSet::from([
        r#"{"via":"queue"}"#.to_owned(),
        r#"{"via":"topic"}"#.to_owned(),
    ]);
    let names = [foreign.as_str(), "Secret.other"];

    let is_foreign = |line: &Value| line["message_id"] == foreign.as_str();
    let settled = poll_until(SETTLE, || {
        c.assert_running();
        let lines = c.handled();
        let bodies: BTreeSet<String> = lines
            .iter()
            .filter_map(|l| l["body"].as_str().map(str::to_owned))
            .collect();
        lines.iter().any(is_foreign)
            || (bodies.is_superset(&wanted) && !filter_reports(&c, &names).is_empty())
    });
    let lines = c.handled();
    let seen = format!(
        "settled within {SETTLE:?}: {settled}; foreign message {foreign}, matching {straight} \
         (straight) and {published:?} (topic); handled:{}",
        show(&lines)
    );
    eprintln!("{seen}");
    if let Some(line) = lines.iter().find(|l| is_foreign(l)) {
        panic!("the event outside the filters was handled: {line}\n{seen}");
    }
    let mut bodies: Vec<String> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["event"], "UserCreated.users", "{l}");
            l["body"].as_str().expect("a body").to_owned()
        })
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        wanted.iter().cloned().collect::<Vec<_>>(),
        "the two matching events, once each: {seen}"
    );
    let reports = filter_reports(&c, &names);
    assert!(
        !reports.is_empty(),
        "the consumer's log must say why {foreign} (Secret.other) was not handled, \
         on a line mentioning the filters and the message: {seen}"
    );
    eprintln!("reported as: {reports:?}");

    if delete_unmatched {
        // Deleted while the consumer runs, like the handled ones.
        let empty = poll_until(SETTLE, || world.counts(&url).total() == 0);
        let exit = c.terminate();
        assert_eq!(exit.code(), Some(0), "{}", c.stderr_text());
        assert_unmatched_counted(&c, 1);
        assert!(
            empty,
            "with INIESTA_DELETE_UNMATCHED_EVENTS=true the queue is emptied, \
             found {:?}; {}",
            world.counts(&url),
            summary(&c)
        );
    } else {
        let exit = c.terminate();
        assert_eq!(exit.code(), Some(0), "{}", c.stderr_text());
        assert_unmatched_counted(&c, 1);
        // Left in the queue: once the consumer is gone it can be received.
        let mut received = Vec::new();
        let found = poll_until(SETTLE, || {
            let ids = world.receive_ids(&url);
            received.extend(ids.iter().cloned());
            ids.contains(&foreign)
        });
        assert!(
            found,
            "the event outside the filters stays in the queue; received only {received:?}, \
             queue {:?}; {}",
            world.counts(&url),
            summary(&c)
        );
    }
}

#[test]
fn an_event_outside_the_filters_is_reported_and_left_in_the_queue() {
    event_outside_the_filters("unmatched-kept", false);
}

#[test]
fn an_event_outside_the_filters_is_deleted_unhandled_when_configured() {
    event_outside_the_filters("unmatched-deleted", true);
}

#[test]
fn a_prefix_filter_takes_the_events_it_names_and_no_others() {
    let Some(world) = World::start("prefix") else {
        return;
    };
    let service = world.service("iniesta-test-prefix", "orders", "Order.*");
    let out = service.provision(&["--visibility-timeout", "2"]);
    assert!(out.contains("SNS envelope"), "envelope delivery: {out}");
    let url = service.url();
    let mut c = service.consume("orders", &[], &[]);

    // Through the topic (its filter policy lets them through) ...
    let mut wanted: BTreeSet<String> = world
        .publish(&[
            ("Order.created", r#"{"n":1}"#.to_owned()),
            ("Order.paid", r#"{"n":2}"#.to_owned()),
        ])
        .into_iter()
        .collect();
    // ... and straight to the queue, as SNS envelopes from the same topic.
    let shipped = sns_like_id(1);
    world.send_envelope(&url, &shipped, "Order.shipped", r#"{"n":3}"#);
    wanted.insert(shipped);
    let invoice = sns_like_id(2);
    let invoice_sqs = world.send_envelope(&url, &invoice, "Invoice.sent", r#"{"n":4}"#);
    // Shares the text before the dot but not the prefix `Order.`.
    let order_line = sns_like_id(3);
    let order_line_sqs = world.send_envelope(&url, &order_line, "OrderLine.added", r#"{"n":5}"#);
    let foreign = BTreeSet::from([invoice.clone(), order_line.clone()]);
    let foreign_names = [
        vec![invoice.as_str(), invoice_sqs.as_str(), "Invoice.sent"],
        vec![
            order_line.as_str(),
            order_line_sqs.as_str(),
            "OrderLine.added",
        ],
    ];

    let settled = poll_until(SETTLE, || {
        c.assert_running();
        let seen: BTreeSet<String> = sns_ids(&c.handled()).into_iter().collect();
        !seen.is_disjoint(&foreign)
            || (seen.is_superset(&wanted)
                && foreign_names
                    .iter()
                    .all(|names| !filter_reports(&c, names).is_empty()))
    });
    let exit = c.terminate();
    assert_eq!(exit.code(), Some(0), "{}", c.stderr_text());

    let lines = c.handled();
    let count = id_counts(&lines);
    let seen = format!(
        "settled within {SETTLE:?}: {settled}; wanted {wanted:?}; outside the filters \
         {foreign:?}; queue {:?}; {}; handled:{}",
        world.counts(&url),
        summary(&c),
        show(&lines)
    );
    eprintln!("{seen}");
    let wrongly: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["sns_message_id"]
                .as_str()
                .is_some_and(|k| foreign.contains(k))
        })
        .collect();
    assert!(
        wrongly.is_empty(),
        "events outside `Order.*` were handled: {}\n{seen}",
        show(&wrongly.into_iter().cloned().collect::<Vec<_>>())
    );
    let handled: BTreeSet<String> = count.keys().cloned().collect();
    assert_eq!(handled, wanted, "every `Order.` event: {seen}");
    assert!(count.values().all(|n| *n == 1), "once each: {seen}");
    for names in &foreign_names {
        assert!(
            !filter_reports(&c, names).is_empty(),
            "the log says why {} was not handled: {seen}",
            names[2]
        );
    }
    assert_unmatched_counted(&c, foreign.len() as u64);
}
