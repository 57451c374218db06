//! Deliveries built by hand, to test a handler without a consumer.

use std::sync::Arc;

use super::{Delivery, StateMap};
use crate::lock_lost::LockLost;
use crate::message::{assemble, AttributeValue, Attributes, SystemAttributes};
use crate::ports::LockToken;

/// Builds a [`Delivery`] for a test: an event, a body, attributes, a
/// receive count; ids and the lock token are made up unless given.
///
/// ```
/// use iniesta_core::handler::{DeliveryBuilder, HandlerError, Retry};
/// use iniesta_core::HandlerRegistry;
///
/// let mut handlers = HandlerRegistry::new();
/// handlers
///     .on("UserCreated.users", |d: iniesta_core::Delivery| async move {
///         if d.message.receive_count > 2 {
///             return Err(HandlerError::permanent("gave up"));
///         }
///         Ok(())
///     })
///     .unwrap();
///
/// let delivery = DeliveryBuilder::new("UserCreated.users")
///     .json(&serde_json::json!({"id": 7}))
///     .unwrap()
///     .receive_count(3)
///     .build();
/// # futures::executor::block_on(async {
/// let outcome = handlers.run(delivery).await;
/// assert_eq!(outcome.unwrap_err().retry(), Retry::Never);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct DeliveryBuilder {
    event: String,
    body: String,
    sqs_message_id: String,
    sns_message_id: Option<String>,
    topic_arn: Option<String>,
    attributes: Attributes,
    system: SystemAttributes,
    token: LockToken,
    state: StateMap,
}

impl DeliveryBuilder {
    /// A delivery of `event` with an empty JSON object as its body,
    /// received once, as if through an SNS envelope (it has an SNS id).
    pub fn new(event: impl Into<String>) -> Self {
        let event = event.into();
        let mut attributes = Attributes::new();
        attributes
            .to_mut()
            .insert("iniesta_pass".into(), AttributeValue::String(event.clone()));
        DeliveryBuilder {
            event,
            body: "{}".into(),
            sqs_message_id: "test-sqs-message".into(),
            sns_message_id: Some("test-sns-message".into()),
            topic_arn: None,
            attributes,
            system: SystemAttributes {
                receive_count: Some(1),
                ..SystemAttributes::default()
            },
            token: LockToken::new("test-lock-token"),
            state: StateMap::new(),
        }
    }

    /// The body, as text.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// The body, `value` encoded as JSON.
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> serde_json::Result<Self> {
        self.body = serde_json::to_string(value)?;
        Ok(self)
    }

    /// `ApproximateReceiveCount`: this is delivery number `n`.
    pub fn receive_count(mut self, n: u32) -> Self {
        self.system.receive_count = Some(n);
        self
    }

    /// `SentTimestamp`, in ms since the Unix epoch.
    pub fn sent_timestamp(mut self, ms: u64) -> Self {
        self.system.sent_timestamp = Some(ms);
        self
    }

    /// A message attribute (string-valued).
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes
            .to_mut()
            .insert(name.into(), AttributeValue::String(value.into()));
        self
    }

    /// The SQS message id.
    pub fn sqs_message_id(mut self, id: impl Into<String>) -> Self {
        self.sqs_message_id = id.into();
        self
    }

    /// The SNS message id, the idempotency key; `None` for a raw delivery
    /// (the key is then the SQS id).
    pub fn sns_message_id(mut self, id: Option<String>) -> Self {
        self.sns_message_id = id;
        self
    }

    /// The topic the message came from.
    pub fn topic_arn(mut self, arn: impl Into<String>) -> Self {
        self.topic_arn = Some(arn.into());
        self
    }

    /// The lock token the handler runs under.
    pub fn token(mut self, token: LockToken) -> Self {
        self.token = token;
        self
    }

    /// State for the [`State`](super::State) extractor. Running the
    /// delivery through [`HandlerRegistry::run`](crate::HandlerRegistry::run)
    /// gives the registry's state instead.
    pub fn state<S: Clone + Send + Sync + 'static>(mut self, value: S) -> Self {
        self.state.insert(value);
        self
    }

    /// The delivery.
    pub fn build(self) -> Delivery {
        let message = assemble(
            self.event,
            self.body,
            self.sqs_message_id,
            self.sns_message_id,
            self.topic_arn,
            self.attributes,
            &self.system,
        );
        Delivery {
            message: Arc::new(message),
            token: self.token,
            lock_lost: LockLost::new(),
            state: self.state,
        }
    }
}
