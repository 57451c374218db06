//! What each mode needs, the queue name, the filter policy and the
//! initialization types.

use super::{load, TOPIC};
use crate::filters::FilterError;
use crate::message::DeliveryMode;
use crate::settings::queue_name::check_queue_name;
use crate::settings::{vars, InitializationType, Settings};

#[test]
fn queue_name_template_resolution() {
    let s = load(&[(vars::SERVICE_NAME, "billing")]).unwrap();
    assert_eq!(
        s.resolved_queue_name().unwrap(),
        "iniesta-development-billing"
    );

    let s = load(&[(vars::SERVICE_NAME, "billing"), (vars::ENVIRONMENT, "prod")]).unwrap();
    assert_eq!(s.resolved_queue_name().unwrap(), "iniesta-prod-billing");

    let s = load(&[
        (vars::QUEUE_NAME, "explicit"),
        (vars::ENVIRONMENT, "prod"),
        (vars::SERVICE_NAME, "billing"),
    ])
    .unwrap();
    assert_eq!(s.resolved_queue_name().unwrap(), "explicit");

    // A template without {service_name} needs no SERVICE_NAME.
    let s = load(&[(vars::QUEUE_NAME_TEMPLATE, "{env}_events_{env}")]).unwrap();
    assert_eq!(
        s.resolved_queue_name().unwrap(),
        "development_events_development"
    );

    // Missing SERVICE_NAME names the variable.
    let e = load(&[]).unwrap().resolved_queue_name().unwrap_err();
    assert_eq!(e.problems().len(), 1);
    assert_eq!(e.problems()[0].variable, vars::SERVICE_NAME);
    assert!(
        e.to_string().starts_with("SERVICE_NAME is not set: "),
        "{e}"
    );
    assert!(e.to_string().contains(vars::QUEUE_NAME), "{e}");

    // A service name that makes an invalid queue name.
    let e = load(&[(vars::SERVICE_NAME, "my.service")])
        .unwrap()
        .resolved_queue_name()
        .unwrap_err();
    assert_eq!(e.problems()[0].variable, vars::QUEUE_NAME_TEMPLATE);
    assert!(
        e.to_string().contains("\"iniesta-development-my.service\""),
        "{e}"
    );

    // Too long for SQS.
    let long = "s".repeat(80);
    let e = load(&[(vars::SERVICE_NAME, &long)])
        .unwrap()
        .resolved_queue_name()
        .unwrap_err();
    assert!(e.mentions(vars::QUEUE_NAME_TEMPLATE));

    // Set in code, the explicit name is still checked.
    let s = Settings {
        queue_name: Some("bad name".into()),
        ..Settings::default()
    };
    assert!(s
        .resolved_queue_name()
        .unwrap_err()
        .mentions(vars::QUEUE_NAME));
    assert!(check_queue_name("events.fifo").is_ok());
    assert!(check_queue_name(".fifo").is_err());
}

#[test]
fn topic_arn_partition_may_be_anything() {
    for arn in [
        TOPIC,
        "arn:aws-cn:sns:cn-north-1:123456789012:t",
        "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t_1.fifo",
    ] {
        assert_eq!(
            load(&[(vars::GLOBAL_TOPIC_ARN, arn)])
                .unwrap()
                .topic_arn
                .as_deref(),
            Some(arn)
        );
    }
}

#[test]
fn event_polling_needs_topic_filters_and_queue() {
    let e = load(&[]).unwrap().validate_for_event_polling().unwrap_err();
    let vars_named: Vec<&str> = e.problems().iter().map(|p| p.variable.as_str()).collect();
    assert_eq!(
        vars_named,
        [
            vars::GLOBAL_TOPIC_ARN,
            vars::CONSUMER_FILTERS,
            vars::SERVICE_NAME
        ]
    );
    assert_eq!(e.to_string().lines().count(), 3);

    // Other modes do not need them.
    let producer_only = load(&[
        (vars::INITIALIZATION_TYPE, "SNS_PRODUCER"),
        (vars::GLOBAL_TOPIC_ARN, TOPIC),
        (vars::SERVICE_NAME, "svc"),
    ])
    .unwrap();
    producer_only.validate_initialization_types().unwrap();
    let e = load(&[(vars::INITIALIZATION_TYPE, "SNS_PRODUCER,QUEUE_POLLING")])
        .unwrap()
        .validate_initialization_types()
        .unwrap_err();
    // SERVICE_NAME is reported once although both modes need it.
    assert_eq!(e.problems().len(), 3, "{e}");
    assert!(e.mentions(vars::GLOBAL_TOPIC_ARN));

    let s = load(&[
        (vars::GLOBAL_TOPIC_ARN, TOPIC),
        (vars::CONSUMER_FILTERS, "A.x,B.*"),
        (vars::QUEUE_NAME, "q"),
    ])
    .unwrap();
    s.validate_for_event_polling().unwrap();
    s.validate_for_queue_polling().unwrap();
    assert!(s
        .validate_for_sns_producer()
        .unwrap_err()
        .mentions(vars::SERVICE_NAME));

    // More filters than SNS takes.
    let mut many = s.clone();
    many.consumer_filters = (0..151).map(|i| format!("E{i}.x")).collect();
    let e = many.validate_for_event_polling().unwrap_err();
    assert!(e.mentions(vars::CONSUMER_FILTERS));
    assert!(e.to_string().contains("150"), "{e}");
}

#[test]
fn filter_policy_uses_the_event_key() {
    let s = load(&[
        (vars::CONSUMER_FILTERS, r#"["A.x", "B.*"]"#),
        (vars::EVENT_KEY, "kind"),
    ])
    .unwrap();
    let p = s.filter_policy().unwrap();
    assert_eq!(p.key, "kind");
    assert!(p.same_as_json(r#"{"kind": [{"prefix": "B."}, "A.x"]}"#));
    assert_eq!(
        Settings::default().filter_policy(),
        Err(FilterError::NoFilters)
    );
    let config = s.parse_config(DeliveryMode::Raw);
    assert_eq!(config.event_key, "kind");
    assert_eq!(config.mode, DeliveryMode::Raw);
}

#[test]
fn initialization_type_names_round_trip() {
    for t in InitializationType::ALL {
        assert_eq!(InitializationType::from_name(t.as_str()), Some(t));
        assert_eq!(t.to_string(), t.as_str());
    }
    assert_eq!(
        InitializationType::from_name("sns_producer"),
        Some(InitializationType::SnsProducer)
    );
    assert_eq!(InitializationType::from_name("POLLING"), None);
}
