//! What `provision` makes passes the original Python Iniesta's start-up
//! checks, so that a Python service and this one can share a queue during a
//! migration; and our own verification still reads the queue policy the
//! way IAM does.
//!
//! [`original_event_polling_checks`] ports the checks the original makes
//! when it starts with `INIESTA_INITIALIZATION_TYPE` `EVENT_POLLING` (its
//! documentation, "Event Polling Initialization": the topic exists, the
//! queue exists, the queue is subscribed to the topic with the configured
//! filter policy, the permissions exist), one step per function of its
//! source:
//!
//! 1. `_Iniesta._init_event_polling` (`iniesta/app.py`): the global topic ARN
//!    is set and `INIESTA_SQS_CONSUMER_FILTERS` is not empty;
//! 2. `SNSClient._confirm_topic` (`iniesta/sns/client.py`):
//!    `GetTopicAttributes` of the topic answers;
//! 3. `SQSClient.initialize` (`iniesta/sqs/client.py`): `GetQueueUrl` of the
//!    queue name answers;
//! 4. `SQSClient.confirm_subscription`: `ListSubscriptionsByTopic`, page by
//!    page, finds a subscription whose `Endpoint` split at `:` contains the
//!    queue name; with `INIESTA_ASSERT_FILTER_POLICIES` (default true) its
//!    `FilterPolicy` (`{}` when absent), parsed, equals
//!    `filter_list_to_filter_policies(INIESTA_SNS_EVENT_KEY, filters)`
//!    (`iniesta/utils.py`). It is Python's `==` on parsed JSON: keys in any
//!    order, lists in order;
//! 5. `SQSClient.confirm_permission`: `GetQueueAttributes` of `Policy`;
//!    only `Statement[0]` is read, and it must have `"Effect": "Allow"` and
//!    `"SQS:SendMessage" in Action`, case-sensitive (a substring test on a
//!    string, membership in a list).

mod common;

use aws_sdk_sqs::types::QueueAttributeName;
use iniesta_aws::{
    provision, verify, ProvisionRequest, SnsTopic, SqsQueue, TopicRef, VerifyRequest,
};
use iniesta_core::publish::event_message;
use iniesta_core::Topic;
use iniesta_tests::servers::moto::MotoServer;
use serde_json::{json, Value};

use common::aws::{policy, receive_n, setup, Moto, EVENT_KEY};

/// In the order a Python service lists them: exact names, then prefixes,
/// as `iniesta filter-policies` prints them.
const FILTERS: &[&str] = &["UserCreated.users", "Order.*"];

// ---------------------------------------------------------------------------
// The original's checks

/// The original's `EVENT_POLLING` start-up checks (see the module
/// documentation); `Err` names the step and the exception the original
/// would raise.
async fn original_event_polling_checks(
    moto: &Moto,
    topic_arn: &str,
    queue_name: &str,
    filters: &[&str],
) -> Result<(), String> {
    // 1. app.py `_init_event_polling`.
    if topic_arn.is_empty() {
        return Err("ImproperlyConfigured: INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN not set".into());
    }
    if filters.is_empty() {
        return Err("ImproperlyConfigured: INIESTA_SQS_CONSUMER_FILTERS is an empty list".into());
    }
    let expected_filters = filter_list_to_filter_policies(EVENT_KEY, filters)?;

    // 2. sns/client.py `_confirm_topic`.
    let sns = &moto.clients.sns;
    sns.get_topic_attributes()
        .topic_arn(topic_arn)
        .send()
        .await
        .map_err(|e| format!("ClientError from get_topic_attributes: {e:?}"))?;

    // 3. sqs/client.py `initialize`.
    let sqs = &moto.clients.sqs;
    let queue_url = sqs
        .get_queue_url()
        .queue_name(queue_name)
        .send()
        .await
        .map_err(|e| format!("ClientError from get_queue_url: {e:?}"))?
        .queue_url()
        .unwrap_or_default()
        .to_owned();

    // 4. sqs/client.py `confirm_subscription`.
    let mut next_token: Option<String> = None;
    let subscription_arn = 'pages: loop {
        let page = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|e| format!("ClientError from list_subscriptions_by_topic: {e:?}"))?;
        for subscription in page.subscriptions() {
            let endpoint = subscription.endpoint().unwrap_or_default();
            if endpoint.split(':').any(|part| part == queue_name) {
                break 'pages subscription
                    .subscription_arn()
                    .unwrap_or_default()
                    .to_owned();
            }
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => {
                return Err(format!(
                    "EnvironmentError: Unable to find subscription for {queue_name}"
                ))
            }
        }
    };
    let attributes = sns
        .get_subscription_attributes()
        .subscription_arn(&subscription_arn)
        .send()
        .await
        .map_err(|e| format!("ClientError from get_subscription_attributes: {e:?}"))?;
    let filter_policy = attributes
        .attributes()
        .and_then(|a| a.get("FilterPolicy"))
        .map_or("{}", String::as_str);
    let filter_policy: Value = serde_json::from_str(filter_policy)
        .map_err(|e| format!("ValueError: the FilterPolicy is not JSON: {e}"))?;
    if filter_policy != expected_filters {
        return Err(format!(
            "AssertionError: Subscription filters and current filters are not equivalent. \
             {filter_policy} {expected_filters}"
        ));
    }

    // 5. sqs/client.py `confirm_permission`.
    let out = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .map_err(|e| format!("ClientError from get_queue_attributes: {e:?}"))?;
    let Some(policy) = out
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::Policy))
    else {
        return Err("ImproperlyConfigured: Permissions not found.".into());
    };
    let policies: Value = serde_json::from_str(policy)
        .map_err(|e| format!("ValueError: the queue policy is not JSON: {e}"))?;
    let statement = match policies.get("Statement") {
        Some(Value::Array(list)) => list
            .first()
            .ok_or("IndexError: the queue policy's Statement list is empty")?,
        // `policies["Statement"][0]` on a dict (or no Statement): KeyError.
        _ => return Err("ImproperlyConfigured: Permissions not found.".into()),
    };
    if statement.get("Effect") != Some(&json!("Allow")) {
        return Err(format!(
            "AssertionError: the first statement's Effect is not \"Allow\": {statement}"
        ));
    }
    let sends = match statement.get("Action") {
        Some(Value::String(action)) => action.contains("SQS:SendMessage"),
        Some(Value::Array(actions)) => actions.contains(&json!("SQS:SendMessage")),
        _ => false,
    };
    if !sends {
        return Err(format!(
            "AssertionError: \"SQS:SendMessage\" not in the first statement's Action: {statement}"
        ));
    }
    Ok(())
}

/// utils.py `filter_list_to_filter_policies`.
fn filter_list_to_filter_policies(event_key: &str, filters: &[&str]) -> Result<Value, String> {
    let mut processed = Vec::new();
    for filter in filters {
        let event: Vec<&str> = filter.split('.').collect();
        if event.len() != 2 {
            return Err(format!(
                "AssertionError: filter {filter:?} is not `Event.service`"
            ));
        }
        if event[1] == "*" {
            processed.push(json!({ "prefix": format!("{}.", event[0]) }));
        } else {
            processed.push(json!(filter));
        }
    }
    Ok(if processed.is_empty() {
        json!({})
    } else {
        json!({ event_key: processed })
    })
}

// ---------------------------------------------------------------------------
// Helpers

async fn queue_policy(moto: &Moto, queue_url: &str) -> String {
    moto.clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::Policy))
        .cloned()
        .expect("the queue has a policy")
}

async fn set_queue_policy(moto: &Moto, queue_url: &str, policy: &str) {
    moto.clients
        .sqs
        .set_queue_attributes()
        .queue_url(queue_url)
        .attributes(QueueAttributeName::Policy, policy)
        .send()
        .await
        .expect("SetQueueAttributes Policy");
}

fn statements(policy: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(policy).expect("the policy is JSON");
    doc["Statement"]
        .as_array()
        .expect("Statement is a list")
        .clone()
}

/// Provisions topic `global` and `queue` again, leaving the queue's
/// attributes as they are. (moto, unlike SQS, drops a queue's policy on
/// every `SetQueueAttributes` that does not name it, so setting the
/// visibility timeout first would hide whether provisioning keeps the
/// statements of other senders.)
async fn reprovision(moto: &Moto, queue: &str) {
    let request = ProvisionRequest::new(TopicRef::Name("global".into()), queue, policy(FILTERS));
    provision(&moto.clients, &request)
        .await
        .expect("provisioning against moto works");
}

/// Our own verification passes, without warnings.
async fn our_verify_passes(moto: &Moto, topic_arn: &str, queue: &str) {
    let request = VerifyRequest::event_polling(topic_arn, queue, policy(FILTERS));
    let report = verify(&moto.clients, &request).await;
    assert!(report.is_ok() && report.warnings().is_empty(), "{report}");
}

// ---------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn provisioned_resources_pass_the_original_start_up_checks() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    for (raw, queue) in [(false, "iniesta-test-envelope"), (true, "iniesta-test-raw")] {
        let p = setup(&moto, "global", queue, FILTERS, raw).await;
        original_event_polling_checks(&moto, &p.topic_arn, queue, FILTERS)
            .await
            .unwrap_or_else(|e| panic!("the original refuses {queue}: {e}"));
        our_verify_passes(&moto, &p.topic_arn, queue).await;

        // moto kept the spelling as written.
        let first = &statements(&queue_policy(&moto, &p.queue_url).await)[0];
        assert_eq!(first["Action"], "SQS:SendMessage", "{first}");
        assert_eq!(first["Effect"], "Allow", "{first}");

        // And SNS delivers through it.
        let topic = SnsTopic::new(moto.clients.sns.clone(), p.topic_arn.clone());
        let message = event_message(EVENT_KEY, "UserCreated.users", "{}", 1).unwrap();
        topic.publish(message).await.expect("publish");
        let queue = SqsQueue::new(moto.clients.sqs.clone(), p.queue_url.clone());
        assert_eq!(
            receive_n(&queue, 1).await.len(),
            1,
            "delivered to {queue:?}"
        );
    }
}

#[tokio::test]
async fn provision_repairs_a_policy_iam_accepts_but_the_original_refuses() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup(&moto, "global", "q1", FILTERS, false).await;
    let ours = statements(&queue_policy(&moto, &p.queue_url).await)[0].clone();
    let mut lower_case = ours.clone();
    lower_case["Action"] = json!("sqs:SendMessage");
    let other = json!({
        "Sid": "Audit",
        "Effect": "Allow",
        "Principal": { "AWS": format!("arn:aws:iam::{}:root", MotoServer::ACCOUNT) },
        "Action": "sqs:ReceiveMessage",
        "Resource": p.queue_arn,
    });
    let policy_of = |list: Vec<Value>| json!({ "Version": "2012-10-17", "Statement": list });

    for (broken, kept) in [
        // What an earlier version provisioned: the lower-case spelling.
        (policy_of(vec![lower_case.clone()]), 0),
        // The topic's statement second, after another sender's.
        (policy_of(vec![other.clone(), ours.clone()]), 1),
        (policy_of(vec![other.clone(), lower_case.clone()]), 1),
    ] {
        set_queue_policy(&moto, &p.queue_url, &broken.to_string()).await;
        let refused = original_event_polling_checks(&moto, &p.topic_arn, "q1", FILTERS).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("\"SQS:SendMessage\" not in")),
            "the original refuses {broken}: {refused:?}"
        );
        // IAM reads actions without regard to case, and so does our verify.
        our_verify_passes(&moto, &p.topic_arn, "q1").await;

        reprovision(&moto, "q1").await;
        original_event_polling_checks(&moto, &p.topic_arn, "q1", FILTERS)
            .await
            .unwrap_or_else(|e| panic!("after provision, the original refuses: {e}"));
        let repaired = queue_policy(&moto, &p.queue_url).await;
        let list = statements(&repaired);
        assert_eq!(
            list[0], ours,
            "the topic's statement comes first: {repaired}"
        );
        assert_eq!(list.len(), 1 + kept, "other senders are kept: {repaired}");
        if kept == 1 {
            assert_eq!(list[1], other, "{repaired}");
        }
        our_verify_passes(&moto, &p.topic_arn, "q1").await;

        // Provisioning again leaves the repaired policy as it is.
        reprovision(&moto, "q1").await;
        assert_eq!(queue_policy(&moto, &p.queue_url).await, repaired);
    }
}

#[tokio::test]
async fn the_ported_checks_refuse_what_the_original_refuses() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let p = setup(&moto, "global", "q1", FILTERS, false).await;
    let check = |filters: &'static [&'static str], topic: String| {
        let moto = &moto;
        async move { original_event_polling_checks(moto, &topic, "q1", filters).await }
    };
    check(FILTERS, p.topic_arn.clone())
        .await
        .expect("provisioned");

    let missing_topic = p.topic_arn.replace("global", "gone");
    let e = check(FILTERS, missing_topic).await.unwrap_err();
    assert!(e.contains("get_topic_attributes"), "{e}");

    // The original compares the filter lists in order; a service listing
    // its filters in another order than the policy was written in (and
    // `provision` writes exact names first) fails its start-up.
    let e = check(&["Order.*", "UserCreated.users"], p.topic_arn.clone())
        .await
        .unwrap_err();
    assert!(e.contains("filters are not equivalent"), "{e}");
    let e = check(&["UserCreated.users"], p.topic_arn.clone())
        .await
        .unwrap_err();
    assert!(e.contains("filters are not equivalent"), "{e}");

    set_queue_policy(&moto, &p.queue_url, "").await;
    let e = check(FILTERS, p.topic_arn.clone()).await.unwrap_err();
    assert!(e.contains("Permissions not found"), "{e}");

    moto.clients
        .sns
        .unsubscribe()
        .subscription_arn(&p.subscription_arn)
        .send()
        .await
        .expect("unsubscribe");
    let e = check(FILTERS, p.topic_arn.clone()).await.unwrap_err();
    assert!(e.starts_with("EnvironmentError"), "{e}");
}

#[tokio::test]
async fn iniesta_provision_from_the_command_line_passes_the_original_checks() {
    let Some(moto) = common::aws::start() else {
        return;
    };
    let topic_arn = MotoServer::topic_arn("events-cli");
    let mut cmd = common::iniesta();
    cmd.args(["provision", "--endpoint-url", &moto.server.endpoint()])
        .envs(MotoServer::CHILD_ENV)
        .env("INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN", &topic_arn)
        .env("INIESTA_SQS_CONSUMER_FILTERS", FILTERS.join(","))
        .env("INIESTA_SQS_QUEUE_NAME", "iniesta-test-cli")
        .env("SERVICE_NAME", "users")
        .env("INIESTA_CACHES", "redis://127.0.0.1:1/0");
    let r = common::run(cmd);
    assert_eq!(r.code(), Some(0), "iniesta provision: {r:?}");
    original_event_polling_checks(&moto, &topic_arn, "iniesta-test-cli", FILTERS)
        .await
        .unwrap_or_else(|e| panic!("the original refuses what `iniesta provision` made: {e}"));
}
