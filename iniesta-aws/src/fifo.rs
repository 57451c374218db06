//! FIFO topics and queues: telling them apart, and the message group and
//! deduplication id a message to a topic needs, checked before any call.
//!
//! SNS and SQS make a resource FIFO when it is created (`FifoTopic`,
//! `FifoQueue`) and require its name to end in `.fifo`, and only then; so
//! the name alone tells the kind, and the attribute confirms it.
//!
//! What a message to each kind of topic may carry:
//!
//! | | FIFO topic | standard topic |
//! |---|---|---|
//! | group id | required: the call's, else the [`FifoGroup`] rule's | optional, sent as given (SNS forwards it to SQS fair queues); the rule is not applied |
//! | deduplication id | optional (the topic's content-based deduplication hashes the body) | refused |
//!
//! Both ids are checked with [`check_fifo_id`], so a bad one fails its own
//! message before the call instead of the whole call.

use iniesta_core::settings::{check_fifo_id, FifoGroup, FifoGroupError};
use iniesta_core::OutgoingMessage;

/// The suffix SNS and SQS require of (only) FIFO resource names.
pub const FIFO_SUFFIX: &str = ".fifo";

/// Whether a topic or queue, named by its name, ARN or URL, is FIFO: its
/// name ends in `.fifo`.
pub fn is_fifo_name(name_arn_or_url: &str) -> bool {
    name_arn_or_url.ends_with(FIFO_SUFFIX)
}

/// Why a message cannot be published to a topic as it is; found before any
/// call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FifoError {
    /// A FIFO topic, and neither the call nor a rule gave a group.
    #[error(
        "{topic} is a FIFO topic and the message has no message group: give one with the \
         call (`--group-id` on the command line), or set INIESTA_SNS_FIFO_GROUP to \
         fixed:GROUP, attribute:NAME or json:/POINTER"
    )]
    NoGroup {
        /// The topic ARN.
        topic: String,
    },
    /// The rule could not give the message a group.
    #[error("no message group for a message to FIFO topic {topic}: {reason}")]
    Rule {
        /// The topic ARN.
        topic: String,
        /// What the rule missed.
        reason: FifoGroupError,
    },
    /// A group or deduplication id SNS would refuse.
    #[error("the {what} {id:?} {reason}")]
    InvalidId {
        /// `message group id` or `deduplication id`.
        what: &'static str,
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A deduplication id for a standard topic, which SNS refuses.
    #[error(
        "{topic} is a standard topic: a deduplication id applies only to FIFO topics \
         (names ending in .fifo); publish without one"
    )]
    DeduplicationOnStandardTopic {
        /// The topic ARN.
        topic: String,
    },
}

/// `message` ready for `topic_arn`: on a FIFO topic with its group (its
/// own, else `rule`'s), and with both ids checked; see the [module](self)
/// for what each kind of topic takes.
pub fn prepare(
    topic_arn: &str,
    rule: Option<&FifoGroup>,
    mut message: OutgoingMessage,
) -> Result<OutgoingMessage, FifoError> {
    let fifo = is_fifo_name(topic_arn);
    if fifo && message.group_id.is_none() {
        let rule = rule.ok_or_else(|| FifoError::NoGroup {
            topic: topic_arn.to_owned(),
        })?;
        let group = rule.group_for(&message).map_err(|reason| FifoError::Rule {
            topic: topic_arn.to_owned(),
            reason,
        })?;
        message.group_id = Some(group);
    }
    if !fifo && message.deduplication_id.is_some() {
        return Err(FifoError::DeduplicationOnStandardTopic {
            topic: topic_arn.to_owned(),
        });
    }
    let ids = [
        ("message group id", &message.group_id),
        ("deduplication id", &message.deduplication_id),
    ];
    for (what, id) in ids {
        if let Some(id) = id {
            check_fifo_id(id).map_err(|reason| FifoError::InvalidId {
                what,
                id: id.clone(),
                reason,
            })?;
        }
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIFO: &str = "arn:aws:sns:us-east-1:123456789012:orders.fifo";
    const STANDARD: &str = "arn:aws:sns:us-east-1:123456789012:orders";

    fn message() -> OutgoingMessage {
        OutgoingMessage::new(r#"{"id": 7}"#, Default::default())
    }

    #[test]
    fn the_name_tells_the_kind() {
        assert!(is_fifo_name(FIFO));
        assert!(is_fifo_name("https://sqs.eu-west-1.amazonaws.com/1/q.fifo"));
        assert!(!is_fifo_name(STANDARD));
        assert!(!is_fifo_name("fifo"));
    }

    #[test]
    fn a_fifo_topic_without_any_group_is_an_error_naming_both_ways_to_give_one() {
        let e = prepare(FIFO, None, message()).unwrap_err();
        assert_eq!(e, FifoError::NoGroup { topic: FIFO.into() });
        let text = e.to_string();
        assert!(text.contains("--group-id"), "{text}");
        assert!(text.contains("INIESTA_SNS_FIFO_GROUP"), "{text}");
    }

    #[test]
    fn the_calls_group_wins_over_the_rule() {
        let rule = FifoGroup::Fixed("default".into());
        let out = prepare(FIFO, Some(&rule), message().with_group_id("mine")).unwrap();
        assert_eq!(out.group_id.as_deref(), Some("mine"));
        let out = prepare(FIFO, Some(&rule), message()).unwrap();
        assert_eq!(out.group_id.as_deref(), Some("default"));
        let rule = FifoGroup::JsonField("/id".into());
        let out = prepare(FIFO, Some(&rule), message()).unwrap();
        assert_eq!(out.group_id.as_deref(), Some("7"));
    }

    #[test]
    fn a_rule_that_finds_nothing_says_why() {
        let rule = FifoGroup::Attribute("tenant".into());
        let text = prepare(FIFO, Some(&rule), message())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("INIESTA_SNS_FIFO_GROUP=attribute:tenant"),
            "{text}"
        );
        assert!(text.contains("no attribute \"tenant\""), "{text}");
    }

    #[test]
    fn a_standard_topic_gets_no_group_from_the_rule_and_refuses_a_deduplication_id() {
        let rule = FifoGroup::Fixed("default".into());
        let out = prepare(STANDARD, Some(&rule), message()).unwrap();
        assert_eq!(out.group_id, None);
        let out = prepare(STANDARD, None, message().with_group_id("fair")).unwrap();
        assert_eq!(out.group_id.as_deref(), Some("fair"));
        let e = prepare(STANDARD, None, message().with_deduplication_id("d")).unwrap_err();
        assert!(e.to_string().contains("standard topic"), "{e}");
    }

    #[test]
    fn ids_over_128_characters_or_with_other_characters_are_refused() {
        let long = "g".repeat(129);
        let e = prepare(FIFO, None, message().with_group_id(&long)).unwrap_err();
        assert!(
            e.to_string().starts_with("the message group id \"ggg"),
            "{e}"
        );
        assert!(e.to_string().contains("has 129 characters"), "{e}");
        let e = prepare(
            FIFO,
            None,
            message().with_group_id("g").with_deduplication_id("a b"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the deduplication id \"a b\" contains"),
            "{e}"
        );
        let ok = prepare(
            FIFO,
            None,
            message()
                .with_group_id("g".repeat(128))
                .with_deduplication_id("d-1"),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }
}
