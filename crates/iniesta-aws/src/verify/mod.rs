//! Start-up verification: are the topic, the queue, the subscription, its
//! filter policy and the queue policy in place, and how does SNS deliver?
//!
//! Every check runs every time, so one report lists everything that is
//! wrong, not only the first problem; a check that depends on a missing
//! resource says it was not checked and why. Each failure says how to fix
//! it. The report never contains credentials.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use iniesta_core::{BackendError, DeliveryMode, FilterPolicy};

use crate::clients::AwsClients;
use crate::error::{backend_error, has_code, SNS_NOT_FOUND, SQS_NO_QUEUE};
use crate::policy::{evaluate_queue_policy, queue_policy_json, PolicyVerdict};

/// Which checks apply: the original's `INIESTA_INITIALIZATION_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerifyScope {
    /// `EVENT_POLLING`: all checks.
    EventPolling,
    /// `QUEUE_POLLING`: only the queue (no topic, no subscription).
    QueuePolling,
    /// `SNS_PRODUCER`: only the topic.
    SnsProducer,
}

impl VerifyScope {
    /// The setting's spelling (`EVENT_POLLING`, …).
    pub fn as_setting(&self) -> &'static str {
        match self {
            VerifyScope::EventPolling => "EVENT_POLLING",
            VerifyScope::QueuePolling => "QUEUE_POLLING",
            VerifyScope::SnsProducer => "SNS_PRODUCER",
        }
    }

    fn wants_topic(&self) -> bool {
        matches!(self, VerifyScope::EventPolling | VerifyScope::SnsProducer)
    }

    fn wants_queue(&self) -> bool {
        matches!(self, VerifyScope::EventPolling | VerifyScope::QueuePolling)
    }

    fn wants_subscription(&self) -> bool {
        matches!(self, VerifyScope::EventPolling)
    }
}

/// What to verify.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyRequest {
    /// Which checks apply.
    pub scope: VerifyScope,
    /// The global topic (`INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN`).
    pub topic_arn: Option<String>,
    /// The queue name (see [`queue_name`](crate::queue_name)).
    pub queue_name: String,
    /// The filter policy built from `INIESTA_SQS_CONSUMER_FILTERS`.
    pub filter_policy: Option<FilterPolicy>,
    /// `INIESTA_ASSERT_FILTER_POLICIES`: compare the subscription's filter
    /// policy with [`filter_policy`](Self::filter_policy).
    pub assert_filter_policies: bool,
    /// `INIESTA_LOCK_TIMEOUT`, to warn about a shorter queue visibility
    /// timeout.
    pub lock_timeout: Option<Duration>,
    /// The delivery mode the consumer is configured for; `None` detects the
    /// mode and uses it.
    pub expected_delivery_mode: Option<DeliveryMode>,
}

impl VerifyRequest {
    /// An event-polling request with the original's defaults (filter policy
    /// asserted, lock timeout 10 s, delivery mode detected).
    pub fn event_polling(
        topic_arn: impl Into<String>,
        queue_name: impl Into<String>,
        filter_policy: FilterPolicy,
    ) -> Self {
        VerifyRequest {
            scope: VerifyScope::EventPolling,
            topic_arn: Some(topic_arn.into()),
            queue_name: queue_name.into(),
            filter_policy: Some(filter_policy),
            assert_filter_policies: true,
            lock_timeout: Some(Duration::from_secs(10)),
            expected_delivery_mode: None,
        }
    }
}

/// One verification check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Check {
    /// 1. The global topic exists.
    TopicExists,
    /// 2. The queue resolves and its attributes can be read.
    QueueResolves,
    /// 3. The queue is subscribed to the topic.
    Subscribed,
    /// 4. The subscription's filter policy equals the configured one.
    FilterPolicy,
    /// 5. The queue policy lets the topic send to the queue.
    QueuePolicy,
    /// 6. The delivery mode (raw or SNS envelope).
    DeliveryMode,
    /// Advisory: the queue has a dead-letter queue.
    DeadLetterQueue,
    /// Advisory: the queue's visibility timeout covers the lock timeout.
    VisibilityTimeout,
}

impl Check {
    /// What the check asserts, for people.
    pub fn title(&self) -> &'static str {
        match self {
            Check::TopicExists => "1. topic exists",
            Check::QueueResolves => "2. queue resolves",
            Check::Subscribed => "3. queue is subscribed to the topic",
            Check::FilterPolicy => "4. subscription filter policy matches the filters",
            Check::QueuePolicy => "5. queue policy lets the topic send",
            Check::DeliveryMode => "6. delivery mode",
            Check::DeadLetterQueue => "queue has a dead-letter queue",
            Check::VisibilityTimeout => "queue visibility timeout covers the lock timeout",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckStatus {
    /// The check passed.
    Passed {
        /// What was found.
        detail: String,
    },
    /// The check failed: polling would not work as configured.
    Failed {
        /// What is wrong.
        reason: String,
        /// How to fix it.
        fix: String,
    },
    /// Not checked.
    Skipped {
        /// Why not (not part of the scope, or a resource it needs is
        /// missing).
        reason: String,
    },
    /// Works, but risky.
    Warning {
        /// What is risky.
        reason: String,
        /// How to fix it.
        fix: String,
    },
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check.
    pub check: Check,
    /// Its outcome.
    pub status: CheckStatus,
}

impl CheckResult {
    fn passed(check: Check, detail: impl Into<String>) -> Self {
        CheckResult {
            check,
            status: CheckStatus::Passed {
                detail: detail.into(),
            },
        }
    }

    fn failed(check: Check, reason: impl Into<String>, fix: impl Into<String>) -> Self {
        CheckResult {
            check,
            status: CheckStatus::Failed {
                reason: reason.into(),
                fix: fix.into(),
            },
        }
    }

    fn skipped(check: Check, reason: impl Into<String>) -> Self {
        CheckResult {
            check,
            status: CheckStatus::Skipped {
                reason: reason.into(),
            },
        }
    }

    fn warning(check: Check, reason: impl Into<String>, fix: impl Into<String>) -> Self {
        CheckResult {
            check,
            status: CheckStatus::Warning {
                reason: reason.into(),
                fix: fix.into(),
            },
        }
    }

    /// Whether the check failed.
    pub fn is_failed(&self) -> bool {
        matches!(self.status, CheckStatus::Failed { .. })
    }

    /// Whether the check ended in a warning.
    pub fn is_warning(&self) -> bool {
        matches!(self.status, CheckStatus::Warning { .. })
    }

    /// Whether the check passed.
    pub fn is_passed(&self) -> bool {
        matches!(self.status, CheckStatus::Passed { .. })
    }

    /// Whether the check was skipped.
    pub fn is_skipped(&self) -> bool {
        matches!(self.status, CheckStatus::Skipped { .. })
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.status {
            CheckStatus::Passed { detail } => write!(f, "PASS {}: {detail}", self.check),
            CheckStatus::Failed { reason, fix } => {
                write!(f, "FAIL {}: {reason}. Fix: {fix}", self.check)
            }
            CheckStatus::Skipped { reason } => write!(f, "SKIP {}: {reason}", self.check),
            CheckStatus::Warning { reason, fix } => {
                write!(f, "WARN {}: {reason}. Fix: {fix}", self.check)
            }
        }
    }
}

/// The result of [`verify`]: every check, and what was found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationReport {
    results: Vec<CheckResult>,
    queue_url: Option<String>,
    queue_arn: Option<String>,
    subscription_arn: Option<String>,
    delivery_mode: Option<DeliveryMode>,
}

impl VerificationReport {
    /// Whether no check failed (warnings and skipped checks allowed).
    pub fn is_ok(&self) -> bool {
        !self.results.iter().any(CheckResult::is_failed)
    }

    /// Every check, in order.
    pub fn results(&self) -> &[CheckResult] {
        &self.results
    }

    /// The result of one check.
    pub fn result(&self, check: Check) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.check == check)
    }

    /// The failed checks.
    pub fn failures(&self) -> Vec<&CheckResult> {
        self.results.iter().filter(|r| r.is_failed()).collect()
    }

    /// The checks that ended in a warning.
    pub fn warnings(&self) -> Vec<&CheckResult> {
        self.results.iter().filter(|r| r.is_warning()).collect()
    }

    /// The detected delivery mode (from the subscription's
    /// `RawMessageDelivery`), when the subscription was found. It is
    /// reported even when it differs from the expected mode.
    pub fn delivery_mode(&self) -> Option<DeliveryMode> {
        self.delivery_mode
    }

    /// The queue URL, when the queue resolved.
    pub fn queue_url(&self) -> Option<&str> {
        self.queue_url.as_deref()
    }

    /// The queue ARN, when the queue's attributes were read.
    pub fn queue_arn(&self) -> Option<&str> {
        self.queue_arn.as_deref()
    }

    /// The subscription ARN, when the queue is subscribed.
    pub fn subscription_arn(&self) -> Option<&str> {
        self.subscription_arn.as_deref()
    }
}

impl fmt::Display for VerificationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures().len();
        let warned = self.warnings().len();
        writeln!(
            f,
            "iniesta verification: {}",
            if failed == 0 { "ok" } else { "FAILED" }
        )?;
        for r in &self.results {
            writeln!(f, "  {r}")?;
        }
        write!(f, "  {failed} failed, {warned} warning(s)")
    }
}

/// What the queue check found.
struct QueueFacts {
    arn: Option<String>,
    policy: Option<String>,
    redrive_policy: Option<String>,
    visibility_timeout: Option<u64>,
}

/// How to fix a failed call, from its error code.
fn fix_for(err: &BackendError, permission: &str, endpoint_setting: &str) -> String {
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

/// The topic's subscriptions with protocol `sqs` and endpoint `queue_arn`,
/// following every page of ListSubscriptionsByTopic. Returns the
/// subscription ARN of the first, or `None`.
pub(crate) async fn find_subscription(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    queue_arn: &str,
) -> Result<Option<String>, BackendError> {
    let mut next: Option<String> = None;
    loop {
        tracing::debug!(topic = topic_arn, "sns:ListSubscriptionsByTopic");
        let page = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| backend_error(&e))?;
        if let Some(s) = page.subscriptions().iter().find(|s| {
            s.endpoint() == Some(queue_arn)
                && s.protocol().is_some_and(|p| p.eq_ignore_ascii_case("sqs"))
        }) {
            return Ok(Some(s.subscription_arn().unwrap_or_default().to_owned()));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => return Ok(None),
        }
    }
}

/// A subscription's attributes (GetSubscriptionAttributes).
pub(crate) async fn subscription_attributes(
    sns: &aws_sdk_sns::Client,
    subscription_arn: &str,
) -> Result<HashMap<String, String>, BackendError> {
    tracing::debug!(
        subscription = subscription_arn,
        "sns:GetSubscriptionAttributes"
    );
    let out = sns
        .get_subscription_attributes()
        .subscription_arn(subscription_arn)
        .send()
        .await
        .map_err(|e| backend_error(&e))?;
    Ok(out.attributes().cloned().unwrap_or_default())
}

/// The delivery mode a subscription's attributes select.
pub(crate) fn delivery_mode_of(attributes: &HashMap<String, String>) -> DeliveryMode {
    match attributes.get("RawMessageDelivery") {
        Some(v) if v.trim().eq_ignore_ascii_case("true") => DeliveryMode::Raw,
        _ => DeliveryMode::Envelope,
    }
}

/// Runs every check that applies to `request.scope` and reports them all.
///
/// Never fails: an AWS error becomes the failure of the check that needed
/// the call, with the AWS error code and a fix.
pub async fn verify(clients: &AwsClients, request: &VerifyRequest) -> VerificationReport {
    let scope = request.scope;
    let out_of_scope = format!("not part of {}", scope.as_setting());
    let mut results = Vec::with_capacity(8);
    let mut report = VerificationReport {
        results: Vec::new(),
        queue_url: None,
        queue_arn: None,
        subscription_arn: None,
        delivery_mode: None,
    };

    // 1. Topic.
    let topic_arn = request.topic_arn.as_deref().filter(|t| !t.is_empty());
    let mut topic_ok = false;
    if !scope.wants_topic() {
        results.push(CheckResult::skipped(Check::TopicExists, &out_of_scope));
    } else if let Some(arn) = topic_arn {
        tracing::debug!(topic = arn, "sns:GetTopicAttributes");
        match clients
            .sns
            .get_topic_attributes()
            .topic_arn(arn)
            .send()
            .await
        {
            Ok(_) => {
                topic_ok = true;
                results.push(CheckResult::passed(
                    Check::TopicExists,
                    format!("topic {arn} exists"),
                ));
            }
            Err(e) => {
                let e = backend_error(&e);
                results.push(if has_code(&e, &[SNS_NOT_FOUND]) {
                    CheckResult::failed(
                        Check::TopicExists,
                        format!("topic {arn} does not exist ({e})"),
                        "create it (run `iniesta provision` in development) or correct \
                         INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN",
                    )
                } else {
                    CheckResult::failed(
                        Check::TopicExists,
                        format!("cannot read topic {arn}: {e}"),
                        fix_for(&e, "sns:GetTopicAttributes", "INIESTA_SNS_ENDPOINT_URL"),
                    )
                });
            }
        }
    } else {
        results.push(CheckResult::failed(
            Check::TopicExists,
            "no topic is configured",
            "set INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN to the global topic's ARN",
        ));
    }

    // 2. Queue.
    let mut queue: Option<QueueFacts> = None;
    if !scope.wants_queue() {
        results.push(CheckResult::skipped(Check::QueueResolves, &out_of_scope));
    } else {
        let (result, facts) = check_queue(clients, &request.queue_name, &mut report).await;
        results.push(result);
        queue = facts;
    }
    let queue_arn = queue.as_ref().and_then(|q| q.arn.clone());

    // 3. Subscription.
    let mut subscription: Option<String> = None;
    if !scope.wants_subscription() {
        results.push(CheckResult::skipped(Check::Subscribed, &out_of_scope));
    } else if !topic_ok {
        results.push(CheckResult::skipped(
            Check::Subscribed,
            "not checked because the topic could not be verified",
        ));
    } else if queue_arn.is_none() {
        results.push(CheckResult::skipped(
            Check::Subscribed,
            "not checked because the queue could not be resolved",
        ));
    } else if let (Some(topic), Some(qarn)) = (topic_arn, queue_arn.as_deref()) {
        match find_subscription(&clients.sns, topic, qarn).await {
            Ok(Some(arn)) if arn.eq_ignore_ascii_case("PendingConfirmation") || arn.is_empty() => {
                results.push(CheckResult::failed(
                    Check::Subscribed,
                    format!("the subscription of {qarn} to {topic} is pending confirmation"),
                    "confirm the subscription (or subscribe again from the queue's account)",
                ));
            }
            Ok(Some(arn)) => {
                results.push(CheckResult::passed(
                    Check::Subscribed,
                    format!("subscription {arn}"),
                ));
                subscription = Some(arn);
            }
            Ok(None) => results.push(CheckResult::failed(
                Check::Subscribed,
                format!("topic {topic} has no sqs subscription with endpoint {qarn}"),
                format!(
                    "subscribe the queue to the topic with protocol sqs and endpoint {qarn} \
                     (run `iniesta provision` in development)"
                ),
            )),
            Err(e) => results.push(CheckResult::failed(
                Check::Subscribed,
                format!("cannot list the subscriptions of {topic}: {e}"),
                fix_for(
                    &e,
                    "sns:ListSubscriptionsByTopic",
                    "INIESTA_SNS_ENDPOINT_URL",
                ),
            )),
        }
    }
    report.subscription_arn = subscription.clone();

    // Subscription attributes, for checks 4 and 6.
    let sub_attrs = match &subscription {
        Some(arn) => Some(subscription_attributes(&clients.sns, arn).await),
        None => None,
    };
    let no_subscription = match results.last() {
        Some(CheckResult {
            status: CheckStatus::Skipped { reason },
            ..
        }) => reason.clone(),
        _ => "not checked because the queue is not subscribed to the topic".to_owned(),
    };

    // 4. Filter policy.
    results.push(check_filter_policy(
        request,
        subscription.as_deref(),
        sub_attrs.as_ref(),
        &no_subscription,
    ));

    // 5. Queue policy.
    results.push(if !scope.wants_subscription() {
        CheckResult::skipped(Check::QueuePolicy, &out_of_scope)
    } else {
        match (topic_arn, &queue, queue_arn.as_deref()) {
            (None, _, _) => CheckResult::skipped(
                Check::QueuePolicy,
                "not checked because no topic is configured",
            ),
            _ if !topic_ok => CheckResult::skipped(
                Check::QueuePolicy,
                "not checked because the topic could not be verified",
            ),
            (_, _, None) | (_, None, _) => CheckResult::skipped(
                Check::QueuePolicy,
                "not checked because the queue could not be resolved",
            ),
            (Some(topic), Some(q), Some(qarn)) => check_queue_policy(q, qarn, topic),
        }
    });

    // 6. Delivery mode.
    results.push(match (&subscription, &sub_attrs) {
        (Some(arn), Some(Ok(attrs))) => {
            let mode = delivery_mode_of(attrs);
            report.delivery_mode = Some(mode);
            let found = match mode {
                DeliveryMode::Raw => "raw message delivery (RawMessageDelivery=true)",
                DeliveryMode::Envelope => "SNS envelope (RawMessageDelivery=false)",
            };
            match request.expected_delivery_mode {
                Some(expected) if expected != mode => CheckResult::failed(
                    Check::DeliveryMode,
                    format!("the subscription delivers as {found}, but the consumer expects {expected:?}"),
                    format!(
                        "set RawMessageDelivery={} on subscription {arn}, or configure the consumer for {mode:?} delivery",
                        expected == DeliveryMode::Raw
                    ),
                ),
                _ => CheckResult::passed(Check::DeliveryMode, found),
            }
        }
        (Some(arn), Some(Err(e))) => CheckResult::failed(
            Check::DeliveryMode,
            format!("cannot read the attributes of subscription {arn}: {e}"),
            fix_for(e, "sns:GetSubscriptionAttributes", "INIESTA_SNS_ENDPOINT_URL"),
        ),
        _ => CheckResult::skipped(Check::DeliveryMode, &no_subscription),
    });

    // Advisory checks on the queue.
    let no_queue = if scope.wants_queue() {
        "not checked because the queue could not be resolved".to_owned()
    } else {
        out_of_scope.clone()
    };
    results.push(match &queue {
        None => CheckResult::skipped(Check::DeadLetterQueue, &no_queue),
        Some(q) => match q.redrive_policy.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(p) => CheckResult::passed(Check::DeadLetterQueue, format!("redrive policy {p}")),
            None => CheckResult::warning(
                Check::DeadLetterQueue,
                "the queue has no redrive policy, so a message that always fails is retried until it expires",
                "give the queue a dead-letter queue (RedrivePolicy with deadLetterTargetArn and maxReceiveCount)",
            ),
        },
    });
    results.push(match (&queue, request.lock_timeout) {
        (None, _) => CheckResult::skipped(Check::VisibilityTimeout, &no_queue),
        (Some(_), None) => CheckResult::skipped(Check::VisibilityTimeout, "no lock timeout given"),
        (Some(q), Some(lock)) => match q.visibility_timeout {
            None => CheckResult::skipped(
                Check::VisibilityTimeout,
                "the queue did not report its VisibilityTimeout",
            ),
            Some(v) if Duration::from_secs(v) < lock => CheckResult::warning(
                Check::VisibilityTimeout,
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
            Some(v) => CheckResult::passed(
                Check::VisibilityTimeout,
                format!("visibility timeout {v} s"),
            ),
        },
    });

    report.results = results;
    report
}

async fn check_queue(
    clients: &AwsClients,
    name: &str,
    report: &mut VerificationReport,
) -> (CheckResult, Option<QueueFacts>) {
    if name.is_empty() {
        return (
            CheckResult::failed(
                Check::QueueResolves,
                "no queue name is configured",
                "set INIESTA_SQS_QUEUE_NAME, or SERVICE_NAME and ENVIRONMENT for the template",
            ),
            None,
        );
    }
    tracing::debug!(queue = name, "sqs:GetQueueUrl");
    let url = match clients.sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => match out.queue_url() {
            Some(u) => u.to_owned(),
            None => {
                return (
                    CheckResult::failed(
                        Check::QueueResolves,
                        format!("GetQueueUrl for {name:?} answered without a URL"),
                        "check INIESTA_SQS_ENDPOINT_URL points at SQS",
                    ),
                    None,
                )
            }
        },
        Err(e) => {
            let e = backend_error(&e);
            let result = if has_code(&e, &SQS_NO_QUEUE) {
                CheckResult::failed(
                    Check::QueueResolves,
                    format!("queue {name:?} does not exist ({e})"),
                    "create it (run `iniesta provision` in development) or set \
                     INIESTA_SQS_QUEUE_NAME to an existing queue",
                )
            } else {
                CheckResult::failed(
                    Check::QueueResolves,
                    format!("cannot resolve queue {name:?}: {e}"),
                    fix_for(&e, "sqs:GetQueueUrl", "INIESTA_SQS_ENDPOINT_URL"),
                )
            };
            return (result, None);
        }
    };
    report.queue_url = Some(url.clone());
    tracing::debug!(queue = %url, "sqs:GetQueueAttributes");
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::Policy)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await;
    let attrs = match attrs {
        Ok(out) => out.attributes().cloned().unwrap_or_default(),
        Err(e) => {
            let e = backend_error(&e);
            return (
                CheckResult::failed(
                    Check::QueueResolves,
                    format!("queue {url} exists but its attributes cannot be read: {e}"),
                    fix_for(&e, "sqs:GetQueueAttributes", "INIESTA_SQS_ENDPOINT_URL"),
                ),
                None,
            );
        }
    };
    let facts = QueueFacts {
        arn: attrs.get(&QueueAttributeName::QueueArn).cloned(),
        policy: attrs
            .get(&QueueAttributeName::Policy)
            .filter(|p| !p.trim().is_empty())
            .cloned(),
        redrive_policy: attrs.get(&QueueAttributeName::RedrivePolicy).cloned(),
        visibility_timeout: attrs
            .get(&QueueAttributeName::VisibilityTimeout)
            .and_then(|v| v.trim().parse().ok()),
    };
    report.queue_arn = facts.arn.clone();
    let result = match &facts.arn {
        Some(arn) => CheckResult::passed(Check::QueueResolves, format!("queue {url} ({arn})")),
        None => CheckResult::failed(
            Check::QueueResolves,
            format!("queue {url} did not report its QueueArn"),
            "check INIESTA_SQS_ENDPOINT_URL points at SQS",
        ),
    };
    (result, Some(facts))
}

fn check_filter_policy(
    request: &VerifyRequest,
    subscription: Option<&str>,
    attrs: Option<&Result<HashMap<String, String>, BackendError>>,
    no_subscription: &str,
) -> CheckResult {
    if !request.scope.wants_subscription() {
        return CheckResult::skipped(
            Check::FilterPolicy,
            format!("not part of {}", request.scope.as_setting()),
        );
    }
    if !request.assert_filter_policies {
        return CheckResult::skipped(
            Check::FilterPolicy,
            "INIESTA_ASSERT_FILTER_POLICIES is false",
        );
    }
    let Some(expected) = &request.filter_policy else {
        return CheckResult::failed(
            Check::FilterPolicy,
            "no filters are configured",
            "set INIESTA_SQS_CONSUMER_FILTERS (e.g. `UserCreated.users,Order.*`)",
        );
    };
    let (Some(arn), Some(attrs)) = (subscription, attrs) else {
        return CheckResult::skipped(Check::FilterPolicy, no_subscription);
    };
    let attrs = match attrs {
        Ok(a) => a,
        Err(e) => {
            return CheckResult::failed(
                Check::FilterPolicy,
                format!("cannot read the attributes of subscription {arn}: {e}"),
                fix_for(
                    e,
                    "sns:GetSubscriptionAttributes",
                    "INIESTA_SNS_ENDPOINT_URL",
                ),
            )
        }
    };
    let want = expected.to_json_string();
    let set_it = format!(
        "set the subscription's FilterPolicy to {want} (run `iniesta provision` in development), \
         or change INIESTA_SQS_CONSUMER_FILTERS to match"
    );
    if attrs
        .get("FilterPolicyScope")
        .is_some_and(|s| s == "MessageBody")
    {
        return CheckResult::failed(
            Check::FilterPolicy,
            "the subscription filters on the message body (FilterPolicyScope=MessageBody), \
             but events are named in message attributes",
            format!("set FilterPolicyScope=MessageAttributes on subscription {arn}"),
        );
    }
    let Some(got) = attrs.get("FilterPolicy").filter(|p| !p.trim().is_empty()) else {
        return CheckResult::failed(
            Check::FilterPolicy,
            format!("subscription {arn} has no filter policy, so the queue receives every event"),
            set_it,
        );
    };
    if expected.same_as_json(got) {
        return CheckResult::passed(Check::FilterPolicy, format!("filter policy {want}"));
    }
    let difference = match FilterPolicy::from_json(got) {
        Ok(actual) if actual.key != expected.key => format!(
            "it filters on attribute {:?}, the consumer on {:?}",
            actual.key, expected.key
        ),
        Ok(actual) => {
            let list = |it: &mut dyn Iterator<Item = &iniesta_core::Filter>| {
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
    };
    CheckResult::failed(
        Check::FilterPolicy,
        format!(
            "subscription filter policy {got} differs from the configured filters ({difference})"
        ),
        set_it,
    )
}

fn check_queue_policy(queue: &QueueFacts, queue_arn: &str, topic_arn: &str) -> CheckResult {
    let set_policy = format!(
        "set the queue's Policy attribute to {} (run `iniesta provision` in development)",
        queue_policy_json(queue_arn, topic_arn)
    );
    let Some(policy) = &queue.policy else {
        return CheckResult::failed(
            Check::QueuePolicy,
            "the queue has no access policy, so SNS cannot deliver to it",
            set_policy,
        );
    };
    match evaluate_queue_policy(policy, queue_arn, topic_arn) {
        PolicyVerdict::Allowed { statement } => CheckResult::passed(
            Check::QueuePolicy,
            format!("statement {statement} allows topic {topic_arn}"),
        ),
        PolicyVerdict::AllowedFromAnySource { statement } => CheckResult::warning(
            Check::QueuePolicy,
            format!(
                "statement {statement} allows sqs:SendMessage without an aws:SourceArn condition: \
                 any SNS topic may send to this queue"
            ),
            format!(
                "add the condition {{\"ArnEquals\": {{\"aws:SourceArn\": \"{topic_arn}\"}}}} to it"
            ),
        ),
        PolicyVerdict::NotAllowed { reason } => {
            CheckResult::failed(Check::QueuePolicy, reason, set_policy)
        }
    }
}
