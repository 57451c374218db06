//! Batch calls (SQS DeleteMessageBatch and ChangeMessageVisibilityBatch, SNS
//! PublishBatch): the entries' ids are their indices in the request, and the
//! answer comes back as one result per entry, in request order.

use std::error::Error as StdError;
use std::future::Future;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use iniesta_core::BackendError;

use crate::error::backend_error;

/// Makes one batch call of `len` entries with `send`, which sends the
/// built `entries` and maps the answer with [`in_request_order`]. When the
/// entries could not be built, or the call fails as a whole, every entry
/// gets the same error.
pub(crate) async fn call<Entry, T, E, Fut>(
    len: usize,
    entries: Result<Vec<Entry>, impl ToString>,
    send: impl FnOnce(Vec<Entry>) -> Fut,
) -> Vec<Result<T, BackendError>>
where
    T: Clone,
    E: ProvideErrorMetadata + StdError,
    Fut: Future<Output = Result<Vec<Result<T, BackendError>>, E>>,
{
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return vec![Err(BackendError::message(e.to_string())); len],
    };
    send(entries)
        .await
        .unwrap_or_else(|e| vec![Err(backend_error(&e)); len])
}

/// Maps a batch answer back to request order: `successful` gives the id
/// and result of each entry that succeeded, `failed` the id, error code and
/// message of each that failed (a failure wins over a success of the same
/// id). An id that is not a request index is ignored; an entry the answer
/// does not mention gets the error `unmentioned`.
pub(crate) fn in_request_order<'a, T: Clone>(
    len: usize,
    successful: impl IntoIterator<Item = (Option<&'a str>, Result<T, BackendError>)>,
    failed: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>)>,
    unmentioned: &str,
) -> Vec<Result<T, BackendError>> {
    let mut out: Vec<Option<Result<T, BackendError>>> = vec![None; len];
    let index = |id: &str| id.parse::<usize>().ok().filter(|&i| i < len);
    for (id, result) in successful {
        if let Some(i) = id.and_then(index) {
            out[i] = Some(result);
        }
    }
    for (id, code, message) in failed {
        if let Some(i) = index(id) {
            out[i] = Some(Err(BackendError::new(
                code,
                message.unwrap_or("the entry failed"),
            )));
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(BackendError::message(unmentioned))))
        .collect()
}
