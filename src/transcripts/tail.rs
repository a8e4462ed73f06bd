//! The tail scan (`tail_scan:true`): read a transcript backwards in chunks and
//! stop once `limit` messages are collected (server spec §5.5).
//!
//! Invariants defended: raw bytes are split on `\n` before decoding, so a
//! character cut by a chunk boundary is rebuilt; the result equals the full
//! scan's messages for any chunk size; the file's first line is only parsed
//! after the loop (the original's quirk, reproduced on purpose).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{Budget, Format, Message, ReadResult, budget};

/// Default chunk size.
pub const DEFAULT_CHUNK: usize = 65_536;
/// Smallest chunk size honoured.
pub const MIN_CHUNK: usize = 16;

/// Tail-scan `path` with chunks of `chunk` bytes.
pub fn read_tail(path: &Path, format: Format, b: Budget, chunk: usize) -> ReadResult {
    let Ok(mut file) = File::open(path) else {
        return ReadResult::empty();
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let chunk = chunk.max(MIN_CHUNK) as u64;
    let mut pos = size;
    let mut leftover: Vec<u8> = Vec::new();
    let mut collected: Vec<Message> = Vec::new();
    let mut hit_limit = false;
    let mut buf: Vec<u8> = Vec::new();
    while pos > 0 && !hit_limit {
        let n = chunk.min(pos);
        pos -= n;
        buf.clear();
        buf.resize(n as usize, 0);
        if file.seek(SeekFrom::Start(pos)).is_err() || file.read_exact(&mut buf).is_err() {
            break;
        }
        buf.extend_from_slice(&leftover);
        let Some(first_nl) = buf.iter().position(|&c| c == b'\n') else {
            std::mem::swap(&mut leftover, &mut buf);
            continue;
        };
        // Complete lines, newest first; the segment before `first_nl` is the
        // (possibly partial) leftmost line and waits for the next chunk.
        for seg in buf[first_nl + 1..].rsplit(|&c| c == b'\n') {
            if seg.is_empty() {
                continue;
            }
            if let Some(m) = format.parse(&String::from_utf8_lossy(seg)) {
                collected.push(m);
                if collected.len() == b.limit {
                    hit_limit = true;
                    break;
                }
            }
        }
        leftover.clear();
        leftover.extend_from_slice(&buf[..first_nl]);
    }
    if !hit_limit
        && pos == 0
        && !leftover.is_empty()
        && let Some(m) = format.parse(&String::from_utf8_lossy(&leftover))
    {
        collected.push(m);
    }
    let exact = !hit_limit;
    collected.reverse();
    let total = collected.len();
    let (messages, bytes_truncated) = budget::apply_bytes(collected, b);
    ReadResult {
        total_messages: exact.then_some(total),
        messages,
        truncated: !exact || bytes_truncated,
        count_truncated: !exact,
        bytes_truncated,
        total_messages_exact: exact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcripts::read_full;
    use std::io::Write;

    fn claude(i: usize, text: &str) -> String {
        format!(
            r#"{{"type":"user","message":{{"role":"user","content":"{text} {i}"}},"timestamp":"t{i}"}}"#
        )
    }

    fn budget(limit: usize) -> Budget {
        Budget {
            limit,
            max_bytes: 1_000_000,
            include_timestamps: false,
        }
    }

    fn write(lines: &[String], trailing_newline: bool) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let mut text = lines.join("\n");
        if trailing_newline {
            text.push('\n');
        }
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn equals_full_scan_for_any_chunk_size() {
        let mut lines: Vec<String> = (0..12).map(|i| claude(i, "héllo 😀 wörld ✓")).collect();
        lines.insert(3, "{malformed".into());
        lines.insert(5, "   ".into());
        lines.insert(7, String::new());
        let f = write(&lines, true);
        let full = read_full(f.path(), Format::Claude, budget(1000));
        assert_eq!(full.total_messages, Some(12));
        for chunk in [16, 17, 23, 64, 4096] {
            let t = read_tail(f.path(), Format::Claude, budget(1000), chunk);
            assert_eq!(t, full, "chunk {chunk}");
        }
    }

    #[test]
    fn limit_and_first_line_quirk() {
        let lines: Vec<String> = (0..10).map(|i| claude(i, "m")).collect();
        let f = write(&lines, false);
        let t = read_tail(f.path(), Format::Claude, budget(3), 16);
        assert_eq!(
            t.messages
                .iter()
                .map(|m| m.text.as_str())
                .collect::<Vec<_>>(),
            ["m 7", "m 8", "m 9"]
        );
        assert!(t.count_truncated && t.truncated && !t.total_messages_exact);
        assert_eq!(t.total_messages, None);
        // Exactly `limit` messages with the first line a message: exact.
        let t = read_tail(f.path(), Format::Claude, budget(10), 64);
        assert!(t.total_messages_exact);
        assert_eq!(t.total_messages, Some(10));
        // Exactly `limit` messages after a non-message first line: the quirk.
        let mut with_meta = vec![r#"{"type":"session_meta"}"#.to_string()];
        with_meta.extend(lines);
        let f = write(&with_meta, true);
        let t = read_tail(f.path(), Format::Claude, budget(10), 64);
        assert!(t.count_truncated);
        assert_eq!(t.total_messages, None);
        let full = read_full(f.path(), Format::Claude, budget(10));
        assert!(!full.count_truncated);
        assert_eq!(t.messages, full.messages);
    }

    #[test]
    fn empty_and_missing_files() {
        let f = write(&[], false);
        assert_eq!(
            read_tail(f.path(), Format::Claude, budget(5), 16),
            ReadResult::empty()
        );
        let missing = Path::new("/nonexistent/oxtail/x.jsonl");
        assert_eq!(
            read_tail(missing, Format::Claude, budget(5), 16),
            ReadResult::empty()
        );
        assert_eq!(
            read_full(missing, Format::Claude, budget(5)),
            ReadResult::empty()
        );
    }

    #[test]
    fn honours_byte_budget_and_codex_filtering() {
        let l = |role: &str, t: &str| {
            format!(
                r#"{{"type":"response_item","payload":{{"type":"message","role":"{role}","content":[{{"type":"input_text","text":"{t}"}}]}}}}"#
            )
        };
        let lines = vec![
            r#"{"type":"session_meta","payload":{"cwd":"/x"}}"#.to_string(),
            l("user", "<environment_context>x</environment_context>"),
            l("user", &"a".repeat(400)),
            l("developer", "skip me"),
            l("assistant", &"b".repeat(400)),
        ];
        let f = write(&lines, true);
        let b = Budget {
            limit: 20,
            max_bytes: 500,
            include_timestamps: false,
        };
        let t = read_tail(f.path(), Format::Codex, b, 16);
        assert_eq!(t.messages.len(), 2);
        assert!(t.bytes_truncated && t.truncated && !t.count_truncated);
        assert!(t.messages[0].text.ends_with("…[+300B truncated]"));
        assert_eq!(t.total_messages, Some(2));
        assert_eq!(t, read_full(f.path(), Format::Codex, b));
    }
}
