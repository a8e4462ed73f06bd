//! Golden-line tests of the mailbox record (messaging.md §2, §5.10): exact
//! bytes, key order, JSON.stringify-compatible escaping, the fixed-prefix
//! refusal, the validity rules and the re-serialisation rule.

use oxtail::store::error::StoreError;
use oxtail::store::message::{Message, NewMessage, has_fixed_prefix, new_hex_id};

const ASKER: &str = "22222222-2222-2222-2222-222222222222";
const REPLIER: &str = "11111111-1111-1111-1111-111111111111";

fn line(id: &str, at: u64, body: &str, from: Option<&str>, opts: &NewMessage<'_>) -> String {
    Message::build_with(id.into(), at, body, from, opts)
        .to_line()
        .unwrap()
}

#[test]
fn spec_example_ask_peer_outbound() {
    let l = line(
        "3f2a9c0d11e4b7a8",
        1767225600,
        "please audit src/x.rs — thanks",
        Some(ASKER),
        &NewMessage {
            request_id: Some("9b1c2d3e4f5a6b7c"),
            ..Default::default()
        },
    );
    assert_eq!(
        l,
        "{\"schema_version\":1,\"id\":\"3f2a9c0d11e4b7a8\",\"body\":\"please audit src/x.rs — thanks\",\"enqueued_at\":1767225600,\"body_bytes\":32,\"origin\":\"peer\",\"from_session_id\":\"22222222-2222-2222-2222-222222222222\",\"request_id\":\"9b1c2d3e4f5a6b7c\"}\n"
    );
}

#[test]
fn spec_example_reply() {
    let l = line(
        "c0ffee00c0ffee00",
        1767225642,
        "done: 2 issues\n1) \"foo\"",
        Some(REPLIER),
        &NewMessage {
            reply_to: Some("9b1c2d3e4f5a6b7c"),
            source_message_id: Some("3f2a9c0d11e4b7a8"),
            ..Default::default()
        },
    );
    assert_eq!(
        l,
        r#"{"schema_version":1,"id":"c0ffee00c0ffee00","body":"done: 2 issues\n1) \"foo\"","enqueued_at":1767225642,"body_bytes":23,"origin":"peer","from_session_id":"11111111-1111-1111-1111-111111111111","reply_to":"9b1c2d3e4f5a6b7c","source_message_id":"3f2a9c0d11e4b7a8"}"#.to_string()
            + "\n"
    );
}

#[test]
fn escaping_matches_json_stringify() {
    let body = "q\"b\\s/\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}é€😀\u{2028}";
    let l = line("0123456789abcdef", 1, body, None, &NewMessage::default());
    let expected = "{\"schema_version\":1,\"id\":\"0123456789abcdef\",\"body\":\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0000\\u001f\u{7f}é€😀\u{2028}\",\"enqueued_at\":1,\"body_bytes\":26,\"origin\":\"peer\"}\n";
    assert_eq!(l, expected);
    // Every other C0 control uses lowercase \u00xx.
    for c in (0u32..0x20).filter(|c| ![8, 9, 10, 12, 13].contains(c)) {
        let b = char::from_u32(c).unwrap().to_string();
        let l = line("0123456789abcdef", 1, &b, None, &NewMessage::default());
        assert!(l.contains(&format!("\"body\":\"\\u{c:04x}\"")), "{l}");
    }
}

#[test]
fn an_8192_byte_body_and_three_byte_characters() {
    let body = "x".repeat(8192);
    let l = line("00000000000000ff", 7, &body, None, &NewMessage::default());
    assert_eq!(
        l,
        format!(
            "{{\"schema_version\":1,\"id\":\"00000000000000ff\",\"body\":\"{body}\",\"enqueued_at\":7,\"body_bytes\":8192,\"origin\":\"peer\"}}\n"
        )
    );
    let euro = "€".repeat(2730);
    let m = Message::build(&euro, None, &NewMessage::default());
    assert!(m.to_line().unwrap().contains("\"body_bytes\":8190,"));
}

#[test]
fn fresh_ids_are_16_lowercase_hex_and_distinct() {
    let ids: std::collections::HashSet<String> = (0..200).map(|_| new_hex_id()).collect();
    assert_eq!(ids.len(), 200);
    for id in &ids {
        assert_eq!(id.len(), 16);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
    let m = Message::build("abc", None, &NewMessage::default());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    assert!(
        (m.enqueued_at().unwrap() - now).abs() < 5.0,
        "seconds, not ms"
    );
}

#[test]
fn optional_fields_only_when_non_empty() {
    let l = line(
        "0123456789abcdef",
        1,
        "b",
        Some(""),
        &NewMessage {
            request_id: Some(""),
            reply_to: None,
            source_message_id: Some(""),
            answers_message_id: Some(""),
            to_session_id: Some(""),
        },
    );
    assert!(l.ends_with("\"origin\":\"peer\"}\n"), "{l}");
}

/// Issue 13: a late reply carries `answers_message_id` as the LAST key, after
/// the 0.14 ones (the fixed prefix and 0.14's key order are untouched), and a
/// requeue keeps it.
#[test]
fn a_late_reply_marks_its_question_in_a_new_last_key() {
    let l = line(
        "c0ffee00c0ffee00",
        1767225642,
        "42",
        Some(REPLIER),
        &NewMessage {
            reply_to: Some("9b1c2d3e4f5a6b7c"),
            source_message_id: Some("3f2a9c0d11e4b7a8"),
            answers_message_id: Some("3f2a9c0d11e4b7a8"),
            ..Default::default()
        },
    );
    assert!(
        l.starts_with("{\"schema_version\":1,\"id\":\"c0ffee00c0ffee00\",\"body\":\"42\""),
        "{l}"
    );
    assert!(
        l.ends_with("\"source_message_id\":\"3f2a9c0d11e4b7a8\",\"answers_message_id\":\"3f2a9c0d11e4b7a8\"}\n"),
        "{l}"
    );
    let parsed = Message::parse_line(l.trim_end()).unwrap();
    assert_eq!(parsed.answers_message_id(), Some("3f2a9c0d11e4b7a8"));
    assert_eq!(parsed.to_line().unwrap(), l, "requeue keeps it");
}

#[test]
fn reserialisation_rule() {
    // Unknown keys dropped, missing enqueued_at stays missing, null body_bytes
    // recomputed, missing origin becomes "peer", falsy optionals skipped,
    // key order fixed.
    let m = Message::parse_line(
        r#"{"extra":1,"reply_to":"","body":"héllo","id":"aaaaaaaaaaaaaaaa","schema_version":1,"body_bytes":null,"from_session_id":"s","request_id":0}"#,
    )
    .unwrap();
    assert_eq!(
        m.to_line().unwrap(),
        "{\"schema_version\":1,\"id\":\"aaaaaaaaaaaaaaaa\",\"body\":\"héllo\",\"body_bytes\":6,\"origin\":\"peer\",\"from_session_id\":\"s\"}\n"
    );
    // body_bytes is copied, not re-checked; origin kept.
    let m = Message::parse_line(
        r#"{"schema_version":1,"id":"aaaaaaaaaaaaaaaa","body":"x","enqueued_at":5,"body_bytes":99,"origin":"other"}"#,
    )
    .unwrap();
    assert!(
        m.to_line()
            .unwrap()
            .contains("\"body_bytes\":99,\"origin\":\"other\"")
    );
}

#[test]
fn lines_without_the_fixed_prefix_are_refused() {
    for bad in [
        r#"{"schema_version":1,"id":"AAAAAAAAAAAAAAAA","body":"x"}"#,
        r#"{"schema_version":1,"id":"abc","body":"x"}"#,
        r#"{"schema_version":2,"id":"aaaaaaaaaaaaaaaa","body":"x"}"#,
        r#"{"schema_version":1,"id":"aaaaaaaaaaaaaaaa","body":5}"#,
        r#"{"schema_version":"1","id":"aaaaaaaaaaaaaaaa","body":"x"}"#,
    ] {
        let m = Message::parse_line(bad).unwrap();
        let err = m.to_line().unwrap_err();
        assert!(matches!(err, StoreError::InvalidRecord { .. }), "{bad}");
    }
    assert!(has_fixed_prefix(
        &Message::build("x", None, &NewMessage::default())
            .to_line()
            .unwrap()
    ));
}

#[test]
fn validity_rules() {
    let drainable = |s: &str| Message::parse_line(s).is_some_and(|m| m.is_drainable());
    assert!(drainable(r#"{"schema_version":1,"id":"x","body":""}"#));
    assert!(drainable(r#"{"schema_version":1.0,"id":"x","body":"b"}  "#));
    assert!(drainable(
        "{\"schema_version\":1,\"id\":\"x\",\"body\":\"b\"}\r"
    ));
    assert!(!drainable(r#"{"schema_version":"1","id":"x","body":"b"}"#));
    assert!(!drainable(r#"{"schema_version":1,"id":7,"body":"b"}"#));
    assert!(!drainable(r#"{"schema_version":1,"id":"x"}"#));
    assert!(!drainable("null"));
    assert!(!drainable("[1]"));
    assert!(!drainable("   "));
    assert!(!drainable(
        "\u{feff}{\"schema_version\":1,\"id\":\"x\",\"body\":\"b\"}"
    ));
    assert!(!drainable(
        "{\"schema_version\":1,\"id\":\"x\",\"body\":\"b\"}{"
    ));
}

#[test]
fn unknown_keys_are_kept_in_the_record_json() {
    let src = r#"{"schema_version":1,"id":"aaaaaaaaaaaaaaaa","body":"x","zz":{"k":[1,2]},"enqueued_at":3}"#;
    let m = Message::parse_line(src).unwrap();
    assert_eq!(m.to_record_json(), src);
}
