//! What a handler may return.

use super::HandlerError;

/// A handler's return value: `()`, or `Result<(), E>` for any
/// `E: Into<HandlerError>`.
pub trait IntoOutcome {
    /// `Ok` completes and deletes the message; `Err` says what to do
    /// instead.
    fn into_outcome(self) -> Result<(), HandlerError>;
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}

/// What a handler that uses `?` returns, so that no turbofish is needed:
///
/// ```
/// use iniesta_core::handler::{HandlerResult, Json};
///
/// #[derive(serde::Deserialize)]
/// struct OrderPlaced { id: u64 }
///
/// async fn on_order(Json(order): Json<OrderPlaced>) -> HandlerResult {
///     let file = std::env::temp_dir().join(format!("order-{}", order.id));
///     std::fs::write(file, b"placed")?;
///     Ok(())
/// }
/// ```
pub type HandlerResult = Result<(), HandlerError>;
