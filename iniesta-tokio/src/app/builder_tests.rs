use std::sync::Arc;

use iniesta_core::{LockBackend, Queue};

use super::{share_lock, share_queue};

/// Whether two shared values are the same allocation (vtables ignored).
fn same<T: ?Sized>(a: &Arc<T>, b: &Arc<T>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

#[cfg(feature = "mock")]
#[test]
fn a_shared_queue_is_kept_not_wrapped() {
    let world = crate::InMemory::new();
    let given: Arc<dyn Queue> = Arc::new(world.queue().clone());
    let kept = share_queue(given.clone());
    assert!(same(&kept, &given), "the Arc<dyn Queue> was wrapped again");

    // Any other queue (an Arc of a concrete queue included) is wrapped.
    let concrete = Arc::new(world.queue().clone());
    let wrapped = share_queue(concrete.clone());
    let concrete: Arc<dyn Queue> = concrete;
    assert!(!same(&wrapped, &concrete));
}

#[cfg(feature = "mock")]
#[test]
fn a_shared_lock_is_kept_not_wrapped() {
    let world = crate::InMemory::new();
    let given: Arc<dyn LockBackend> = Arc::new(world.lock().clone());
    let kept = share_lock(given.clone());
    assert!(
        same(&kept, &given),
        "the Arc<dyn LockBackend> was wrapped again"
    );

    let wrapped = share_lock(world.lock().clone());
    assert!(!same(&wrapped, &given));
}
