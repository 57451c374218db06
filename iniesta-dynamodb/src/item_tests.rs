use super::*;
use crate::timing::CLEANUP_GRACE;

fn record() -> StoredItem {
    StoredItem {
        id: "sqs:event:1".into(),
        token: "00ff".into(),
        state: ItemState::Done,
        expires_at: 1_700_000_000_500,
    }
}

#[test]
fn items_round_trip() {
    let item = record().to_item();
    assert_eq!(StoredItem::from_item(&item), Ok(record()));
    assert_eq!(item[STATE], AttributeValue::S("done".into()));
    assert_eq!(
        item[TTL],
        AttributeValue::N((1_700_000_001 + CLEANUP_GRACE.as_secs()).to_string())
    );
    let lock = StoredItem {
        state: ItemState::Locked,
        ..record()
    };
    assert_eq!(lock.to_item()[STATE], AttributeValue::S("lock".into()));
    assert_eq!(StoredItem::from_item(&lock.to_item()), Ok(lock));
}

#[test]
fn an_item_lives_through_its_last_millisecond() {
    let r = record();
    assert!(r.live_at(r.expires_at - 1));
    assert!(r.live_at(r.expires_at));
    assert!(!r.live_at(r.expires_at + 1));
}

#[test]
fn foreign_items_are_named_errors() {
    let mut item = record().to_item();
    item.insert(STATE.into(), AttributeValue::S("held".into()));
    assert!(StoredItem::from_item(&item)
        .unwrap_err()
        .contains("`state`"));
    let mut item = record().to_item();
    item.insert(EXPIRES_AT.into(), AttributeValue::S("soon".into()));
    assert!(StoredItem::from_item(&item)
        .unwrap_err()
        .contains("`expires_at`"));
    let mut item = record().to_item();
    item.insert(EXPIRES_AT.into(), AttributeValue::N("1.5".into()));
    assert!(StoredItem::from_item(&item)
        .unwrap_err()
        .contains("whole number"));
    let mut item = record().to_item();
    item.remove(TOKEN);
    assert!(StoredItem::from_item(&item)
        .unwrap_err()
        .contains("`token`"));
}
