//! Start-up verification: are the topic, the queue, the subscription, its
//! filter policy and the queue policy in place, and how does SNS deliver?
//!
//! Every check runs every time, so one report lists everything that is
//! wrong, not only the first problem; a check that depends on a missing
//! resource says it was not checked and why. Each failure says how to fix
//! it. The report never contains credentials.
//!
//! [`verify`] works in two steps: gathering asks AWS and keeps every
//! answer, failed calls included; judging reads those answers without any
//! IO, one function per check, and assembles the report.

use std::time::Duration;

use iniesta_core::{DeliveryMode, FilterPolicy};

use crate::clients::AwsClients;

mod checks;
mod facts;
mod report;
mod report_json;
#[cfg(test)]
mod tests;

pub(crate) use facts::{delivery_mode_of, find_subscription, subscription_attributes};
pub use report::{Check, CheckResult, CheckStatus, VerificationReport};

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

/// What to verify: [`VerifyRequest::new`] or
/// [`VerifyRequest::event_polling`], then set the fields that differ (the
/// struct is `#[non_exhaustive]`, so that new checks can take their inputs
/// without breaking callers).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    /// A request for the checks of `scope` on `queue_name`, with no topic
    /// and no filter policy, and the original's defaults otherwise (filter
    /// policy asserted when there is one, lock timeout 10 s, delivery mode
    /// detected).
    pub fn new(scope: VerifyScope, queue_name: impl Into<String>) -> Self {
        VerifyRequest {
            scope,
            topic_arn: None,
            queue_name: queue_name.into(),
            filter_policy: None,
            assert_filter_policies: true,
            lock_timeout: Some(Duration::from_secs(10)),
            expected_delivery_mode: None,
        }
    }

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

/// Runs every check that applies to `request.scope` and reports them all.
///
/// Never fails: an AWS error becomes the failure of the check that needed
/// the call, with the AWS error code and a fix.
pub async fn verify(clients: &AwsClients, request: &VerifyRequest) -> VerificationReport {
    let facts = facts::gather(clients, request).await;
    checks::judge(request, &facts)
}
