//! Unit tests of [`receive`](super).

use super::*;
use crate::message::{DeliveryMode, ParseConfig};

fn config(max_in_flight: usize, prefetch: Option<usize>) -> ConsumerConfig {
    let parse = ParseConfig {
        mode: DeliveryMode::Raw,
        event_key: "iniesta_pass".into(),
        topic_arn: None,
    };
    let mut c = ConsumerConfig::new(parse, "q");
    c.max_in_flight = max_in_flight;
    c.prefetch = prefetch;
    c
}

/// The receives a new consumer sends: how many messages each asks for.
fn first_receives(config: ConsumerConfig) -> Vec<u32> {
    let mut c = Consumer::new(config, &HandlerRegistry::new(), Time::ZERO).unwrap();
    std::iter::from_fn(|| c.poll_action())
        .filter_map(|a| match a {
            Action::Receive { request, .. } => Some(request.max_messages),
            _ => None,
        })
        .collect()
}

/// The settings take any count, so the bound on messages in progress
/// (twice the slots plus the prefetch) must not overflow: the consumer
/// starts and asks for full batches.
#[test]
fn counts_as_large_as_the_settings_allow_do_not_overflow() {
    for (slots, prefetch) in [
        (usize::MAX, None),
        (usize::MAX / 2 + 1, Some(usize::MAX)),
        (1, Some(usize::MAX)),
    ] {
        assert_eq!(
            first_receives(config(slots, prefetch)),
            [10],
            "{slots} slots, prefetch {prefetch:?}"
        );
    }
}
