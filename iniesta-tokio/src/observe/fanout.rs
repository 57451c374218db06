//! [`FanOut`]: several observers as one.

use iniesta_core::{Event, Observer};

/// Several observers as one: each event goes to each, in the order they
/// were added.
///
/// ```
/// use iniesta_tokio::{FanOut, MetricsObserver, TracingObserver};
///
/// let observer = FanOut::new()
///     .with(TracingObserver::new())
///     .with(MetricsObserver::new())
///     .with(|event: &iniesta_core::Event| println!("{event:?}"));
/// assert_eq!(observer.len(), 3);
/// ```
#[derive(Default)]
pub struct FanOut {
    observers: Vec<Box<dyn Observer>>,
}

impl FanOut {
    /// No observers yet.
    pub fn new() -> Self {
        FanOut::default()
    }

    /// Adds `observer` (builder style).
    pub fn with(mut self, observer: impl Observer + 'static) -> Self {
        self.push(observer);
        self
    }

    /// Adds `observer`.
    pub fn push(&mut self, observer: impl Observer + 'static) {
        self.observers.push(Box::new(observer));
    }

    /// Adds an observer that is already boxed.
    pub fn push_boxed(&mut self, observer: Box<dyn Observer>) {
        self.observers.push(observer);
    }

    /// How many observers there are.
    pub fn len(&self) -> usize {
        self.observers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.observers.is_empty()
    }
}

impl From<Vec<Box<dyn Observer>>> for FanOut {
    fn from(observers: Vec<Box<dyn Observer>>) -> Self {
        FanOut { observers }
    }
}

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field("observers", &self.observers.len())
            .finish()
    }
}

impl Observer for FanOut {
    fn on_event(&mut self, event: &Event) {
        for o in &mut self.observers {
            o.on_event(event);
        }
    }
}
