//! A span per message around each handler, so everything a handler logs
//! names its message: [`traced_handlers`] for a registry, and (feature
//! `tower`) [`TraceLayer`], the same span as a tower layer.

use std::sync::Arc;

use async_trait::async_trait;
use iniesta_core::handler::StateNeed;
use iniesta_core::{Delivery, Handler, HandlerError, HandlerRegistry};
use tracing::Instrument;

use super::LOG_TARGET;

/// The `iniesta.message` span of one delivery: the one place its name and
/// fields are written.
fn message_span(delivery: &Delivery) -> tracing::Span {
    let m = &delivery.message;
    tracing::info_span!(
        target: LOG_TARGET,
        "iniesta.message",
        event = %m.event,
        message_id = %m.sqs_message_id,
        key = %m.key(),
        receive_count = m.receive_count,
    )
}

/// A handler that runs inside a span describing its message.
struct Traced {
    inner: Arc<dyn Handler>,
}

#[async_trait]
impl Handler for Traced {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let span = message_span(&delivery);
        self.inner.handle(delivery).instrument(span).await
    }

    fn state_needs(&self, needs: &mut Vec<StateNeed>) {
        self.inner.state_needs(needs)
    }
}

/// The same routes as `registry`, each handler (and the default handler)
/// wrapped so it runs inside an `iniesta.message` span with the fields
/// `event`, `message_id` (SQS), `key` (idempotency key) and
/// `receive_count`. Everything a handler logs then carries them. A wrapped
/// handler still names the state it reads.
///
/// ```
/// use iniesta_core::handler::State;
/// use iniesta_core::HandlerRegistry;
///
/// let mut handlers = HandlerRegistry::new();
/// handlers.on("A.svc", |State(_n): State<u64>| async {}).unwrap();
/// handlers.on_default(|| async {}).unwrap();
/// let traced = iniesta_tokio::observe::traced_handlers(&handlers);
/// assert_eq!(traced.events(), vec!["A.svc"]);
/// assert!(traced.has_default());
///
/// let mut needs = Vec::new();
/// traced.get("A.svc").unwrap().state_needs(&mut needs);
/// assert_eq!(needs.len(), 1);
/// ```
pub fn traced_handlers(registry: &HandlerRegistry) -> HandlerRegistry {
    registry.map_handlers(|h| Arc::new(Traced { inner: h.clone() }))
}

#[cfg(feature = "tower")]
pub use self::layer::{TraceLayer, TraceService};

#[cfg(feature = "tower")]
mod layer {
    use std::task::{Context, Poll};

    use iniesta_core::handler::tower::{Layer, Service};
    use iniesta_core::Delivery;
    use tracing::instrument::Instrumented;
    use tracing::Instrument;

    /// The span of [`traced_handlers`](super::traced_handlers) as a tower
    /// [`Layer`] (feature `tower`): each call runs inside an
    /// `iniesta.message` span with the fields `event`, `message_id`, `key`
    /// and `receive_count`.
    ///
    /// The [`Iniesta`](crate::Iniesta) builder already puts this span
    /// around every handler (unless `.tracing(false)`), outside the layers
    /// given with `.layer(..)`; this layer is for a registry run without
    /// the builder, or for a span inside other layers.
    ///
    /// ```
    /// use iniesta_core::handler::DeliveryBuilder;
    /// use iniesta_core::HandlerRegistry;
    /// use iniesta_tokio::observe::TraceLayer;
    ///
    /// let mut handlers = HandlerRegistry::new();
    /// handlers.on("A.svc", || async { tracing::info!("inside the message's span") }).unwrap();
    /// let traced = handlers.layer(TraceLayer::new());
    /// # futures::executor::block_on(async {
    /// traced.run(DeliveryBuilder::new("A.svc").build()).await.unwrap();
    /// # });
    /// ```
    #[derive(Debug, Clone, Copy, Default)]
    pub struct TraceLayer {
        _private: (),
    }

    impl TraceLayer {
        /// The layer.
        pub fn new() -> Self {
            TraceLayer::default()
        }
    }

    impl<S> Layer<S> for TraceLayer {
        type Service = TraceService<S>;

        fn layer(&self, inner: S) -> TraceService<S> {
            TraceService { inner }
        }
    }

    /// A service whose calls run inside their message's span: what
    /// [`TraceLayer`] makes.
    #[derive(Debug, Clone)]
    pub struct TraceService<S> {
        inner: S,
    }

    impl<S: Service<Delivery>> Service<Delivery> for TraceService<S> {
        type Response = S::Response;
        type Error = S::Error;
        type Future = Instrumented<S::Future>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, delivery: Delivery) -> Self::Future {
            let span = super::message_span(&delivery);
            // The call itself (not only its future) runs in the span, as
            // a service may do work before it returns the future.
            let future = span.in_scope(|| self.inner.call(delivery));
            future.instrument(span)
        }
    }
}
