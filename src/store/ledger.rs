//! Received-ledgers `received/<first 32 hex of sha256(session id)>.jsonl`
//! (messaging.md §6): the per-receiver index of delivered messages that
//! `reply_to_message` resolves ids against.
//!
//! Invariants defended:
//! - ownership is structural: the file is named after the receiver's session
//!   id and a lookup reads only the caller's own file, so a session resolves
//!   only ids delivered to it;
//! - every change happens under the ledger lock, and a change is either one
//!   healing append of a whole line or an atomic rewrite of the whole file, so
//!   a reader never sees half a ledger and recorders never lose each other's
//!   lines;
//! - retention keeps at least the newest `OXTAIL_RECEIVED_MAX` lines (default
//!   1000). Beyond the original, which rewrites the whole file on every record,
//!   a record is a plain append while the file holds fewer than cap + cap/8
//!   lines, and only then is the file compacted back to the newest cap lines.
//!   Lookups may therefore still resolve up to cap/8 older ids, never fewer;
//!   caps under 64 (a debugging setting) keep the original's exact rule. A Node peer recording
//!   into the same ledger prunes it to cap on its next write, which is
//!   compatible either way;
//! - a corrupt or foreign line never breaks a lookup and is kept byte-exact by
//!   later rewrites (until it ages out);
//! - a ledger that is a symlink is never read through: a lookup fails with
//!   [`StoreError::NotRegular`] (the tool answers with a reason), and the next
//!   record replaces the link with a regular file holding that record, so the
//!   reply handle works again from the next delivery on (beyond the original,
//!   which follows the link).

use serde_json::json;

use super::error::{StoreError, StoreResult};
use super::file;
use super::lock::{self, LockGuard, LockKind, LockOptions};
use super::message::Message;
use super::paths::{self, Layout};
use crate::{config, trace};

/// Default retention cap.
pub const DEFAULT_RECEIVED_MAX: usize = 1000;

/// Retention cap: `OXTAIL_RECEIVED_MAX` parsed like JS `Number()`, when finite
/// and positive floored (so `0.5` gives 0, as in the original); else 1000.
/// Re-read on every call.
pub fn retention_cap() -> usize {
    config::positive_env("OXTAIL_RECEIVED_MAX", DEFAULT_RECEIVED_MAX as f64).floor() as usize
}

fn lock_ledger(layout: &Layout, session_id: &str) -> StoreResult<LockGuard> {
    let dir = layout.received_dir();
    paths::ensure_private_dir(&dir).map_err(|e| StoreError::io("create directory", &dir, e))?;
    lock::acquire(
        &lock::lock_path_for(&layout.ledger(session_id)),
        &LockKind::Ledger(session_id.to_string()),
        &LockOptions::default(),
    )
}

/// Record `msg` (compact JSON, every key) in `receiver_session_id`'s ledger
/// (§6.3). An empty session id records nothing.
pub fn record(layout: &Layout, receiver_session_id: &str, msg: &Message) -> StoreResult<()> {
    if receiver_session_id.is_empty() {
        return Ok(());
    }
    let path = layout.ledger(receiver_session_id);
    let record = msg.to_record_json();
    let _guard = lock_ledger(layout, receiver_session_id)?;
    let max = retention_cap();
    let limit = max + compaction_slack(max);
    let mut line = record.into_bytes();
    line.push(b'\n');
    // The bound over-counts only blank lines, so appending on it never lets
    // the ledger pass cap + slack; the rewrite below counts exactly.
    let appended = file::append_healing_if(&path, &line, |f, meta| {
        Ok(tally::line_bound(&path, f, meta)? < limit)
    })?;
    if appended {
        return Ok(());
    }
    let existing = file::read_all(&path)?.unwrap_or_default();
    line.pop();
    let record = line;
    let mut lines: Vec<&[u8]> = file::lines(&existing).collect();
    lines.push(&record);
    let dropped = lines.len().saturating_sub(max);
    if dropped > 0 {
        lines.drain(..dropped);
        trace::event(
            "received_ledger_pruned",
            json!({"session_id": receiver_session_id, "dropped": dropped, "kept": max}),
        );
    }
    let mut content = file::join_lines(lines);
    if content.is_empty() {
        content.push(b'\n'); // JS: [].join("\n") + "\n"
    }
    file::atomic_replace(&path, &content)
}

/// How many lines a ledger holds, without reading it whole on every record.
///
/// A ledger only ever grows by appends of whole lines, or is replaced whole
/// (our compaction, a Node peer's prune: temp + rename, a new inode). So per
/// ledger file this process remembers, under the ledger lock, how many `\n`
/// bytes the first `len` bytes of inode `(dev, ino)` held; the next record
/// reads only what was appended since (usually the records of the last few
/// sends). A different inode or a shorter file is counted from the start.
/// An inode number reused by a replacement that is already longer than the
/// remembered length would be under-counted: retention would then compact
/// later than cap + slack, never drop a line it must keep (the compaction
/// counts exactly).
mod tally {
    use std::collections::HashMap;
    use std::fs;
    use std::io;
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    #[derive(Clone, Copy)]
    struct Seen {
        dev: u64,
        ino: u64,
        len: u64,
        newlines: usize,
        ends_with_newline: bool,
    }

    static SEEN: Mutex<Option<HashMap<PathBuf, Seen>>> = Mutex::new(None);

    /// Upper bound on the non-empty lines of the open ledger `f` (exact but
    /// for blank lines), as [`super::file::line_count_upper_bound`] of its
    /// content.
    pub fn line_bound(path: &Path, f: &fs::File, meta: &fs::Metadata) -> io::Result<usize> {
        let mut map = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        let map = map.get_or_insert_with(HashMap::new);
        let len = meta.len();
        let mut seen = match map.get(path) {
            Some(s) if s.dev == meta.dev() && s.ino == meta.ino() && s.len <= len => *s,
            _ => Seen {
                dev: meta.dev(),
                ino: meta.ino(),
                len: 0,
                newlines: 0,
                ends_with_newline: true,
            },
        };
        let mut buf = vec![0u8; usize::try_from((len - seen.len).min(1 << 20)).unwrap_or(0)];
        while seen.len < len && !buf.is_empty() {
            let want = usize::try_from(len - seen.len).map_or(buf.len(), |w| w.min(buf.len()));
            let n = f.read_at(&mut buf[..want], seen.len)?;
            if n == 0 {
                break;
            }
            seen.newlines += memchr::memchr_iter(b'\n', &buf[..n]).count();
            seen.ends_with_newline = buf[n - 1] == b'\n';
            seen.len += n as u64;
        }
        map.insert(path.to_path_buf(), seen);
        Ok(seen.newlines + usize::from(!seen.ends_with_newline))
    }
}

/// How many lines past the cap a ledger may grow before it is compacted: an
/// eighth of the cap, so a full default ledger is rewritten once per 125
/// records instead of on every record. Small caps stay exact.
pub fn compaction_slack(max: usize) -> usize {
    if max >= 64 { max / 8 } else { 0 }
}

/// Find message `id` in `receiver_session_id`'s own ledger, newest first
/// (§6.5). `None` when absent (never recorded, aged out, another receiver's)
/// or when the session id is empty. Unparseable lines are skipped; one that
/// holds the wanted id is traced (`received_ledger_skip_invalid`). A ledger
/// that is a symlink (dangling or not) or no regular file is
/// [`StoreError::NotRegular`].
pub fn lookup(
    layout: &Layout,
    receiver_session_id: &str,
    id: &str,
) -> StoreResult<Option<Message>> {
    if receiver_session_id.is_empty() {
        return Ok(None);
    }
    let path = layout.ledger(receiver_session_id);
    if std::fs::symlink_metadata(&path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        // Never recorded: nothing to lock (the file only ever appears whole).
        return Ok(None);
    }
    let _guard = lock_ledger(layout, receiver_session_id)?;
    let Some(content) = file::read_all(&path)? else {
        return Ok(None);
    };
    // An id made of plain characters appears verbatim in its record, so lines
    // without it need no parsing.
    let plain = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let lines: Vec<&[u8]> = file::lines(&content).collect();
    for raw in lines.into_iter().rev() {
        if plain && memchr::memmem::find(raw, id.as_bytes()).is_none() {
            continue;
        }
        let text = file::decode(raw);
        match Message::parse_line(&text) {
            Some(m) if m.id() == Some(id) => return Ok(Some(m)),
            Some(_) => {}
            None => trace::event(
                "received_ledger_skip_invalid",
                json!({"session_id": receiver_session_id, "line": text}),
            ),
        }
    }
    Ok(None)
}

/// The id of a reply to `receiver_session_id`'s ask `request_id` in its
/// ledger (a record whose `reply_to` is it), read without the lock (a torn
/// last line is skipped; nothing is changed). Used by the asker's own check
/// for late replies a replier did not announce.
pub fn find_reply_to(
    layout: &Layout,
    receiver_session_id: &str,
    request_id: &str,
) -> Option<String> {
    if receiver_session_id.is_empty() || request_id.is_empty() {
        return None;
    }
    let content = file::read_all(&layout.ledger(receiver_session_id)).ok()??;
    file::lines(&content).find_map(|raw| {
        memchr::memmem::find(raw, request_id.as_bytes())?;
        let m = Message::parse_line(&file::decode(raw))?;
        (m.reply_to() == Some(request_id)).then(|| m.id().unwrap_or_default().to_string())
    })
}

/// The newest `n` records of `receiver_session_id`'s ledger, oldest first,
/// read without the ledger lock (read-only views: `oxtail status`). A record
/// that does not parse is skipped; an absent ledger or an empty session id
/// gives nothing.
pub fn peek_tail(
    layout: &Layout,
    receiver_session_id: &str,
    n: usize,
) -> StoreResult<Vec<Message>> {
    if receiver_session_id.is_empty() || n == 0 {
        return Ok(Vec::new());
    }
    let Some(content) = file::read_tail(&layout.ledger(receiver_session_id), n)? else {
        return Ok(Vec::new());
    };
    let lines: Vec<&[u8]> = file::lines(&content).collect();
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..]
        .iter()
        .filter_map(|raw| Message::parse_line(&file::decode(raw)))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;

    use super::tally;

    fn bound(p: &std::path::Path) -> usize {
        let f = fs::File::open(p).unwrap();
        let meta = f.metadata().unwrap();
        tally::line_bound(p, &f, &meta).unwrap()
    }

    #[test]
    fn the_line_tally_follows_appends_replacements_and_torn_tails() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("l.jsonl");
        fs::write(&p, "a\nb\nc\n").unwrap();
        assert_eq!(bound(&p), 3);
        // Another writer appends: only the new bytes are counted, rightly.
        let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"d\ne\n").unwrap();
        assert_eq!(bound(&p), 5);
        // A torn last line counts as a line.
        f.write_all(b"{\"torn").unwrap();
        assert_eq!(bound(&p), 6);
        // A replacement (a Node peer's prune: temp + rename, a new inode)
        // is counted from the start.
        let t = tmp.path().join("l.jsonl.tmp");
        fs::write(&t, "x\n").unwrap();
        fs::rename(&t, &p).unwrap();
        assert_eq!(bound(&p), 1);
        // So is a file that became shorter in place.
        fs::write(&p, "").unwrap();
        assert_eq!(bound(&p), 0);
    }
}
