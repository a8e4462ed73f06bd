//! Which Claude Code transcript holds a `tool_use` id (beyond the original).
//!
//! Every `tools/call` Claude Code sends carries `_meta["claudecode/toolUseId"]`,
//! the id of the `tool_use` block that asked for it, and Claude Code has
//! written that block to the session's transcript
//! (`<projects dir>/<session id>.jsonl`) before the call arrives (observed with
//! 2.1.197 and 2.1.332). The id is random per call, so the one top-level
//! transcript that holds it names the session that made the call — a fact,
//! not a "newest transcript" guess.
//!
//! Invariants defended: bounded work (the tail of each file, recently written
//! files only, a capped number of them); subagent transcripts (in
//! `<session>/subagents/`) are never candidates; only file names that are safe
//! ids are returned; any I/O error is "not found".

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How much of a transcript's end is searched.
pub const TAIL_BYTES: u64 = 1 << 20;
/// Chunk size of the backwards search.
const CHUNK: u64 = 64 * 1024;
/// Only transcripts written this recently can hold a call being served now.
pub const RECENT: Duration = Duration::from_secs(120);
/// At most this many candidate transcripts are searched.
const MAX_CANDIDATES: usize = 32;

/// The quoted form searched for (`"<id>"`), so an id never matches a longer one.
fn needle(tool_use_id: &str) -> Vec<u8> {
    format!("\"{tool_use_id}\"").into_bytes()
}

/// Whether the last [`TAIL_BYTES`] of `path` contain `"<tool_use_id>"`.
pub fn tail_contains(path: &Path, tool_use_id: &str) -> bool {
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return false;
    };
    let needle = needle(tool_use_id);
    let floor = len.saturating_sub(TAIL_BYTES);
    let mut end = len;
    let mut buf = Vec::new();
    while end > floor {
        // Overlap chunks by the needle length so a match on a boundary counts.
        let start = end.saturating_sub(CHUNK).max(floor);
        let want = (end - start) as usize + needle.len().min((len - end) as usize);
        buf.resize(want, 0);
        if f.seek(SeekFrom::Start(start)).is_err() || f.read_exact(&mut buf).is_err() {
            return false;
        }
        if memchr::memmem::find(&buf, &needle).is_some() {
            return true;
        }
        end = start;
    }
    false
}

/// Session ids (file stems) of the recently written top-level `*.jsonl`
/// transcripts in `dirs`, other than `exclude`, whose tail holds the id.
pub fn holders(dirs: &[PathBuf], tool_use_id: &str, exclude: Option<&Path>) -> Vec<String> {
    let now = SystemTime::now();
    let mut candidates: Vec<(SystemTime, PathBuf, String)> = Vec::new();
    for dir in dirs {
        let Ok(rd) = fs::read_dir(dir) else { continue };
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".jsonl")) else {
                continue;
            };
            if !crate::identity::is_safe_id(stem) {
                continue;
            }
            let path = ent.path();
            if exclude == Some(path.as_path()) {
                continue;
            }
            let Ok(meta) = ent.metadata() else { continue };
            let Ok(mtime) = meta.modified() else { continue };
            let recent = now.duration_since(mtime).map_or(true, |age| age <= RECENT);
            if meta.is_file() && recent {
                candidates.push((mtime, path, stem.to_string()));
            }
        }
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    candidates.truncate(MAX_CANDIDATES);
    let mut out: Vec<String> = Vec::new();
    for (_, path, stem) in candidates {
        if tail_contains(&path, tool_use_id) && !out.contains(&stem) {
            out.push(stem);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_id_at_any_offset_and_only_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("s.jsonl");
        assert!(!tail_contains(&p, "toolu_1"));
        // Put the id across every chunk boundary position near 64 KiB.
        for pad in [0usize, 1, 65_530, 65_536 - 5, 65_536, 200_000] {
            let mut text = "x".repeat(pad);
            text.push_str(r#"{"type":"tool_use","id":"toolu_abc"}"#);
            text.push_str(&"y".repeat(70_000));
            fs::write(&p, &text).unwrap();
            assert!(tail_contains(&p, "toolu_abc"), "pad {pad}");
            assert!(!tail_contains(&p, "toolu_ab"), "pad {pad}");
        }
        let mut far = r#""toolu_old""#.to_string();
        far.push_str(&"z".repeat(TAIL_BYTES as usize + 10));
        fs::write(&p, far).unwrap();
        assert!(!tail_contains(&p, "toolu_old"), "beyond the tail");
    }

    #[test]
    fn holders_are_top_level_safe_named_recent_transcripts() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().to_path_buf();
        let line = r#"{"message":{"content":[{"type":"tool_use","id":"toolu_T"}]}}"#;
        fs::write(d.join("new-session.jsonl"), line).unwrap();
        fs::write(d.join("other.jsonl"), "{}").unwrap();
        fs::write(d.join("notes.txt"), line).unwrap();
        fs::create_dir_all(d.join("new-session/subagents")).unwrap();
        fs::write(d.join("new-session/subagents/agent-1.jsonl"), line).unwrap();
        let found = holders(std::slice::from_ref(&d), "toolu_T", None);
        assert_eq!(found, ["new-session"]);
        let excluded = holders(
            std::slice::from_ref(&d),
            "toolu_T",
            Some(&d.join("new-session.jsonl")),
        );
        assert!(excluded.is_empty());
        fs::write(d.join("twin.jsonl"), line).unwrap();
        let mut two = holders(std::slice::from_ref(&d), "toolu_T", None);
        two.sort();
        assert_eq!(two, ["new-session", "twin"]);
    }
}
