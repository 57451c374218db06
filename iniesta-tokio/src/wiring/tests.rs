use super::*;

fn types(kinds: &[InitializationType]) -> BTreeSet<InitializationType> {
    kinds.iter().copied().collect()
}

fn named(kinds: &[InitializationType]) -> Settings {
    let mut settings = Settings::default();
    settings.initialization_types = types(kinds);
    settings.queue_name = Some("iniesta-test-orders".to_owned());
    settings
}

#[test]
fn event_polling_wins_over_queue_polling() {
    use InitializationType::*;
    assert_eq!(
        polling_kind(&types(&[QueuePolling, EventPolling])),
        Some(EventPolling)
    );
    assert_eq!(
        polling_kind(&types(&[SnsProducer, QueuePolling])),
        Some(QueuePolling)
    );
    assert_eq!(polling_kind(&types(&[SnsProducer])), None);
    assert_eq!(polling_kind(&types(&[])), None);
}

#[test]
fn queue_polling_names_the_queue_and_reads_raw_messages() {
    let polling = Polling::from_settings(&named(&[InitializationType::QueuePolling])).unwrap();
    assert_eq!(polling.kind, InitializationType::QueuePolling);
    assert_eq!(polling.queue_name, "iniesta-test-orders");
    assert_eq!(polling.default_delivery_mode(), DeliveryMode::Raw);
}

#[test]
fn event_polling_reads_envelopes_by_default() {
    let mut settings = named(&[InitializationType::EventPolling]);
    settings.topic_arn = Some("arn:aws:sns:us-east-1:000000000000:global".to_owned());
    settings.consumer_filters = vec!["OrderPlaced.orders".to_owned()];
    let polling = Polling::from_settings(&settings).unwrap();
    assert_eq!(polling.kind, InitializationType::EventPolling);
    assert_eq!(polling.default_delivery_mode(), DeliveryMode::Envelope);
}

#[test]
fn a_producer_alone_polls_nothing_and_every_problem_is_named() {
    let mut settings = named(&[InitializationType::SnsProducer]);
    settings.queue_name = None;
    let err = Polling::from_settings(&settings).unwrap_err();
    assert!(err.mentions(vars::INITIALIZATION_TYPE), "{err}");
    assert_eq!(err.problems()[0].value.as_deref(), Some("SNS_PRODUCER"));
    // What the producer lacks is reported in the same error.
    assert!(err.mentions(vars::GLOBAL_TOPIC_ARN), "{err}");
    assert!(err.mentions(vars::SERVICE_NAME), "{err}");
}

#[test]
fn no_type_at_all_has_no_value() {
    let err = no_polling_type(&types(&[]));
    assert_eq!(err.problems().len(), 1);
    assert_eq!(err.problems()[0].value, None);
}

#[test]
fn raw_delivery_setting_picks_the_mode() {
    let mut settings = Settings::default();
    assert_eq!(delivery_mode(&settings), None);
    settings.raw_delivery = Some(true);
    assert_eq!(delivery_mode(&settings), Some(DeliveryMode::Raw));
    settings.raw_delivery = Some(false);
    assert_eq!(delivery_mode(&settings), Some(DeliveryMode::Envelope));
}

#[test]
fn signals_are_named_as_operators_know_them() {
    assert_eq!(Signal::Interrupt.to_string(), "SIGINT");
    assert_eq!(Signal::Terminate.to_string(), "SIGTERM");
}

#[cfg(feature = "redlock")]
#[test]
fn lock_retry_count_counts_attempts() {
    let mut settings = Settings::default();
    settings.caches = vec!["redis://127.0.0.1:6390/1".to_owned()];
    settings.lock_retry_count = 3;
    let config = redlock_config(&settings);
    assert_eq!(config.urls, settings.caches);
    assert_eq!(config.retry_count, 2);
    settings.lock_retry_count = 0;
    assert_eq!(redlock_config(&settings).retry_count, 0);
}

#[cfg(feature = "aws")]
#[test]
fn each_type_has_its_checks() {
    use iniesta_aws::VerifyScope;
    for kind in InitializationType::ALL {
        assert_eq!(verify_scope(kind).as_setting(), kind.as_str());
    }
    assert_eq!(
        verify_scope(InitializationType::QueuePolling),
        VerifyScope::QueuePolling
    );
}

#[cfg(feature = "aws")]
#[test]
fn the_verify_request_follows_the_settings() {
    use iniesta_aws::VerifyScope;
    let mut settings = named(&[InitializationType::EventPolling]);
    settings.topic_arn = Some("arn:aws:sns:us-east-1:000000000000:global".to_owned());
    settings.consumer_filters = vec!["OrderPlaced.orders".to_owned()];
    settings.assert_filter_policies = false;
    let request = verify_request(
        &settings,
        VerifyScope::EventPolling,
        Some(DeliveryMode::Raw),
    );
    assert_eq!(request.scope, VerifyScope::EventPolling);
    assert_eq!(request.topic_arn, settings.topic_arn);
    assert_eq!(request.queue_name, "iniesta-test-orders");
    assert_eq!(request.filter_policy, settings.filter_policy().ok());
    assert!(!request.assert_filter_policies);
    assert_eq!(request.lock_timeout, Some(settings.lock_timeout));
    assert_eq!(request.expected_delivery_mode, Some(DeliveryMode::Raw));
}
