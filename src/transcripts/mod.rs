//! Peer transcripts: where Claude Code and Codex write them, how one line
//! becomes a message, and the budgeted reads of `read_session` (server spec §5).
//!
//! Invariants defended:
//! - a read never returns more than `limit` messages or (text) more than
//!   `max_bytes` bytes plus one truncation marker, always keeping the newest;
//! - the full scan and the tail scan return identical messages for any chunk
//!   size; malformed, blank or non-object lines are skipped, never fatal;
//! - a missing transcript is an empty, exact result, not an error.

pub mod budget;
pub mod claude;
pub mod codex;
pub mod dates;
pub mod tail;
pub mod tool_use;

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::store::registry::ClientType;

/// One transcript message as `read_session` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub role: String,
    pub text: String,
    /// The line's top-level `timestamp` as-is (null when absent or gated off).
    pub timestamp: Value,
}

impl Message {
    /// A message when `text` is non-empty (both formats drop empty ones).
    fn non_empty(role: &str, text: String, timestamp: Value) -> Option<Message> {
        (!text.is_empty()).then(|| Message {
            role: role.to_string(),
            text,
            timestamp,
        })
    }
}

/// `"user"` or `"assistant"`, the only roles either format reports.
fn chat_role(v: &Option<Value>) -> Option<&str> {
    match v.as_ref()?.as_str()? {
        r @ ("user" | "assistant") => Some(r),
        _ => None,
    }
}

/// The `text` of the content blocks whose `type` is one of `types` and whose
/// text passes `keep`, joined with `\n` (other blocks never leak in).
fn block_text(blocks: &[Value], types: &[&str], keep: impl Fn(&str) -> bool) -> String {
    let parts: Vec<&str> = blocks
        .iter()
        .filter(|b| {
            b.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| types.contains(&t))
        })
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .filter(|t| keep(t))
        .collect();
    parts.join("\n")
}

/// Which line parser applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Claude,
    Codex,
}

impl Format {
    /// Codex rollouts for `codex`, the Claude reader for everything else.
    pub fn for_client(t: Option<ClientType>) -> Format {
        if t == Some(ClientType::Codex) {
            Format::Codex
        } else {
            Format::Claude
        }
    }

    /// Parse one JSONL line; `None` when it is not a message.
    pub fn parse(self, line: &str) -> Option<Message> {
        match self {
            Format::Claude => claude::parse_line(line),
            Format::Codex => codex::parse_line(line),
        }
    }
}

/// The caller's budget, already clamped (see [`budget::clamp_limit`] etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: usize,
    pub max_bytes: usize,
    pub include_timestamps: bool,
}

/// The transcript part of a `read_session` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadResult {
    pub messages: Vec<Message>,
    pub truncated: bool,
    pub count_truncated: bool,
    pub bytes_truncated: bool,
    pub total_messages: Option<usize>,
    pub total_messages_exact: bool,
}

impl ReadResult {
    /// The result for a missing or empty file.
    pub fn empty() -> ReadResult {
        ReadResult {
            messages: Vec::new(),
            truncated: false,
            count_truncated: false,
            bytes_truncated: false,
            total_messages: Some(0),
            total_messages_exact: true,
        }
    }
}

/// Full scan: parse every line, keep the last `limit`, then the byte budget.
pub fn read_full(path: &Path, format: Format, b: Budget) -> ReadResult {
    let Ok(bytes) = std::fs::read(path) else {
        return ReadResult::empty();
    };
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<Message> = text
        .split('\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| format.parse(l))
        .collect();
    let total = all.len();
    let count_truncated = total > b.limit;
    let kept = all
        .into_iter()
        .skip(total.saturating_sub(b.limit))
        .collect();
    let (messages, bytes_truncated) = budget::apply_bytes(kept, b);
    ReadResult {
        messages,
        truncated: count_truncated || bytes_truncated,
        count_truncated,
        bytes_truncated,
        total_messages: Some(total),
        total_messages_exact: true,
    }
}

/// Read with the full scan, or the tail scan when `tail_scan` is set.
pub fn read(path: &Path, format: Format, b: Budget, tail_scan: bool) -> ReadResult {
    if tail_scan {
        tail::read_tail(path, format, b, tail::DEFAULT_CHUNK)
    } else {
        read_full(path, format, b)
    }
}

/// Where the transcript of `(client_type, session_id)` lives, if known.
pub fn transcript_path_for(client_type: ClientType, session_id: &str, cwd: &str) -> Option<String> {
    match client_type {
        ClientType::ClaudeCode => Some(claude::transcript_path(session_id, cwd)),
        ClientType::Codex => codex::find_rollout(session_id),
        ClientType::Unknown => None,
    }
}

/// JavaScript's `trim` whitespace set: Unicode white space (minus U+0085, which
/// JavaScript does not trim) plus U+FEFF.
pub fn is_js_space(c: char) -> bool {
    (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}'
}
