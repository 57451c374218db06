//! End-to-end tests of `iniesta consume` with `INIESTA_LOCK_BACKEND=dynamodb`:
//! locks and completion records in one DynamoDB table, served by the same
//! `moto_server` as the queues and the topic (each test starts its own), and
//! no Redis at all (`INIESTA_CACHES` names a port nothing listens on).
//!
//! Each test checks that every event is handled exactly once where the lock
//! is what keeps it so:
//!
//! - two consumers on one queue, each event delivered twice at once;
//! - a consumer killed in the middle of a handler: the survivor does not
//!   take the event while the lock is held, and handles it once after the
//!   lock expires;
//! - SNS duplicates, while a consumer runs and after a restart: they meet
//!   the completion record;
//! - two services on one topic sharing the table: keys are scoped to the
//!   queue, so each service handles every event once.
//!
//! What a consumer handled is read from the JSON line its built-in handler
//! prints per successful dispatch; the table is scanned for the records.
//! Lock and visibility timeouts are 2 s, so waits for expiry stay short.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::dynamodb::{client, event_key, items, OperationCounter};
use common::world::*;
use common::{poll_until, wait_for, Consumer};
use iniesta_dynamodb::item::{ItemState, StoredItem};

/// The lock table every service of a test shares.
const TABLE: &str = "iniesta-test-e2e-locks";
/// The event every test publishes, and the filter that takes it.
const EVENT: &str = "InvoicePaid.billing";
/// Makes the consumer log, at debug, the lock refusals it meets
/// ("skipped: another consumer holds this event's lock").
const DEBUG_LOCKS: (&str, &str) = ("RUST_LOG", "info,iniesta_tokio::observe=debug");
const SKIPPED: &str = "another consumer holds this event's lock";

// ---------------------------------------------------------------------------
// Helpers

/// The service `billing` with the queue `iniesta-test-{name}`, locking in
/// [`TABLE`], provisioned (queue, subscription and table) with a 2 s
/// visibility timeout.
/// The lock timeout of the test that holds a lock across a wait.
const LOCK_TIMEOUT_5S: (&str, &str) = ("INIESTA_LOCK_TIMEOUT", "5");

fn billing<'a>(world: &'a World, name: &str) -> Service<'a> {
    let service = world
        .service(&format!("iniesta-test-{name}"), "billing", EVENT)
        .with_dynamodb(TABLE);
    provision(&service);
    service
}

/// `iniesta provision --visibility-timeout 2`, which also creates the lock
/// table (or checks the one already there).
fn provision(service: &Service) {
    let out = service.provision(&["--visibility-timeout", "2"]);
    assert!(
        out.contains("lock table:") && out.contains(TABLE),
        "provision names the lock table: {out}"
    );
}

/// `n` events with distinct bodies.
fn events(n: usize) -> Vec<(&'static str, String)> {
    (0..n).map(|i| (EVENT, format!(r#"{{"n":{i}}}"#))).collect()
}

/// Sends a copy of each published event (same SNS message id, as SNS's
/// at-least-once delivery makes) straight to the queue at `url`.
fn send_copies(world: &World, url: &str, ids: &[String], events: &[(&str, String)]) {
    for (id, (event, body)) in ids.iter().zip(events) {
        world.send_envelope(url, id, event, body);
    }
}

/// Every item of [`TABLE`], by key.
fn table(world: &World) -> BTreeMap<String, StoredItem> {
    let dynamodb = client(&world.moto.endpoint());
    world.rt.block_on(items(&dynamodb, TABLE))
}

/// How often each SNS message id was handled over all `consumers`.
fn handled_counts(consumers: &[&Consumer]) -> BTreeMap<String, usize> {
    let lines: Vec<_> = consumers.iter().flat_map(|c| c.handled()).collect();
    id_counts(&lines)
}

/// Asserts that `consumers` together handled each of `published` exactly
/// once and nothing else; `seen` says what else the test saw.
fn assert_once_each(consumers: &[&Consumer], published: &BTreeSet<String>, seen: &str) {
    let count = handled_counts(consumers);
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    let handled: BTreeSet<String> = count.keys().cloned().collect();
    let missing: Vec<_> = published.difference(&handled).collect();
    let foreign: Vec<_> = handled.difference(published).collect();
    let names: Vec<_> = consumers.iter().map(|c| c.name).collect();
    assert!(
        twice.is_empty() && missing.is_empty() && foreign.is_empty(),
        "{names:?} must handle each of the {} events exactly once: twice {twice:?}; \
         missing {} {}; not published {foreign:?}\n{seen}",
        published.len(),
        missing.len(),
        some(&missing),
    );
}

/// Asserts that [`TABLE`] holds a completion record for each of `ids` in
/// `queue`.
fn assert_records(table: &BTreeMap<String, StoredItem>, queue: &str, ids: &BTreeSet<String>) {
    for id in ids {
        let key = event_key(queue, id);
        match table.get(&key) {
            Some(item) if item.state == ItemState::Done => {}
            other => panic!("no completion record for {key}: {other:?}"),
        }
    }
}

/// A counter of `consumer`'s summary, 0 when it printed none.
fn counted(consumer: &Consumer, counter: &str) -> u64 {
    summary_count(consumer, counter).unwrap_or(0)
}

/// SIGTERM, and the clean exit it must give.
fn stop(consumer: &mut Consumer) {
    let exit = consumer.terminate();
    assert_eq!(
        exit.code(),
        Some(0),
        "{}: {}",
        consumer.name,
        consumer.stderr_text()
    );
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn two_consumers_on_one_queue_handle_each_event_once() {
    let Some(world) = World::start_without_redis("dyn-two") else {
        return;
    };
    let service = billing(&world, "dyn-two");
    let url = service.url();
    // One message at a time each, so that the two copies of an event, next
    // to each other in the queue, usually go to different consumers, and
    // handlers that sleep hold the lock while the other one tries. B also
    // fails every 7th call: those messages come back after the visibility
    // timeout and are handled then, still once.
    let mut a = service.consume(
        "consumer-a",
        &["--sleep-ms", "300", "--max-in-flight", "1"],
        &[],
    );
    let mut b = service.consume(
        "consumer-b",
        &[
            "--sleep-ms",
            "300",
            "--max-in-flight",
            "1",
            "--fail-every",
            "7",
        ],
        &[],
    );

    // Each event twice in a row, with one SNS message id, as SNS's
    // at-least-once delivery may bring it.
    let events = events(30);
    let ids: Vec<String> = (0..events.len() as u16).map(sns_like_id).collect();
    for (id, (event, body)) in ids.iter().zip(&events) {
        world.send_envelope(&url, id, event, body);
        world.send_envelope(&url, id, event, body);
    }
    let published: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(published.len(), events.len(), "SNS ids are unique");

    let settled = poll_until(SETTLE, || {
        a.assert_running();
        b.assert_running();
        let handled = handled_counts(&[&a, &b]);
        published.iter().all(|id| handled.contains_key(id)) && world.counts(&url).total() == 0
    });
    stop(&mut a);
    stop(&mut b);
    let seen = format!(
        "settled within {SETTLE:?}: {settled}; queue {:?}\n{}\n{}",
        world.counts(&url),
        summary(&a),
        summary(&b)
    );
    eprintln!("{seen}");
    assert_once_each(&[&a, &b], &published, &seen);
    assert_records(&table(&world), &service.queue, &published);
    // Every message was deleted, and only one per event was handled: each
    // other copy met the completion record.
    let acked = counted(&a, "duplicates acked") + counted(&b, "duplicates acked");
    assert!(
        acked >= published.len() as u64,
        "each of the {} copies is acknowledged as a duplicate, got {acked}\n{seen}",
        published.len()
    );
    // The lock, not only the record, had work to do: some copies arrived
    // while the other consumer's handler ran.
    let busy = counted(&a, "skipped (busy)") + counted(&b, "skipped (busy)");
    assert!(busy > 0, "no copy ever met the other's lock\n{seen}");
}

#[test]
fn a_message_whose_consumer_is_killed_mid_handler_is_handled_once_after_its_lock_expires() {
    let Some(world) = World::start_without_redis("dyn-killed") else {
        return;
    };
    let service = billing(&world, "dyn-killed");
    let url = service.url();
    let events = events(1);
    let ids = world.publish(&events);
    let id = ids[0].clone();
    let key = event_key(&service.queue, &id);

    // A takes the event and sleeps in its handler, renewing the lock and
    // the message's visibility; it takes nothing else. A 5 s lock (renewed
    // every 3 s) leaves a loaded machine's moto time to answer a renewal.
    let mut a = service.consume(
        "consumer-a",
        &["--sleep-ms", "600000", "--max-in-flight", "1"],
        &[LOCK_TIMEOUT_5S],
    );
    a.wait_stderr("handler started");
    let mut b = service.consume("consumer-b", &[], &[DEBUG_LOCKS, LOCK_TIMEOUT_5S]);
    // A copy of the event that only B can receive: the lock alone keeps B
    // from handling it.
    send_copies(&world, &url, &ids, &events);
    poll_until(SETTLE, || {
        b.assert_running();
        b.stderr_has(SKIPPED) || !b.handled().is_empty()
    });
    // Longer than the lock timeout: A's renewals keep the lock its own.
    std::thread::sleep(Duration::from_millis(6000));
    a.assert_running();
    let refused = b.stderr_has(SKIPPED);
    assert!(
        b.handled().is_empty(),
        "B handled the event while A held its lock (refusal seen: {refused}):{}",
        show(&b.handled())
    );
    assert!(refused, "B never met A's lock within {SETTLE:?}");
    let held = table(&world).remove(&key);
    let held = held.unwrap_or_else(|| panic!("no lock item {key} while A runs"));
    assert_eq!(held.state, ItemState::Locked, "A holds the lock: {held:?}");

    // Killed in the middle: no release, no delete. The lock expires (5 s),
    // and B takes the event.
    a.kill();
    wait_for("consumer b to handle the event", || {
        b.assert_running();
        !b.handled().is_empty()
    });
    // Both messages (the original and the copy) end up deleted.
    let drained = poll_until(SETTLE, || world.counts(&url).total() == 0);
    stop(&mut b);
    let seen = format!(
        "queue drained within {SETTLE:?}: {drained} ({:?}); {}",
        world.counts(&url),
        summary(&b)
    );
    eprintln!("{seen}");
    assert!(a.handled().is_empty(), "the killed consumer never finished");
    assert_once_each(&[&b], &BTreeSet::from([id]), &seen);
    let done = table(&world).remove(&key).expect("the record");
    assert_eq!(done.state, ItemState::Done, "B's record: {done:?}");
    assert_ne!(done.token, held.token, "the record is B's, not A's lock");
    assert!(drained, "{seen}");
}

#[test]
fn sns_duplicates_meet_the_completion_record_also_after_a_restart() {
    let Some(world) = World::start_without_redis("dyn-dupes") else {
        return;
    };
    let service = billing(&world, "dyn-dupes");
    let url = service.url();
    let mut first = service.consume("first", &[], &[]);

    // Each event three times: through the topic, and two copies straight to
    // the queue, as SNS's at-least-once delivery may bring them.
    let events = events(10);
    let ids = world.publish(&events);
    send_copies(&world, &url, &ids, &events);
    send_copies(&world, &url, &ids, &events);
    let published: BTreeSet<String> = ids.iter().cloned().collect();
    let settled = poll_until(SETTLE, || {
        first.assert_running();
        let handled = handled_counts(&[&first]);
        published.iter().all(|id| handled.contains_key(id)) && world.counts(&url).total() == 0
    });
    stop(&mut first);
    let seen = format!(
        "settled within {SETTLE:?}: {settled}; queue {:?}; {}",
        world.counts(&url),
        summary(&first)
    );
    eprintln!("{seen}");
    assert_once_each(&[&first], &published, &seen);
    assert_records(&table(&world), &service.queue, &published);

    // One more copy each while no consumer runs; the next consumer finds
    // the records its predecessor wrote and handles none of them.
    send_copies(&world, &url, &ids, &events);
    let mut second = service.consume("second", &[], &[]);
    let settled = poll_until(SETTLE, || {
        second.assert_running();
        world.counts(&url).total() == 0 || !second.handled().is_empty()
    });
    stop(&mut second);
    let seen = format!(
        "settled within {SETTLE:?}: {settled}; queue {:?}; {}",
        world.counts(&url),
        summary(&second)
    );
    eprintln!("{seen}");
    assert!(
        second.handled().is_empty(),
        "the restarted consumer handled events already done:{}\n{seen}",
        show(&second.handled())
    );
    let acked = counted(&second, "duplicates acked");
    assert!(
        acked >= published.len() as u64 && world.counts(&url).total() == 0,
        "each copy is acknowledged as a duplicate and deleted, got {acked}: {seen}"
    );
}

#[test]
fn two_services_on_one_topic_sharing_the_table_each_handle_every_event_once() {
    let Some(world) = World::start_without_redis("dyn-fanout") else {
        return;
    };
    // Same filters, envelope delivery: SNS gives both queues the same SNS
    // message id per event; only the queue in the key tells them apart.
    let services = ["billing", "shipping"].map(|name| {
        world
            .service(&format!("iniesta-test-dyn-fanout-{name}"), name, EVENT)
            .with_dynamodb(TABLE)
    });
    for service in &services {
        provision(service);
    }
    let urls: Vec<String> = services.iter().map(Service::url).collect();
    // The consumers' DynamoDB requests go through a counting relay.
    let relay = OperationCounter::start(world.moto.port());
    let endpoint = relay.endpoint();
    let env = [("INIESTA_DYNAMODB_ENDPOINT_URL", endpoint.as_str())];
    let mut consumers = [
        services[0].consume("billing", &[], &env),
        services[1].consume("shipping", &[], &env),
    ];
    // What start-up cost (a probe lock each) is not the messages' cost.
    let at_start = relay.counts();

    let published: BTreeSet<String> = world.publish(&events(30)).into_iter().collect();
    let settled = poll_until(SETTLE, || {
        consumers.iter_mut().all(|c| {
            c.assert_running();
            let handled = handled_counts(&[&*c]);
            published.iter().all(|id| handled.contains_key(id))
        }) && urls.iter().all(|url| world.counts(url).total() == 0)
    });
    for c in &mut consumers {
        stop(c);
    }
    let seen = format!(
        "settled within {SETTLE:?}: {settled}; queues {:?}\n{}\n{}",
        urls.iter().map(|u| world.counts(u)).collect::<Vec<_>>(),
        summary(&consumers[0]),
        summary(&consumers[1])
    );
    eprintln!("{seen}");
    for c in &consumers {
        assert_once_each(&[c], &published, &seen);
    }

    // One record per event and queue, and nothing else.
    let table = table(&world);
    let want: BTreeSet<String> = services
        .iter()
        .flat_map(|s| published.iter().map(|id| event_key(&s.queue, id)))
        .collect();
    let have: BTreeSet<String> = table.keys().cloned().collect();
    assert_eq!(have, want, "the table's keys, scoped to the queues");
    for service in &services {
        assert_records(&table, &service.queue, &published);
    }

    let mut requests = relay.counts();
    for (operation, n) in &at_start {
        *requests.entry(operation.clone()).or_default() -= n;
    }
    requests.retain(|_, n| *n > 0);
    let handled = 2 * published.len();
    let total: usize = requests.values().sum();
    eprintln!(
        "DynamoDB requests for {handled} handled messages (start-up {at_start:?} not counted): \
         {requests:?}, {:.2} per message",
        total as f64 / handled as f64
    );
    // A lock and a record per message, at least; fewer would mean the
    // consumers locked somewhere else.
    let puts = requests.get("PutItem").copied().unwrap_or(0);
    assert!(
        puts >= 2 * handled,
        "expected at least {} PutItem requests, got {requests:?}",
        2 * handled
    );
}
