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

#[cfg(feature = "mock")]
#[tokio::test]
async fn a_refused_batch_registration_or_missing_state_stops_the_start() {
    use iniesta_core::handler::{Batch, BatchOptions, State};

    let world = crate::InMemory::new();
    let bad = BatchOptions::new().max_size(0);
    let e = crate::Iniesta::in_memory(&world)
        .on_batch_with("A.svc", bad, |_b: Batch<serde_json::Value>| async {})
        .start()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("max_size must be at least 1"), "{e}");

    #[derive(Clone)]
    struct Db;
    let e = crate::Iniesta::in_memory(&world)
        .on_batch(
            "A.svc",
            |_b: Batch<serde_json::Value>, _db: State<Db>| async {},
        )
        .start()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Db"), "{e}");
}

#[cfg(feature = "mock")]
#[tokio::test]
async fn on_batch_consumes_in_batches_and_retries_only_the_failed_items() {
    use std::sync::Mutex;

    use iniesta_core::handler::{Batch, BatchOptions, BatchOutcome};

    let world = crate::InMemory::new();
    let sizes: Arc<Mutex<Vec<usize>>> = Arc::default();
    let s = sizes.clone();
    let options = BatchOptions::new().max_size(4);
    let consumer = crate::Iniesta::in_memory(&world)
        .configure(|c| {
            c.failure_backoff = Some(iniesta_core::Backoff {
                base: std::time::Duration::ZERO,
                max: std::time::Duration::ZERO,
            })
        })
        .on_batch_with("A.svc", options, move |batch: Batch<serde_json::Value>| {
            s.lock().unwrap().push(batch.len());
            async move {
                let mut outcome = BatchOutcome::all_ok();
                for item in &batch {
                    if item.payload["fail"] == true && item.receive_count() == 1 {
                        outcome.fail(item, "fails once");
                    }
                }
                outcome
            }
        })
        .start()
        .await
        .unwrap();
    for i in 0..4 {
        let body = format!(r#"{{"fail": {}}}"#, i == 2);
        world.publish("A.svc", body).await.unwrap();
    }
    let mut stats = consumer.watch_stats();
    stats.wait_for(|s| s.deleted == 4).await.unwrap();
    let stats = consumer.shutdown_and_wait().await.unwrap();
    assert_eq!((stats.succeeded, stats.failed), (4, 1), "{stats}");
    let sizes = sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), 5, "{sizes:?}");
}

#[cfg(feature = "mock")]
#[tokio::test]
async fn handlers_after_on_or_state_stops_the_start_naming_what_it_would_drop() {
    use iniesta_core::HandlerRegistry;

    #[derive(Clone)]
    struct Db;
    let world = crate::InMemory::new();
    let mut registry = HandlerRegistry::new();
    registry.on("B.svc", || async {}).unwrap();

    let e = crate::Iniesta::in_memory(&world)
        .on("A.svc", || async {})
        .state(Db)
        .handlers(registry.clone())
        .start()
        .await
        .unwrap_err();
    assert!(matches!(e, crate::Error::HandlersReplaced { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("handlers for A.svc"), "{text}");
    assert!(text.contains("Db"), "{text}");

    // A second `.handlers` would drop the first one's handlers too.
    let e = crate::Iniesta::in_memory(&world)
        .handlers(registry.clone())
        .handlers(registry.clone())
        .start()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("handlers for B.svc"), "{e}");

    // First `.handlers`, then more on the builder: both kept.
    let consumer = crate::Iniesta::in_memory(&world)
        .handlers(registry)
        .state(Db)
        .on(
            "A.svc",
            |iniesta_core::handler::State(_): iniesta_core::handler::State<Db>| async {},
        )
        .start()
        .await
        .expect("handlers first, then .on and .state");
    world.publish("A.svc", "{}").await.unwrap();
    world.publish("B.svc", "{}").await.unwrap();
    consumer
        .watch_stats()
        .wait_for(|s| s.deleted == 2)
        .await
        .unwrap();
    consumer.shutdown_and_wait().await.unwrap();
}
