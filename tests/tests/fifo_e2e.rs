//! End to end on a FIFO topic and queue (a `moto_server` and three
//! `redis-server`s of the test's own): two `iniesta consume` processes with
//! 50 ms handlers, one of them failing every fifth call, share one FIFO
//! queue. Read from their output lines (each carries its group and when its
//! handler started and finished), every message group must have been
//! handled in the order it was published, one message at a time, each
//! message exactly once, across both consumers.

use std::collections::BTreeMap;
use std::time::Duration;

use iniesta_aws::SnsTopic;
use iniesta_core::publish::event_message;
use iniesta_core::Topic;
use serde_json::Value;

mod common;
use common::world::{summary, summary_count, World, EVENT_KEY};
use common::*;

const GROUPS: u64 = 4;
const PER_GROUP: u64 = 8;

/// One handled message as a consumer printed it.
#[derive(Debug, Clone)]
struct Handled {
    consumer: &'static str,
    group: String,
    n: u64,
    key: String,
    started_us: u64,
    finished_us: u64,
}

fn read(consumer: &'static str, line: &Value) -> Handled {
    let body: Value = serde_json::from_str(line["body"].as_str().expect("a body"))
        .unwrap_or_else(|e| panic!("body of {line} is not JSON: {e}"));
    Handled {
        consumer,
        group: line["group_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{consumer} printed no group: {line}"))
            .to_owned(),
        n: body["n"].as_u64().expect("n in the body"),
        key: line["key"].as_str().expect("a key").to_owned(),
        started_us: line["started_us"].as_u64().expect("started_us"),
        finished_us: line["finished_us"].as_u64().expect("finished_us"),
    }
}

#[test]
fn two_consumers_handle_each_group_in_order_one_message_at_a_time() {
    let Some(mut world) = World::start("fifo-order") else {
        return;
    };
    world.topic = "events-fifo-order.fifo".to_owned();
    let service = world.service(
        "iniesta-test-fifo-order.fifo",
        "orders",
        "OrderPlaced.orders",
    );
    let out = service.provision(&["--visibility-timeout", "5"]);
    assert!(out.contains("kind:          FIFO"), "{out}");

    // Published interleaved across the groups, as a real producer would:
    // g-0 n0, g-1 n0, …, g-3 n0, g-0 n1, … Each group's order is n.
    let messages: Vec<_> = (0..PER_GROUP)
        .flat_map(|n| (0..GROUPS).map(move |g| (g, n)))
        .map(|(g, n)| {
            event_message(
                EVENT_KEY,
                "OrderPlaced.orders",
                format!(r#"{{"n":{n}}}"#),
                1,
            )
            .unwrap()
            .with_group_id(format!("g-{g}"))
            .with_deduplication_id(format!("g-{g}-n-{n}"))
        })
        .collect();
    let topic = SnsTopic::new(world.clients.sns.clone(), world.topic_arn());
    for result in world.rt.block_on(topic.publish_batch(messages)) {
        result.expect("publish to the FIFO topic");
    }

    // A failed message is hidden for 1 s, then comes back before the rest
    // of its group.
    let env = [("INIESTA_FAILURE_BACKOFF_BASE", "1s")];
    let mut a = service.consume("a", &["--sleep-ms", "50", "--fail-every", "5"], &env);
    let mut b = service.consume("b", &["--sleep-ms", "50"], &env);
    assert!(a.stderr_has("FIFO queue detected"), "{}", a.stderr_text());

    let total = (GROUPS * PER_GROUP) as usize;
    let done = poll_until(Duration::from_secs(90), || {
        a.assert_running();
        b.assert_running();
        a.handled().len() + b.handled().len() >= total
    });
    // A moment more, so a message handled twice would show.
    std::thread::sleep(Duration::from_secs(2));
    a.terminate();
    b.terminate();

    let mut handled: Vec<Handled> = a.handled().iter().map(|l| read("a", l)).collect();
    handled.extend(b.handled().iter().map(|l| read("b", l)));
    handled.sort_by_key(|h| h.started_us);
    let shown: Vec<String> = handled
        .iter()
        .map(|h| format!("{}:{}#{}", h.consumer, h.group, h.n))
        .collect();
    println!("handled, by start: {}", shown.join(" "));
    println!("{}\n{}", summary(&a), summary(&b));
    assert!(done, "not every message was handled within 90 s: {shown:?}");

    // Each message exactly once.
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for h in &handled {
        *per_key.entry(&h.key).or_default() += 1;
    }
    let twice: Vec<_> = per_key.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    assert_eq!(per_key.len(), total, "{shown:?}");

    // The handler did fail: some message went back and held its group.
    assert!(
        summary_count(&a, "failed").is_some_and(|n| n > 0),
        "consumer a never failed a handler: {}",
        summary(&a)
    );

    let mut by_group: BTreeMap<&str, Vec<&Handled>> = BTreeMap::new();
    for h in &handled {
        by_group.entry(&h.group).or_default().push(h);
    }
    assert_eq!(by_group.len(), GROUPS as usize, "{shown:?}");
    for (group, list) in &by_group {
        let order: Vec<u64> = list.iter().map(|h| h.n).collect();
        assert_eq!(
            order,
            (0..PER_GROUP).collect::<Vec<_>>(),
            "group {group} handled out of order (by handler start): {shown:?}"
        );
        for pair in list.windows(2) {
            assert!(
                pair[0].finished_us <= pair[1].started_us,
                "group {group}: #{} ({}) started before #{} ({}) finished",
                pair[1].n,
                pair[1].consumer,
                pair[0].n,
                pair[0].consumer,
            );
        }
    }
    // Groups ran side by side: some two handlers of different groups
    // overlapped in time (four groups, 50 ms handlers).
    let overlapped = handled
        .windows(2)
        .any(|w| w[0].group != w[1].group && w[1].started_us < w[0].finished_us);
    assert!(overlapped, "no two groups ever ran at once: {shown:?}");
}
