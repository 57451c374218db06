use super::*;
use crate::item::{DONE, EXPIRES_AT, ID, STATE, TOKEN};

#[test]
fn every_condition_compares_expiry() {
    for condition in [ACQUIRE_IF, COMPLETE_IF, HELD_IF] {
        assert!(condition.contains("#exp"), "{condition}");
        assert!(condition.contains(":now"), "{condition}");
    }
}

#[test]
fn placeholders_name_the_attributes() {
    let n = names(&["#id", "#tok", "#st", "#exp", "#ttl"]);
    assert_eq!(n["#id"], ID);
    assert_eq!(n["#tok"], TOKEN);
    assert_eq!(n["#st"], STATE);
    assert_eq!(n["#exp"], EXPIRES_AT);
    assert_eq!(n["#ttl"], "ttl");
    assert_eq!(names(&["#exp"]).len(), 1);
}

#[test]
fn refusals_carry_the_item_when_there_is_one() {
    assert_eq!(refused(None, "t", "k"), Ok(Write::Refused(None)));
    assert_eq!(
        refused(Some(&HashMap::new()), "t", "k"),
        Ok(Write::Refused(None))
    );
    let record = StoredItem {
        id: "k".into(),
        token: "ab".into(),
        state: ItemState::Done,
        expires_at: 9,
    };
    assert_eq!(
        refused(Some(&record.to_item()), "t", "k"),
        Ok(Write::Refused(Some(record.clone())))
    );
    let mut foreign = record.to_item();
    foreign.insert(STATE.into(), AttributeValue::S(format!("{DONE}!")));
    let err = refused(Some(&foreign), "locks", "k").unwrap_err();
    assert!(err.contains("`k`") && err.contains("`locks`"), "{err}");
}
