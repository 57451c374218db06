//! The verification report: which check, what it found, how to fix it, and
//! the plain-text rendering the CLI prints (the JSON one is in
//! `report_json.rs`).

use std::fmt;

use iniesta_core::DeliveryMode;

use super::VerifyScope;

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
    /// The check's stable name in machine-readable output (`topic_exists`,
    /// `queue_policy`, …): unlike [`title`](Self::title), it never changes
    /// with the wording.
    pub fn name(&self) -> &'static str {
        match self {
            Check::TopicExists => "topic_exists",
            Check::QueueResolves => "queue_resolves",
            Check::Subscribed => "subscribed",
            Check::FilterPolicy => "filter_policy",
            Check::QueuePolicy => "queue_policy",
            Check::DeliveryMode => "delivery_mode",
            Check::DeadLetterQueue => "dead_letter_queue",
            Check::VisibilityTimeout => "visibility_timeout",
        }
    }

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

impl CheckStatus {
    /// The outcome's stable name in machine-readable output: `pass`, `warn`,
    /// `fail` or `skip`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckStatus::Passed { .. } => "pass",
            CheckStatus::Warning { .. } => "warn",
            CheckStatus::Failed { .. } => "fail",
            CheckStatus::Skipped { .. } => "skip",
        }
    }

    /// What was found (a pass), or what is wrong or risky, or why the check
    /// was skipped.
    pub fn message(&self) -> &str {
        match self {
            CheckStatus::Passed { detail } => detail,
            CheckStatus::Failed { reason, .. }
            | CheckStatus::Skipped { reason }
            | CheckStatus::Warning { reason, .. } => reason,
        }
    }

    /// How to fix a failure or a warning; `None` otherwise.
    pub fn fix(&self) -> Option<&str> {
        match self {
            CheckStatus::Failed { fix, .. } | CheckStatus::Warning { fix, .. } => Some(fix),
            CheckStatus::Passed { .. } | CheckStatus::Skipped { .. } => None,
        }
    }
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
    pub(super) fn passed(check: Check, detail: impl Into<String>) -> Self {
        CheckResult {
            check,
            status: CheckStatus::Passed {
                detail: detail.into(),
            },
        }
    }

    pub(super) fn failed(check: Check, reason: impl Into<String>, fix: impl Into<String>) -> Self {
        CheckResult {
            check,
            status: CheckStatus::Failed {
                reason: reason.into(),
                fix: fix.into(),
            },
        }
    }

    pub(super) fn skipped(check: Check, reason: impl Into<String>) -> Self {
        CheckResult {
            check,
            status: CheckStatus::Skipped {
                reason: reason.into(),
            },
        }
    }

    pub(super) fn warning(check: Check, reason: impl Into<String>, fix: impl Into<String>) -> Self {
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

/// The result of [`verify`](super::verify()): every check, and what was
/// found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationReport {
    pub(super) scope: VerifyScope,
    pub(super) results: Vec<CheckResult>,
    pub(super) queue_url: Option<String>,
    pub(super) queue_arn: Option<String>,
    pub(super) subscription_arn: Option<String>,
    pub(super) delivery_mode: Option<DeliveryMode>,
    pub(super) queue_fifo: Option<bool>,
}

impl VerificationReport {
    /// Whether no check failed (warnings and skipped checks allowed).
    pub fn is_ok(&self) -> bool {
        !self.results.iter().any(CheckResult::is_failed)
    }

    /// The overall outcome's stable name in machine-readable output: `fail`
    /// when a check failed, else `warn` when one warned, else `pass`. Only
    /// `fail` makes `iniesta verify` exit 3.
    pub fn status(&self) -> &'static str {
        if !self.is_ok() {
            "fail"
        } else if self.results.iter().any(CheckResult::is_warning) {
            "warn"
        } else {
            "pass"
        }
    }

    /// The checks that were asked for: the request's scope.
    pub fn scope(&self) -> VerifyScope {
        self.scope
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

    /// Whether the queue is FIFO (its `FifoQueue` attribute, or a name
    /// ending in `.fifo`), when its attributes were read. A consumer of a
    /// FIFO queue handles one message per group at a time, in order.
    pub fn queue_is_fifo(&self) -> Option<bool> {
        self.queue_fifo
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
