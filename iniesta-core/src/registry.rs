//! Handlers and the registry that routes events to them.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::filters::{Filter, FilterError};
use crate::lock_lost::LockLost;
use crate::message::SharedMessage;
use crate::ports::LockToken;

/// The error a handler returns. Anything that converts into it works:
/// `std::io::Error`, `String`, `&str`, `anyhow::Error`, ….
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a handler gets: the message, the lock token under which it runs,
/// and a signal that fires if that lock is lost.
///
/// The lock keeps other consumers of this queue from running the same event
/// while the handler runs, for as long as heartbeats keep extending it. If
/// the lock is lost (see [`LockLost`]) the handler is aborted and another
/// consumer may run the event; a handler that writes elsewhere SHOULD make
/// those writes conditional on [`Message::key`](crate::Message::key) (for
/// example an insert that fails when the key is already there).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The parsed message. [`Message::key`](crate::Message::key) is the
    /// idempotency key.
    pub message: SharedMessage,
    /// The token of the lock held for this dispatch.
    pub token: LockToken,
    /// Fires when the lock is lost while the handler runs.
    pub lock_lost: LockLost,
}

impl Delivery {
    /// A delivery of `message` under the lock held with `token`, with a
    /// signal that has not fired.
    pub fn new(message: SharedMessage, token: LockToken) -> Self {
        Delivery {
            message,
            token,
            lock_lost: LockLost::new(),
        }
    }
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
    /// A name that is neither an event (`Event.svc`) nor a prefix
    /// (`Event.*`): white space, or a `*` anywhere but after a final dot.
    #[error("cannot route {name:?}: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// Why it cannot be a route.
        reason: FilterError,
    },
}

/// Where an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// To the handler registered for the event.
    Event,
    /// To the handler registered for a prefix of it (`Event.*`).
    Prefix,
    /// To the default handler.
    Default,
}

/// Names one handler of a [`HandlerRegistry`]: its place in the order the
/// handlers were registered. The machine routes to it; the driver, which
/// owns the handler objects, finds the handler with
/// [`HandlerRegistry::handler`] in constant time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandlerId(pub u32);

impl HandlerId {
    /// The handler's place in its registry.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The routes of a [`HandlerRegistry`] without its handlers: event names
/// to [`HandlerId`]s. Pure data, so the state machine can route a message
/// without holding (or calling) any handler.
///
/// Names route the way consumer filters match: `"Event.svc"` takes that
/// event, `"Event.*"` every event that starts with `"Event."`. An event's own
/// route wins over a prefix, and a longer prefix over a shorter one; an
/// event without either goes to the default handler, if there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// Fx-hashed: the app chooses the names, so lookups of any name cannot
    /// be slowed by collisions, and a lookup per message stays cheap.
    by_event: rustc_hash::FxHashMap<String, HandlerId>,
    /// `(prefix without its `*`, handler)`, longest prefix first.
    by_prefix: Vec<(String, HandlerId)>,
    default: Option<HandlerId>,
}

impl Routes {
    /// Where `event` goes: the handler and how it was found. The one place
    /// the routing rule is written.
    pub fn lookup(&self, event: &str) -> Option<(HandlerId, Route)> {
        if let Some(&h) = self.by_event.get(event) {
            return Some((h, Route::Event));
        }
        if let Some(&(_, h)) = self
            .by_prefix
            .iter()
            .find(|(p, _)| event.starts_with(p.as_str()))
        {
            return Some((h, Route::Prefix));
        }
        self.default.map(|h| (h, Route::Default))
    }

    /// The names with a handler of their own (events, and prefixes as
    /// `Event.*`), sorted.
    pub fn events(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_event
            .keys()
            .cloned()
            .chain(self.by_prefix.iter().map(|(p, _)| format!("{p}*")))
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether events without a route of their own go to a default handler.
    pub fn has_default(&self) -> bool {
        self.default.is_some()
    }

    /// Routes every name of `events` to `handler`. All or nothing: if any
    /// name is taken, repeated in the list, or not a route, nothing changes.
    fn add(&mut self, events: &[String], handler: HandlerId) -> Result<(), RegistryError> {
        if events.is_empty() || events.iter().any(String::is_empty) {
            return Err(RegistryError::NoEvent);
        }
        let mut routes = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let route = Filter::parse(e).map_err(|reason| RegistryError::BadName {
                name: e.clone(),
                reason,
            })?;
            let taken = match &route {
                Filter::Exact(name) => self.by_event.contains_key(name),
                Filter::Prefix(p) => self.by_prefix.iter().any(|(q, _)| q == p),
            };
            if taken || events[..i].contains(e) {
                return Err(RegistryError::Duplicate(e.clone()));
            }
            routes.push(route);
        }
        for route in routes {
            match route {
                Filter::Exact(name) => {
                    self.by_event.insert(name, handler);
                }
                Filter::Prefix(p) => self.by_prefix.push((p, handler)),
            }
        }
        self.by_prefix
            .sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Ok(())
    }
}

/// Maps event names to handlers, with an optional default handler for events
/// that have none (as in the original: no handler and no default is an error,
/// and the message stays in the queue).
///
/// It holds the [`Routes`] (names to [`HandlerId`]s, which the state machine
/// gets) and the handler objects themselves (which the driver runs).
/// Names route as [`Routes`] says.
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
///
/// handlers.on_sync("Order.*", |_d| Ok::<_, String>(())).unwrap();
/// assert!(handlers.get("Order.refunded").is_some());
/// assert!(handlers.on_sync("Or*der", |_d| Ok::<_, String>(())).is_err());
/// ```
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    routes: Routes,
    /// Indexed by [`HandlerId`].
    handlers: Vec<Arc<dyn Handler>>,
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerRegistry")
            .field("events", &self.events())
            .field("default", &self.has_default())
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
        let id = self.next_id();
        self.routes.add(&events.into_events(), id)?;
        self.handlers.push(handler);
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
        if self.routes.default.is_some() {
            return Err(RegistryError::DuplicateDefault);
        }
        self.routes.default = Some(self.next_id());
        self.handlers.push(Arc::new(handler));
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

    /// The routes alone, as the state machine gets them.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// The handler `id` names, if this registry has it.
    pub fn handler(&self, id: HandlerId) -> Option<&Arc<dyn Handler>> {
        self.handlers.get(id.index())
    }

    /// The handler for `event`: its own, else the one of its longest
    /// registered prefix, else the default.
    pub fn get(&self, event: &str) -> Option<&Arc<dyn Handler>> {
        self.routes
            .lookup(event)
            .and_then(|(id, _)| self.handler(id))
    }

    /// Where `event` goes, if anywhere.
    pub fn route(&self, event: &str) -> Option<Route> {
        self.routes.lookup(event).map(|(_, route)| route)
    }

    /// The names with a handler of their own (events, and prefixes as
    /// `Event.*`), sorted.
    pub fn events(&self) -> Vec<String> {
        self.routes.events()
    }

    /// The same routes, each handler (the default too) replaced by
    /// `wrap(handler)`: how a layer (tracing, a timeout, …) goes around every
    /// route at once. The [`HandlerId`]s stay the same.
    pub fn map_handlers(&self, wrap: impl Fn(&Arc<dyn Handler>) -> Arc<dyn Handler>) -> Self {
        HandlerRegistry {
            routes: self.routes.clone(),
            handlers: self.handlers.iter().map(wrap).collect(),
        }
    }

    /// Whether a default handler is registered.
    pub fn has_default(&self) -> bool {
        self.routes.has_default()
    }

    /// The id the next handler registered gets.
    fn next_id(&self) -> HandlerId {
        HandlerId(u32::try_from(self.handlers.len()).expect("fewer than 2^32 handlers"))
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
