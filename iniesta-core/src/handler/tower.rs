//! Tower interop (feature `tower`): a [`Service`] as a handler, a handler as
//! a [`Service`], and [`Layer`]s around every handler of a registry.
//!
//! - [`ServiceHandler`] (and [`HandlerRegistry::service`]) runs any
//!   `Service<Delivery, Response = ()>` as a handler.
//! - [`HandlerService`] is a handler seen as a `Service<Delivery>`, so that
//!   tower's middleware can go around it.
//! - [`HandlerRegistry::layer`] wraps every route, the default handler
//!   included, in a layer: a timeout, a concurrency or rate limit, a
//!   `MapRequest`, or middleware of your own.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use iniesta_core::handler::DeliveryBuilder;
//! use iniesta_core::{Delivery, HandlerRegistry};
//! use tower::limit::ConcurrencyLimitLayer;
//! use tower::util::MapRequestLayer;
//!
//! let mut handlers = HandlerRegistry::new();
//! handlers.on("UserCreated.users", || async {}).unwrap();
//! handlers.on_default(|| async {}).unwrap();
//!
//! let seen = Arc::new(AtomicUsize::new(0));
//! let count = seen.clone();
//! let handlers = handlers
//!     .layer(ConcurrencyLimitLayer::new(8))
//!     .layer(MapRequestLayer::new(move |d: Delivery| {
//!         count.fetch_add(1, Ordering::SeqCst);
//!         d
//!     }));
//!
//! # futures::executor::block_on(async {
//! handlers.run(DeliveryBuilder::new("UserCreated.users").build()).await.unwrap();
//! handlers.run(DeliveryBuilder::new("Other.event").build()).await.unwrap();
//! # });
//! assert_eq!(seen.load(Ordering::SeqCst), 2);
//! ```
//!
//! # One service per route
//!
//! A layer is applied to each route's handler on its own (the default
//! handler too), so what a layer keeps in its service is kept per route:
//! `ConcurrencyLimitLayer::new(4)` lets four deliveries of *each* route run
//! at once. For one limit shared by every route, give the routes one
//! semaphore (`tower::limit::GlobalConcurrencyLimitLayer`). Each
//! [`layer`](HandlerRegistry::layer) call goes around the handlers as they
//! are then, so a later call is the outer one: in
//! `.layer(TimeoutLayer::new(t)).layer(ConcurrencyLimitLayer::new(1))` a
//! delivery first waits for its turn and then gets `t` to run.
//!
//! # A service is called under a lock
//!
//! A [`Service`] takes `&mut self` in `poll_ready` and `call`, and many are
//! not `Clone` (tower's `RateLimit` is not), while a handler is shared by
//! every delivery that runs at the same time. So a service handler holds
//! its service in a [`futures::lock::Mutex`] (runtime-agnostic, and
//! waiting for it does not block a thread): a delivery takes the lock,
//! waits for `poll_ready`, makes the call, releases the lock, and only then
//! awaits the response. The service's own view of readiness is therefore
//! respected for every call (the permits of a `ConcurrencyLimit`, the
//! window of a `RateLimit`), and responses still run concurrently: the lock
//! is held only until the call is made. A delivery waiting for readiness
//! holds its event lock and counts against `INIESTA_HANDLER_TIMEOUT`.
//!
//! # Errors through layers
//!
//! Tower's middleware needs errors it can box (`Into<BoxError>`), and
//! [`HandlerError`] on purpose is not a `std::error::Error`. So
//! [`HandlerService`] fails with a [`HandlerServiceError`], an
//! `std::error::Error` that carries the handler's `HandlerError` whole.
//! Back out of the layers, [`HandlerError::from_service_error`] (which
//! [`ServiceHandler`] and [`HandlerRegistry::layer`] apply) follows this
//! rule:
//!
//! 1. an error that already chose a [`Retry`] other than the default
//!    (`HandlerError::permanent`, `HandlerError::retry_after`) keeps it;
//! 2. a `HandlerServiceError` (boxed or not) becomes the handler's own
//!    `HandlerError` again, with its retry kind: a permanent failure stays
//!    permanent through any layer that passes errors on;
//! 3. a layer's own error that wraps one (found in its
//!    [`source`](std::error::Error::source) chain) is kept, for its context,
//!    with the retry kind of the handler's error;
//! 4. any other error (tower's `Elapsed` when a `Timeout` fires, a load
//!    shedder's `Overloaded`, a limit's own failure) retries after the
//!    configured backoff, as any error converted with `?` does.

#![cfg_attr(docsrs, doc(cfg(feature = "tower")))]

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::{poll_fn, BoxFuture};
use futures::lock::Mutex;

pub use tower_layer::Layer;
pub use tower_service::Service;

use super::{Delivery, Handler, HandlerError, Retry, StateNeed};
use crate::registry::{Events, HandlerRegistry, RegistryError};

/// A [`Service`] that handles deliveries, as a [`Handler`].
///
/// The service is called under a lock, released once the call is made (see
/// [the module docs](self#a-service-is-called-under-a-lock)); its errors
/// become [`HandlerError`]s by [`HandlerError::from_service_error`].
///
/// ```
/// use iniesta_core::handler::tower::ServiceHandler;
/// use iniesta_core::handler::{DeliveryBuilder, HandlerError, Retry};
/// use iniesta_core::{Delivery, HandlerRegistry};
///
/// let svc = tower::service_fn(|d: Delivery| async move {
///     match d.message.receive_count {
///         0..=3 => Ok(()),
///         _ => Err(HandlerError::permanent("gave up")),
///     }
/// });
/// let mut handlers = HandlerRegistry::new();
/// handlers.add("Job.svc", ServiceHandler::new(svc)).unwrap();
///
/// # futures::executor::block_on(async {
/// let e = handlers
///     .run(DeliveryBuilder::new("Job.svc").receive_count(5).build())
///     .await
///     .unwrap_err();
/// assert_eq!(e.retry(), Retry::Never);
/// # });
/// ```
pub struct ServiceHandler<S> {
    service: Mutex<S>,
}

impl<S> ServiceHandler<S> {
    /// `service` as a handler.
    pub fn new(service: S) -> Self {
        ServiceHandler {
            service: Mutex::new(service),
        }
    }

    /// The service back.
    pub fn into_inner(self) -> S {
        self.service.into_inner()
    }
}

impl<S> fmt::Debug for ServiceHandler<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceHandler")
            .field("service", &std::any::type_name::<S>())
            .finish()
    }
}

impl<S> ServiceHandler<S>
where
    S: Service<Delivery, Response = ()> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<HandlerError>,
{
    /// Waits for the service under the lock, calls it, releases the lock,
    /// then awaits the response.
    async fn call(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let response = {
            let mut service = self.service.lock().await;
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(HandlerError::from_service_error)?;
            service.call(delivery)
        };
        response.await.map_err(HandlerError::from_service_error)
    }
}

#[async_trait]
impl<S> Handler for ServiceHandler<S>
where
    S: Service<Delivery, Response = ()> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<HandlerError>,
{
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        self.call(delivery).await
    }
}

/// A [`Handler`] as a [`Service`], for tower's middleware to go around:
/// cheap to clone, always ready, failing with a [`HandlerServiceError`].
#[derive(Clone)]
pub struct HandlerService {
    handler: Arc<dyn Handler>,
}

impl HandlerService {
    /// `handler` as a service.
    pub fn new(handler: Arc<dyn Handler>) -> Self {
        HandlerService { handler }
    }

    /// The handler it calls.
    pub fn handler(&self) -> &Arc<dyn Handler> {
        &self.handler
    }
}

impl fmt::Debug for HandlerService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerService").finish_non_exhaustive()
    }
}

impl Service<Delivery> for HandlerService {
    type Response = ();
    type Error = HandlerServiceError;
    type Future = BoxFuture<'static, Result<(), HandlerServiceError>>;

    /// Always ready: a handler takes any number of deliveries at once.
    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, delivery: Delivery) -> Self::Future {
        let handler = self.handler.clone();
        Box::pin(async move { handler.handle(delivery).await.map_err(HandlerServiceError) })
    }
}

/// A handler's [`HandlerError`] as a `std::error::Error`, so that tower's
/// middleware can box it and pass it on; it keeps the retry kind, which
/// [`HandlerError::from_service_error`] gives back (see [the
/// rule](self#errors-through-layers)).
///
/// It reads as the handler's error: its text is the error's text, and its
/// [`source`](std::error::Error::source) is the error's source.
#[derive(Debug)]
pub struct HandlerServiceError(pub HandlerError);

impl HandlerServiceError {
    /// Whether and when the handler asked to be tried again.
    pub fn retry(&self) -> Retry {
        self.0.retry()
    }

    /// The handler's error.
    pub fn into_inner(self) -> HandlerError {
        self.0
    }
}

impl From<HandlerError> for HandlerServiceError {
    fn from(error: HandlerError) -> Self {
        HandlerServiceError(error)
    }
}

impl fmt::Display for HandlerServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0.error(), f)
    }
}

impl std::error::Error for HandlerServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.error().source()
    }
}

impl HandlerError {
    /// The error of a service (a [`ServiceHandler`]'s, or a layer's around
    /// handlers) as a handler's error, its retry kind restored from a
    /// [`HandlerServiceError`] inside it: see [the
    /// rule](self#errors-through-layers). Converting such an error with `?`
    /// or `into()` instead would retry it after the backoff, whatever the
    /// handler asked.
    ///
    /// ```
    /// use iniesta_core::handler::tower::HandlerServiceError;
    /// use iniesta_core::handler::{BoxError, HandlerError, Retry};
    ///
    /// // What a layer such as tower's Timeout passes on: the handler's error, boxed.
    /// let boxed: BoxError = HandlerServiceError(HandlerError::permanent("no such order")).into();
    /// let e = HandlerError::from_service_error(boxed);
    /// assert_eq!(e.retry(), Retry::Never);
    /// assert_eq!(e.to_string(), "no such order");
    ///
    /// let e = HandlerError::from_service_error("request timed out");
    /// assert_eq!(e.retry(), Retry::Backoff);
    /// ```
    pub fn from_service_error(error: impl Into<HandlerError>) -> Self {
        let error: HandlerError = error.into();
        if error.retry() != Retry::Backoff {
            return error;
        }
        match error.into_error().downcast::<HandlerServiceError>() {
            Ok(inner) => inner.into_inner(),
            Err(other) => {
                let retry = retry_in_chain(&*other).unwrap_or(Retry::Backoff);
                HandlerError::new(other).with_retry(retry)
            }
        }
    }
}

/// The retry kind of the first [`HandlerServiceError`] in `error`'s source
/// chain, if there is one.
fn retry_in_chain(error: &(dyn std::error::Error + 'static)) -> Option<Retry> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<HandlerServiceError>() {
            return Some(found.retry());
        }
        next = e.source();
    }
    None
}

/// A handler wrapped in a layer: the layered service, run as a
/// [`ServiceHandler`], and the handler inside, whose state needs it
/// forwards.
struct Layered<S> {
    service: ServiceHandler<S>,
    inner: Arc<dyn Handler>,
}

#[async_trait]
impl<S> Handler for Layered<S>
where
    S: Service<Delivery, Response = ()> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<HandlerError>,
{
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        self.service.call(delivery).await
    }

    fn state_needs(&self, needs: &mut Vec<StateNeed>) {
        self.inner.state_needs(needs)
    }
}

/// Registration of services and layers (feature `tower`).
impl HandlerRegistry {
    /// Registers a [`Service`] for one event or a list of events, as a
    /// [`ServiceHandler`].
    ///
    /// ```
    /// use iniesta_core::handler::DeliveryBuilder;
    /// use iniesta_core::{Delivery, HandlerRegistry};
    ///
    /// let mut handlers = HandlerRegistry::new();
    /// handlers
    ///     .service("Ping.svc", tower::service_fn(|_d: Delivery| async { Ok::<_, std::io::Error>(()) }))
    ///     .unwrap();
    /// # futures::executor::block_on(async {
    /// handlers.run(DeliveryBuilder::new("Ping.svc").build()).await.unwrap();
    /// # });
    /// ```
    pub fn service<S>(
        &mut self,
        events: impl Events,
        service: S,
    ) -> Result<&mut Self, RegistryError>
    where
        S: Service<Delivery, Response = ()> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<HandlerError>,
    {
        self.add(events, ServiceHandler::new(service))
    }

    /// The same routes, each handler (the default too) wrapped in `layer`,
    /// with the same ids, state and state needs. `layer` makes one service
    /// per route, and a later call wraps an earlier one: see [the module
    /// docs](self#one-service-per-route). The layered services' errors
    /// become handler errors by [`HandlerError::from_service_error`], so a
    /// permanent failure stays permanent and a timeout retries.
    pub fn layer<L>(&self, layer: L) -> HandlerRegistry
    where
        L: Layer<HandlerService>,
        L::Service: Service<Delivery, Response = ()> + Send + 'static,
        <L::Service as Service<Delivery>>::Future: Send + 'static,
        <L::Service as Service<Delivery>>::Error: Into<HandlerError>,
    {
        self.map_handlers(|inner| {
            let service = layer.layer(HandlerService::new(inner.clone()));
            Arc::new(Layered {
                service: ServiceHandler::new(service),
                inner: inner.clone(),
            })
        })
    }
}

#[cfg(test)]
#[path = "tower_tests.rs"]
mod tests;
