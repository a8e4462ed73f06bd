//! The mkdir owner-token advisory lock shared with Node peers and the bash hooks
//! (messaging.md §4; `assets/oxtail-lock.sh` is the bash mirror).
//!
//! A lock `L` is an always-empty directory created with `mkdir` (atomic,
//! single winner); the holder's token sits in the sidecar `L.owner` beside it;
//! `L.steal` is the single-winner marker of whoever clears a stale `L`.
//!
//! Invariants defended:
//! - at most one holder at a time: acquisition is only ever the `mkdir L`;
//! - a dead holder cannot wedge the lock: `L` older than the stale window is
//!   cleared, but only by the one process holding `L.steal`, and only if the
//!   owner read before taking the marker is still the owner (compare-and-clear),
//!   so a lock re-acquired meanwhile survives;
//! - only the owner releases: release removes `L` only when `L.owner` equals the
//!   caller's token (an absent owner means a successor is mid-acquire: leave it);
//! - waiting is bounded by attempts *and* wall-clock time, so nothing hangs.
//!
//! Calls block the calling thread (at most ~`max_wait`); async code calls them
//! from `spawn_blocking`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::error::{StoreError, StoreResult};
use crate::trace;

/// The original's staleness window for mailbox and ledger locks.
pub const STALE_WINDOW: Duration = Duration::from_secs(30);
/// Attempt ceiling. The original makes 50 attempts 10 ms apart; our first
/// retries come much sooner (see [`backoff`]), so a few more attempts keep the
/// same ~500 ms budget, which [`MAX_WAIT`] bounds in wall-clock time anyway.
pub const MAX_ATTEMPTS: u32 = 56;
/// The original's sleep between failed attempts.
pub const RETRY_SLEEP: Duration = Duration::from_millis(10);
/// Wall-clock ceiling of one acquire (50 × 10 ms of sleeps in the original).
pub const MAX_WAIT: Duration = Duration::from_millis(500);

/// Tunables of one acquire. `Default` is the protocol's constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// A lock directory (or steal marker) older than this is abandoned.
    pub stale: Duration,
    /// Give up after this many `mkdir` attempts...
    pub max_attempts: u32,
    /// ...or once this much wall-clock time has passed, whichever comes first.
    pub max_wait: Duration,
    /// Longest sleep after an attempt that neither acquired nor cleared
    /// anything (the first sleeps are shorter, see [`backoff`]).
    pub retry_sleep: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            stale: STALE_WINDOW,
            max_attempts: MAX_ATTEMPTS,
            max_wait: MAX_WAIT,
            retry_sleep: RETRY_SLEEP,
        }
    }
}

/// What a lock protects; decides the stale-clear trace event (§4.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockKind {
    /// Mailbox of a server pid: `mailbox_lock_stale_clear {pid}`.
    Mailbox(u32),
    /// Received-ledger of a session: `received_lock_stale_clear {session_id}`.
    Ledger(String),
    /// Anything else: `lock_stale_clear {lock}`.
    Other,
}

/// `<file>.lock`: the lock path guarding `file` (plain string suffixing).
pub fn lock_path_for(file: &Path) -> PathBuf {
    suffixed(file, ".lock")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn owner_path(lock: &Path) -> PathBuf {
    suffixed(lock, ".owner")
}

fn steal_path(lock: &Path) -> PathBuf {
    suffixed(lock, ".steal")
}

/// A held lock; released (owner-checked) when dropped.
#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    token: String,
    held: bool,
}

impl LockGuard {
    /// The lock directory path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This holder's owner token (`<pid>.<16 hex>`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Release now (same as dropping the guard).
    pub fn release(mut self) {
        self.release_inner();
    }

    fn release_inner(&mut self) {
        if self.held {
            self.held = false;
            release(&self.path, &self.token);
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.release_inner();
    }
}

/// A fresh owner token in the Node format `<pid>.<16 lowercase hex>`.
pub fn new_token() -> String {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes[..]);
    format!("{}.{}", super::paths::own_pid(), hex::encode(bytes))
}

/// Acquire the lock directory `lock` (§4.3). The parent directory must exist.
///
/// Errors: [`StoreError::LockTimeout`] when still held after the budget;
/// [`StoreError::Io`] when `mkdir` fails for any reason other than "exists",
/// or when the owner token cannot be written (the lock is removed again).
pub fn acquire(lock: &Path, kind: &LockKind, opts: &LockOptions) -> StoreResult<LockGuard> {
    let token = new_token();
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match fs::DirBuilder::new().mode(0o700).create(lock) {
            Ok(()) => {
                // Beyond the original (which swallows this): without an owner
                // record the lock cannot be released by its owner and would
                // wedge everyone for the stale window (e.g. on a full disk),
                // so give it straight back and fail.
                if let Err(e) = write_owner(&owner_path(lock), &token) {
                    remove_lock(lock);
                    return Err(StoreError::io("write lock owner", &owner_path(lock), e));
                }
                return Ok(LockGuard {
                    path: lock.to_path_buf(),
                    token,
                    held: true,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::io("mkdir", lock, e)),
        }
        if attempt >= opts.max_attempts || start.elapsed() >= opts.max_wait {
            return Err(StoreError::LockTimeout {
                path: lock.to_path_buf(),
            });
        }
        if !clear_stale(lock, kind, opts.stale) {
            std::thread::sleep(backoff(attempt, opts.retry_sleep));
        }
    }
}

/// Sleep before retry `attempt + 1`: 0.1, 0.2, 0.4 … ms doubling up to `cap`
/// (10 ms). A mailbox or ledger critical section lasts tens of microseconds,
/// so under contention a waiter that slept a flat 10 ms (the original) or even
/// 1 ms would leave the lock idle most of the time; the cap keeps a long wait
/// (a hook rendering 200 messages) cheap. [`MAX_ATTEMPTS`] attempts still span
/// about the original's 500 ms.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    let us = 100u64 << attempt.saturating_sub(1).min(16);
    Duration::from_micros(us).min(cap)
}

fn write_owner(path: &Path, token: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(token.as_bytes())
}

/// Owner file content; `None` when it cannot be read (normally: absent).
fn read_owner(lock: &Path) -> Option<Vec<u8>> {
    let f = fs::File::open(owner_path(lock)).ok()?;
    super::file::read_to_vec(&f, 64).ok()
}

fn older_than(path: &Path, window: Duration) -> Option<bool> {
    let mtime = fs::metadata(path).ok()?.modified().ok()?;
    // A future mtime (clock skew) is never stale.
    Some(
        SystemTime::now()
            .duration_since(mtime)
            .is_ok_and(|age| age > window),
    )
}

/// Remove the owner sidecar, then the lock dir (recursive fallback tolerates a
/// foreign non-empty lock dir; a foreign plain file at `L` is removed too, as
/// the bash side's `rm -rf` does, so it cannot wedge the lock).
fn remove_lock(lock: &Path) {
    let _ = fs::remove_file(owner_path(lock));
    if let Err(e) = fs::remove_dir(lock)
        && e.kind() != io::ErrorKind::NotFound
        && fs::remove_dir_all(lock).is_err()
    {
        let _ = fs::remove_file(lock);
    }
}

/// The stale-clear routine (§4.4). Returns true when it did clearing work
/// (including a clear it decided to skip because the owner changed), in which
/// case the caller retries immediately.
pub fn clear_stale(lock: &Path, kind: &LockKind, stale: Duration) -> bool {
    if older_than(lock, stale) != Some(true) {
        return false;
    }
    let observed = read_owner(lock);
    clear_if_owner_unchanged(lock, kind, stale, observed)
}

/// Steps 4–7 of §4.4: take the steal marker, then remove `lock` only if it is
/// still stale and its owner is still `observed`.
fn clear_if_owner_unchanged(
    lock: &Path,
    kind: &LockKind,
    stale: Duration,
    observed: Option<Vec<u8>>,
) -> bool {
    let steal = steal_path(lock);
    match fs::DirBuilder::new().mode(0o700).create(&steal) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if older_than(&steal, stale) == Some(true) {
                let _ = fs::remove_dir(&steal);
            }
            return false;
        }
        Err(_) => return false,
    }
    // Beyond the original: the lock must still be stale too. An absent owner
    // is also what a successor's brand-new lock looks like between its
    // `mkdir` and its owner write; comparing owners alone would remove it.
    if older_than(lock, stale) == Some(true) && read_owner(lock) == observed {
        remove_lock(lock);
        match kind {
            LockKind::Mailbox(pid) => trace::event("mailbox_lock_stale_clear", json!({"pid": pid})),
            LockKind::Ledger(session_id) => trace::event(
                "received_lock_stale_clear",
                json!({"session_id": session_id}),
            ),
            LockKind::Other => trace::event(
                "lock_stale_clear",
                json!({"lock": lock.display().to_string()}),
            ),
        }
    }
    let _ = fs::remove_dir(&steal);
    true
}

/// Release `lock` if `token` is its owner (§4.5). An empty token removes the
/// lock unconditionally (legacy path). A different or absent owner leaves the
/// lock in place and traces `lock_release_skipped_not_owner {lock}`.
pub fn release(lock: &Path, token: &str) {
    if !token.is_empty() && read_owner(lock).as_deref() != Some(token.as_bytes()) {
        trace::event(
            "lock_release_skipped_not_owner",
            json!({"lock": lock.display().to_string()}),
        );
        return;
    }
    remove_lock(lock);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> LockOptions {
        LockOptions {
            stale: Duration::from_secs(30),
            max_attempts: 5,
            max_wait: Duration::from_millis(200),
            retry_sleep: Duration::from_millis(1),
        }
    }

    #[test]
    fn acquire_writes_owner_and_drop_releases() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("m.jsonl.lock");
        let g = acquire(&l, &LockKind::Other, &quick()).unwrap();
        assert!(l.is_dir());
        assert_eq!(fs::read_to_string(owner_path(&l)).unwrap(), g.token());
        let (pid, hexpart) = g.token().split_once('.').unwrap();
        assert_eq!(pid, std::process::id().to_string());
        assert_eq!(hexpart.len(), 16);
        assert!(
            hexpart
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        drop(g);
        assert!(!l.exists());
        assert!(!owner_path(&l).exists());
    }

    #[test]
    fn held_lock_times_out_with_the_original_message() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        let _g = acquire(&l, &LockKind::Other, &quick()).unwrap();
        let err = acquire(&l, &LockKind::Other, &quick()).unwrap_err();
        assert!(err.is_lock_timeout());
        assert_eq!(
            err.to_string(),
            format!("could not acquire lock at {}", l.display())
        );
    }

    #[test]
    fn missing_parent_is_an_immediate_io_error() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("nope/x.lock");
        let err = acquire(&l, &LockKind::Other, &quick()).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
    }

    #[test]
    fn release_by_non_owner_or_with_absent_owner_leaves_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        let g = acquire(&l, &LockKind::Other, &quick()).unwrap();
        release(&l, "1.0000000000000000");
        assert!(l.is_dir());
        fs::remove_file(owner_path(&l)).unwrap();
        release(&l, g.token());
        assert!(l.is_dir(), "absent owner: a successor may be mid-acquire");
        release(&l, "");
        assert!(!l.exists(), "empty token removes unconditionally");
        drop(g);
    }

    #[test]
    fn a_lock_whose_owner_changed_is_not_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        let g = acquire(&l, &LockKind::Other, &quick()).unwrap();
        // The clearer observed an older owner; the lock was re-acquired since.
        let did = clear_if_owner_unchanged(
            &l,
            &LockKind::Other,
            Duration::ZERO,
            Some(b"1.aaaaaaaaaaaaaaaa".to_vec()),
        );
        assert!(did, "work was done even though nothing was removed");
        assert!(l.is_dir());
        assert_eq!(fs::read_to_string(owner_path(&l)).unwrap(), g.token());
        assert!(!steal_path(&l).exists(), "steal marker is always removed");
        // Same observed owner: cleared.
        let did = clear_if_owner_unchanged(
            &l,
            &LockKind::Other,
            Duration::ZERO,
            Some(g.token().as_bytes().to_vec()),
        );
        assert!(did);
        assert!(!l.exists());
        drop(g);
    }

    #[test]
    fn a_fresh_steal_marker_blocks_clearing_a_stale_one_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        let _g = acquire(&l, &LockKind::Other, &quick()).unwrap();
        fs::create_dir(steal_path(&l)).unwrap();
        let did = clear_if_owner_unchanged(&l, &LockKind::Other, Duration::from_secs(30), None);
        assert!(!did);
        assert!(l.is_dir() && steal_path(&l).is_dir());
        std::thread::sleep(Duration::from_millis(20));
        let did = clear_if_owner_unchanged(&l, &LockKind::Other, Duration::from_millis(1), None);
        assert!(!did, "reclaiming a leaked marker is not clearing work");
        assert!(l.is_dir());
        assert!(!steal_path(&l).exists());
    }

    #[test]
    fn backoff_grows_to_the_cap_and_keeps_the_original_budget() {
        let cap = RETRY_SLEEP;
        let seq: Vec<u64> = (1..=9)
            .map(|a| backoff(a, cap).as_micros() as u64)
            .collect();
        assert_eq!(seq, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        let total: Duration = (1..MAX_ATTEMPTS).map(|a| backoff(a, cap)).sum();
        assert!(
            total >= Duration::from_millis(450) && total <= MAX_WAIT,
            "{total:?}"
        );
    }

    #[test]
    fn wall_clock_budget_bounds_the_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        let _g = acquire(&l, &LockKind::Other, &quick()).unwrap();
        let opts = LockOptions {
            max_attempts: u32::MAX,
            max_wait: Duration::from_millis(50),
            ..quick()
        };
        let t = Instant::now();
        assert!(acquire(&l, &LockKind::Other, &opts).is_err());
        // Hang guard only: an unbounded loop would never return.
        assert!(t.elapsed() < Duration::from_secs(20));
    }
}
