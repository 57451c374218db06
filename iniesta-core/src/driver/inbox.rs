//! Where answers that do not come back as an IO future's result are left
//! for the driver.

use std::sync::Mutex;

use futures::task::AtomicWaker;

use crate::machine::Input;

/// Answers left for the driver: spawned handlers'
/// [`Input::HandlerFinished`], and acquire answers handed over as each key
/// is decided. A shared list and the driver's waker (no allocation per
/// message, unlike a channel that allocates a node per send).
#[derive(Default)]
pub(super) struct Inbox {
    inputs: Mutex<Vec<Input>>,
    waker: AtomicWaker,
}

impl Inbox {
    pub(super) fn push(&self, input: Input) {
        self.push_all(std::iter::once(input));
    }

    pub(super) fn push_all(&self, inputs: impl IntoIterator<Item = Input>) {
        self.inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(inputs);
        self.waker.wake();
    }

    /// Moves what arrived into `into`, after registering the waker (so an
    /// input pushed after the check still wakes the driver).
    pub(super) fn drain_into(&self, cx: &mut std::task::Context<'_>, into: &mut Vec<Input>) {
        self.waker.register(cx.waker());
        let mut inputs = self.inputs.lock().unwrap_or_else(|e| e.into_inner());
        into.append(&mut inputs);
    }
}
