use clap::Parser;

use super::*;
use crate::cli::{Cli, Command};

fn event(event: &str, body: &str) -> LineEvent {
    LineEvent {
        event: event.to_owned(),
        body: body.to_owned(),
        version: None,
        group_id: None,
        deduplication_id: None,
    }
}

#[test]
fn a_line_gives_event_message_version_and_group() {
    let line = r#"{"event":"Paid","message":"hello","version":3,"group_id":"g-1"}"#;
    assert_eq!(
        parse_line(line),
        Ok(Some(LineEvent {
            version: Some(3),
            group_id: Some("g-1".to_owned()),
            ..event("Paid", "hello")
        }))
    );
    let line = r#"{"event":"Paid","message":"m","group_id":"g","deduplication_id":"d-1"}"#;
    assert_eq!(
        parse_line(line),
        Ok(Some(LineEvent {
            group_id: Some("g".to_owned()),
            deduplication_id: Some("d-1".to_owned()),
            ..event("Paid", "m")
        }))
    );
    // A message that is not a string is sent as its JSON text.
    assert_eq!(
        parse_line(r#"{"event":"Paid","message":{"n": 1, "tags":["a"]}}"#),
        Ok(Some(event("Paid", r#"{"n":1,"tags":["a"]}"#)))
    );
    assert_eq!(
        parse_line(r#"{"message":7,"event":"Paid"}"#),
        Ok(Some(event("Paid", "7")))
    );
    assert_eq!(parse_line("   "), Ok(None), "blank");
    assert_eq!(parse_line(""), Ok(None), "empty");
}

#[test]
fn a_bad_line_says_what_is_wrong() {
    let cases = [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("\"Paid\"", "not a string"),
        (r#"{"message":"x"}"#, "no `event`"),
        (r#"{"event":"Paid"}"#, "no `message`"),
        (r#"{"event":"","message":"x"}"#, "`event` is empty"),
        (
            r#"{"event":5,"message":"x"}"#,
            "`event` must be a string, not the number 5",
        ),
        (r#"{"event":"P","message":null}"#, "`message` is null"),
        (
            r#"{"event":"P","message":"x","version":-1}"#,
            "`version` must be a whole number",
        ),
        (r#"{"event":"P","message":"x","version":1.5}"#, "not 1.5"),
        (
            r#"{"event":"P","message":"x","version":4294967296}"#,
            "from 0 to 4294967295",
        ),
        (
            r#"{"event":"P","message":"x","group_id":""}"#,
            "`group_id` must be a non-empty string",
        ),
        (
            r#"{"event":"P","message":"x","deduplication_id":7}"#,
            "`deduplication_id` must be a non-empty string, not the number 7",
        ),
        (
            r#"{"event":"P","message":"x","groupid":"g"}"#,
            "unknown field `groupid`",
        ),
    ];
    for (line, expected) in cases {
        let error = parse_line(line).expect_err(line);
        assert!(error.contains(expected), "{line}: {error}");
    }
}

#[test]
fn lines_are_numbered_from_one_blank_ones_skipped_and_bad_ones_kept_apart() {
    let input = b"{\"event\":\"A\",\"message\":\"1\"}\r\n\
        \n\
        oops\n\
        {\"event\":\"B\",\"message\":\"2\"}\n\
        \xff\xfe\n\
        {\"event\":\"C\",\"message\":\"3\"}";
    let parsed = parse_lines(input);
    assert_eq!(
        parsed.events,
        vec![
            (1, event("A", "1")),
            (4, event("B", "2")),
            (6, event("C", "3"))
        ]
    );
    let numbers: Vec<usize> = parsed.errors.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, vec![3, 5]);
    assert!(
        parsed.errors[0].1.starts_with("not JSON"),
        "{:?}",
        parsed.errors
    );
    assert!(
        parsed.errors[1].1.starts_with("not UTF-8"),
        "{:?}",
        parsed.errors
    );
    // A final newline adds no line.
    assert_eq!(
        parse_lines(b"{\"event\":\"A\",\"message\":\"\"}\n")
            .events
            .len(),
        1
    );
    assert_eq!(parse_lines(b""), Parsed::default());
}

#[test]
fn failed_lines_are_listed_as_ranges() {
    assert_eq!(line_list(&[12, 3, 7, 8, 9]), "3, 7-9, 12");
    assert_eq!(line_list(&[5]), "5");
    assert_eq!(line_list(&[2, 1, 2]), "1-2");
    assert_eq!(line_list(&[]), "");
}

#[test]
fn publish_takes_either_an_event_or_a_file() {
    let cli = Cli::try_parse_from(["iniesta", "publish", "--file", "-", "--raw"]).unwrap();
    match cli.command {
        Command::Publish(p) => {
            assert_eq!(p.file.as_deref(), Some("-"));
            assert_eq!(p.event, None);
            assert!(p.raw);
            assert_eq!(p.version, 1, "the default version of every line");
        }
        other => panic!("parsed {other:?}"),
    }
    assert!(
        Cli::try_parse_from(["iniesta", "publish"]).is_err(),
        "neither"
    );
    assert!(
        Cli::try_parse_from(["iniesta", "publish", "-e", "A", "--file", "x"]).is_err(),
        "both"
    );
    assert!(
        Cli::try_parse_from(["iniesta", "publish", "-m", "{}", "--file", "x"]).is_err(),
        "a body with a file"
    );
}
