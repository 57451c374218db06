//! The table of settings: one row per environment variable, and the only
//! place a setting is spelled out.
//!
//! A row gives the [`Settings`] field and its type, the variable's name (and
//! its constant in [`vars`]), the default (and how the doc table shows it),
//! the parser that reads and checks a value, whether the value holds URLs to
//! redact, and the meaning shown in the doc table. Everything else comes
//! from the rows (see [`expand`](super::expand)): the struct, its `Default`
//! and `Debug`, `vars::ALL`, the reading of the environment and the table in
//! the [module docs](super).
//!
//! Checks between settings (the heartbeat against the lock timeout, …) are
//! in [`parse`](super::parse); what each mode needs is in
//! [`mode`](super::mode).

use std::collections::BTreeSet;
use std::time::Duration;

use super::mode::{InitializationType, LockBackend};
use super::values::{self, some};
use crate::sqs::{self, MAX_VISIBILITY};

/// Expands every row of the table into what its argument names: `doc` or
/// `items` (see [`expand`](super::expand)).
macro_rules! settings_table {
    ($what:ident) => { $crate::settings::expand::expand_rows! { $what;
        initialization_types: BTreeSet<InitializationType> {
            var: INITIALIZATION_TYPE = "INIESTA_INITIALIZATION_TYPE",
            default: BTreeSet::new(), shown as "empty",
            parse: values::initialization_types,
            doc: "what to set up: a list of `EVENT_POLLING`, `QUEUE_POLLING`, `SNS_PRODUCER`",
        },
        topic_arn: Option<String> {
            var: GLOBAL_TOPIC_ARN = "INIESTA_SNS_PRODUCER_GLOBAL_TOPIC_ARN",
            default: None, shown as "none",
            parse: some(values::topic_arn),
            doc: "the global topic (`arn:aws:sns:region:account:name`); needed for event polling and publishing",
        },
        /// Kept as given; each one parses with
        /// [`Filter::parse`](crate::filters::Filter::parse).
        consumer_filters: Vec<String> {
            var: CONSUMER_FILTERS = "INIESTA_SQS_CONSUMER_FILTERS",
            default: Vec::new(), shown as "empty",
            parse: values::consumer_filters,
            doc: "the events this service consumes (`Event.service`, or `Event.*` for a prefix); non-empty for event polling",
        },
        queue_name: Option<String> {
            var: QUEUE_NAME = "INIESTA_SQS_QUEUE_NAME",
            default: None, shown as "none",
            parse: some(values::queue_name),
            doc: "this service's queue; when unset, the template below gives it",
        },
        /// `{env}` and `{service_name}` are its placeholders; see
        /// [`Settings::resolved_queue_name`].
        queue_name_template: String {
            var: QUEUE_NAME_TEMPLATE = "INIESTA_SQS_QUEUE_NAME_TEMPLATE",
            default: "iniesta-{env}-{service_name}".to_owned(), shown as "`iniesta-{env}-{service_name}`",
            parse: values::queue_name_template,
            doc: "the queue name from `ENVIRONMENT` and `SERVICE_NAME`",
        },
        event_key: String {
            var: EVENT_KEY = "INIESTA_SNS_EVENT_KEY",
            default: "iniesta_pass".to_owned(), shown as "`iniesta_pass`",
            parse: values::event_key,
            doc: "the message attribute that names the event",
        },
        /// `None`: a publishing call to a FIFO topic names its group
        /// itself; see [`FifoGroup`](super::FifoGroup).
        fifo_group: Option<super::group::FifoGroup> {
            var: SNS_FIFO_GROUP = "INIESTA_SNS_FIFO_GROUP",
            default: None, shown as "none (each publish names its group)",
            parse: some(super::group::FifoGroup::parse),
            doc: "the message group of an event published to a FIFO topic without one: `fixed:GROUP`, `attribute:NAME` (that message attribute's value) or `json:/POINTER` (that field of the JSON payload); never applied on a standard topic",
        },
        caches: Vec<String> {
            var: CACHES = "INIESTA_CACHES",
            default: vec![
                "redis://localhost:6379/1".to_owned(),
                "redis://localhost:6379/2".to_owned(),
                "redis://localhost:6379/3".to_owned(),
            ],
            shown as "`redis://localhost:6379/1`, `/2`, `/3`",
            parse: values::caches,
            redact: urls,
            doc: "the Redis servers of the Redlock (`redis://` or `rediss://` URLs)",
        },
        lock_backend: LockBackend {
            var: LOCK_BACKEND = "INIESTA_LOCK_BACKEND",
            default: LockBackend::Redlock, shown as "`redlock`",
            parse: values::lock_backend,
            doc: "where the locks and completion records live: `redlock` (the Redis servers of `INIESTA_CACHES`) or `dynamodb` (the table below)",
        },
        dynamodb_table: String {
            var: DYNAMODB_TABLE = "INIESTA_DYNAMODB_TABLE",
            default: "iniesta-locks".to_owned(), shown as "`iniesta-locks`",
            parse: values::dynamodb_table,
            doc: "the DynamoDB table of the `dynamodb` lock backend",
        },
        dynamodb_endpoint_url: Option<String> {
            var: DYNAMODB_ENDPOINT_URL = "INIESTA_DYNAMODB_ENDPOINT_URL",
            default: None, shown as "none (AWS)",
            parse: some(values::endpoint_url),
            redact: urls,
            doc: "another DynamoDB endpoint (`http://` or `https://`)",
        },
        lock_timeout: Duration {
            var: LOCK_TIMEOUT = "INIESTA_LOCK_TIMEOUT",
            default: Duration::from_secs(10), shown as "`10` (s)",
            parse: |v| values::duration_in(v, Duration::from_millis(1), MAX_VISIBILITY),
            doc: "time to live of a lock per event (at most 12 h)",
        },
        lock_retry_count: u32 {
            var: LOCK_RETRY_COUNT = "INIESTA_LOCK_RETRY_COUNT",
            default: 1, shown as "`1`",
            parse: values::attempts,
            doc: "attempts to acquire a lock (1 = a single attempt)",
        },
        receive_max_messages: usize {
            var: RECEIVE_MAX_MESSAGES = "INIESTA_SQS_RECEIVE_MESSAGE_MAX_NUMBER_OF_MESSAGES",
            default: sqs::MAX_BATCH, shown as "`10`",
            parse: |v| values::count(v, 1, sqs::MAX_BATCH),
            doc: "messages per receive, 1 to 10",
        },
        receive_wait_time: Duration {
            var: RECEIVE_WAIT_TIME = "INIESTA_SQS_RECEIVE_MESSAGE_WAIT_TIME_SECONDS",
            default: sqs::MAX_WAIT_TIME, shown as "`20`",
            parse: values::wait_time,
            doc: "long polling wait, 0 to 20 whole seconds",
        },
        assert_filter_policies: bool {
            var: ASSERT_FILTER_POLICIES = "INIESTA_ASSERT_FILTER_POLICIES",
            default: true, shown as "`true`",
            parse: values::boolean,
            doc: "check at start-up that the subscription's filter policy equals the configured filters",
        },
        dry_run: bool {
            var: DRY_RUN = "INIESTA_DRY_RUN",
            default: false, shown as "`false`",
            parse: values::boolean,
            doc: "skip the AWS checks at start-up",
        },
        sqs_endpoint_url: Option<String> {
            var: SQS_ENDPOINT_URL = "INIESTA_SQS_ENDPOINT_URL",
            default: None, shown as "none (AWS)",
            parse: some(values::endpoint_url),
            redact: urls,
            doc: "another SQS endpoint (`http://` or `https://`), e.g. an emulator",
        },
        sns_endpoint_url: Option<String> {
            var: SNS_ENDPOINT_URL = "INIESTA_SNS_ENDPOINT_URL",
            default: None, shown as "none (AWS)",
            parse: some(values::endpoint_url),
            redact: urls,
            doc: "another SNS endpoint (`http://` or `https://`)",
        },
        service_name: Option<String> {
            var: SERVICE_NAME = "SERVICE_NAME",
            default: None, shown as "none",
            parse: some(values::text),
            doc: "this service's name; used by the queue name template and for published event names",
        },
        environment: String {
            var: ENVIRONMENT = "ENVIRONMENT",
            default: "development".to_owned(), shown as "`development`",
            parse: values::text,
            doc: "the environment; used by the queue name template",
        },
        max_in_flight: usize {
            var: MAX_IN_FLIGHT = "INIESTA_MAX_IN_FLIGHT",
            default: 10, shown as "`10`",
            parse: |v| values::count(v, 1, usize::MAX),
            doc: "handlers running at once (at least 1); a message holds its slot from its lock's acquire to its completion record. As many more are received ahead while they run (kept hidden by the heartbeat), and deletes happen after the slot is free",
        },
        /// `None` means as many as `max_in_flight`.
        prefetch: Option<usize> {
            var: PREFETCH = "INIESTA_PREFETCH",
            default: None, shown as "as many as `INIESTA_MAX_IN_FLIGHT`",
            parse: |v| values::count(v, 0, usize::MAX).map(Some),
            doc: "messages received ahead while the handlers run, kept hidden by the heartbeat until a slot frees (0 = receive only for free slots)",
        },
        /// `None` lets the consumer derive it from `max_in_flight`.
        concurrent_receives: Option<usize> {
            var: CONCURRENT_RECEIVES = "INIESTA_CONCURRENT_RECEIVES",
            default: None, shown as "derived by the consumer",
            parse: some(|v| values::count(v, 1, usize::MAX)),
            doc: "most receive calls outstanding at once (1 to `INIESTA_MAX_IN_FLIGHT`; derived: one per 10 slots, at most 100); fewer while receives come back empty, down to one long poll on an idle queue",
        },
        dedupe_window: Duration {
            var: DEDUPE_WINDOW = "INIESTA_DEDUPE_WINDOW",
            default: Duration::from_secs(24 * 60 * 60), shown as "`24h`",
            parse: |v| values::duration_in(v, Duration::from_millis(1), Duration::MAX),
            doc: "how long a completion record keeps a finished event from running again",
        },
        /// `None` means 0.6 × the lock timeout; see [`Settings::heartbeat`].
        heartbeat_interval: Option<Duration> {
            var: HEARTBEAT_INTERVAL = "INIESTA_HEARTBEAT_INTERVAL",
            default: None, shown as "0.6 × lock timeout",
            parse: some(|v| values::duration_in(v, Duration::from_millis(1), Duration::MAX)),
            doc: "how often a running handler's lock and message visibility are extended; shorter than the lock timeout",
        },
        /// Held as SQS applies it, rounded up to whole seconds; `None` means
        /// the lock timeout. See [`Settings::visibility_extension_or_default`].
        visibility_extension: Option<Duration> {
            var: VISIBILITY_EXTENSION = "INIESTA_VISIBILITY_EXTENSION",
            default: None, shown as "the lock timeout",
            parse: some(|v| values::visibility_timeout(v, Duration::from_secs(1))),
            doc: "how far each heartbeat pushes the message's visibility (1 s to 12 h; rounded up to whole seconds, then longer than the heartbeat interval)",
        },
        /// Held as SQS applies it, rounded up to whole seconds (under 1 s
        /// becomes 1 s); `None` (unset or 0) means no backoff.
        failure_backoff_base: Option<Duration> {
            var: FAILURE_BACKOFF_BASE = "INIESTA_FAILURE_BACKOFF_BASE",
            default: None, shown as "none (`0`)",
            parse: values::failure_backoff_base,
            doc: "after a failed handler, hide the message for base × 2^(receive count − 1); rounded up to whole seconds (under 1 s becomes 1 s); unset or 0 leaves the queue's visibility timeout alone",
        },
        /// At most [`MAX_VISIBILITY`], held as SQS applies it, rounded up to
        /// whole seconds.
        failure_backoff_max: Duration {
            var: FAILURE_BACKOFF_MAX = "INIESTA_FAILURE_BACKOFF_MAX",
            default: Duration::from_secs(15 * 60), shown as "`15m`",
            parse: |v| values::visibility_timeout(v, Duration::ZERO),
            doc: "the longest such backoff (at most 12 h, SQS's limit; rounded up to whole seconds)",
        },
        /// `None` (unset or 0) lets a handler run as long as its heartbeats
        /// keep its lock.
        handler_timeout: Option<Duration> {
            var: HANDLER_TIMEOUT = "INIESTA_HANDLER_TIMEOUT",
            default: None, shown as "none (`0`)",
            parse: |v| values::duration_in(v, Duration::ZERO, Duration::MAX).map(|d| Some(d).filter(|d| !d.is_zero())),
            doc: "abort a handler that runs longer than this; it counts as a failure and is retried (unset or 0 = no limit)",
        },
        /// Off by default so that nothing is lost: the dead-letter queue
        /// keeps what a handler refused for good.
        delete_permanent_failures: bool {
            var: DELETE_PERMANENT_FAILURES = "INIESTA_DELETE_PERMANENT_FAILURES",
            default: false, shown as "`false`",
            parse: values::boolean,
            doc: "delete a message whose handler failed permanently (`HandlerError::permanent`, an undecodable `Json` payload) instead of leaving it for the dead-letter queue",
        },
        shutdown_grace: Duration {
            var: SHUTDOWN_GRACE = "INIESTA_SHUTDOWN_GRACE",
            default: Duration::from_secs(30), shown as "`30` (s)",
            parse: |v| values::duration_in(v, Duration::ZERO, Duration::MAX),
            doc: "how long shutdown waits for running handlers",
        },
        /// Fewer calls, at the price of that much delay before the delete.
        delete_batch_window: Duration {
            var: DELETE_BATCH_WINDOW = "INIESTA_DELETE_BATCH_WINDOW",
            default: Duration::from_millis(10), shown as "`10ms`",
            parse: |v| values::duration_in(v, Duration::ZERO, Duration::from_secs(10)),
            doc: "how long a finished message waits for others to share its `DeleteMessageBatch` call (0 = delete at once)",
        },
        return_unstarted_on_shutdown: bool {
            var: RETURN_UNSTARTED_ON_SHUTDOWN = "INIESTA_RETURN_UNSTARTED_ON_SHUTDOWN",
            default: true, shown as "`true`",
            parse: values::boolean,
            doc: "at shutdown, make received but unstarted messages visible again at once",
        },
        lock_key_prefix: String {
            var: LOCK_KEY_PREFIX = "INIESTA_LOCK_KEY_PREFIX",
            default: "sqs:event:".to_owned(), shown as "`sqs:event:`",
            parse: values::text,
            doc: "prefix of the Redis key locked per event",
        },
        /// `None` means detect it from the subscription at start-up.
        raw_delivery: Option<bool> {
            var: RAW_DELIVERY = "INIESTA_RAW_DELIVERY",
            default: None, shown as "detected at start-up",
            parse: values::raw_delivery,
            doc: "whether SNS delivers raw messages (`true`/`false`; `auto` or unset = detect)",
        },
        /// Off by default so that nothing is lost: an event the subscription
        /// lets through but no filter takes usually means the filters and
        /// the subscription disagree, and the dead-letter queue keeps those
        /// events for a look.
        delete_unmatched_events: bool {
            var: DELETE_UNMATCHED_EVENTS = "INIESTA_DELETE_UNMATCHED_EVENTS",
            default: false, shown as "`false`",
            parse: values::boolean,
            doc: "delete messages whose event does not match `INIESTA_SQS_CONSUMER_FILTERS` instead of leaving them for the dead-letter queue",
        },
    } };
}
pub(super) use settings_table;

settings_table!(items);
