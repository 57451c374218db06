//! [`Stats`] as JSON (`serde` feature): what a health endpoint or a report
//! file shows, read back unchanged.
#![cfg(feature = "serde")]

use std::time::Duration;

use iniesta_core::Stats;

/// Stats with every counter distinct, so a field written under another's
/// name is caught.
fn sample() -> Stats {
    let mut s = Stats::default();
    s.received = 1;
    s.receive_errors = 2;
    s.malformed = 3;
    s.dispatched = 4;
    s.succeeded = 5;
    s.failed = 6;
    s.panicked = 7;
    s.aborted = 8;
    s.skipped_busy = 9;
    s.acked_duplicates = 10;
    s.lock_unavailable = 11;
    s.no_handler = 12;
    s.unmatched = 13;
    s.deleted = 14;
    s.delete_failures = 15;
    s.complete_failures = 16;
    s.returned = 17;
    s.handler_time = Duration::from_millis(1_500);
    s
}

#[test]
fn stats_round_trip_through_json() {
    let stats = sample();
    let json = serde_json::to_string(&stats).expect("serialize");
    let back: Stats = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, stats, "{json}");
}

#[test]
fn fields_keep_their_names() {
    let value = serde_json::to_value(sample()).expect("serialize");
    assert_eq!(value["succeeded"], 5, "{value}");
    assert_eq!(value["acked_duplicates"], 10, "{value}");
    assert_eq!(value["handler_time"]["secs"], 1, "{value}");
    assert_eq!(value["handler_time"]["nanos"], 500_000_000, "{value}");
}

#[test]
fn missing_fields_read_as_zero() {
    // Stats gains counters over time; JSON written before one existed still
    // reads, with the new counter at zero.
    let back: Stats =
        serde_json::from_str(r#"{"received": 3, "deleted": 2}"#).expect("deserialize");
    let mut expected = Stats::default();
    expected.received = 3;
    expected.deleted = 2;
    assert_eq!(back, expected);
}
