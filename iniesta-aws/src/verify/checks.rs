//! Judgement: each check reads the gathered [`Facts`] and the request and
//! decides pass, fail, warning or skip, with the reason and the fix. No
//! AWS calls here, so every outcome can be tested with facts built by hand.

use std::time::Duration;

use iniesta_core::{BackendError, DeliveryMode, Filter, FilterPolicy};

use super::facts::{
    Facts, QueueAttributes, QueueLookup, SubscriptionAttributes, SubscriptionLookup,
};
use super::report::{Check, CheckResult, VerificationReport};
use super::VerifyRequest;
use crate::error::{has_code, SNS_NOT_FOUND, SQS_NO_QUEUE};
use crate::fifo::is_fifo_name;
use crate::policy::{evaluate_queue_policy, queue_policy_json, PolicyVerdict};

const TOPIC_NOT_VERIFIED: &str = "not checked because the topic could not be verified";
const QUEUE_NOT_RESOLVED: &str = "not checked because the queue could not be resolved";
const NOT_SUBSCRIBED: &str = "not checked because the queue is not subscribed to the topic";
const SNS_ENDPOINT: &str = "INIESTA_SNS_ENDPOINT_URL";
const SQS_ENDPOINT: &str = "INIESTA_SQS_ENDPOINT_URL";

/// Judges every check, in report order, and keeps what was found on the
/// way (queue URL and ARN, subscription ARN, delivery mode).
pub(super) fn judge(request: &VerifyRequest, facts: &Facts) -> VerificationReport {
    VerificationReport {
        scope: request.scope,
        results: vec![
            check_topic(request, facts),
            check_queue(request, facts),
            check_subscription(request, facts),
            check_filter_policy(request, facts),
            check_queue_policy(request, facts),
            check_delivery_mode(request, facts),
            check_dead_letter_queue(request, facts),
            check_visibility_timeout(request, facts),
        ],
        queue_url: facts.queue_url().map(str::to_owned),
        queue_arn: facts.queue_arn().map(str::to_owned),
        subscription_arn: facts.subscription().map(|(arn, _)| arn.to_owned()),
        delivery_mode: match facts.subscription() {
            Some((_, Ok(attributes))) => Some(attributes.delivery_mode),
            _ => None,
        },
        queue_fifo: facts.queue_attributes().map(|q| q.fifo),
    }
}

/// The reason of a check that does not apply to the request's scope.
fn out_of_scope(request: &VerifyRequest) -> String {
    format!("not part of {}", request.scope.as_setting())
}

/// The configured topic ARN, unless empty.
fn topic_arn(request: &VerifyRequest) -> Option<&str> {
    request.topic_arn.as_deref().filter(|t| !t.is_empty())
}

/// What the subscription lookup needs, the topic ARN and the queue ARN, or
/// why it cannot be made (the reason check 3 is skipped). Gathering asks
/// this too, so a lookup is made exactly when check 3 judges it.
pub(super) fn subscription_target<'a>(
    request: &'a VerifyRequest,
    facts: &'a Facts,
) -> Result<(&'a str, &'a str), String> {
    if !request.scope.wants_subscription() {
        return Err(out_of_scope(request));
    }
    if !facts.topic_exists() {
        return Err(TOPIC_NOT_VERIFIED.to_owned());
    }
    match (topic_arn(request), facts.queue_arn()) {
        (Some(topic), Some(queue_arn)) => Ok((topic, queue_arn)),
        _ => Err(QUEUE_NOT_RESOLVED.to_owned()),
    }
}

/// Why the checks reading the subscription (4 and 6) have nothing to read.
fn no_subscription(request: &VerifyRequest, facts: &Facts) -> String {
    subscription_target(request, facts)
        .err()
        .unwrap_or_else(|| NOT_SUBSCRIBED.to_owned())
}

/// How to fix a failed call, from its error code.
pub(super) fn fix_for(err: &BackendError, permission: &str, endpoint_setting: &str) -> String {
    match err.code.as_deref() {
        Some(
            "AccessDenied" | "AccessDeniedException" | "AuthorizationError"
            | "AuthorizationErrorException",
        ) => format!("grant {permission} to the credentials this service runs with"),
        Some(
            "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException"
            | "ExpiredToken" | "InvalidAccessKeyId" | "MissingAuthenticationToken",
        ) => "check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_PROFILE/role) and their region"
            .to_owned(),
        Some(_) => format!("see the error above; the call needs {permission}"),
        None => format!(
            "check the network, the region (AWS_REGION) and the endpoint ({endpoint_setting}, if set)"
        ),
    }
}

/// Check 1: the global topic exists.
pub(super) fn check_topic(request: &VerifyRequest, facts: &Facts) -> CheckResult {
    const C: Check = Check::TopicExists;
    if !request.scope.wants_topic() {
        return CheckResult::skipped(C, out_of_scope(request));
    }
    let Some(arn) = topic_arn(request) else {
        return CheckResult::failed(
            C,
            "no topic is configured",
            "set INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN to the global topic's ARN",
        );
    };
    match &facts.topic {
        Some(Ok(())) => CheckResult::passed(C, format!("topic {arn} exists")),
        Some(Err(e)) if has_code(e, &[SNS_NOT_FOUND]) => CheckResult::failed(
            C,
            format!("topic {arn} does not exist ({e})"),
            "create it (run `iniesta provision` in development) or correct \
             INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN",
        ),
        Some(Err(e)) => CheckResult::failed(
            C,
            format!("cannot read topic {arn}: {e}"),
            fix_for(e, "sns:GetTopicAttributes", SNS_ENDPOINT),
        ),
        None => CheckResult::skipped(C, "the topic was not looked up"),
    }
}

/// Check 2: the queue resolves and reports its ARN.
pub(super) fn check_queue(request: &VerifyRequest, facts: &Facts) -> CheckResult {
    const C: Check = Check::QueueResolves;
    if !request.scope.wants_queue() {
        return CheckResult::skipped(C, out_of_scope(request));
    }
    let name = &request.queue_name;
    if name.is_empty() {
        return CheckResult::failed(
            C,
            "no queue name is configured",
            "set INIESTA_SQS_QUEUE_NAME, or SERVICE_NAME and ENVIRONMENT for the template",
        );
    }
    match &facts.queue {
        None => CheckResult::skipped(C, "the queue was not looked up"),
        Some(QueueLookup::NoUrl) => CheckResult::failed(
            C,
            format!("GetQueueUrl for {name:?} answered without a URL"),
            "check INIESTA_SQS_ENDPOINT_URL points at SQS",
        ),
        Some(QueueLookup::Unresolved(e)) if has_code(e, &SQS_NO_QUEUE) => CheckResult::failed(
            C,
            format!("queue {name:?} does not exist ({e})"),
            "create it (run `iniesta provision` in development) or set \
             INIESTA_SQS_QUEUE_NAME to an existing queue",
        ),
        Some(QueueLookup::Unresolved(e)) => CheckResult::failed(
            C,
            format!("cannot resolve queue {name:?}: {e}"),
            fix_for(e, "sqs:GetQueueUrl", SQS_ENDPOINT),
        ),
        Some(QueueLookup::Resolved { url, attributes }) => match attributes {
            Ok(QueueAttributes { arn: Some(arn), .. }) => {
                CheckResult::passed(C, format!("queue {url} ({arn})"))
            }
            Ok(QueueAttributes { arn: None, .. }) => CheckResult::failed(
                C,
                format!("queue {url} did not report its QueueArn"),
                "check INIESTA_SQS_ENDPOINT_URL points at SQS",
            ),
            Err(e) => CheckResult::failed(
                C,
                format!("queue {url} exists but its attributes cannot be read: {e}"),
                fix_for(e, "sqs:GetQueueAttributes", SQS_ENDPOINT),
            ),
        },
    }
}

/// Check 3: the queue is subscribed to the topic, the subscription is
/// confirmed, and both are of one kind: a FIFO topic feeds a FIFO queue, a
/// standard topic a standard queue.
pub(super) fn check_subscription(request: &VerifyRequest, facts: &Facts) -> CheckResult {
    const C: Check = Check::Subscribed;
    let (topic, queue_arn) = match subscription_target(request, facts) {
        Ok(target) => target,
        Err(reason) => return CheckResult::skipped(C, reason),
    };
    let topic_fifo = facts.topic_fifo.unwrap_or_else(|| is_fifo_name(topic));
    let queue_fifo = facts.queue_attributes().is_some_and(|q| q.fifo);
    if let Some(mismatch) = kind_mismatch(topic, topic_fifo, queue_arn, queue_fifo) {
        return mismatch;
    }
    match &facts.subscription {
        Some(SubscriptionLookup::Confirmed { arn, .. }) if topic_fifo => {
            CheckResult::passed(C, format!("subscription {arn} (FIFO topic to FIFO queue)"))
        }
        Some(SubscriptionLookup::Confirmed { arn, .. }) => {
            CheckResult::passed(C, format!("subscription {arn}"))
        }
        Some(SubscriptionLookup::Pending) => CheckResult::failed(
            C,
            format!("the subscription of {queue_arn} to {topic} is pending confirmation"),
            "confirm the subscription (or subscribe again from the queue's account)",
        ),
        Some(SubscriptionLookup::Missing) => CheckResult::failed(
            C,
            format!("topic {topic} has no sqs subscription with endpoint {queue_arn}"),
            format!(
                "subscribe the queue to the topic with protocol sqs and endpoint {queue_arn} \
                 (run `iniesta provision` in development)"
            ),
        ),
        Some(SubscriptionLookup::Failed(e)) => CheckResult::failed(
            C,
            format!("cannot list the subscriptions of {topic}: {e}"),
            fix_for(e, "sns:ListSubscriptionsByTopic", SNS_ENDPOINT),
        ),
        None => CheckResult::skipped(C, "the topic's subscriptions were not listed"),
    }
}

/// The failure of check 3 when the topic and the queue are of different
/// kinds, whatever the subscription: a FIFO topic's order (and its
/// deduplication) would be lost in a standard queue, and SNS delivers
/// nothing from a standard topic to a FIFO queue.
fn kind_mismatch(
    topic: &str,
    topic_fifo: bool,
    queue_arn: &str,
    queue_fifo: bool,
) -> Option<CheckResult> {
    const C: Check = Check::Subscribed;
    match (topic_fifo, queue_fifo) {
        (true, false) => Some(CheckResult::failed(
            C,
            format!(
                "topic {topic} is a FIFO topic but queue {queue_arn} is a standard queue: \
                 the order of each message group would be lost"
            ),
            "consume through a FIFO queue (its name ends in .fifo) subscribed to the topic: \
             set INIESTA_SQS_QUEUE_NAME to one (`iniesta provision` creates it in development)",
        )),
        (false, true) => Some(CheckResult::failed(
            C,
            format!(
                "topic {topic} is a standard topic but queue {queue_arn} is a FIFO queue: \
                 SNS delivers nothing from a standard topic to a FIFO queue"
            ),
            "use a FIFO topic (its name ends in .fifo) in INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN, \
             or a standard queue (a name without .fifo) in INIESTA_SQS_QUEUE_NAME",
        )),
        _ => None,
    }
}

/// The subscription's attributes, or the result of a check that cannot
/// read them (skipped without a subscription, failed when the call failed).
fn subscription_attributes<'a>(
    check: Check,
    request: &VerifyRequest,
    facts: &'a Facts,
) -> Result<(&'a str, &'a SubscriptionAttributes), CheckResult> {
    match facts.subscription() {
        Some((arn, Ok(attributes))) => Ok((arn, attributes)),
        Some((arn, Err(e))) => Err(CheckResult::failed(
            check,
            format!("cannot read the attributes of subscription {arn}: {e}"),
            fix_for(e, "sns:GetSubscriptionAttributes", SNS_ENDPOINT),
        )),
        _ => Err(CheckResult::skipped(check, no_subscription(request, facts))),
    }
}

/// Check 4: the subscription's filter policy equals the one built from the
/// configured filters, compared as sets.
pub(super) fn check_filter_policy(request: &VerifyRequest, facts: &Facts) -> CheckResult {
    const C: Check = Check::FilterPolicy;
    if !request.scope.wants_subscription() {
        return CheckResult::skipped(C, out_of_scope(request));
    }
    if !request.assert_filter_policies {
        return CheckResult::skipped(C, "INIESTA_ASSERT_FILTER_POLICIES is false");
    }
    let Some(expected) = &request.filter_policy else {
        return CheckResult::failed(
            C,
            "no filters are configured",
            "set INIESTA_SQS_CONSUMER_FILTERS (e.g. `UserCreated.users,Order.*`)",
        );
    };
    let (arn, attributes) = match subscription_attributes(C, request, facts) {
        Ok(found) => found,
        Err(result) => return result,
    };
    let want = expected.to_json_string();
    let set_it = format!(
        "set the subscription's FilterPolicy to {want} (run `iniesta provision` in development), \
         or change INIESTA_SQS_CONSUMER_FILTERS to match"
    );
    if attributes.filter_policy_scope.as_deref() == Some("MessageBody") {
        return CheckResult::failed(
            C,
            "the subscription filters on the message body (FilterPolicyScope=MessageBody), \
             but events are named in message attributes",
            format!("set FilterPolicyScope=MessageAttributes on subscription {arn}"),
        );
    }
    let Some(got) = attributes
        .filter_policy
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    else {
        return CheckResult::failed(
            C,
            format!("subscription {arn} has no filter policy, so the queue receives every event"),
            set_it,
        );
    };
    if expected.same_as_json(got) {
        return CheckResult::passed(C, format!("filter policy {want}"));
    }
    CheckResult::failed(
        C,
        format!(
            "subscription filter policy {got} differs from the configured filters ({})",
            filter_policy_difference(expected, got)
        ),
        set_it,
    )
}

/// How the subscription's filter policy `got` differs from `expected`: the
/// attribute it filters on, or the filters missing and extra (as sets), or
/// why it cannot be read.
pub(super) fn filter_policy_difference(expected: &FilterPolicy, got: &str) -> String {
    match FilterPolicy::from_json(got) {
        Ok(actual) if actual.key != expected.key => format!(
            "it filters on attribute {:?}, the consumer on {:?}",
            actual.key, expected.key
        ),
        Ok(actual) => {
            let list = |it: &mut dyn Iterator<Item = &Filter>| {
                it.map(|f| f.to_string()).collect::<Vec<_>>().join(", ")
            };
            let missing = list(&mut expected.filters.difference(&actual.filters));
            let extra = list(&mut actual.filters.difference(&expected.filters));
            match (missing.is_empty(), extra.is_empty()) {
                (false, false) => format!("missing {missing}; extra {extra}"),
                (false, true) => format!("missing {missing}"),
                (true, _) => format!("extra {extra}"),
            }
        }
        Err(e) => e.to_string(),
    }
}

/// Check 5: the queue policy lets the topic send to the queue.
pub(super) fn check_queue_policy(request: &VerifyRequest, facts: &Facts) -> CheckResult {
    const C: Check = Check::QueuePolicy;
    if !request.scope.wants_subscription() {
        return CheckResult::skipped(C, out_of_scope(request));
    }
    let Some(topic) = topic_arn(request) else {
        return CheckResult::skipped(C, "not checked because no topic is configured");
    };
    if !facts.topic_exists() {
        return CheckResult::skipped(C, TOPIC_NOT_VERIFIED);
    }
    match (facts.queue_attributes(), facts.queue_arn()) {
        (Some(queue), Some(queue_arn)) => {
            queue_policy_result(queue.policy.as_deref(), queue_arn, topic)
        }
        _ => CheckResult::skipped(C, QUEUE_NOT_RESOLVED),
    }
}

/// Check 5 on the queue's `Policy` attribute (`None`: the queue has none).
pub(super) fn queue_policy_result(
    policy: Option<&str>,
    queue_arn: &str,
    topic_arn: &str,
) -> CheckResult {
    const C: Check = Check::QueuePolicy;
    let set_policy = format!(
        "set the queue's Policy attribute to {} (run `iniesta provision` in development)",
        queue_policy_json(queue_arn, topic_arn)
    );
    let Some(policy) = policy else {
        return CheckResult::failed(
            C,
            "the queue has no access policy, so SNS cannot deliver to it",
            set_policy,
        );
    };
    match evaluate_queue_policy(policy, queue_arn, topic_arn) {
        PolicyVerdict::Allowed { statement } => {
            CheckResult::passed(C, format!("statement {statement} allows topic {topic_arn}"))
        }
        PolicyVerdict::AllowedFromAnySource { statement } => CheckResult::warning(
            C,
            format!(
                "statement {statement} allows sqs:SendMessage without an aws:SourceArn condition: \
                 any SNS topic may send to this queue"
            ),
            format!(
                "add the condition {{\"ArnEquals\": {{\"aws:SourceArn\": \"{topic_arn}\"}}}} to it"
            ),
        ),
        PolicyVerdict::NotAllowed { reason } => CheckResult::failed(C, reason, set_policy),
    }
}

/// Check 6: the delivery mode the subscription uses, against the one the
/// consumer expects (if any).
pub(super) fn check_delivery_mode(request: &VerifyRequest, facts: &Facts) -> CheckResult {
    const C: Check = Check::DeliveryMode;
    let (arn, attributes) = match subscription_attributes(C, request, facts) {
        Ok(found) => found,
        Err(result) => return result,
    };
    let mode = attributes.delivery_mode;
    let found = match mode {
        DeliveryMode::Raw => "raw message delivery (RawMessageDelivery=true)",
        DeliveryMode::Envelope => "SNS envelope (RawMessageDelivery=false)",
    };
    match request.expected_delivery_mode {
        Some(expected) if expected != mode => CheckResult::failed(
            C,
            format!("the subscription delivers as {found}, but the consumer expects {expected:?}"),
            format!(
                "set RawMessageDelivery={} on subscription {arn}, or configure the consumer for {mode:?} delivery",
                expected == DeliveryMode::Raw
            ),
        ),
        _ => CheckResult::passed(C, found),
    }
}

/// The queue's attributes for the advisory checks, or why there are none.
fn queue_for_advice<'a>(
    request: &VerifyRequest,
    facts: &'a Facts,
) -> Result<&'a QueueAttributes, String> {
    match facts.queue_attributes() {
        Some(queue) => Ok(queue),
        None if request.scope.wants_queue() => Err(QUEUE_NOT_RESOLVED.to_owned()),
        None => Err(out_of_scope(request)),
    }
}

/// Advisory: the queue has a redrive policy (a dead-letter queue).
pub(super) fn check_dead_letter_queue(request: &VerifyRequest, facts: &Facts) -> CheckResult {
    const C: Check = Check::DeadLetterQueue;
    let queue = match queue_for_advice(request, facts) {
        Ok(queue) => queue,
        Err(reason) => return CheckResult::skipped(C, reason),
    };
    match queue.redrive_policy.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(p) => CheckResult::passed(C, format!("redrive policy {p}")),
        None => CheckResult::warning(
            C,
            "the queue has no redrive policy, so a message that always fails is retried until it expires",
            "give the queue a dead-letter queue (RedrivePolicy with deadLetterTargetArn and maxReceiveCount)",
        ),
    }
}

/// Advisory: the queue's visibility timeout is at least the lock timeout.
pub(super) fn check_visibility_timeout(request: &VerifyRequest, facts: &Facts) -> CheckResult {
    const C: Check = Check::VisibilityTimeout;
    let queue = match queue_for_advice(request, facts) {
        Ok(queue) => queue,
        Err(reason) => return CheckResult::skipped(C, reason),
    };
    let Some(lock) = request.lock_timeout else {
        return CheckResult::skipped(C, "no lock timeout given");
    };
    match queue.visibility_timeout {
        None => CheckResult::skipped(C, "the queue did not report its VisibilityTimeout"),
        Some(v) if Duration::from_secs(v) < lock => CheckResult::warning(
            C,
            format!(
                "the queue's visibility timeout ({v} s) is shorter than the lock timeout ({} s), \
                 so a message may be redelivered while its handler still runs",
                lock.as_secs_f64()
            ),
            format!(
                "raise the queue's VisibilityTimeout to at least {} s, or lower INIESTA_LOCK_TIMEOUT",
                lock.as_secs_f64().ceil()
            ),
        ),
        Some(v) => CheckResult::passed(C, format!("visibility timeout {v} s")),
    }
}
