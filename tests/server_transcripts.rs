//! Transcript readers against committed fixtures of both clients and a large
//! generated transcript (server spec §5).

use std::io::Write;
use std::path::Path;

use oxtail::transcripts::{Budget, Format, read, read_full, tail};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/transcripts")
        .join(name)
}

fn budget(limit: usize) -> Budget {
    Budget {
        limit,
        max_bytes: 24_000,
        include_timestamps: true,
    }
}

fn texts(r: &oxtail::transcripts::ReadResult) -> Vec<(&str, &str)> {
    r.messages
        .iter()
        .map(|m| (m.role.as_str(), m.text.as_str()))
        .collect()
}

#[test]
fn claude_fixture() {
    let r = read_full(&fixture("claude.jsonl"), Format::Claude, budget(20));
    assert_eq!(
        texts(&r),
        [
            ("user", "Please fix the failing parser test."),
            ("assistant", "I'll run the tests first."),
            (
                "assistant",
                "The parser drops the last token.\nFixed it in src/parser.rs."
            ),
            ("user", "Stop hook feedback:\nA peer says hi"),
        ]
    );
    assert_eq!(r.total_messages, Some(4));
    assert_eq!(r.messages[0].timestamp, "2026-05-01T10:00:01.000Z");
    for chunk in [16, 17, 64, 4096] {
        assert_eq!(
            tail::read_tail(&fixture("claude.jsonl"), Format::Claude, budget(20), chunk),
            r
        );
    }
}

#[test]
fn codex_fixture() {
    let r = read_full(&fixture("codex.jsonl"), Format::Codex, budget(20));
    assert_eq!(
        texts(&r),
        [
            ("user", "Add a --verbose flag to the CLI."),
            ("assistant", "Added --verbose; see src/cli.rs.")
        ]
    );
    assert_eq!(r.total_messages, Some(2));
    assert!(!r.truncated);
    let t = read(&fixture("codex.jsonl"), Format::Codex, budget(20), true);
    assert_eq!(t, r);
    // Exactly `limit` messages behind a session_meta first line: the tail-scan quirk.
    let t = read(&fixture("codex.jsonl"), Format::Codex, budget(2), true);
    assert_eq!(texts(&t), texts(&r));
    assert!(t.count_truncated && t.total_messages.is_none());
}

#[test]
fn tail_scan_of_a_100_mb_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let filler = "x".repeat(1000);
    let mut i = 0u64;
    let mut written = 0u64;
    while written < 100 * 1024 * 1024 {
        let line = format!(
            "{{\"type\":\"assistant\",\"message\":{{\"role\":\"assistant\",\"content\":[{{\"type\":\"text\",\"text\":\"msg {i} {filler}\"}},{{\"type\":\"tool_use\",\"id\":\"t\",\"input\":{{}}}}]}},\"timestamp\":\"2026-01-01T00:00:00Z\"}}\n"
        );
        written += line.len() as u64;
        f.write_all(line.as_bytes()).unwrap();
        i += 1;
    }
    f.flush().unwrap();
    drop(f);
    let b = Budget {
        limit: 20,
        max_bytes: 24_000,
        include_timestamps: false,
    };
    let r = read(&path, Format::Claude, b, true);
    assert_eq!(r.messages.len(), 20);
    assert!(
        r.messages
            .last()
            .unwrap()
            .text
            .starts_with(&format!("msg {} ", i - 1))
    );
    assert!(r.count_truncated && !r.total_messages_exact && r.total_messages.is_none());
}
