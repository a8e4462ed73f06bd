//! `oxtail diagnose` as a user runs it: exact report for a fixture trace, the
//! unset-variable hint (exit 0), an unreadable file (exit 1), and no side effects
//! (no registry entry, nothing under `~/.oxtail`).

use std::process::{Command, Output};

fn diagnose(home: &std::path::Path, trace: Option<&std::path::Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxtail"));
    cmd.arg("diagnose")
        .env("HOME", home)
        .env_remove("MCP_TRACE_FILE")
        .env_remove("TMUX");
    if let Some(t) = trace {
        cmd.env("MCP_TRACE_FILE", t);
    }
    cmd.output().expect("run oxtail diagnose")
}

fn outcome(via: &str, status: &str) -> String {
    format!(
        "{{\"ts\":\"2026-05-13T09:41:07.123Z\",\"server_pid\":4242,\"event\":\"wake_outcome\",\"via\":\"{via}\",\"wake_status\":\"{status}\",\"target_session_id\":\"11111111-1111-1111-1111-111111111111\",\"client_type\":\"claude-code\"}}"
    )
}

#[test]
fn summarises_a_fixture_trace_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("trace.ndjson");
    let lines = [
        outcome("ask_peer", "fired"),
        "{\"ts\":\"x\",\"server_pid\":1,\"event\":\"ask_peer_start\",\"request_id\":\"r\"}".into(),
        "garbage {".into(),
        "".into(),
        "null".into(),
        outcome("ask_peer", "skipped_busy"),
        outcome("send_message", "skipped_no_target"),
        outcome("reply_default", "skipped_no_fresh_idle"),
        outcome("ask_peer", "fired"),
        "{\"event\":\"wake_outcome\"}".into(),
    ];
    std::fs::write(&trace, lines.join("\n") + "\n").unwrap();
    let out = diagnose(tmp.path(), Some(&trace));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "oxtail diagnose \u{2014} wake outcomes (6):\n  fired: 2\n  skipped_busy: 1\n  skipped_no_fresh_idle: 1\n  skipped_no_target: 1\n  unknown: 1\nby tool:\n  ask_peer: fired 2, skipped_busy 1\n  reply_default: skipped_no_fresh_idle 1\n  send_message: skipped_no_target 1\n  unknown: unknown 1\n"
    );
    assert!(
        !tmp.path().join(".oxtail").exists(),
        "diagnose must not touch ~/.oxtail"
    );
}

#[test]
fn no_trace_file_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let out = diagnose(tmp.path(), None);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("MCP_TRACE_FILE is not set"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2);
    assert!(!tmp.path().join(".oxtail").exists());
}

#[test]
fn unreadable_and_empty_trace_files() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope/trace.ndjson");
    let out = diagnose(tmp.path(), Some(&missing));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("could not read trace file"), "{text}");
    assert!(text.contains(missing.to_str().unwrap()));

    let empty = tmp.path().join("empty.ndjson");
    std::fs::write(&empty, "{\"event\":\"ask_peer_start\"}\n").unwrap();
    let out = diagnose(tmp.path(), Some(&empty));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("no wake_outcome events")
    );
}
