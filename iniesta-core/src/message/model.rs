//! What a handler sees: the parsed [`Message`] and its [`Payload`].

use std::sync::{Arc, OnceLock};

use super::{AttributeValue, Attributes, SystemAttributes};

/// The payload of a message: JSON when the text parses as JSON, else text.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// The payload parsed as JSON.
    Json(serde_json::Value),
    /// The payload is not JSON.
    Text(String),
}

impl Payload {
    fn from_text(text: &str) -> Payload {
        if !may_be_json(text) {
            return Payload::Text(text.to_owned());
        }
        match serde_json::from_str(text) {
            Ok(v) => Payload::Json(v),
            Err(_) => Payload::Text(text.to_owned()),
        }
    }
}

/// Whether `text` can be JSON at all, judged by its first byte that is not
/// JSON whitespace: a JSON text starts with a value, and every value starts
/// with `{`, `[`, `"`, `-`, a digit, `t`, `f` or `n`. Plain text is then
/// taken as text without running the JSON parser on it.
fn may_be_json(text: &str) -> bool {
    let first = text
        .bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    matches!(
        first,
        Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
    )
}

/// A parsed event, as a handler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The event name (the value of the `INIESTA_SNS_EVENT_KEY` attribute).
    pub event: String,
    /// The published message text (the envelope's `Message`, or the body in
    /// raw delivery).
    pub body: String,
    /// The SQS message id of this delivery.
    pub sqs_message_id: String,
    /// The SNS message id, when the message came in an envelope.
    pub sns_message_id: Option<String>,
    /// The topic the envelope named, when there was one.
    pub topic_arn: Option<String>,
    /// The event's message attributes (SNS attributes from the envelope, or
    /// SQS message attributes in raw delivery).
    pub attributes: Attributes,
    /// `ApproximateReceiveCount` of this delivery (1 on the first).
    pub receive_count: u32,
    /// When the message was sent to the queue, in ms since the Unix epoch.
    pub sent_timestamp: Option<u64>,
    /// When the message was first received, in ms since the Unix epoch.
    pub first_receive_timestamp: Option<u64>,
    /// The FIFO message group (`MessageGroupId`), when the queue gave one.
    /// On a FIFO queue, messages of one group are handled one at a time, in
    /// order; see [`ConsumerConfig::fifo`](crate::machine::ConsumerConfig::fifo).
    pub group_id: Option<String>,
    /// [`body`](Self::body) as JSON or text, parsed on first use: a handler
    /// that decodes the body itself (or ignores it) does not pay for a
    /// `serde_json::Value`.
    payload: LazyPayload,
}

/// The payload, parsed on first use. It follows from the body, so whether it
/// was parsed yet never makes two messages differ: every two are equal.
#[derive(Debug, Clone, Default)]
struct LazyPayload(OnceLock<Payload>);

impl PartialEq for LazyPayload {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Message {
    /// The idempotency key: the SNS `MessageId` when there was an envelope,
    /// else the SQS message id. Copies of one published event share it
    /// (SNS fan-out and SQS redelivery keep the id), so it names the lock and
    /// the completion record.
    pub fn key(&self) -> &str {
        self.sns_message_id
            .as_deref()
            .unwrap_or(&self.sqs_message_id)
    }

    /// [`body`](Self::body) as JSON when it parses, else as text. Parsed on
    /// the first call and kept.
    ///
    /// ```
    /// # use iniesta_core::{parse, AttributeValue, DeliveryMode, ParseConfig, Payload, ReceivedMessage, ReceiptHandle};
    /// # let raw = ReceivedMessage {
    /// #     sqs_message_id: "m-1".into(),
    /// #     receipt_handle: ReceiptHandle::new("h"),
    /// #     body: r#"{"user_id": 7}"#.into(),
    /// #     attributes: Default::default(),
    /// #     message_attributes: [("iniesta_pass".to_owned(), AttributeValue::String("UserCreated.users".into()))].into(),
    /// # };
    /// # let config = ParseConfig { mode: DeliveryMode::Raw, event_key: "iniesta_pass".into(), topic_arn: None };
    /// let message = parse(&raw, &config).unwrap();
    /// match message.payload() {
    ///     Payload::Json(value) => assert_eq!(value["user_id"], 7),
    ///     Payload::Text(text) => panic!("not JSON: {text}"),
    /// }
    /// ```
    pub fn payload(&self) -> &Payload {
        self.payload
            .0
            .get_or_init(|| Payload::from_text(&self.body))
    }

    /// Decodes [`body`](Self::body) as JSON into `T`, without building a
    /// `serde_json::Value` first: the cheapest way for a handler to read a
    /// typed event.
    ///
    /// ```
    /// # use iniesta_core::{parse, AttributeValue, DeliveryMode, ParseConfig, ReceivedMessage, ReceiptHandle};
    /// # let raw = ReceivedMessage {
    /// #     sqs_message_id: "m-1".into(),
    /// #     receipt_handle: ReceiptHandle::new("h"),
    /// #     body: r#"{"user_id": 7, "name": "Ada"}"#.into(),
    /// #     attributes: Default::default(),
    /// #     message_attributes: [("iniesta_pass".to_owned(), AttributeValue::String("UserCreated.users".into()))].into(),
    /// # };
    /// # let config = ParseConfig { mode: DeliveryMode::Raw, event_key: "iniesta_pass".into(), topic_arn: None };
    /// #[derive(serde::Deserialize)]
    /// struct UserCreated {
    ///     user_id: u64,
    ///     name: String,
    /// }
    ///
    /// let message = parse(&raw, &config).unwrap();
    /// let event: UserCreated = message.json().unwrap();
    /// assert_eq!((event.user_id, event.name.as_str()), (7, "Ada"));
    /// ```
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.body)
    }

    /// The `version` attribute as a number, when present (the original
    /// publisher sets it, default 1).
    pub fn version(&self) -> Option<f64> {
        self.attributes
            .get("version")
            .and_then(AttributeValue::as_str)
            .and_then(|v| v.parse().ok())
    }
}

/// A [`Message`] from the parts parsing found, its payload not parsed yet.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble(
    event: String,
    body: String,
    sqs_message_id: String,
    sns_message_id: Option<String>,
    topic_arn: Option<String>,
    attributes: Attributes,
    system: &SystemAttributes,
) -> Message {
    Message {
        event,
        body,
        sqs_message_id,
        sns_message_id,
        topic_arn,
        attributes,
        receive_count: system.receive_count.unwrap_or(1),
        sent_timestamp: system.sent_timestamp,
        first_receive_timestamp: system.first_receive_timestamp,
        group_id: system.message_group_id().map(str::to_owned),
        payload: LazyPayload::default(),
    }
}

/// A message shared between the machine, the driver and the handler.
pub type SharedMessage = Arc<Message>;
