//! Codex rollouts: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread>.jsonl`
//! (`~/.codex/sessions` without `CODEX_HOME`).
//!
//! Invariant defended: only user/assistant `response_item` messages count, and
//! blocks Codex injects itself (AGENTS.md preamble, `<environment_context>`)
//! are dropped while user prose that merely mentions them is kept.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::{Message, block_text, chat_role, dates, is_js_space};

#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: Option<Value>,
    payload: Option<Payload>,
    #[serde(default)]
    timestamp: Value,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: Option<Value>,
    role: Option<Value>,
    #[serde(default)]
    content: Value,
}

/// Whether a text block is one Codex injected (not something the user wrote).
pub fn is_injected(text: &str) -> bool {
    if text
        .trim_start_matches(is_js_space)
        .starts_with("# AGENTS.md instructions for ")
    {
        return true;
    }
    let t = text.trim_matches(is_js_space);
    t.starts_with("<environment_context>") && t.ends_with("</environment_context>")
}

/// One Codex rollout line → a message, if it is one.
pub fn parse_line(line: &str) -> Option<Message> {
    if !line.contains("\"response_item\"") {
        return None;
    }
    let l: Line = serde_json::from_str(line).ok()?;
    if l.kind.as_ref()?.as_str()? != "response_item" {
        return None;
    }
    let p = l.payload?;
    if p.kind.as_ref()?.as_str()? != "message" {
        return None;
    }
    let role = chat_role(&p.role)?;
    let blocks = p.content.as_array()?;
    let text = block_text(blocks, &["input_text", "output_text"], |t| {
        t.trim_matches(is_js_space).is_empty() || !is_injected(t)
    });
    Message::non_empty(role, text, l.timestamp)
}

/// `$CODEX_HOME/sessions` when `CODEX_HOME` is set and non-empty, else
/// `~/.codex/sessions`.
pub fn sessions_dir() -> PathBuf {
    crate::store::paths::codex_home().join("sessions")
}

/// Existing day directories of the last three days (UTC and local dates).
pub fn recent_dirs() -> Vec<PathBuf> {
    let base = sessions_dir();
    if !base.is_dir() {
        return Vec::new();
    }
    dates::recent_day_dirs(crate::clock::now_ms())
        .into_iter()
        .map(|d| base.join(d))
        .filter(|d| d.is_dir())
        .collect()
}

/// The first `*.jsonl` in the recent day directories whose name contains
/// `session_id`, or `None`.
pub fn find_rollout(session_id: &str) -> Option<String> {
    if session_id.is_empty() {
        return None;
    }
    for dir in recent_dirs() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for de in rd.filter_map(Result::ok) {
            let name = de.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".jsonl") && name.contains(session_id) {
                return Some(de.path().to_string_lossy().into_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(role: &str, blocks: &str) -> String {
        format!(
            r#"{{"timestamp":"ts","type":"response_item","payload":{{"type":"message","role":"{role}","content":[{blocks}]}}}}"#
        )
    }

    #[test]
    fn injected_blocks() {
        assert!(is_injected("# AGENTS.md instructions for /x\n..."));
        assert!(is_injected(
            "  \u{feff}<environment_context>\n<cwd>/x</cwd>\n</environment_context>\n"
        ));
        assert!(!is_injected("I read <environment_context> in the docs"));
        assert!(!is_injected(""));
        assert!(!is_injected("   "));
    }

    #[test]
    fn parses_and_filters() {
        let injected =
            r#"{"type":"input_text","text":"<environment_context>x</environment_context>"}"#;
        assert!(parse_line(&line("user", injected)).is_none());
        let mixed = format!(r#"{injected},{{"type":"input_text","text":"real"}}"#);
        assert_eq!(parse_line(&line("user", &mixed)).unwrap().text, "real");
        let out = r#"{"type":"output_text","text":"done"}"#;
        let m = parse_line(&line("assistant", out)).unwrap();
        assert_eq!((m.role.as_str(), m.text.as_str()), ("assistant", "done"));
        assert_eq!(m.timestamp, Value::from("ts"));
        assert!(parse_line(&line("developer", out)).is_none());
        let ws = r#"{"type":"input_text","text":"  "},{"type":"input_text","text":"hi"},{"type":"input_text","text":""}"#;
        assert_eq!(parse_line(&line("user", ws)).unwrap().text, "  \nhi\n");
        assert!(parse_line(r#"{"type":"session_meta","payload":{"id":"x"}}"#).is_none());
        assert!(
            parse_line(r#"{"type":"response_item","payload":{"type":"function_call"}}"#).is_none()
        );
    }
}
