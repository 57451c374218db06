//! Shared state handed to handlers through the [`State`](super::State)
//! extractor.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Values of distinct types, one of each, shared by every handler of a
/// registry (a database pool, a client, configuration). Cheap to clone.
#[derive(Clone, Default)]
pub struct StateMap {
    values: Arc<HashMap<TypeId, Entry>>,
}

#[derive(Clone)]
struct Entry {
    name: &'static str,
    value: Arc<dyn Any + Send + Sync>,
}

impl StateMap {
    /// No state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value`, replacing a value of the same type.
    pub fn insert<S: Clone + Send + Sync + 'static>(&mut self, value: S) {
        Arc::make_mut(&mut self.values).insert(
            TypeId::of::<S>(),
            Entry {
                name: type_name::<S>(),
                value: Arc::new(value),
            },
        );
    }

    /// The value of type `S`, if one was given.
    pub fn get<S: Clone + Send + Sync + 'static>(&self) -> Option<S> {
        self.values
            .get(&TypeId::of::<S>())
            .and_then(|e| e.value.downcast_ref::<S>())
            .cloned()
    }

    /// Whether a value of this type was given.
    pub fn contains(&self, need: &StateNeed) -> bool {
        self.values.contains_key(&need.id)
    }

    /// The names of the types held, sorted.
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.values.values().map(|e| e.name).collect();
        names.sort_unstable();
        names
    }
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.type_names()).finish()
    }
}

/// A type of state a handler's extractors need: checked when the consumer
/// starts, so a missing `.state(..)` is an error at start-up rather than a
/// failure on every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateNeed {
    id: TypeId,
    name: &'static str,
}

impl StateNeed {
    /// The need for a value of type `S`.
    pub fn of<S: 'static>() -> Self {
        StateNeed {
            id: TypeId::of::<S>(),
            name: type_name::<S>(),
        }
    }

    /// The type's name, for error messages.
    pub fn type_name(&self) -> &'static str {
        self.name
    }
}
