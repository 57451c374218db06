//! The registry that routes events to handlers.

use std::sync::Arc;

use crate::filters::{Filter, FilterError};
use crate::handler::{
    BatchFn, BatchFnHandler, BatchHandler, BatchOptions, Delivery, FnHandler, Handler,
    HandlerError, HandlerFn, IntoOutcome, ItemFailure, OneAtATime, StateMap, StateNeed,
    SyncFnHandler,
};

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
    /// A handler reads state of a type that was not given
    /// ([`HandlerRegistry::state`]).
    #[error(
        "a handler needs state of type {type_name}, and none was given (call .state(..) with one)"
    )]
    MissingState {
        /// The type's name.
        type_name: &'static str,
    },
    /// [`BatchOptions`] that cannot gather a batch (a `max_size` of 0).
    #[error("bad batch options for {events:?}: {reason}")]
    BadBatchOptions {
        /// The events of the batch route.
        events: Vec<String>,
        /// What is wrong.
        reason: String,
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
/// use iniesta_core::handler::{HandlerError, Json};
/// use iniesta_core::{Delivery, HandlerRegistry};
///
/// #[derive(serde::Deserialize)]
/// struct UserCreated { id: u64 }
///
/// let mut handlers = HandlerRegistry::new();
/// handlers
///     .on("UserCreated.users", |Json(user): Json<UserCreated>| async move {
///         println!("welcome {}", user.id);
///     })
///     .unwrap();
/// handlers
///     .on_sync(["OrderPlaced.orders", "OrderPaid.orders"], |_d: Delivery| ())
///     .unwrap();
/// assert!(handlers.on("UserCreated.users", || async {}).is_err());
/// assert!(handlers.get("OrderPaid.orders").is_some());
/// assert!(handlers.get("Unknown.x").is_none());
///
/// handlers
///     .on("Order.*", |d: Delivery| async move {
///         Err(HandlerError::permanent(format!("cannot handle {}", d.message.event)))
///     })
///     .unwrap();
/// assert!(handlers.get("Order.refunded").is_some());
/// assert!(handlers.on("Or*der", || async {}).is_err());
/// ```
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    routes: Routes,
    /// Indexed by [`HandlerId`]. A batch route has one here too, that runs
    /// its batch handler one delivery at a time.
    handlers: Vec<Arc<dyn Handler>>,
    /// The batch routes, which the driver calls with gathered deliveries.
    batches: rustc_hash::FxHashMap<HandlerId, BatchRoute>,
    /// Handed to every handler in its [`Delivery`].
    state: StateMap,
    /// The state types the registered handlers read.
    needs: Vec<StateNeed>,
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerRegistry")
            .field("events", &self.events())
            .field("default", &self.has_default())
            .field("batch_routes", &self.batches.len())
            .finish()
    }
}

/// A batch route's handler and how its deliveries are gathered.
#[derive(Clone)]
pub struct BatchRoute {
    /// The handler, called once per batch.
    pub handler: Arc<dyn BatchHandler>,
    /// The largest batch and the longest wait to fill one.
    pub options: BatchOptions,
}

impl std::fmt::Debug for BatchRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchRoute")
            .field("options", &self.options)
            .finish_non_exhaustive()
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
        self.push(handler);
        Ok(self)
    }

    /// Registers an async function of [extractors](crate::handler::extract)
    /// for one event or a list of events. It returns `()` or
    /// `Result<(), E>` for any `E: Into<HandlerError>`.
    pub fn on<F, Args>(&mut self, events: impl Events, f: F) -> Result<&mut Self, RegistryError>
    where
        F: HandlerFn<Args>,
        Args: 'static,
    {
        self.add(events, FnHandler::new(f))
    }

    /// Registers a batch handler for one event or a list of events, with
    /// the default [`BatchOptions`] (batches of up to 10, gathered for up
    /// to 100 ms): an async function of a
    /// [`Batch<T>`](crate::handler::Batch) (the deliveries, each payload
    /// decoded from JSON into `T`) and [`FromBatch`](crate::handler::FromBatch)
    /// extractors such as [`State<S>`](crate::handler::State), returning a
    /// [`BatchOutcome`](crate::handler::BatchOutcome) (an outcome per
    /// delivery), `()`, or a `Result` of either.
    ///
    /// Each delivery is still locked, deduplicated and settled on its own;
    /// the successes are completed and deleted, the failures released and
    /// retried. A panic fails every delivery of the batch. Tower layers and
    /// the per-message tracing span do not go around a batch call (it has
    /// no one message); the consumer's events still log each delivery.
    ///
    /// ```
    /// use iniesta_core::handler::{Batch, BatchOutcome, DeliveryBuilder, HandlerError, Retry};
    /// use iniesta_core::HandlerRegistry;
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Order { id: u64 }
    ///
    /// let mut handlers = HandlerRegistry::new();
    /// handlers
    ///     .on_batch("OrderPlaced.orders", |batch: Batch<Order>| async move {
    ///         let mut outcome = BatchOutcome::all_ok();
    ///         for item in &batch {
    ///             if item.payload.id == 0 {
    ///                 outcome.fail(item, HandlerError::permanent("order 0 does not exist"));
    ///             }
    ///         }
    ///         outcome
    ///     })
    ///     .unwrap();
    ///
    /// let deliveries = [1, 0, 2].map(|id| {
    ///     DeliveryBuilder::new("OrderPlaced.orders").json(&Order { id }).unwrap().build()
    /// });
    /// let results = futures::executor::block_on(handlers.run_batch(deliveries.to_vec()));
    /// assert!(results[0].is_ok() && results[2].is_ok());
    /// assert_eq!(results[1].as_ref().unwrap_err().retry(), Retry::Never);
    /// ```
    pub fn on_batch<F, T, Args>(
        &mut self,
        events: impl Events,
        f: F,
    ) -> Result<&mut Self, RegistryError>
    where
        F: BatchFn<T, Args>,
        T: Send + 'static,
        Args: 'static,
    {
        self.on_batch_with(events, BatchOptions::default(), f)
    }

    /// [`on_batch`](Self::on_batch) with the largest batch and the longest
    /// wait to fill one given: see [`BatchOptions`].
    pub fn on_batch_with<F, T, Args>(
        &mut self,
        events: impl Events,
        options: BatchOptions,
        f: F,
    ) -> Result<&mut Self, RegistryError>
    where
        F: BatchFn<T, Args>,
        T: Send + 'static,
        Args: 'static,
    {
        self.add_batch(events, options, BatchFnHandler::new(f))
    }

    /// Registers a [`BatchHandler`] for one event or a list of events.
    pub fn add_batch(
        &mut self,
        events: impl Events,
        options: BatchOptions,
        handler: impl BatchHandler,
    ) -> Result<&mut Self, RegistryError> {
        let events = events.into_events();
        if let Some(reason) = options.problem() {
            return Err(RegistryError::BadBatchOptions { events, reason });
        }
        let id = self.next_id();
        self.routes.add(&events, id)?;
        let handler: Arc<dyn BatchHandler> = Arc::new(handler);
        self.push(Arc::new(OneAtATime(handler.clone())));
        self.batches.insert(id, BatchRoute { handler, options });
        Ok(self)
    }

    /// Registers a synchronous function of the [`Delivery`] for one event
    /// or a list of events. It runs on the consumer's executor: keep it
    /// short and non-blocking.
    pub fn on_sync<F, R>(&mut self, events: impl Events, f: F) -> Result<&mut Self, RegistryError>
    where
        F: Fn(Delivery) -> R + Send + Sync + 'static,
        R: IntoOutcome + 'static,
    {
        self.add(events, SyncFnHandler(f))
    }

    /// Registers the default handler, for events without one of their own.
    pub fn set_default(&mut self, handler: impl Handler) -> Result<&mut Self, RegistryError> {
        if self.routes.default.is_some() {
            return Err(RegistryError::DuplicateDefault);
        }
        self.routes.default = Some(self.next_id());
        self.push(Arc::new(handler));
        Ok(self)
    }

    /// Registers an async function of extractors as the default handler.
    pub fn on_default<F, Args>(&mut self, f: F) -> Result<&mut Self, RegistryError>
    where
        F: HandlerFn<Args>,
        Args: 'static,
    {
        self.set_default(FnHandler::new(f))
    }

    /// Gives every handler `value`, read with the
    /// [`State`](crate::handler::State) extractor; one value per type (a
    /// second of the same type replaces the first).
    pub fn state<S: Clone + Send + Sync + 'static>(&mut self, value: S) -> &mut Self {
        self.state.insert(value);
        self
    }

    /// The state handed to the handlers.
    pub fn state_map(&self) -> &StateMap {
        &self.state
    }

    /// Whether every state type a handler reads was given: the check a
    /// consumer makes before it starts.
    pub fn check_state(&self) -> Result<(), RegistryError> {
        match self.needs.iter().find(|n| !self.state.contains(n)) {
            Some(need) => Err(RegistryError::MissingState {
                type_name: need.type_name(),
            }),
            None => Ok(()),
        }
    }

    /// Runs the handler `delivery`'s event routes to, with this registry's
    /// state, and gives its outcome: how to test a handler without a
    /// consumer. No handler for the event is an error, as it is for a
    /// consumer. A panic is not caught.
    pub async fn run(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let Some(handler) = self.get(&delivery.message.event) else {
            return Err(HandlerError::new(format!(
                "no handler for event {:?}",
                delivery.message.event
            )));
        };
        handler
            .handle(delivery.with_state(self.state.clone()))
            .await
    }

    /// Runs the batch handlers `deliveries` route to, with this registry's
    /// state, as a consumer would (deliveries of one route together, in
    /// batches of at most its `max_size`), and gives each delivery's
    /// outcome, in order: how to test a batch handler without a consumer.
    /// A delivery whose event has no batch handler fails. A panic is not
    /// caught.
    pub async fn run_batch(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), ItemFailure>> {
        let n = deliveries.len();
        let mut results: Vec<Option<Result<(), ItemFailure>>> = vec![None; n];
        // The deliveries of each batch route, by their place in the list.
        let mut groups: Vec<(HandlerId, Vec<(usize, Delivery)>)> = Vec::new();
        for (i, d) in deliveries.into_iter().enumerate() {
            let event = &d.message.event;
            match self.routes.lookup(event) {
                Some((id, _)) if self.batches.contains_key(&id) => {
                    match groups.iter_mut().find(|(g, _)| *g == id) {
                        Some((_, members)) => members.push((i, d)),
                        None => groups.push((id, vec![(i, d)])),
                    }
                }
                Some(_) => {
                    let text = format!("event {event:?} has no batch handler (test it with run)");
                    results[i] = Some(Err(ItemFailure::retried(text)));
                }
                None => {
                    let text = format!("no handler for event {event:?}");
                    results[i] = Some(Err(ItemFailure::retried(text)));
                }
            }
        }
        for (id, members) in groups {
            let route = &self.batches[&id];
            for chunk in members.chunks(route.options.max_size.max(1)) {
                let batch = chunk
                    .iter()
                    .map(|(_, d)| d.clone().with_state(self.state.clone()))
                    .collect();
                let answers = route.handler.handle_batch(batch).await;
                let answers = crate::handler::fit_results(answers, chunk.len());
                for ((i, _), result) in chunk.iter().zip(answers) {
                    results[*i] = Some(result);
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every delivery has a result"))
            .collect()
    }

    /// The batch route `id` names, if it is one.
    pub fn batch(&self, id: HandlerId) -> Option<&BatchRoute> {
        self.batches.get(&id)
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
    /// route at once. The [`HandlerId`]s and the state stay the same, and so
    /// do the batch routes' batch handlers (a layer over one delivery does
    /// not fit a call for many).
    pub fn map_handlers(&self, wrap: impl Fn(&Arc<dyn Handler>) -> Arc<dyn Handler>) -> Self {
        HandlerRegistry {
            routes: self.routes.clone(),
            handlers: self.handlers.iter().map(wrap).collect(),
            batches: self.batches.clone(),
            state: self.state.clone(),
            needs: self.needs.clone(),
        }
    }

    /// Whether a default handler is registered.
    pub fn has_default(&self) -> bool {
        self.routes.has_default()
    }

    /// Adds a handler under the next id, noting the state it reads.
    fn push(&mut self, handler: Arc<dyn Handler>) {
        handler.state_needs(&mut self.needs);
        self.handlers.push(handler);
    }

    /// The id the next handler registered gets.
    fn next_id(&self) -> HandlerId {
        HandlerId(u32::try_from(self.handlers.len()).expect("fewer than 2^32 handlers"))
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
