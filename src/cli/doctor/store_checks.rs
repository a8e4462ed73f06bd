//! `doctor`'s checks of `~/.oxtail`: modes, stale locks, registry entries
//! and mailboxes of dead processes, received-ledger sizes.
//!
//! Invariants defended: paths come from `Layout` and the lock naming from
//! `store::lock`; with `fix` false nothing is changed; `fix` only tightens
//! modes, clears stale locks through the lock protocol's compare-and-clear,
//! and removes empty mailboxes of dead pids under their lock.

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
    check(
        "registry",
        Status::Warn,
        format!(
            "{live} live session(s); {} entr(y/ies) of dead processes (pids {})",
            dead.len(),
            dead.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .with_fix("none needed: a running oxtail server reaps them the next time it lists peers")
}

pub(super) fn dead_mailboxes(layout: &Layout, fix: bool) -> Check {
    let dir = layout.mailboxes_dir();
    let mut empty = Vec::new();
    let mut with_mail = Vec::new();
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
                Ok(m) if m.is_file() => with_mail.push((pid, m.len())),
                _ => {}
            }
        }
    }
    let mut removed = 0;
    if fix {
        for &pid in &empty {
            // Under the mailbox lock, and only if still empty and still dead:
            // an append racing with us lands in a fresh file, never lost.
            if let Ok(guard) = mailbox::lock_mailbox(layout, pid) {
                let path = layout.mailbox(pid);
                let still_empty = fs::metadata(&path).is_ok_and(|m| m.len() == 0);
                if still_empty && !registry::is_alive(pid) && fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
                guard.release();
            }
        }
    }
    let mut parts = Vec::new();
    if !empty.is_empty() {
        parts.push(if fix {
            format!(
                "removed {removed} of {} empty mailbox(es) of dead pids",
                empty.len()
            )
        } else {
            format!("{} empty mailbox(es) of dead pids", empty.len())
        });
    }
    if !with_mail.is_empty() {
        parts.push(format!(
            "{} mailbox(es) of dead pids still hold undelivered mail ({})",
            with_mail.len(),
            with_mail
                .iter()
                .map(|(p, n)| format!("pid {p}: {n} bytes"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if parts.is_empty() {
        return check("mailboxes", Status::Ok, "no mailbox of a dead process");
    }
    let detail = parts.join("; ");
    if !with_mail.is_empty() {
        return check("mailboxes", Status::Warn, detail).with_fix(
            "mail for a session that restarted moves to its new server; otherwise it can no longer be delivered",
        );
    }
    if fix && removed == empty.len() {
        check("mailboxes", Status::Fixed, detail)
    } else {
        check("mailboxes", Status::Warn, detail)
            .with_fix("run `oxtail doctor --fix` to remove them")
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
