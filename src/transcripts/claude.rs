//! Claude Code transcripts: `~/.claude/projects/<encoded cwd>/<session>.jsonl`.
//!
//! Invariant defended: a line is a message only when its `type` and
//! `message.role` are user/assistant and it has non-empty text; tool blocks,
//! thinking and images never leak into the text.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::{Message, block_text, chat_role};
use crate::store::paths::home_dir;

#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: Option<Value>,
    message: Option<Body>,
    #[serde(default)]
    timestamp: Value,
}

#[derive(Deserialize)]
struct Body {
    role: Option<Value>,
    #[serde(default)]
    content: Value,
}

/// One Claude Code JSONL line → a message, if it is one.
pub fn parse_line(line: &str) -> Option<Message> {
    if !line.contains("\"user\"") && !line.contains("\"assistant\"") {
        return None;
    }
    let l: Line = serde_json::from_str(line).ok()?;
    chat_role(&l.kind)?;
    let body = l.message?;
    let role = chat_role(&body.role)?;
    let text = match &body.content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => block_text(blocks, &["text"], |_| true),
        _ => String::new(),
    };
    Message::non_empty(role, text, l.timestamp)
}

/// Current Claude Code's directory name: every char that is not an ASCII
/// letter or digit becomes `-`.
pub fn encode_cwd(cwd: &str) -> String {
    cwd.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The original's directory name: only `/` becomes `-`.
pub fn encode_cwd_legacy(cwd: &str) -> String {
    cwd.replace('/', "-")
}

pub fn projects_dir() -> PathBuf {
    home_dir().join(".claude").join("projects")
}

/// Candidate project directories for `cwd`: current encoding first, then the
/// original's when it differs.
pub fn project_dirs(cwd: &str) -> Vec<PathBuf> {
    let base = projects_dir();
    let (new, old) = (encode_cwd(cwd), encode_cwd_legacy(cwd));
    let mut dirs = vec![base.join(&new)];
    if old != new {
        dirs.push(base.join(old));
    }
    dirs
}

/// The transcript path of `session_id`: Claude Code's current layout, or the
/// original's form when only that file exists.
pub fn transcript_path(session_id: &str, cwd: &str) -> String {
    let file = format!("{session_id}.jsonl");
    let dirs = project_dirs(cwd);
    let chosen = dirs
        .iter()
        .map(|d| d.join(&file))
        .find(|p| p.exists())
        .unwrap_or_else(|| dirs[0].join(&file));
    chosen.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_string_and_block_content() {
        let m = parse_line(
            r#"{"type":"user","message":{"role":"user","content":"hi"},"timestamp":"t"}"#,
        )
        .unwrap();
        assert_eq!((m.role.as_str(), m.text.as_str()), ("user", "hi"));
        assert_eq!(m.timestamp, Value::from("t"));
        let m = parse_line(
            r#"{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"tool_use","name":"x"},{"type":"thinking","thinking":"z"},{"type":"text","text":"b"}]}}"#,
        )
        .unwrap();
        assert_eq!(m.text, "a\nb");
        assert_eq!(m.timestamp, Value::Null);
        // Role comes from message.role even when type disagrees.
        let m =
            parse_line(r#"{"type":"user","message":{"role":"assistant","content":"x"}}"#).unwrap();
        assert_eq!(m.role, "assistant");
        assert_eq!(
            parse_line(r#"{"type":"user","message":{"role":"user","content":"   "}}"#)
                .unwrap()
                .text,
            "   "
        );
    }

    #[test]
    fn skips_non_messages() {
        for line in [
            r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":"x"}]}}"#,
            r#"{"type":"attachment","message":{"role":"user","content":"x"}}"#,
            r#"{"type":"user","message":{"role":"system","content":"x"}}"#,
            r#"{"type":"user","message":{"role":"user","content":""}}"#,
            r#"{"type":"user","message":{"role":"user","content":5}}"#,
            "null",
            "[\"user\"]",
            "{not json \"user\"",
            "",
        ] {
            assert!(parse_line(line).is_none(), "{line}");
        }
    }

    #[test]
    fn encodes_cwd_both_ways() {
        assert_eq!(
            encode_cwd("/home/u/.cache/x_y/proj"),
            "-home-u--cache-x-y-proj"
        );
        assert_eq!(
            encode_cwd_legacy("/home/u/.cache/x_y/proj"),
            "-home-u-.cache-x_y-proj"
        );
        assert_eq!(encode_cwd("/Users/a/dev/p"), "-Users-a-dev-p");
    }
}
