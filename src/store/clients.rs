//! Client records: `~/.oxtail/clients/<client pid>.json` (beyond the original).
//!
//! Claude Code keeps one MCP server per process across `/clear` and `/resume`,
//! which give the session a new id without telling the server. The hooks do
//! see the new id. They record it here, keyed by the client process they run
//! under, and the server whose parent is that process follows it
//! (`server::follow`). Writers are the bash hooks (`sessionstart.sh`, and the
//! fallback of the other hooks in `oxtail-hook-common.sh`); [`write`] writes
//! the same line for tests and tools. One line of JSON, temp file + rename:
//!
//! `{"schema_version":1,"client_pid":4242,"session_id":"<id>","source":"clear","event":"SessionStart"}`
//!
//! `source` is SessionStart's (`startup`, `clear`, `resume`, `compact`) or
//! `hook-fallback` when a later hook found the record naming another id.
//!
//! Invariants defended:
//! - a record counts only when its file is `<pid>.json` with `client_pid`
//!   equal to that pid and a session id of `[A-Za-z0-9_-]` (what the hooks
//!   accept), so a record can never name another process or carry a path;
//! - a record is never read through a symlink, and at most 4 KiB of it;
//! - reading never fails the caller: anything wrong is "no record". Whether
//!   a record is fresh enough to trust (pid reuse) is the follower's decision,
//!   made from [`ClientRecord::modified_ms`].

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use serde_json::{Value, json};

use super::activity::mtime_ms;
use super::file;
use super::paths::{Layout, ensure_private_dir};

/// The most of a record file that is read.
const MAX_RECORD_BYTES: u64 = 4096;

/// One client record as read.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    pub client_pid: u32,
    pub session_id: String,
    /// `startup`, `clear`, `resume`, `compact`, `hook-fallback`, ... (free text).
    pub source: String,
    /// The hook event that wrote it (`SessionStart`, `PreToolUse`, ...).
    pub event: String,
    /// The payload's `transcript_path`, when the hook could copy it verbatim
    /// and it is an absolute `.../<session_id>.jsonl` without `..`.
    pub transcript_path: Option<String>,
    /// The file's mtime (ms since the epoch): when the hook wrote it.
    pub modified_ms: f64,
}

/// A cheap change detector for polling: size, mtime and inode, `None` when
/// there is no regular file.
pub type Stamp = Option<(u64, i64, i64, u64)>;

/// The session id shape the hooks accept: non-empty `[A-Za-z0-9_-]`, at most
/// 256 bytes.
pub fn is_hook_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A transcript path a record may carry for `session_id`.
fn transcript_fits(path: &str, session_id: &str) -> bool {
    path.starts_with('/')
        && path.ends_with(&format!("/{session_id}.jsonl"))
        && !path.split('/').any(|c| c == "..")
        && !path.chars().any(char::is_control)
}

/// The record file's stamp (never follows a symlink).
pub fn stamp(layout: &Layout, pid: u32) -> Stamp {
    let meta = fs::symlink_metadata(layout.client_record(pid)).ok()?;
    meta.is_file()
        .then(|| (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino()))
}

/// The valid record of client process `pid`, if any.
pub fn read(layout: &Layout, pid: u32) -> Option<ClientRecord> {
    let path = layout.client_record(pid);
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut text = Vec::new();
    f.by_ref()
        .take(MAX_RECORD_BYTES)
        .read_to_end(&mut text)
        .ok()?;
    let v: Value = serde_json::from_slice(text.trim_ascii()).ok()?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let record = ClientRecord {
        client_pid: u32::try_from(v.get("client_pid")?.as_u64()?).ok()?,
        session_id: field("session_id"),
        source: field("source"),
        event: field("event"),
        transcript_path: None,
        modified_ms: mtime_ms(&meta)?,
    };
    let transcript = field("transcript_path");
    let record = ClientRecord {
        transcript_path: transcript_fits(&transcript, &record.session_id).then_some(transcript),
        ..record
    };
    (record.client_pid == pid && is_hook_safe_id(&record.session_id)).then_some(record)
}

/// Write the record of `client_pid` the way the hooks do (one line, atomic,
/// `0600`), without a transcript path. Refuses an id the hooks would not write.
pub fn write(
    layout: &Layout,
    client_pid: u32,
    session_id: &str,
    source: &str,
    event: &str,
) -> io::Result<()> {
    if !is_hook_safe_id(session_id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "session id must be [A-Za-z0-9_-]",
        ));
    }
    ensure_private_dir(&layout.clients_dir())?;
    let line = json!({
        "schema_version": 1,
        "client_pid": client_pid,
        "session_id": session_id,
        "source": source,
        "event": event,
    });
    file::atomic_replace(
        &layout.client_record(client_pid),
        format!("{line}\n").as_bytes(),
    )
    .map_err(|e| io::Error::other(e.to_string()))
}

/// Remove the records of client processes that are gone, and temp files a
/// hook left behind (older than an hour). Returns how many were removed.
pub fn gc(layout: &Layout, now_ms: f64) -> usize {
    let Ok(rd) = fs::read_dir(layout.clients_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for ent in rd.flatten() {
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = match super::registry::filename_pid(name) {
            Some(pid) => !super::registry::is_alive(pid),
            None if name.contains(".tmp.") => ent
                .metadata()
                .ok()
                .and_then(|m| mtime_ms(&m))
                .is_some_and(|t| now_ms - t > 3_600_000.0),
            None => false,
        };
        if stale && fs::remove_file(ent.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Layout) {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path().join(".oxtail"));
        (tmp, layout)
    }

    #[test]
    fn round_trip_and_stamp() {
        let (_t, layout) = setup();
        assert_eq!(read(&layout, 42), None);
        assert_eq!(stamp(&layout, 42), None);
        write(&layout, 42, "abc-DEF_1", "clear", "SessionStart").unwrap();
        let r = read(&layout, 42).unwrap();
        assert_eq!(
            (r.client_pid, r.session_id.as_str(), r.source.as_str()),
            (42, "abc-DEF_1", "clear")
        );
        assert_eq!(r.event, "SessionStart");
        assert_eq!(r.transcript_path, None);
        assert!(r.modified_ms > 0.0);
        let s1 = stamp(&layout, 42);
        assert!(s1.is_some());
        write(&layout, 42, "other-id", "resume", "SessionStart").unwrap();
        assert_ne!(stamp(&layout, 42), s1, "a rewrite changes the stamp");
        assert!(write(&layout, 42, "a/b", "clear", "SessionStart").is_err());
    }

    #[test]
    fn mismatched_forged_or_linked_records_are_ignored() {
        let (tmp, layout) = setup();
        fs::create_dir_all(layout.clients_dir()).unwrap();
        let put = |pid: u32, text: &str| fs::write(layout.client_record(pid), text).unwrap();
        put(7, r#"{"schema_version":1,"client_pid":8,"session_id":"x"}"#);
        put(
            9,
            r#"{"schema_version":1,"client_pid":9,"session_id":"../etc"}"#,
        );
        put(
            10,
            r#"{"schema_version":1,"client_pid":10,"session_id":""}"#,
        );
        put(11, "not json");
        put(
            13,
            r#"{"client_pid":13,"session_id":"s","transcript_path":"/p/../s.jsonl"}"#,
        );
        put(
            14,
            r#"{"client_pid":14,"session_id":"s","transcript_path":"/h/.claude/projects/-p/s.jsonl"}"#,
        );
        put(
            15,
            r#"{"client_pid":15,"session_id":"s","transcript_path":"/p/t.jsonl"}"#,
        );
        assert_eq!(read(&layout, 13).unwrap().transcript_path, None);
        assert_eq!(
            read(&layout, 14).unwrap().transcript_path.as_deref(),
            Some("/h/.claude/projects/-p/s.jsonl")
        );
        assert_eq!(read(&layout, 15).unwrap().transcript_path, None);
        for pid in [7, 9, 10, 11] {
            assert_eq!(read(&layout, pid), None, "{pid}");
        }
        let target = tmp.path().join("elsewhere.json");
        fs::write(
            &target,
            r#"{"schema_version":1,"client_pid":12,"session_id":"x"}"#,
        )
        .unwrap();
        std::os::unix::fs::symlink(&target, layout.client_record(12)).unwrap();
        assert_eq!(read(&layout, 12), None);
        assert_eq!(stamp(&layout, 12), None);
    }

    #[test]
    fn gc_removes_records_of_dead_processes_only() {
        let (_t, layout) = setup();
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        let me = std::process::id();
        write(&layout, dead, "gone", "clear", "SessionStart").unwrap();
        write(&layout, me, "alive", "clear", "SessionStart").unwrap();
        assert_eq!(gc(&layout, crate::clock::now_ms() as f64), 1);
        assert!(read(&layout, dead).is_none());
        assert!(read(&layout, me).is_some());
    }
}
