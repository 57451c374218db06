//! Label values, each from a set fixed when the observer is built, so that
//! whatever arrives on the queue cannot grow the number of series.

use std::collections::HashMap;
use std::sync::Arc;

use iniesta_core::{BackendError, DispatchOutcome, Filter};
use metrics::SharedString;

/// The `event` label of every event without a route of its own.
pub(super) const DEFAULT_EVENT: &str = "default";

/// The `event` label of each event name: the route that takes it (the event
/// itself, or a prefix as `Order.*`), else `default`.
///
/// An event name is chosen by whoever publishes to the topic; as a label it
/// would make a series per name ever seen. The routes are chosen by this
/// service, so they bound the labels.
#[derive(Debug, Clone)]
pub(super) struct EventLabels {
    exact: HashMap<String, Arc<str>>,
    /// `(prefix without its '*', label)`, longest prefix first: the
    /// registry's own order, so the label names the route that runs.
    prefixes: Vec<(String, Arc<str>)>,
    default: Arc<str>,
}

impl EventLabels {
    /// The labels of `routes` (names as the registry lists them:
    /// `Event.svc` or `Event.*`). A name that is neither is left out.
    pub(super) fn new<S: AsRef<str>>(routes: impl IntoIterator<Item = S>) -> Self {
        let mut exact = HashMap::new();
        let mut prefixes = Vec::new();
        for name in routes {
            let name = name.as_ref();
            match Filter::parse(name) {
                Ok(Filter::Exact(e)) => {
                    exact.insert(e, Arc::from(name));
                }
                Ok(Filter::Prefix(p)) => prefixes.push((p, Arc::from(name))),
                _ => {}
            }
        }
        prefixes.sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        prefixes.dedup_by(|(a, _), (b, _)| a == b);
        EventLabels {
            exact,
            prefixes,
            default: Arc::from(DEFAULT_EVENT),
        }
    }

    /// The label of `event`.
    pub(super) fn of(&self, event: &str) -> &Arc<str> {
        if let Some(label) = self.exact.get(event) {
            return label;
        }
        self.prefixes
            .iter()
            .find(|(p, _)| event.starts_with(p.as_str()))
            .map_or(&self.default, |(_, label)| label)
    }

    /// Every label this can give, `default` included.
    pub(super) fn all(&self) -> impl Iterator<Item = &Arc<str>> {
        self.exact
            .values()
            .chain(self.prefixes.iter().map(|(_, l)| l))
            .chain(std::iter::once(&self.default))
    }
}

/// A label value sharing `label`'s text (no copy per event).
pub(super) fn shared(label: &Arc<str>) -> SharedString {
    SharedString::from_shared(Arc::clone(label))
}

/// The `outcome` label of a handler that did not succeed. The one place a
/// [`DispatchOutcome`] is read: every failure the driver may report that is
/// neither a panic nor an abort counts as `error`.
pub(super) fn outcome_label(outcome: &DispatchOutcome) -> &'static str {
    match outcome {
        DispatchOutcome::Succeeded => "ok",
        DispatchOutcome::Panicked(_) => "panic",
        DispatchOutcome::Aborted => "aborted",
        _ => "error",
    }
}

/// The `kind` label of a failed receive, one of
/// [`RECEIVE_FAILURE_KINDS`](super::names::RECEIVE_FAILURE_KINDS), from the
/// queue's error code: the code itself is the service's to choose, and the
/// kinds are what an operator acts on.
pub(super) fn error_kind(error: &BackendError) -> &'static str {
    let Some(code) = error.code.as_deref() else {
        return "network";
    };
    let code = code.strip_prefix("AWS.SimpleQueueService.").unwrap_or(code);
    match code {
        "AccessDenied"
        | "AccessDeniedException"
        | "AuthorizationError"
        | "AuthorizationErrorException"
        | "KmsAccessDenied" => "access_denied",
        "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "InvalidAccessKeyId"
        | "InvalidSecurity"
        | "MissingAuthenticationToken"
        | "RequestExpired" => "credentials",
        "NonExistentQueue" | "QueueDoesNotExist" => "queue_missing",
        "TooManyRequestsException" | "RequestLimitExceeded" => "throttled",
        // ThrottlingException, Throttling, RequestThrottled, KmsThrottled.
        c if c.contains("Throttl") => "throttled",
        _ => "other",
    }
}
