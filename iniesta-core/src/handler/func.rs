//! Functions as handlers: an async function (or closure) of extractors
//! becomes a [`Handler`].

use std::future::Future;
use std::marker::PhantomData;

use async_trait::async_trait;
use futures::future::{self, Either, FutureExt, Map, Ready};

use super::{Delivery, FromDelivery, Handler, HandlerError, IntoOutcome, StateNeed};

/// An async function of up to eight [extractors](super::extract) that
/// returns an [`IntoOutcome`]: what [`HandlerRegistry::on`] takes.
/// Implemented for every such function and closure; `Args` is the tuple of
/// its argument types, found by the compiler.
///
/// [`HandlerRegistry::on`]: crate::HandlerRegistry::on
pub trait HandlerFn<Args>: Send + Sync + Sized + 'static {
    /// The future of one call. Named (not boxed) so that a function
    /// handler costs the one box of [`Handler::handle`].
    type Future: Future<Output = Result<(), HandlerError>> + Send + 'static;

    /// Extracts the arguments from `delivery` and calls the function; an
    /// extractor's failure is the call's outcome.
    fn call(&self, delivery: Delivery) -> Self::Future;

    /// The state types the arguments read.
    fn state_needs(needs: &mut Vec<StateNeed>);
}

/// The future of a function handler's call: an extractor's failure, or the
/// function's own future with its output turned into an outcome.
pub type CallFuture<Fut, R> =
    Either<Ready<Result<(), HandlerError>>, Map<Fut, fn(R) -> Result<(), HandlerError>>>;

macro_rules! handler_fn {
    ($($T:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, R, $($T,)*> HandlerFn<($($T,)*)> for F
        where
            F: Fn($($T),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoOutcome + 'static,
            $($T: FromDelivery + 'static,)*
        {
            type Future = CallFuture<Fut, R>;

            fn call(&self, delivery: Delivery) -> Self::Future {
                $(
                    let $T = match $T::from_delivery(&delivery) {
                        Ok(value) => value,
                        Err(e) => return Either::Left(future::ready(Err(e))),
                    };
                )*
                let outcome: fn(R) -> Result<(), HandlerError> = R::into_outcome;
                Either::Right((self)($($T),*).map(outcome))
            }

            fn state_needs(needs: &mut Vec<StateNeed>) {
                $($T::state_needs(needs);)*
            }
        }
    };
}

handler_fn!();
handler_fn!(T1);
handler_fn!(T1, T2);
handler_fn!(T1, T2, T3);
handler_fn!(T1, T2, T3, T4);
handler_fn!(T1, T2, T3, T4, T5);
handler_fn!(T1, T2, T3, T4, T5, T6);
handler_fn!(T1, T2, T3, T4, T5, T6, T7);
handler_fn!(T1, T2, T3, T4, T5, T6, T7, T8);

/// A [`Handler`] made of a [`HandlerFn`]; built by
/// [`HandlerRegistry::on`](crate::HandlerRegistry::on) and friends.
pub struct FnHandler<F, Args> {
    f: F,
    args: PhantomData<fn() -> Args>,
}

impl<F, Args> FnHandler<F, Args>
where
    F: HandlerFn<Args>,
{
    /// `f` as a handler.
    pub fn new(f: F) -> Self {
        FnHandler {
            f,
            args: PhantomData,
        }
    }
}

#[async_trait]
impl<F, Args> Handler for FnHandler<F, Args>
where
    F: HandlerFn<Args>,
    Args: 'static,
{
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        self.f.call(delivery).await
    }

    fn state_needs(&self, needs: &mut Vec<StateNeed>) {
        F::state_needs(needs)
    }
}

/// A [`Handler`] made of a plain (synchronous, non-blocking) function of
/// the [`Delivery`].
pub struct SyncFnHandler<F>(pub F);

#[async_trait]
impl<F, R> Handler for SyncFnHandler<F>
where
    F: Fn(Delivery) -> R + Send + Sync + 'static,
    R: IntoOutcome + 'static,
{
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        (self.0)(delivery).into_outcome()
    }
}
