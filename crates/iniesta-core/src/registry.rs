//! Handlers and the registry that routes events to them.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::message::SharedMessage;
use crate::ports::LockToken;

/// The error a handler returns. Anything that converts into it works:
/// `std::io::Error`, `String`, `&str`, `anyhow::Error`, ….
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a handler gets: the message, and the lock token under which it runs.
///
/// The token lets a handler make its own writes conditional (fencing): store
/// it beside what it writes and refuse writes carrying an older token.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The parsed message. [`Message::key`](crate::Message::key) is the
    /// idempotency key.
    pub message: SharedMessage,
    /// The token of the lock held for this dispatch.
    pub token: LockToken,
}

/// Handles the events it is registered for.
///
/// Returning `Err` (or panicking) leaves the message in the queue for
/// redelivery; returning `Ok` completes it and deletes it.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery.
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError>;
}

/// A [`Handler`] made of an async closure; built by
/// [`HandlerRegistry::on`] and friends.
pub struct FnHandler<F>(pub F);

#[async_trait]
impl<F, Fut, E> Handler for FnHandler<F>
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<HandlerError> + 'static,
{
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        (self.0)(delivery).await.map_err(Into::into)
    }
}

/// A [`Handler`] made of a plain (blocking-free, synchronous) closure.
pub struct SyncFnHandler<F>(pub F);

#[async_trait]
impl<F, E> Handler for SyncFnHandler<F>
where
    F: Fn(Delivery) -> Result<(), E> + Send + Sync + 'static,
    E: Into<HandlerError> + 'static,
{
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        (self.0)(delivery).map_err(Into::into)
    }
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The event has a handler already.
    #[error("event {0:?} already has a handler")]
    Duplicate(String),
    /// A default handler is registered already.
    #[error("a default handler is already registered")]
    DuplicateDefault,
    /// An empty event name, or an empty list of events.
    #[error("a handler needs at least one non-empty event name")]
    NoEvent,
}

/// Where an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To the handler registered for the event.
    Event,
    /// To the default handler.
    Default,
}

/// Maps event names to handlers, with an optional default handler for events
/// that have none (as in the original: no handler and no default is an error,
/// and the message stays in the queue).
///
/// ```
/// use iniesta_core::{HandlerRegistry, Delivery};
///
/// let mut handlers = HandlerRegistry::new();
/// handlers
///     .on("UserCreated.users", |d: Delivery| async move {
///         println!("welcome {}", d.message.body);
///         Ok::<_, std::io::Error>(())
///     })
///     .unwrap();
/// handlers
///     .on_sync(["OrderPlaced.orders", "OrderPaid.orders"], |_d| Ok::<_, String>(()))
///     .unwrap();
/// assert!(handlers.on("UserCreated.users", |_d| async { Ok::<_, String>(()) }).is_err());
/// assert!(handlers.get("OrderPaid.orders").is_some());
/// assert!(handlers.get("Unknown.x").is_none());
/// ```
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    /// Fx-hashed: the app chooses the names, so lookups of any name cannot
    /// be slowed by collisions, and a lookup per message stays cheap.
    by_event: rustc_hash::FxHashMap<String, Arc<dyn Handler>>,
    default: Option<Arc<dyn Handler>>,
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut events: Vec<_> = self.by_event.keys().collect();
        events.sort();
        f.debug_struct("HandlerRegistry")
            .field("events", &events)
            .field("default", &self.default.is_some())
            .finish()
    }
}

/// One event name or a list of them.
pub trait Events {
    /// The names.
    fn into_events(self) -> Vec<String>;
}

impl Events for &str {
    fn into_events(self) -> Vec<String> {
        vec![self.to_owned()]
    }
}
impl Events for String {
    fn into_events(self) -> Vec<String> {
        vec![self]
    }
}
impl<S: AsRef<str>> Events for Vec<S> {
    fn into_events(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_owned()).collect()
    }
}
impl<S: AsRef<str>, const N: usize> Events for [S; N] {
    fn into_events(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_owned()).collect()
    }
}
impl<S: AsRef<str>> Events for &[S] {
    fn into_events(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_owned()).collect()
    }
}

impl HandlerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for one event or a list of events. All or
    /// nothing: if any event is taken (or repeated in the list), nothing is
    /// registered.
    pub fn add(
        &mut self,
        events: impl Events,
        handler: impl Handler,
    ) -> Result<&mut Self, RegistryError> {
        self.add_arc(events, Arc::new(handler))
    }

    /// [`add`](Self::add) for a handler that is already shared.
    pub fn add_arc(
        &mut self,
        events: impl Events,
        handler: Arc<dyn Handler>,
    ) -> Result<&mut Self, RegistryError> {
        let events = events.into_events();
        if events.is_empty() || events.iter().any(String::is_empty) {
            return Err(RegistryError::NoEvent);
        }
        for (i, e) in events.iter().enumerate() {
            if self.by_event.contains_key(e) || events[..i].contains(e) {
                return Err(RegistryError::Duplicate(e.clone()));
            }
        }
        for e in events {
            self.by_event.insert(e, handler.clone());
        }
        Ok(self)
    }

    /// Registers an async closure for one event or a list of events.
    pub fn on<F, Fut, E>(&mut self, events: impl Events, f: F) -> Result<&mut Self, RegistryError>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<HandlerError> + 'static,
    {
        self.add(events, FnHandler(f))
    }

    /// Registers a synchronous closure for one event or a list of events. It
    /// runs on the consumer's executor: keep it short and non-blocking.
    pub fn on_sync<F, E>(&mut self, events: impl Events, f: F) -> Result<&mut Self, RegistryError>
    where
        F: Fn(Delivery) -> Result<(), E> + Send + Sync + 'static,
        E: Into<HandlerError> + 'static,
    {
        self.add(events, SyncFnHandler(f))
    }

    /// Registers the default handler, for events without one of their own.
    pub fn set_default(&mut self, handler: impl Handler) -> Result<&mut Self, RegistryError> {
        if self.default.is_some() {
            return Err(RegistryError::DuplicateDefault);
        }
        self.default = Some(Arc::new(handler));
        Ok(self)
    }

    /// Registers an async closure as the default handler.
    pub fn on_default<F, Fut, E>(&mut self, f: F) -> Result<&mut Self, RegistryError>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<HandlerError> + 'static,
    {
        self.set_default(FnHandler(f))
    }

    /// The handler for `event`: its own, else the default.
    pub fn get(&self, event: &str) -> Option<&Arc<dyn Handler>> {
        self.by_event.get(event).or(self.default.as_ref())
    }

    /// Where `event` goes, if anywhere.
    pub fn route(&self, event: &str) -> Option<Route> {
        if self.by_event.contains_key(event) {
            Some(Route::Event)
        } else if self.default.is_some() {
            Some(Route::Default)
        } else {
            None
        }
    }

    /// The events with a handler of their own, sorted.
    pub fn events(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_event.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Whether a default handler is registered.
    pub fn has_default(&self) -> bool {
        self.default.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_d: Delivery) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn list_registration_is_all_or_nothing() {
        let mut r = HandlerRegistry::new();
        r.on_sync("B.s", ok).unwrap();
        assert_eq!(
            r.on_sync(["A.s", "B.s"], ok).unwrap_err(),
            RegistryError::Duplicate("B.s".into())
        );
        assert!(r.get("A.s").is_none(), "A.s must not be registered");
        assert_eq!(
            r.on_sync(["C.s", "C.s"], ok).unwrap_err(),
            RegistryError::Duplicate("C.s".into())
        );
        assert!(r.get("C.s").is_none());
        assert_eq!(
            r.on_sync(Vec::<String>::new(), ok).unwrap_err(),
            RegistryError::NoEvent
        );
        assert_eq!(r.on_sync("", ok).unwrap_err(), RegistryError::NoEvent);
    }

    #[test]
    fn default_handler_routing() {
        let mut r = HandlerRegistry::new();
        r.on_sync("A.s", ok).unwrap();
        assert_eq!(r.route("A.s"), Some(Route::Event));
        assert_eq!(r.route("Z.s"), None);
        r.on_default(|_d| async { Ok::<_, String>(()) }).unwrap();
        assert_eq!(r.route("Z.s"), Some(Route::Default));
        assert!(r.set_default(SyncFnHandler(ok)).is_err());
        assert_eq!(r.events(), vec!["A.s"]);
    }
}
