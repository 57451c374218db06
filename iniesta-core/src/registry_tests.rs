//! The registry: lists registered all or nothing, routing (an exact name,
//! then the longest prefix, then the default handler) to handler ids, and
//! wrapping every handler.

use super::*;

fn ok(_d: Delivery) -> Result<(), String> {
    Ok(())
}

#[test]
fn list_registration_is_all_or_nothing() {
    let mut r = HandlerRegistry::new();
    r.on_sync("B.s", ok).unwrap();
    assert_eq!(
        r.on_sync(["A.s", "B.s"], ok).unwrap_err(),
        RegistryError::Duplicate("B.s".into())
    );
    assert!(r.get("A.s").is_none(), "A.s must not be registered");
    assert_eq!(
        r.on_sync(["C.s", "C.s"], ok).unwrap_err(),
        RegistryError::Duplicate("C.s".into())
    );
    assert!(r.get("C.s").is_none());
    assert_eq!(
        r.on_sync(Vec::<String>::new(), ok).unwrap_err(),
        RegistryError::NoEvent
    );
    assert_eq!(r.on_sync("", ok).unwrap_err(), RegistryError::NoEvent);
}

#[test]
fn prefixes_route_as_filters_match_and_exact_names_win() {
    let mut r = HandlerRegistry::new();
    r.on_sync("Order.*", ok).unwrap();
    r.on_sync("Order.paid.*", ok).unwrap();
    r.on_sync("Order.created", ok).unwrap();
    assert_eq!(r.route("Order.created"), Some(Route::Event));
    assert_eq!(r.route("Order.refunded"), Some(Route::Prefix));
    assert_eq!(r.route("Invoice.sent"), None);
    // The longest prefix wins.
    let exact = r.get("Order.created").unwrap().clone();
    let short = r.get("Order.refunded").unwrap().clone();
    let long = r.get("Order.paid.card").unwrap().clone();
    assert!(!Arc::ptr_eq(&short, &long));
    assert!(!Arc::ptr_eq(&short, &exact));
    assert!(Arc::ptr_eq(&short, r.get("Order.x").unwrap()));
    assert_eq!(r.events(), vec!["Order.*", "Order.created", "Order.paid.*"]);
    assert_eq!(
        r.on_sync("Order.*", ok).unwrap_err(),
        RegistryError::Duplicate("Order.*".into())
    );
    for bad in ["Or*der", "*", "Order*", "Order. x"] {
        assert!(
            matches!(r.on_sync(bad, ok), Err(RegistryError::BadName { .. })),
            "{bad} was accepted"
        );
    }
}

#[test]
fn map_handlers_wraps_every_route() {
    let mut r = HandlerRegistry::new();
    r.on_sync(["A.s", "P.*"], ok).unwrap();
    r.on_default(|| async {}).unwrap();
    let wrapped = r.map_handlers(|_| Arc::new(SyncFnHandler(ok)) as Arc<dyn Handler>);
    for event in ["A.s", "P.x", "Z.z"] {
        assert!(!Arc::ptr_eq(
            r.get(event).unwrap(),
            wrapped.get(event).unwrap()
        ));
        assert_eq!(r.route(event), wrapped.route(event));
    }
}

#[test]
fn default_handler_routing() {
    let mut r = HandlerRegistry::new();
    r.on_sync("A.s", ok).unwrap();
    assert_eq!(r.route("A.s"), Some(Route::Event));
    assert_eq!(r.route("Z.s"), None);
    r.on_default(|| async {}).unwrap();
    assert_eq!(r.route("Z.s"), Some(Route::Default));
    assert!(r.set_default(SyncFnHandler(ok)).is_err());
    assert_eq!(r.events(), vec!["A.s"]);
}

#[test]
fn routes_name_each_handler_by_its_place_in_the_registry() {
    let mut r = HandlerRegistry::new();
    r.on_sync(["A.s", "B.s"], ok).unwrap();
    r.on_default(|| async {}).unwrap();
    r.on_sync("P.*", ok).unwrap();
    // A refused registration takes no id.
    assert!(r.on_sync("A.s", ok).is_err());
    r.on_sync("C.s", ok).unwrap();
    let routes = r.routes();
    assert_eq!(routes.lookup("A.s"), Some((HandlerId(0), Route::Event)));
    assert_eq!(routes.lookup("B.s"), Some((HandlerId(0), Route::Event)));
    assert_eq!(routes.lookup("Z.s"), Some((HandlerId(1), Route::Default)));
    assert_eq!(routes.lookup("P.x"), Some((HandlerId(2), Route::Prefix)));
    assert_eq!(routes.lookup("C.s"), Some((HandlerId(3), Route::Event)));
    for event in ["A.s", "Z.s", "P.x", "C.s"] {
        let (id, _) = routes.lookup(event).unwrap();
        assert!(Arc::ptr_eq(r.handler(id).unwrap(), r.get(event).unwrap()));
    }
    assert!(r.handler(HandlerId(4)).is_none());
    // Wrapped handlers keep their ids.
    let wrapped = r.map_handlers(|h| h.clone());
    assert_eq!(wrapped.routes(), routes);
}
