//! Batch outcomes mapped to items, batch functions on deliveries, and the
//! registry's test kit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::executor::block_on;

use super::*;
use crate::handler::{fit_results, DeliveryBuilder, State};
use crate::{HandlerRegistry, RegistryError};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
}

fn order(id: u64) -> Delivery {
    DeliveryBuilder::new("OrderPlaced.orders")
        .json(&Order { id })
        .unwrap()
        .sns_message_id(Some(format!("key-{id}")))
        .build()
}

fn retries(results: &[Result<(), ItemFailure>]) -> Vec<Option<Retry>> {
    results
        .iter()
        .map(|r| r.as_ref().err().map(ItemFailure::retry))
        .collect()
}

#[test]
fn failures_name_items_by_index_or_key_and_the_rest_succeed() {
    let mut outcome = BatchOutcome::all_ok();
    outcome
        .fail(2, HandlerError::permanent("no such order"))
        .fail(
            "b",
            HandlerError::retry_after(Duration::from_secs(5), "busy"),
        )
        .fail(2, "a second failure of item 2 is ignored");
    let results = outcome.resolve(&["a", "b", "c", "d"]);
    assert_eq!(
        retries(&results),
        [
            None,
            Some(Retry::After(Duration::from_secs(5))),
            Some(Retry::Never),
            None
        ]
    );
    assert_eq!(
        results[2].as_ref().unwrap_err().to_string(),
        "no such order"
    );
}

#[test]
fn a_failure_naming_no_item_retries_every_item_even_one_failed_on_its_own() {
    // The handler's references are off somewhere: item 0's permanent
    // failure may have been meant for another item, and giving item 0 up
    // on it could lose it, so it is retried like the rest.
    for stray in [ItemRef::Index(4), ItemRef::Key("zz".into())] {
        let mut outcome = BatchOutcome::all_ok();
        outcome
            .fail(stray.clone(), "meant some item")
            .fail(0, HandlerError::permanent("bad"));
        let results = outcome.resolve(&["a", "b", "c"]);
        assert_eq!(
            retries(&results),
            [
                Some(Retry::Backoff),
                Some(Retry::Backoff),
                Some(Retry::Backoff)
            ],
            "{stray}"
        );
        let text = results[1].as_ref().unwrap_err().to_string();
        assert!(text.contains("not in its batch of 3"), "{text}");
        assert!(text.contains("meant some item"), "{text}");
    }
}

#[test]
fn a_list_of_results_too_short_fails_the_missing_items_and_too_long_fails_all() {
    let short: BatchOutcome = vec![Ok(()), Err(HandlerError::permanent("x"))]
        .into_iter()
        .collect();
    let results = short.resolve(&["a", "b", "c", "d"]);
    assert_eq!(
        retries(&results),
        [
            None,
            Some(Retry::Never),
            Some(Retry::Backoff),
            Some(Retry::Backoff)
        ]
    );
    let text = results[3].as_ref().unwrap_err().to_string();
    assert!(
        text.contains("returned 2 outcomes for a batch of 4"),
        "{text}"
    );

    // Too long: no entry can be matched to an item, not even a permanent
    // failure (meant for which item?): every item is retried.
    let long: BatchOutcome = vec![
        Err(HandlerError::permanent("meant for some other item")),
        Ok(()),
        Ok(()),
    ]
    .into_iter()
    .collect();
    let results = long.resolve(&["a", "b"]);
    assert_eq!(
        retries(&results),
        [Some(Retry::Backoff), Some(Retry::Backoff)]
    );

    let exact: BatchOutcome = vec![Ok::<_, String>(()); 2].into_iter().collect();
    assert_eq!(retries(&exact.resolve(&["a", "b"])), [None, None]);
}

#[test]
fn all_failed_applies_to_items_without_a_failure_of_their_own() {
    let mut outcome =
        BatchOutcome::all_failed(HandlerError::retry_after(Duration::from_secs(9), "down"));
    outcome.fail(1, HandlerError::permanent("bad"));
    let after = Some(Retry::After(Duration::from_secs(9)));
    assert_eq!(
        retries(&outcome.resolve(&["a", "b", "c"])),
        [after, Some(Retry::Never), after]
    );
    let err: Result<BatchOutcome, &str> = Err("boom");
    assert_eq!(
        retries(&err.into_batch_outcome().resolve(&["a"])),
        [Some(Retry::Backoff)]
    );
    assert!(().into_batch_outcome().is_all_ok());
}

#[test]
fn fit_results_pads_a_short_answer_and_refuses_a_long_one() {
    let padded = fit_results(vec![Ok(())], 3);
    assert_eq!(
        retries(&padded),
        [None, Some(Retry::Backoff), Some(Retry::Backoff)]
    );
    assert!(padded[2]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("answered 1 outcomes for 3 deliveries"));
    let refused = fit_results(vec![Ok(()), Ok(()), Ok(())], 2);
    assert_eq!(
        retries(&refused),
        [Some(Retry::Backoff), Some(Retry::Backoff)]
    );
}

#[test]
fn a_batch_function_gets_the_decoded_items_and_its_outcome_maps_back() {
    let seen: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let s = seen.clone();
    let mut handlers = HandlerRegistry::new();
    handlers
        .on_batch("OrderPlaced.orders", move |batch: Batch<Order>| {
            let seen = s.clone();
            async move {
                let mut outcome = BatchOutcome::all_ok();
                for item in &batch {
                    seen.lock().unwrap().push((item.index(), item.payload.id));
                    if item.payload.id == 3 {
                        outcome.fail(item.key(), "three fails");
                    }
                }
                outcome
            }
        })
        .unwrap();
    let undecodable = DeliveryBuilder::new("OrderPlaced.orders")
        .body(r#"{"id": "not a number"}"#)
        .build();
    let results = block_on(handlers.run_batch(vec![order(1), undecodable, order(3)]));
    // The undecodable one is a permanent failure of its own and is not in
    // the batch: the handler saw two items, numbered 0 and 1.
    assert_eq!(*seen.lock().unwrap(), [(0, 1), (1, 3)]);
    assert_eq!(
        retries(&results),
        [None, Some(Retry::Never), Some(Retry::Backoff)]
    );
    let text = results[1].as_ref().unwrap_err().to_string();
    assert!(text.contains("does not decode"), "{text}");
}

#[test]
fn a_batch_of_which_nothing_decodes_is_not_handed_to_the_handler() {
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let mut handlers = HandlerRegistry::new();
    handlers
        .on_batch("OrderPlaced.orders", move |_b: Batch<Order>| {
            *c.lock().unwrap() += 1;
            async {}
        })
        .unwrap();
    let bad = DeliveryBuilder::new("OrderPlaced.orders")
        .body("not json")
        .build();
    let results = block_on(handlers.run_batch(vec![bad]));
    assert_eq!(retries(&results), [Some(Retry::Never)]);
    assert_eq!(*calls.lock().unwrap(), 0);
}

#[test]
fn state_reaches_a_batch_function_and_a_missing_one_is_reported() {
    #[derive(Clone)]
    struct Limit(u64);
    let mut handlers = HandlerRegistry::new();
    handlers
        .on_batch(
            "OrderPlaced.orders",
            |batch: Batch<Order>, State(Limit(max)): State<Limit>| async move {
                batch
                    .iter()
                    .map(|item| {
                        if item.payload.id > max {
                            Err(HandlerError::permanent("over the limit"))
                        } else {
                            Ok(())
                        }
                    })
                    .collect::<BatchOutcome>()
            },
        )
        .unwrap();
    assert_eq!(
        handlers.check_state(),
        Err(RegistryError::MissingState {
            type_name: std::any::type_name::<Limit>()
        })
    );
    // Without it, the whole batch fails (and is retried).
    let results = block_on(handlers.run_batch(vec![order(1)]));
    assert_eq!(retries(&results), [Some(Retry::Backoff)]);

    handlers.state(Limit(5));
    assert!(handlers.check_state().is_ok());
    let results = block_on(handlers.run_batch(vec![order(1), order(9)]));
    assert_eq!(retries(&results), [None, Some(Retry::Never)]);
}

#[test]
fn run_batch_groups_by_route_chunks_by_max_size_and_refuses_other_routes() {
    let sizes: Arc<Mutex<Vec<usize>>> = Arc::default();
    let s = sizes.clone();
    let mut handlers = HandlerRegistry::new();
    handlers
        .on_batch_with(
            "OrderPlaced.orders",
            BatchOptions::new().max_size(2),
            move |batch: Batch<Order>| {
                s.lock().unwrap().push(batch.len());
                async {}
            },
        )
        .unwrap();
    handlers.on("Single.svc", || async {}).unwrap();
    let single = DeliveryBuilder::new("Single.svc").build();
    let unknown = DeliveryBuilder::new("Unknown.svc").build();
    let deliveries = vec![order(1), single, order(2), unknown, order(3)];
    let results = block_on(handlers.run_batch(deliveries));
    assert_eq!(*sizes.lock().unwrap(), [2, 1]);
    assert_eq!(
        retries(&results),
        [None, Some(Retry::Backoff), None, Some(Retry::Backoff), None]
    );
    assert!(results[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("has no batch handler"));
}

#[test]
fn a_batch_route_runs_one_delivery_through_run_too() {
    let mut handlers = HandlerRegistry::new();
    handlers
        .on_batch("OrderPlaced.orders", |batch: Batch<Order>| async move {
            let mut outcome = BatchOutcome::all_ok();
            outcome.fail(&batch[0], HandlerError::permanent("no"));
            outcome
        })
        .unwrap();
    let e = block_on(handlers.run(order(1))).unwrap_err();
    assert_eq!(e.retry(), Retry::Never);
    assert_eq!(e.to_string(), "no");
}

#[test]
fn options_that_cannot_gather_are_refused_and_nothing_is_registered() {
    let mut handlers = HandlerRegistry::new();
    let e = handlers
        .on_batch_with(
            "OrderPlaced.orders",
            BatchOptions::new().max_size(0),
            |_b: Batch<Order>| async {},
        )
        .unwrap_err();
    assert!(matches!(e, RegistryError::BadBatchOptions { .. }), "{e:?}");
    assert!(e.to_string().contains("max_size must be at least 1"), "{e}");
    assert!(handlers.get("OrderPlaced.orders").is_none());
}

#[test]
fn layers_keep_the_batch_routes() {
    let mut handlers = HandlerRegistry::new();
    handlers
        .on_batch("OrderPlaced.orders", |_b: Batch<Order>| async {})
        .unwrap();
    let (id, _) = handlers.routes().lookup("OrderPlaced.orders").unwrap();
    let mapped = handlers.map_handlers(|h| h.clone());
    assert_eq!(
        mapped.batch(id).map(|b| b.options),
        Some(BatchOptions::default())
    );
}
