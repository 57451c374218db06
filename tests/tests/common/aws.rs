//! Shared set-up for the tests against a real `moto_server`.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use iniesta_aws::{provision, AwsClients, ProvisionRequest, Provisioned, SqsQueue, TopicRef};
use iniesta_core::{FilterPolicy, Queue, ReceiveRequest, ReceivedMessage};
use iniesta_tests::servers::moto::MotoServer;

/// A moto_server of this test's own and clients pointed at it.
pub struct Moto {
    pub server: MotoServer,
    pub clients: AwsClients,
}

/// Starts moto; `None` means the test is skipped (the reason was printed).
pub fn start() -> Option<Moto> {
    let server = MotoServer::start()?;
    let clients = server.clients();
    Some(Moto { server, clients })
}

pub const EVENT_KEY: &str = "iniesta_pass";

pub fn policy(filters: &[&str]) -> FilterPolicy {
    FilterPolicy::from_filters(EVENT_KEY, filters).expect("valid filters")
}

/// Provisions topic `topic`, queue `queue` with the given filters.
pub async fn setup(
    moto: &Moto,
    topic: &str,
    queue: &str,
    filters: &[&str],
    raw: bool,
) -> Provisioned {
    let mut request = ProvisionRequest::new(TopicRef::Name(topic.into()), queue, policy(filters));
    request.raw_delivery = raw;
    request.dead_letter_after = Some(5);
    request.visibility_timeout = Some(Duration::from_secs(30));
    provision(&moto.clients, &request)
        .await
        .expect("provisioning against moto works")
}

pub fn receive_request(wait_secs: u64) -> ReceiveRequest {
    ReceiveRequest {
        max_messages: 10,
        wait_time: Duration::from_secs(wait_secs),
        visibility_timeout: None,
    }
}

/// Receives until `want` messages have arrived (bounded number of polls).
pub async fn receive_n(queue: &SqsQueue, want: usize) -> Vec<ReceivedMessage> {
    let mut got = Vec::new();
    for _ in 0..10 {
        got.extend(queue.receive(receive_request(1)).await.expect("receive"));
        if got.len() >= want {
            break;
        }
    }
    got
}

/// Drains the queue, asserting that anything still arriving is a copy of a
/// message already handled (`seen` holds their SQS message ids; moto, like
/// SQS, may redeliver a deleted message), and deleting such copies again.
pub async fn assert_drained(queue: &SqsQueue, seen: &BTreeSet<String>) {
    for _ in 0..5 {
        let more = queue.receive(receive_request(1)).await.expect("receive");
        if more.is_empty() {
            return;
        }
        for m in &more {
            assert!(
                seen.contains(&m.sqs_message_id),
                "unexpected message in the queue: {m:?}"
            );
        }
        let handles = more.iter().map(|m| m.receipt_handle.clone()).collect();
        for r in queue.delete_batch(handles).await {
            r.expect("deleting a redelivered copy");
        }
    }
    panic!("the queue kept returning copies of deleted messages");
}
