//! `doctor`'s checks of `~/.oxtail`: modes, stale locks, registry entries
//! and mailboxes of dead processes, received-ledger sizes.
//!
//! Invariants defended: paths come from `Layout` and the lock naming from
//! `store::lock`; with `fix` false nothing is changed; `fix` only tightens
//! modes, clears stale locks through the lock protocol's compare-and-clear,
//! and removes empty mailboxes of dead pids under their lock
//! (`mailbox::remove_if_empty`), never one that holds mail. Only what needs a
//! person is a warning: leftovers of killed processes that oxtail reaps by
//! itself (registry entries, empty mailboxes) are info.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{Check, Status, check};
use crate::cli::setup;
use crate::store::lock::{self, LockKind};
use crate::store::paths::{self, DIR_MODE, FILE_MODE, Layout};
use crate::store::{mailbox, registry};

/// A lock directory counts as stale past this age (the protocol's window).
const STALE: Duration = lock::STALE_WINDOW;
/// A received-ledger larger than this is worth a warning.
const LEDGER_WARN_BYTES: u64 = 8 * 1024 * 1024;

/// Directories that must be private, and whether their files must be too.
fn private_dirs(layout: &Layout) -> Vec<(PathBuf, bool)> {
    vec![
        (layout.root().to_path_buf(), false),
        (layout.mailboxes_dir(), true),
        (layout.received_dir(), true),
        (layout.sessions_dir(), true),
        (layout.claims_dir(), true),
        (layout.activity_dir(), false),
        (layout.autowake_dir(), false),
    ]
}

fn mode_of(path: &Path) -> Option<u32> {
    fs::symlink_metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

pub(super) fn modes(layout: &Layout, fix: bool) -> Vec<Check> {
    if !layout.root().exists() {
        return vec![check(
            "modes",
            Status::Info,
            format!(
                "{} does not exist yet (created when oxtail first runs)",
                setup::display(layout.root())
            ),
        )];
    }
    let mut loose = Vec::new();
    for (dir, files_private) in private_dirs(layout) {
        let Some(m) = mode_of(&dir) else { continue };
        if m & !DIR_MODE != 0 {
            loose.push((dir.clone(), m, true));
        }
        if !files_private {
            continue;
        }
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for de in rd.flatten() {
            let p = de.path();
            // Lock artifacts come and go within milliseconds; judging them
            // would make the check flap.
            if de.file_name().to_string_lossy().contains(".lock") {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            let m = meta.permissions().mode() & 0o7777;
            let allowed = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
            if (meta.is_file() || meta.is_dir()) && m & !allowed != 0 {
                loose.push((p, m, meta.is_dir()));
            }
        }
    }
    if loose.is_empty() {
        return vec![check(
            "modes",
            Status::Ok,
            format!(
                "{} and its data are private (0700 dirs, 0600 files)",
                setup::display(layout.root())
            ),
        )];
    }
    let list = |v: &[(PathBuf, u32, bool)]| {
        v.iter()
            .take(5)
            .map(|(p, m, _)| format!("{} {:o}", setup::display(p), m))
            .collect::<Vec<_>>()
            .join(", ")
            + if v.len() > 5 { ", …" } else { "" }
    };
    if !fix {
        return vec![
            check(
                "modes",
                Status::Fail,
                format!(
                    "{} path(s) readable or writable by others: {}",
                    loose.len(),
                    list(&loose)
                ),
            )
            .with_fix("run `oxtail doctor --fix` (tightens to 0700/0600)"),
        ];
    }
    let mut left = Vec::new();
    for (p, m, is_dir) in &loose {
        if *is_dir {
            let _ = paths::ensure_private_dir(p);
        } else {
            paths::tighten_file(p);
        }
        let allowed = if *is_dir { DIR_MODE } else { FILE_MODE };
        if mode_of(p).is_some_and(|now| now & !allowed != 0) {
            left.push((p.clone(), *m, *is_dir));
        }
    }
    if left.is_empty() {
        vec![check(
            "modes",
            Status::Fixed,
            format!("tightened {} path(s)", loose.len()),
        )]
    } else {
        vec![
            check(
                "modes",
                Status::Fail,
                format!("could not tighten: {}", list(&left)),
            )
            .with_fix("chmod them by hand (0700 dirs, 0600 files)"),
        ]
    }
}

fn age(path: &Path) -> Option<Duration> {
    let m = fs::symlink_metadata(path).ok()?.modified().ok()?;
    SystemTime::now().duration_since(m).ok()
}

/// Lock directories (`<file>.lock`, and `<file>.lock.steal` markers) under the
/// directories that hold locked files.
fn lock_dirs(layout: &Layout) -> Vec<(PathBuf, LockKind)> {
    let mut out = Vec::new();
    for dir in [layout.mailboxes_dir(), layout.received_dir()] {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for de in rd.flatten() {
            let name = de.file_name().to_string_lossy().into_owned();
            let is_dir = de.file_type().is_ok_and(|t| t.is_dir());
            let Some(base) = name.strip_suffix(".lock") else {
                if is_dir && name.ends_with(".lock.steal") {
                    out.push((de.path(), LockKind::Other));
                }
                continue;
            };
            if !is_dir || lock::lock_path_for(&dir.join(base)) != de.path() {
                continue;
            }
            let kind = match Layout::mailbox_pid(base) {
                Some(pid) if dir == layout.mailboxes_dir() => LockKind::Mailbox(pid),
                _ => LockKind::Other,
            };
            out.push((de.path(), kind));
        }
    }
    out
}

pub(super) fn stale_locks(layout: &Layout, fix: bool) -> Check {
    let stale: Vec<(PathBuf, LockKind)> = lock_dirs(layout)
        .into_iter()
        .filter(|(p, _)| age(p).is_some_and(|a| a > STALE))
        .collect();
    if stale.is_empty() {
        return check("stale_locks", Status::Ok, "no lock held longer than 30 s");
    }
    let names = stale
        .iter()
        .map(|(p, _)| setup::display(p))
        .collect::<Vec<_>>()
        .join(", ");
    if !fix {
        return check(
            "stale_locks",
            Status::Fail,
            format!("{} lock(s) older than 30 s: {names}", stale.len()),
        )
        .with_fix("run `oxtail doctor --fix` (the next sender would also clear them)");
    }
    for (p, kind) in &stale {
        if p.to_string_lossy().ends_with(".steal") {
            let _ = fs::remove_dir(p);
        } else {
            lock::clear_stale(p, kind, STALE);
        }
    }
    let left: Vec<&PathBuf> = stale
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.exists())
        .collect();
    if left.is_empty() {
        check(
            "stale_locks",
            Status::Fixed,
            format!("cleared {} stale lock(s): {names}", stale.len()),
        )
    } else {
        check(
            "stale_locks",
            Status::Fail,
            format!("{} stale lock(s) could not be cleared", left.len()),
        )
        .with_fix("run `oxtail doctor --fix` again; if it persists, remove the directories by hand")
    }
}

/// Valid registry entries (no liveness filter, no reaping).
fn registry_entries(layout: &Layout) -> Vec<registry::Entry> {
    let dir = layout.sessions_dir();
    let Ok(rd) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|de| registry::read_entry_file(&dir, de.file_name().to_str()?))
        .collect()
}

pub(super) fn dead_registry_entries(layout: &Layout) -> Check {
    let entries = registry_entries(layout);
    let dead: Vec<u32> = entries
        .iter()
        .map(|e| e.server_pid)
        .filter(|&pid| !registry::is_alive(pid))
        .collect();
    let live = entries.len() - dead.len();
    if dead.is_empty() {
        return check(
            "registry",
            Status::Ok,
            format!("{live} live session(s), none dead"),
        );
    }
    // Left by servers that were killed; readers reap them (or keep one as the
    // routing breadcrumb of undelivered mail): nothing for a person to do.
    check(
        "registry",
        Status::Info,
        format!(
            "{live} live session(s); {} entr(y/ies) left by killed processes (pids {}), \
             reaped by the next server that lists peers",
            dead.len(),
            dead.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// A mailbox of a dead pid that still holds mail.
struct Orphan {
    pid: u32,
    pending: mailbox::Pending,
    /// The session it was for, when the dead server's registry entry remains.
    session: Option<String>,
    /// Ids that server answered to before `/clear` or `/resume` (beyond the
    /// original): resuming one of them also hands over the mail sent to it.
    previous: Vec<String>,
}

/// Mailboxes of dead pids. An empty one is only litter (a killed server
/// could not remove it): mentioned as info and removed by `--fix`. One that
/// holds mail is mail nobody will read unless that session comes back: a
/// warning naming the pid, the session when known, the count and the age.
pub(super) fn dead_mailboxes(layout: &Layout, fix: bool) -> Check {
    let dir = layout.mailboxes_dir();
    let mut empty = Vec::new();
    let mut orphans = Vec::new();
    let sessions: Vec<registry::Entry> = registry_entries(layout);
    if let Ok(rd) = fs::read_dir(&dir) {
        for de in rd.flatten() {
            let name = de.file_name().to_string_lossy().into_owned();
            let Some(pid) = Layout::mailbox_pid(&name) else {
                continue;
            };
            if layout.mailbox(pid) != de.path() || registry::is_alive(pid) {
                continue;
            }
            match de.metadata() {
                Ok(m) if m.is_file() && m.len() == 0 => empty.push(pid),
                Ok(m) if m.is_file() => {
                    if let Ok(Some(pending)) = mailbox::pending(layout, pid) {
                        let client = sessions
                            .iter()
                            .find(|e| e.server_pid == pid)
                            .map(|e| e.client.clone());
                        orphans.push(Orphan {
                            pid,
                            pending,
                            session: client.as_ref().and_then(|c| c.session_id.clone()),
                            previous: client.map(|c| c.previous_session_ids).unwrap_or_default(),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    orphans.sort_by_key(|o| o.pid);
    let mut removed = 0;
    if fix {
        for &pid in &empty {
            // Under the mailbox lock, and only if still empty and still dead:
            // an append racing with us lands in a fresh file, never lost.
            let still_dead = || !registry::is_alive(pid);
            if matches!(
                mailbox::remove_if_empty(layout, pid, lock::MAX_WAIT, still_dead),
                Ok(true)
            ) {
                removed += 1;
            }
        }
    }
    if !orphans.is_empty() {
        return orphan_warning(layout, &orphans, empty.len(), removed, fix);
    }
    match (empty.len(), fix) {
        (0, _) => check("mailboxes", Status::Ok, "no mailbox of a dead process"),
        (n, false) => check(
            "mailboxes",
            Status::Info,
            format!("{n} empty mailbox(es) left by killed processes (harmless)"),
        )
        .with_fix("`oxtail doctor --fix` removes them"),
        (n, true) if removed == n => check(
            "mailboxes",
            Status::Fixed,
            format!("removed {n} empty mailbox(es) left by killed processes"),
        ),
        (n, true) => check(
            "mailboxes",
            Status::Info,
            format!(
                "removed {removed} of {n} empty mailbox(es) left by killed processes; the rest were busy"
            ),
        ),
    }
}

fn orphan_warning(
    layout: &Layout,
    orphans: &[Orphan],
    empty: usize,
    removed: usize,
    fix: bool,
) -> Check {
    let now = SystemTime::now();
    let list = orphans
        .iter()
        .map(|o| {
            let p = &o.pending;
            // How long the mail has waited: since the oldest message was
            // sent, else since the file last changed.
            let since = p
                .oldest_enqueued_at
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(t))
                .or(p.modified);
            let age = since
                .and_then(|m| now.duration_since(m).ok())
                .map(|d| format!(", the oldest waiting {}", human_age(d)))
                .unwrap_or_default();
            let who = match (&o.session, o.previous.is_empty()) {
                (Some(sid), true) => format!(" (session {sid})"),
                (Some(sid), false) => {
                    format!(" (session {sid}, earlier {})", o.previous.join(", "))
                }
                (None, _) => String::new(),
            };
            let unreadable = p.lines - p.messages;
            let junk = if unreadable > 0 {
                format!(" + {unreadable} unreadable line(s)")
            } else {
                String::new()
            };
            format!(
                "pid {}{who}: {} message(s){junk} ({}){age}",
                o.pid,
                p.messages,
                human(p.bytes)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut detail = format!(
        "{} mailbox(es) of exited processes hold mail nobody has read: {list}",
        orphans.len()
    );
    if empty > 0 {
        if fix {
            detail.push_str(&format!("; removed {removed} of {empty} empty one(s)"));
        } else {
            detail.push_str(&format!("; also {empty} empty one(s) (harmless)"));
        }
    }
    let dir = setup::display(&layout.mailboxes_dir());
    let resumable = orphans.iter().any(|o| o.session.is_some());
    let how = if resumable {
        "resuming a session named above (`claude --resume <id>`) hands the mail sent to it \
         to the new server; otherwise "
    } else {
        ""
    };
    check("mailboxes", Status::Warn, detail).with_fix(format!(
        "{how}read the file(s) in {dir} (one JSON message per line) and tell the agent \
         concerned, then delete them; `--fix` never removes mail"
    ))
}

fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

pub(super) fn ledgers(layout: &Layout) -> Check {
    let dir = layout.received_dir();
    let mut count = 0u64;
    let mut total = 0u64;
    let mut largest: Option<(PathBuf, u64)> = None;
    if let Ok(rd) = fs::read_dir(&dir) {
        for de in rd.flatten() {
            let Ok(m) = de.metadata() else { continue };
            if !m.is_file() || !de.file_name().to_string_lossy().ends_with(".jsonl") {
                continue;
            }
            count += 1;
            total += m.len();
            if largest.as_ref().is_none_or(|(_, n)| m.len() > *n) {
                largest = Some((de.path(), m.len()));
            }
        }
    }
    let Some((big, big_n)) = largest else {
        return check("ledgers", Status::Ok, "no received-ledger yet");
    };
    let detail = format!(
        "{count} received-ledger(s), {} in total, largest {} ({})",
        human(total),
        human(big_n),
        setup::display(&big)
    );
    if big_n > LEDGER_WARN_BYTES {
        check("ledgers", Status::Warn, detail)
            .with_fix("lower OXTAIL_RECEIVED_MAX (default 1000 lines per session) or delete ledgers of finished sessions")
    } else {
        check("ledgers", Status::Ok, detail)
    }
}

fn human(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}
