//! Receipt handles are read strictly.

use super::*;

#[test]
fn handle_parsing_is_strict() {
    assert_eq!(parse_handle(&ReceiptHandle::new("msg-12/3")), Some((12, 3)));
    for bad in [
        "msg-12",
        "msg-/3",
        "msg-+1/3",
        "msg-1/-3",
        "x-1/3",
        "msg-1/3/4",
    ] {
        assert_eq!(parse_handle(&ReceiptHandle::new(bad)), None, "{bad}");
    }
}
