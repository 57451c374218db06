//! Batch handlers as objects ([`BatchHandler`]), and async functions of a
//! [`Batch`] and extractors as batch handlers.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;

use super::batch::{Batch, BatchOutcome, IntoBatchOutcome, ItemFailure};
use super::{
    Delivery, FromDelivery, Handler, HandlerError, Json, MissingState, State, StateMap, StateNeed,
};

/// Handles deliveries of the events it is registered for, several at once.
///
/// Most batch handlers are functions registered with
/// [`HandlerRegistry::on_batch`](crate::HandlerRegistry::on_batch);
/// implement this trait for one with its own fields.
#[async_trait]
pub trait BatchHandler: Send + Sync + 'static {
    /// Handles `deliveries` (never empty) and answers one result per
    /// delivery, in their order. An answer of the wrong length fails the
    /// deliveries it misses (a longer one, every delivery): see
    /// [`fit_results`].
    async fn handle_batch(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), ItemFailure>>;

    /// The state types this handler reads, so that a consumer without them
    /// refuses to start.
    fn state_needs(&self, needs: &mut Vec<StateNeed>) {
        let _ = needs;
    }
}

/// `results` made one per delivery of a batch of `n`: a list shorter than
/// the batch fails the deliveries it misses, and one longer cannot be
/// matched to the deliveries, so every delivery fails. Both are retried,
/// and the failure's text says what happened (logs show it for each).
pub fn fit_results(
    mut results: Vec<Result<(), ItemFailure>>,
    n: usize,
) -> Vec<Result<(), ItemFailure>> {
    let got = results.len();
    if got > n {
        let text = format!(
            "the batch handler answered {got} outcomes for {n} deliveries: they cannot be \
             matched to the deliveries, so every delivery is retried"
        );
        return vec![Err(ItemFailure::retried(text)); n];
    }
    results.extend((got..n).map(|i| {
        Err(ItemFailure::retried(format!(
            "the batch handler answered {got} outcomes for {n} deliveries; delivery {i} got \
             none, so it is retried"
        )))
    }));
    results
}

/// A batch handler's argument besides the [`Batch`]: read once per batch.
/// [`State`] is one.
pub trait FromBatch: Sized {
    /// The argument, from the registry's state.
    fn from_batch(state: &StateMap) -> Result<Self, HandlerError>;

    /// The state types it reads.
    fn state_needs(needs: &mut Vec<StateNeed>) {
        let _ = needs;
    }
}

impl<S: Clone + Send + Sync + 'static> FromBatch for State<S> {
    fn from_batch(state: &StateMap) -> Result<Self, HandlerError> {
        state.get::<S>().map(State).ok_or_else(|| {
            HandlerError::new(MissingState {
                type_name: std::any::type_name::<S>(),
            })
        })
    }

    fn state_needs(needs: &mut Vec<StateNeed>) {
        needs.push(StateNeed::of::<S>());
    }
}

/// An async function of a [`Batch<T>`] and up to four [`FromBatch`]
/// extractors that returns an [`IntoBatchOutcome`]: what
/// [`HandlerRegistry::on_batch`](crate::HandlerRegistry::on_batch) takes.
pub trait BatchFn<T, Args>: Send + Sync + Sized + 'static {
    /// Decodes one delivery's payload into `T` (JSON); a payload that does
    /// not decode is a permanent failure, as for [`Json`].
    fn decode(delivery: &Delivery) -> Result<T, HandlerError>;

    /// Reads the extractors from `state` and calls the function on
    /// `batch`; an extractor's failure fails the whole batch.
    fn call(&self, batch: Batch<T>, state: &StateMap) -> BoxFuture<'static, BatchOutcome>;

    /// The state types the extractors read.
    fn state_needs(needs: &mut Vec<StateNeed>);
}

macro_rules! batch_fn {
    ($($A:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, R, T, $($A,)*> BatchFn<T, ($($A,)*)> for F
        where
            F: Fn(Batch<T>, $($A),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoBatchOutcome + 'static,
            T: DeserializeOwned + Send + 'static,
            $($A: FromBatch + 'static,)*
        {
            fn decode(delivery: &Delivery) -> Result<T, HandlerError> {
                Json::<T>::from_delivery(delivery).map(|Json(payload)| payload)
            }

            fn call(&self, batch: Batch<T>, state: &StateMap) -> BoxFuture<'static, BatchOutcome> {
                $(
                    let $A = match $A::from_batch(state) {
                        Ok(value) => value,
                        Err(e) => {
                            return futures::future::ready(BatchOutcome::all_failed(e)).boxed()
                        }
                    };
                )*
                (self)(batch, $($A),*).map(R::into_batch_outcome).boxed()
            }

            fn state_needs(needs: &mut Vec<StateNeed>) {
                $($A::state_needs(needs);)*
            }
        }
    };
}

batch_fn!();
batch_fn!(A1);
batch_fn!(A1, A2);
batch_fn!(A1, A2, A3);
batch_fn!(A1, A2, A3, A4);

/// A [`BatchHandler`] made of a [`BatchFn`]: decodes each payload into
/// `T`, calls the function on those that decode, and maps its outcome
/// back to the deliveries. Built by
/// [`HandlerRegistry::on_batch`](crate::HandlerRegistry::on_batch).
pub struct BatchFnHandler<F, T, Args> {
    f: F,
    args: PhantomData<fn() -> (T, Args)>,
}

impl<F, T, Args> BatchFnHandler<F, T, Args>
where
    F: BatchFn<T, Args>,
{
    /// `f` as a batch handler.
    pub fn new(f: F) -> Self {
        BatchFnHandler {
            f,
            args: PhantomData,
        }
    }
}

#[async_trait]
impl<F, T, Args> BatchHandler for BatchFnHandler<F, T, Args>
where
    F: BatchFn<T, Args>,
    T: Send + 'static,
    Args: 'static,
{
    async fn handle_batch(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), ItemFailure>> {
        let n = deliveries.len();
        let state = match deliveries.first() {
            Some(d) => d.state.clone(),
            None => return Vec::new(),
        };
        let mut results: Vec<Option<Result<(), ItemFailure>>> = vec![None; n];
        // Where each item of the batch came from, among the deliveries.
        let mut from = Vec::with_capacity(n);
        let mut decoded = Vec::with_capacity(n);
        for (i, d) in deliveries.into_iter().enumerate() {
            match F::decode(&d) {
                Ok(payload) => {
                    from.push(i);
                    decoded.push((payload, d));
                }
                Err(e) => results[i] = Some(Err(ItemFailure::from(e))),
            }
        }
        if !decoded.is_empty() {
            let batch = Batch::new(decoded);
            let keys: Vec<String> = batch.iter().map(|item| item.key().to_owned()).collect();
            let outcome = self.f.call(batch, &state).await;
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            for (i, result) in from.into_iter().zip(outcome.resolve(&keys)) {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every delivery has a result"))
            .collect()
    }

    fn state_needs(&self, needs: &mut Vec<StateNeed>) {
        F::state_needs(needs)
    }
}

/// A batch route run one delivery at a time, as a batch of one: what the
/// registry keeps among its single handlers, so that
/// [`HandlerRegistry::run`](crate::HandlerRegistry::run) and anything else
/// that calls a route's [`Handler`] works on a batch route too.
pub(crate) struct OneAtATime(pub(crate) Arc<dyn BatchHandler>);

#[async_trait]
impl Handler for OneAtATime {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let results = fit_results(self.0.handle_batch(vec![delivery]).await, 1);
        match results.into_iter().next() {
            Some(Err(failure)) => Err(failure.into_handler_error()),
            _ => Ok(()),
        }
    }

    fn state_needs(&self, needs: &mut Vec<StateNeed>) {
        self.0.state_needs(needs)
    }
}
