//! Time arithmetic: it saturates at both ends.

use super::*;

#[test]
fn arithmetic_saturates() {
    assert_eq!(Time::MAX + Duration::from_secs(1), Time::MAX);
    assert_eq!(Time::ZERO - Duration::from_secs(1), Time::ZERO);
    assert_eq!(
        Time::from_millis(5).saturating_duration_since(Time::from_millis(9)),
        Duration::ZERO
    );
    assert_eq!(
        Time::from_millis(9).saturating_duration_since(Time::from_millis(5)),
        Duration::from_millis(4)
    );
}
