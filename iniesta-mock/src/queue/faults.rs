//! Injected faults: failed receives, failed or lost deletes and failed
//! visibility changes, each for a given number of calls.

use super::store::Faults;
use super::MockQueue;

impl MockQueue {
    /// Makes the next `n` receives (sync or async) fail with code
    /// [`InternalError`](crate::codes::INTERNAL_ERROR). Replaces any count left
    /// from before; each receive call consumes one.
    pub fn fail_receives(&self, n: u32) {
        self.state().faults.fail_receives = n;
    }

    /// Makes the next `n` deletes fail with code
    /// [`InternalError`](crate::codes::INTERNAL_ERROR), deleting nothing. Counted
    /// per entry: a batch of 3 consumes 3. Takes precedence over
    /// [`lose_deletes`](Self::lose_deletes).
    pub fn fail_deletes(&self, n: u32) {
        self.state().faults.fail_deletes = n;
    }

    /// Makes the next `n` deletes answer `Ok` but delete nothing, as when a
    /// delete is lost (or a deleted message comes back, as SQS allows).
    /// Counted per entry.
    pub fn lose_deletes(&self, n: u32) {
        self.state().faults.lose_deletes = n;
    }

    /// Makes the next `n` visibility changes fail with code
    /// [`InternalError`](crate::codes::INTERNAL_ERROR), changing nothing. Counted
    /// per entry.
    pub fn fail_visibility_changes(&self, n: u32) {
        self.state().faults.fail_visibility_changes = n;
    }

    /// Cancels every pending injected fault.
    pub fn clear_faults(&self) {
        self.state().faults = Faults::default();
    }
}
