//! A span per message around each handler, so everything a handler logs
//! names its message.

use std::sync::Arc;

use async_trait::async_trait;
use iniesta_core::{Delivery, Handler, HandlerError, HandlerRegistry};
use tracing::Instrument;

use super::LOG_TARGET;

/// A handler that runs inside a span describing its message.
struct Traced {
    inner: Arc<dyn Handler>,
}

#[async_trait]
impl Handler for Traced {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let m = &delivery.message;
        let span = tracing::info_span!(
            target: LOG_TARGET,
            "iniesta.message",
            event = %m.event,
            message_id = %m.sqs_message_id,
            key = %m.key(),
            receive_count = m.receive_count,
        );
        self.inner.handle(delivery).instrument(span).await
    }
}

/// The same routes as `registry`, each handler (and the default handler)
/// wrapped so it runs inside an `iniesta.message` span with the fields
/// `event`, `message_id` (SQS), `key` (idempotency key) and
/// `receive_count`. Everything a handler logs then carries them.
///
/// ```
/// use iniesta_core::HandlerRegistry;
///
/// let mut handlers = HandlerRegistry::new();
/// handlers.on("A.svc", |_d| async { Ok::<_, String>(()) }).unwrap();
/// handlers.on_default(|_d| async { Ok::<_, String>(()) }).unwrap();
/// let traced = iniesta_tokio::observe::traced_handlers(&handlers);
/// assert_eq!(traced.events(), vec!["A.svc"]);
/// assert!(traced.has_default());
/// ```
pub fn traced_handlers(registry: &HandlerRegistry) -> HandlerRegistry {
    registry.map_handlers(|h| Arc::new(Traced { inner: h.clone() }))
}
