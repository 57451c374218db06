//! Receipt handles are read strictly.

use super::*;

#[test]
fn handle_parsing_is_strict() {
    assert_eq!(parse_handle(&ReceiptHandle::new("msg-12/3")), Some((12, 3)));
    assert_eq!(parse_handle(&ReceiptHandle::new("msg-0/0")), Some((0, 0)));
    assert_eq!(
        parse_handle(&ReceiptHandle::new("msg-18446744073709551615/4294967295")),
        Some((u64::MAX, u32::MAX))
    );
    for bad in [
        "msg-12",
        "msg-/3",
        "msg-+1/3",
        "msg-1/-3",
        "x-1/3",
        "msg-1/3/4",
        "msg-01/3",
        "msg-1/03",
        "msg-1/",
        "/3",
        "msg-1//3",
        "msg-18446744073709551616/1",
        "msg-1/4294967296",
        "msg-1/3 ",
    ] {
        assert_eq!(parse_handle(&ReceiptHandle::new(bad)), None, "{bad}");
    }
}

#[test]
fn numbers_are_canonical_decimals_that_fit() {
    for (text, n) in [
        ("0", 0),
        ("7", 7),
        ("10", 10),
        ("18446744073709551615", u64::MAX),
    ] {
        assert_eq!(parse_number(text), Some(n), "{text}");
    }
    for bad in [
        "",
        "00",
        "01",
        "1a",
        "a1",
        " 1",
        "1 ",
        "+1",
        "-1",
        "18446744073709551616",
        "1.0",
        "١",
    ] {
        assert_eq!(parse_number(bad), None, "{bad:?}");
    }
}
