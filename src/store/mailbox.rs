//! Mailbox queues `mailboxes/<pid>.jsonl` (messaging.md §5): enqueue, requeue
//! (back or front), full drain, union drain, selective drain, emptiness probe,
//! migration (whole, or of the records a predicate selects), removal of an
//! empty mailbox, and a read-only summary of pending mail (for `doctor`).
//!
//! Invariants defended:
//! - every mutation happens under the pid's mailbox lock (the one the hooks and
//!   Node peers take), and appends heal a torn last line, so a crashed writer
//!   costs at most its own record;
//! - a corrupt or foreign line never crashes a reader and never costs another
//!   record: a full drain skips it (trace `mailbox_drain_skip_invalid`), a
//!   selective drain and a migration keep its raw bytes;
//! - lines written back (selective-drain survivors, migration, front requeue)
//!   are the original bytes, never re-serialised;
//! - order per sender is kept: drains return file order, a union drain
//!   delivers each message id once, and [`requeue_front`] puts deferred mail
//!   back ahead of mail that arrived meanwhile; [`drain_many_keeping`] does
//!   the drain and the write-back of what it keeps under one hold of the
//!   caller's lock, so no other drainer can slip a later message in between;
//! - a mailbox file is only ever removed while it is empty, checked under its
//!   lock ([`remove_if_empty`]), so a removal can never cost a message: a
//!   sender waiting for the lock appends to a fresh file afterwards.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::error::{StoreError, StoreResult};
use super::file;
use super::lock::{self, LockGuard, LockKind, LockOptions};
use super::message::{Message, NewMessage};
use super::paths::{self, Layout};
use crate::trace;

/// Create `mailboxes/` (0700) and take `pid`'s mailbox lock.
pub fn lock_mailbox(layout: &Layout, pid: u32) -> StoreResult<LockGuard> {
    let dir = layout.mailboxes_dir();
    paths::ensure_private_dir(&dir).map_err(|e| StoreError::io("create directory", &dir, e))?;
    lock::acquire(
        &lock::lock_path_for(&layout.mailbox(pid)),
        &LockKind::Mailbox(pid),
        &LockOptions::default(),
    )
}

/// Build a message and append it to `pid`'s mailbox (no ledger; production
/// delivery goes through [`crate::delivery`]).
pub fn enqueue(
    layout: &Layout,
    pid: u32,
    body: &str,
    from_session_id: Option<&str>,
    opts: &NewMessage<'_>,
) -> StoreResult<Message> {
    let msg = Message::build(body, from_session_id, opts);
    requeue(layout, pid, &msg)?;
    Ok(msg)
}

/// Append an existing message (re-serialised per §5.10, same id). A record
/// that cannot be serialised fails before the lock is taken.
pub fn requeue(layout: &Layout, pid: u32, msg: &Message) -> StoreResult<()> {
    requeue_many(layout, pid, std::slice::from_ref(msg))
}

/// Append several messages in one locked healing append (all-or-nothing from
/// the caller's view). No-op for an empty list.
pub fn requeue_many(layout: &Layout, pid: u32, msgs: &[Message]) -> StoreResult<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let block = serialise_all(msgs)?;
    let _guard = lock_mailbox(layout, pid)?;
    file::append_healing(&layout.mailbox(pid), block.as_bytes())
}

/// Put messages back at the FRONT of `pid`'s mailbox, ahead of anything queued
/// meanwhile (used for budget overflow so delivery order is kept). Existing
/// lines are kept byte-exact behind them. No-op for an empty list.
pub fn requeue_front(layout: &Layout, pid: u32, msgs: &[Message]) -> StoreResult<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let _guard = lock_mailbox(layout, pid)?;
    requeue_front_locked(layout, pid, msgs)
}

/// [`requeue_front`] for a caller that already holds `pid`'s lock.
fn requeue_front_locked(layout: &Layout, pid: u32, msgs: &[Message]) -> StoreResult<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let block = serialise_all(msgs)?;
    let path = layout.mailbox(pid);
    match file::read_all(&path)? {
        Some(existing) if !existing.is_empty() => {
            let mut content = block.into_bytes();
            content.extend_from_slice(&existing);
            if content.last() != Some(&b'\n') {
                content.push(b'\n');
            }
            file::atomic_replace(&path, &content)
        }
        _ => file::append_healing(&path, block.as_bytes()),
    }
}

fn serialise_all(msgs: &[Message]) -> StoreResult<String> {
    let mut block = String::new();
    for m in msgs {
        block.push_str(&m.to_line()?);
    }
    Ok(block)
}

/// Drain `pid`'s mailbox (§5.3): every valid record in file order; invalid
/// lines are traced and dropped; the file is truncated in place.
pub fn drain(layout: &Layout, pid: u32) -> StoreResult<Vec<Message>> {
    let _guard = lock_mailbox(layout, pid)?;
    drain_locked(layout, pid)
}

/// [`drain`] for a caller that already holds `pid`'s lock.
fn drain_locked(layout: &Layout, pid: u32) -> StoreResult<Vec<Message>> {
    let path = layout.mailbox(pid);
    let Some(content) = file::read_all(&path)? else {
        return Ok(Vec::new());
    };
    if content.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for raw in file::lines(&content) {
        let text = file::decode(raw);
        match Message::parse_line(&text).filter(Message::is_drainable) {
            Some(m) => out.push(m),
            None => trace::event(
                "mailbox_drain_skip_invalid",
                json!({"pid": pid, "line": text}),
            ),
        }
    }
    file::truncate(&path)?;
    Ok(out)
}

/// Result of [`drain_many`].
#[derive(Debug, Default)]
pub struct UnionDrain {
    /// Messages in pid order, then file order; each id at most once.
    pub messages: Vec<Message>,
    /// Mailboxes that could not be drained (lock timeout, I/O error).
    pub skipped: usize,
    /// Records dropped because their id was already delivered by this drain
    /// (a crash mid-migration can leave one message in two mailboxes).
    pub duplicates: usize,
}

/// Union drain over sibling mailboxes (§5.4): repeats in `pids` ignored, one
/// lock at a time, failures counted in `skipped`, ids deduplicated.
pub fn drain_many(layout: &Layout, pids: &[u32]) -> UnionDrain {
    union_drain(layout, pids, None)
}

/// Result of [`drain_many_keeping`].
#[derive(Debug, Default)]
pub struct KeptDrain {
    /// What the split accepted (the caller hands these over).
    pub drain: UnionDrain,
    /// How many messages went back to the front of `own`'s mailbox.
    pub kept: usize,
    /// When putting them back failed: they are in `drain.messages` too
    /// (handed over rather than lost).
    pub keep_error: Option<StoreError>,
}

/// A union drain that hands over only part of what it took: `split` divides
/// the drained messages into (hand over, keep), and the kept ones go back to
/// the front of `own`'s mailbox — all while `own`'s lock is held from before
/// the drain to after the write-back, so no other drainer (a hook) can deliver
/// a later message of the same sender in between (per-sender order across
/// drains). If `own`'s lock cannot be taken, nothing is drained at all.
pub fn drain_many_keeping(
    layout: &Layout,
    own: u32,
    pids: &[u32],
    split: impl FnOnce(Vec<Message>) -> (Vec<Message>, Vec<Message>),
) -> KeptDrain {
    let guard = match lock_mailbox(layout, own) {
        Ok(g) => g,
        Err(e) => {
            trace::event(
                "mailbox_drain_skipped",
                json!({"pid": own, "error": e.to_string()}),
            );
            return KeptDrain {
                drain: UnionDrain {
                    skipped: 1,
                    ..UnionDrain::default()
                },
                ..KeptDrain::default()
            };
        }
    };
    let mut drain = union_drain(layout, pids, Some(own));
    let (mut accepted, keep) = split(std::mem::take(&mut drain.messages));
    let mut out = KeptDrain::default();
    match requeue_front_locked(layout, own, &keep) {
        Ok(()) => out.kept = keep.len(),
        Err(e) => {
            accepted.extend(keep);
            out.keep_error = Some(e);
        }
    }
    drop(guard);
    drain.messages = accepted;
    out.drain = drain;
    out
}

/// The union drain; `held` names a pid whose lock the caller holds already.
fn union_drain(layout: &Layout, pids: &[u32], held: Option<u32>) -> UnionDrain {
    let mut out = UnionDrain::default();
    let mut seen_pids = HashSet::new();
    let mut seen_ids: HashSet<String> = HashSet::new();
    for &pid in pids {
        if !seen_pids.insert(pid) {
            continue;
        }
        let drained = if held == Some(pid) {
            drain_locked(layout, pid)
        } else {
            drain(layout, pid)
        };
        match drained {
            Ok(msgs) => {
                for m in msgs {
                    let id = m.id().unwrap_or_default().to_string();
                    if seen_ids.insert(id.clone()) {
                        out.messages.push(m);
                    } else {
                        out.duplicates += 1;
                        trace::event("mailbox_drain_duplicate", json!({"pid": pid, "id": id}));
                    }
                }
            }
            Err(e) => {
                out.skipped += 1;
                trace::event(
                    "mailbox_drain_skipped",
                    json!({"pid": pid, "error": e.to_string()}),
                );
            }
        }
    }
    out
}

/// Predicate: `from_session_id` equals `session_id`.
pub fn from_session(session_id: &str) -> impl Fn(&Message) -> bool + '_ {
    move |m| m.from_session_id() == Some(session_id)
}

/// Predicate: from `session_id` and `reply_to` equals `request_id`.
pub fn reply_from<'a>(session_id: &'a str, request_id: &'a str) -> impl Fn(&Message) -> bool + 'a {
    move |m| m.from_session_id() == Some(session_id) && m.reply_to() == Some(request_id)
}

/// Take the first schema-1 record satisfying `pred` out of `pid`'s mailbox
/// (§5.5). Every other non-empty line survives byte-exact, in order (atomic
/// replace); with no match the file is not touched.
pub fn drain_first_matching(
    layout: &Layout,
    pid: u32,
    pred: impl Fn(&Message) -> bool,
) -> StoreResult<Option<Message>> {
    let path = layout.mailbox(pid);
    let _guard = lock_mailbox(layout, pid)?;
    let Some(content) = file::read_all(&path)? else {
        return Ok(None);
    };
    let lines: Vec<&[u8]> = file::lines(&content).collect();
    let found = lines.iter().enumerate().find_map(|(i, raw)| {
        Message::parse_line(&file::decode(raw))
            .filter(|m| m.is_schema_v1() && pred(m))
            .map(|m| (i, m))
    });
    let Some((index, matched)) = found else {
        return Ok(None);
    };
    let survivors: Vec<&[u8]> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .map(|(_, l)| *l)
        .collect();
    if survivors.is_empty() {
        file::truncate(&path)?;
    } else {
        file::atomic_replace(&path, &file::join_lines(survivors))?;
    }
    Ok(Some(matched))
}

/// Cheap probe (§5.6): the mailbox exists with size > 0. No lock.
pub fn has_messages(layout: &Layout, pid: u32) -> StoreResult<bool> {
    let path = layout.mailbox(pid);
    match std::fs::metadata(&path) {
        Ok(m) => Ok(m.len() > 0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io("stat", &path, e)),
    }
}

/// What a lock-free look at one mailbox found.
#[derive(Debug, Default)]
pub struct Peek {
    /// The drainable records (§2.7), file order, duplicates kept.
    pub messages: Vec<Message>,
    /// Non-empty lines that are not drainable records (a drain drops them).
    pub unreadable: usize,
}

/// Read `pid`'s mailbox WITHOUT its lock and without changing anything: for
/// read-only views (`oxtail status`), which must never delay a sender. The
/// store only appends whole lines or renames a new file over the old one, so
/// the bytes read are a consistent state; a drain racing the read makes the
/// answer at most one drain old. A missing file is an empty peek.
pub fn peek(layout: &Layout, pid: u32) -> StoreResult<Peek> {
    Ok(peek_file(layout, pid)?.map(|(p, _)| p).unwrap_or_default())
}

/// [`peek`] and the file's size; `None` when the file does not exist.
fn peek_file(layout: &Layout, pid: u32) -> StoreResult<Option<(Peek, u64)>> {
    let Some(content) = file::read_all(&layout.mailbox(pid))? else {
        return Ok(None);
    };
    let mut out = Peek::default();
    for raw in file::lines(&content) {
        let text = file::decode(raw);
        if text.trim().is_empty() {
            continue;
        }
        match Message::parse_line(&text).filter(Message::is_drainable) {
            Some(m) => out.messages.push(m),
            None => out.unreadable += 1,
        }
    }
    Ok(Some((out, content.len() as u64)))
}

/// The pid of every `mailboxes/<pid>.jsonl` file (empty ones included),
/// ascending. Nothing is created or removed.
pub fn list_pids(layout: &Layout) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir(layout.mailboxes_dir()) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = rd
        .filter_map(Result::ok)
        .filter_map(|de| de.file_name().to_str().and_then(Layout::mailbox_pid))
        .collect();
    pids.sort_unstable();
    pids
}

/// Lock-free peek: does `pid`'s mailbox hold a line with message id `id`?
/// (`"id":"<id>"` can only appear as a key of a record: quotes inside string
/// values are escaped.) A concurrent drain may make the answer stale at once;
/// callers treat it as a snapshot. A missing or unreadable file holds nothing.
pub fn contains_id(layout: &Layout, pid: u32, id: &str) -> bool {
    let Ok(Some(content)) = file::read_all(&layout.mailbox(pid)) else {
        return false;
    };
    let needle = format!("\"id\":\"{id}\"");
    memchr::memmem::find(&content, needle.as_bytes()).is_some()
}

/// Move every line of `from`'s mailbox to `to`'s (§5.7), byte-exact, holding
/// `from`'s lock throughout (then `to`'s for the append). Returns the number of
/// non-blank lines moved. On any failure `from` is left untouched.
pub fn migrate(layout: &Layout, from: u32, to: u32) -> StoreResult<usize> {
    if from == to {
        return Ok(0);
    }
    let src = layout.mailbox(from);
    let _from_guard = lock_mailbox(layout, from)?;
    let Some(mut block) = file::read_all(&src)? else {
        return Ok(0);
    };
    if block.iter().all(u8::is_ascii_whitespace) {
        return Ok(0);
    }
    if block.last() != Some(&b'\n') {
        block.push(b'\n');
    }
    let count = file::lines(&block)
        .filter(|l| !file::decode(l).trim().is_empty())
        .count();
    {
        let _to_guard = lock_mailbox(layout, to)?;
        file::append_healing(&layout.mailbox(to), &block)?;
    }
    file::truncate(&src)?;
    Ok(count)
}

/// Move the schema-1 records of `from` that satisfy `pred` to `to`, both
/// byte-exact: the moved lines are appended to `to` (under its lock, while
/// `from`'s is held), then `from` keeps every other line in order. Returns how
/// many moved. A failed append leaves `from` untouched; a failed rewrite of
/// `from` after the append leaves a duplicate (same ids), never a loss.
pub fn migrate_matching(
    layout: &Layout,
    from: u32,
    to: u32,
    pred: impl Fn(&Message) -> bool,
) -> StoreResult<usize> {
    if from == to {
        return Ok(0);
    }
    let src = layout.mailbox(from);
    let _from_guard = lock_mailbox(layout, from)?;
    let Some(content) = file::read_all(&src)? else {
        return Ok(0);
    };
    let (moved, kept): (Vec<&[u8]>, Vec<&[u8]>) = file::lines(&content).partition(|raw| {
        Message::parse_line(&file::decode(raw)).is_some_and(|m| m.is_schema_v1() && pred(&m))
    });
    if moved.is_empty() {
        return Ok(0);
    }
    {
        let _to_guard = lock_mailbox(layout, to)?;
        file::append_healing(
            &layout.mailbox(to),
            &file::join_lines(moved.iter().copied()),
        )?;
    }
    if kept.is_empty() {
        file::truncate(&src)?;
    } else {
        file::atomic_replace(&src, &file::join_lines(kept))?;
    }
    Ok(moved.len())
}

/// Remove `pid`'s mailbox file if it is empty, under its lock, waiting at
/// most `max_wait` for the lock; `still` is asked again under the lock and
/// must agree (e.g. "the pid is still dead"). Returns whether the file was
/// removed. A file holding any byte, a missing file, anything but a regular
/// file, a lock that cannot be taken in time or a `still` that says no all
/// leave everything as it is. The lock directory goes with the guard.
pub fn remove_if_empty(
    layout: &Layout,
    pid: u32,
    max_wait: Duration,
    still: impl FnOnce() -> bool,
) -> StoreResult<bool> {
    let path = layout.mailbox(pid);
    if std::fs::symlink_metadata(&path).is_err() {
        // Nothing to remove (most servers never receive mail); no lock needed.
        return Ok(false);
    }
    let opts = LockOptions {
        max_wait,
        ..LockOptions::default()
    };
    let guard = lock::acquire(&lock::lock_path_for(&path), &LockKind::Mailbox(pid), &opts)?;
    let empty = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0);
    let removed = empty
        && still()
        && match std::fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(StoreError::io("remove", &path, e)),
        };
    if removed {
        guard.retire();
    } else {
        guard.release();
    }
    Ok(removed)
}

/// What a mailbox holds, read without its lock (a snapshot for reports).
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// Non-blank lines (messages, or lines that failed to parse).
    pub lines: usize,
    /// Lines that parse as deliverable messages.
    pub messages: usize,
    pub bytes: u64,
    /// The file's last modification (the newest append).
    pub modified: Option<SystemTime>,
    /// The oldest `enqueued_at` among the messages, in seconds since the epoch.
    pub oldest_enqueued_at: Option<f64>,
}

/// Summarise `pid`'s mailbox without changing it; `None` when it does not
/// exist.
pub fn pending(layout: &Layout, pid: u32) -> StoreResult<Option<Pending>> {
    let path = layout.mailbox(pid);
    let Some((p, bytes)) = peek_file(layout, pid)? else {
        return Ok(None);
    };
    let modified = std::fs::symlink_metadata(&path)
        .and_then(|m| m.modified())
        .ok();
    Ok(Some(Pending {
        lines: p.messages.len() + p.unreadable,
        messages: p.messages.len(),
        bytes,
        modified,
        oldest_enqueued_at: p
            .messages
            .iter()
            .filter_map(Message::enqueued_at)
            .min_by(f64::total_cmp),
    }))
}

/// The mailbox path of `pid` (for diagnostics and tests).
pub fn path(layout: &Layout, pid: u32) -> PathBuf {
    layout.mailbox(pid)
}
