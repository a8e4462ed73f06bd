//! The mkdir owner-token advisory lock shared with Node peers and the bash hooks
//! (messaging.md §4; `assets/oxtail-lock.sh` is the bash mirror).
//!
//! A lock `L` is an always-empty directory created with `mkdir` (atomic,
//! single winner); the holder's token sits in the sidecar `L.owner` beside it;
//! `L.steal` is the single-winner marker of whoever clears an abandoned `L`
//! (module `steal`), with its clearer's token beside it in `L.steal.owner`.
//!
//! `L` is *abandoned* when it is older than the stale window (30 s, the
//! original's rule) or — beyond the original — when its owner is provably
//! dead: the owner token starts with the holder's pid (`<pid>.<hex>` in every
//! implementation), the sidecar was written for this `L`, and that pid no
//! longer exists (module `sidecar` says exactly when). A holder SIGKILLed inside its
//! critical section is then reclaimed on the next attempt instead of after
//! 30 s. A live pid (or a reused one, or a malformed or absent token) keeps
//! the 30 s rule, so pid reuse can only delay a clear, never steal a live lock.
//! The original (0.14 and later) ignores both new rules and still sees what it
//! expects on disk: an empty `L`, `L.owner`, an empty `L.steal` directory.
//!
//! A Rust holder parks its released `L` and `L.owner` under spare names and
//! the next Rust acquirer renames them back (module `spare`): the same states
//! on disk for everyone else, without allocating or freeing an inode per use.
//!
//! Invariants defended:
//! - at most one holder at a time: acquisition is only ever the `mkdir L` or
//!   the exclusive rename of its spare onto `L`, both single-winner;
//! - a dead holder cannot wedge the lock: an abandoned `L` is cleared, but
//!   only by the one process holding `L.steal`, and only if, once it holds
//!   the marker, the owner is still the one it read before (compare-and-clear)
//!   *and* `L` is still abandoned (re-checked, so a successor's brand-new lock
//!   — owner absent, or a fresh token — survives: finding 1 in AGENTS.md);
//! - a dead clearer cannot wedge clearing either (module `steal`);
//! - only the owner releases: release removes `L` only when `L.owner` equals the
//!   caller's token (an absent owner means a successor is mid-acquire: leave it);
//! - sidecars are never written or read through a symlink, and a symlink at
//!   `L` or `L.steal` is never a lock: the link itself is removed, its target
//!   never touched (beyond the original, which follows links);
//! - waiting is bounded by attempts *and* wall-clock time, so nothing hangs.
//!
//! Residual (accepted): a holder killed in the microseconds between `mkdir L`
//! and its owner write, or between removing `L.owner` and `L` on release,
//! leaves an owner-less `L`, which proves nothing and waits out the 30 s.
//!
//! Calls block the calling thread (at most ~`max_wait`); async code calls them
//! from `spawn_blocking`.

mod sidecar;
mod spare;
mod steal;

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::error::{StoreError, StoreResult};
use crate::trace;
use sidecar::Sidecar;
pub use steal::StealMarker;

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

fn steal_owner_path(lock: &Path) -> PathBuf {
    suffixed(lock, ".steal.owner")
}

/// `mkdir path` with the protocol's `0700`.
fn make_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o700).create(path)
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

    /// Release, and drop the parked spares too: for a lock whose file has
    /// just been removed for good (nobody will take this lock again).
    pub fn retire(mut self) {
        self.release_inner();
        spare::discard(&self.path);
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
        let made = match spare::take(lock) {
            spare::Take::Held => Ok(()),
            spare::Take::Busy => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            spare::Take::NoSpare => make_dir(lock),
        };
        match made {
            Ok(()) => {
                // Beyond the original (which swallows this): without an owner
                // record the lock cannot be released by its owner and would
                // wedge everyone for the stale window (e.g. on a full disk),
                // so give it straight back and fail.
                let owner = owner_path(lock);
                if !spare::put_owner(lock, &owner, &token)
                    && let Err(e) = sidecar::put(&owner, &token)
                {
                    remove_lock(lock);
                    return Err(StoreError::io("write lock owner", &owner, e));
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
        if !clear_abandoned(lock, kind, opts.stale, &token) {
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

/// Owner sidecar of `lock`, if readable (`sidecar::read`).
fn read_owner(lock: &Path) -> Option<Sidecar> {
    sidecar::read(&owner_path(lock))
}

/// Whether `meta`'s mtime is more than `window` in the past. A future mtime
/// (clock skew) or an unreadable one is never stale.
fn older_than(meta: &fs::Metadata, window: Duration) -> bool {
    meta.modified().is_ok_and(|mtime| {
        SystemTime::now()
            .duration_since(mtime)
            .is_ok_and(|age| age > window)
    })
}

/// Why a lock (whose `lstat` is `meta`) may be cleared: the `reason` of the
/// stale-clear trace event.
fn abandonment(
    meta: &fs::Metadata,
    owner: Option<&Sidecar>,
    stale: Duration,
) -> Option<&'static str> {
    if let (Some(owner), Ok(mtime)) = (owner, meta.modified())
        && owner.proves_dead_holder(mtime)
    {
        return Some("dead_holder");
    }
    older_than(meta, stale).then_some("stale")
}

/// Remove the owner sidecar, then the lock dir (recursive fallback tolerates a
/// foreign non-empty lock dir; a foreign plain file at `L` is removed too, as
/// the bash side's `rm -rf` does, so it cannot wedge the lock). Neither removal
/// follows a symlink.
fn remove_lock(lock: &Path) {
    let _ = fs::remove_file(owner_path(lock));
    if let Err(e) = fs::remove_dir(lock)
        && e.kind() != io::ErrorKind::NotFound
        && fs::remove_dir_all(lock).is_err()
    {
        let _ = fs::remove_file(lock);
    }
}

/// The stale-clear routine (§4.4), with the dead-holder rule. Returns true
/// when it did clearing work (including a clear it decided to skip because
/// the owner changed, and reclaiming a dead clearer's steal marker), in which
/// case the caller retries immediately.
pub fn clear_stale(lock: &Path, kind: &LockKind, stale: Duration) -> bool {
    clear_abandoned(lock, kind, stale, &new_token())
}

/// [`clear_stale`] with the caller's token (written beside the steal marker).
fn clear_abandoned(lock: &Path, kind: &LockKind, stale: Duration, token: &str) -> bool {
    let Ok(meta) = fs::symlink_metadata(lock) else {
        return false; // vanished: just retry
    };
    if meta.file_type().is_symlink() {
        // Never a lock (every side creates `L` with mkdir): unlink the link
        // itself; unlink cannot remove a directory that replaced it meanwhile.
        if fs::remove_file(lock).is_ok() {
            trace::event(
                "lock_symlink_removed",
                json!({"lock": lock.display().to_string()}),
            );
        }
        return true;
    }
    let observed = read_owner(lock);
    if abandonment(&meta, observed.as_ref(), stale).is_none() {
        return false;
    }
    clear_if_owner_unchanged(lock, kind, stale, observed, token)
}

/// Steps 4–7 of §4.4: take the steal marker, then remove `lock` only if its
/// owner is still `observed` and it is still abandoned.
fn clear_if_owner_unchanged(
    lock: &Path,
    kind: &LockKind,
    stale: Duration,
    observed: Option<Sidecar>,
    token: &str,
) -> bool {
    let marker = match steal::take(lock, stale, token) {
        steal::Take::Held(m) => m,
        steal::Take::Busy => return false,
        steal::Take::Reclaimed => return true,
    };
    // Beyond the original: the lock must still be abandoned too. An absent
    // owner is also what a successor's brand-new lock looks like between its
    // `mkdir` and its owner write; comparing owners alone would remove it.
    let current = read_owner(lock);
    let unchanged = current.as_ref().map(|s| &s.token) == observed.as_ref().map(|s| &s.token);
    if unchanged
        && let Ok(meta) = fs::symlink_metadata(lock)
        && let Some(reason) = abandonment(&meta, current.as_ref(), stale)
    {
        remove_lock(lock);
        trace_clear(lock, kind, reason);
    }
    drop(marker);
    true
}

fn trace_clear(lock: &Path, kind: &LockKind, reason: &str) {
    match kind {
        LockKind::Mailbox(pid) => trace::event(
            "mailbox_lock_stale_clear",
            json!({"pid": pid, "reason": reason}),
        ),
        LockKind::Ledger(session_id) => trace::event(
            "received_lock_stale_clear",
            json!({"session_id": session_id, "reason": reason}),
        ),
        LockKind::Other => trace::event(
            "lock_stale_clear",
            json!({"lock": lock.display().to_string(), "reason": reason}),
        ),
    }
}

/// Take `lock`'s steal marker as a clearer does, writing a fresh token of
/// this process beside it; `None` when another clearer holds it. For tools
/// and tests that stand in for a clearer (e.g. one killed mid-clear); the
/// lock itself clears through [`acquire`] and [`clear_stale`].
pub fn take_steal_marker(lock: &Path) -> Option<StealMarker> {
    match steal::take(lock, STALE_WINDOW, &new_token()) {
        steal::Take::Held(m) => Some(m),
        _ => None,
    }
}

/// Release `lock` if `token` is its owner (§4.5). An empty token removes the
/// lock unconditionally (legacy path). A different or absent owner leaves the
/// lock in place and traces `lock_release_skipped_not_owner {lock}`.
pub fn release(lock: &Path, token: &str) {
    if !token.is_empty() && read_owner(lock).is_none_or(|o| o.token != token.as_bytes()) {
        trace::event(
            "lock_release_skipped_not_owner",
            json!({"lock": lock.display().to_string()}),
        );
        return;
    }
    // Our own lock: park it for the next acquirer (module `spare`).
    if token.is_empty() || !spare::park(lock, &owner_path(lock)) {
        remove_lock(lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An observed owner (its mtime plays no part in compare-and-clear).
    fn seen(token: &[u8]) -> Option<Sidecar> {
        Some(Sidecar {
            token: token.to_vec(),
            mtime: None,
        })
    }

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
            seen(b"1.aaaaaaaaaaaaaaaa"),
            "1.0123456789abcdef",
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
            seen(g.token().as_bytes()),
            "1.0123456789abcdef",
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
        let did =
            clear_if_owner_unchanged(&l, &LockKind::Other, Duration::from_secs(30), None, "1.ab");
        assert!(!did);
        assert!(l.is_dir() && steal_path(&l).is_dir());
        std::thread::sleep(Duration::from_millis(20));
        let did =
            clear_if_owner_unchanged(&l, &LockKind::Other, Duration::from_millis(1), None, "1.ab");
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
