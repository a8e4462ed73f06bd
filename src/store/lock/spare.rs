//! Parked locks: a released lock directory and its owner sidecar are renamed
//! aside (`L.spare`, `L.owner.spare`) instead of removed, and the next Rust
//! acquirer renames them back. Beyond the original, which runs `mkdir` and
//! `rmdir` (and creates and unlinks `L.owner`) on every use.
//!
//! Why: every `mkdir`/`rmdir` pair allocates and frees an inode and a
//! directory block. On ext4 without a journal the inode allocator then skips
//! each recently freed inode for one to six minutes, scanning past all of them
//! on every later allocation, so under sustained traffic each new lock costs
//! more than the last (two lock cycles of a send: 150 µs with `mkdir`, 33 µs
//! parked, on the 2-core CI disk; `oxtail-bench --only store` prints both).
//! A rename allocates and frees nothing.
//!
//! What every other participant (Node peers, the bash hooks, a stale-clearer)
//! sees is unchanged: `L` appears atomically as an empty directory with a
//! fresh mtime, `L.owner` holds the holder's token, and on release the owner
//! goes first and then `L`. The spares are new names that no 0.14 peer reads.
//!
//! Invariants defended:
//! - acquisition stays single-winner: the rename into `L` is exclusive
//!   (`renameat2(RENAME_NOREPLACE)`, macOS `renamex_np(RENAME_EXCL)`) and fails
//!   when `L` exists, exactly like `mkdir`;
//! - `L` is never stale when it appears: the spare's mtime is set to now just
//!   before the rename, and afterwards `L` must be a directory whose mtime is
//!   less than [`FRESH`] old (a holder stopped between the two steps hands it
//!   back and creates a fresh one instead); staleness is judged from that mtime
//!   by every implementation;
//! - nothing is followed: a symlink or other non-directory that reaches `L`
//!   this way is removed (never a lock), and an owner spare is written only
//!   when it is a regular file with a single link (`O_NOFOLLOW`), so no file
//!   outside the store ever receives a token;
//! - the owner sidecar is written after `L` appears, so it is never older than
//!   `L` (the dead-holder rule of module `sidecar` relies on that);
//! - where the exclusive rename is unsupported (another OS, a filesystem
//!   without it) the process falls back to `mkdir`/`rmdir` for good.
//!
//! Residual (the same as `mkdir`'s): a holder stopped for longer than the
//! stale window between making `L` and using it may find it cleared.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// How old a just-renamed `L` may look before it is handed back.
pub(super) const FRESH: Duration = Duration::from_secs(5);

/// Set once the exclusive rename proved unsupported here.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// The parked lock directory of `lock`.
pub(super) fn dir_path(lock: &Path) -> PathBuf {
    super::suffixed(lock, ".spare")
}

/// The parked owner sidecar of `lock`.
pub(super) fn owner_path(lock: &Path) -> PathBuf {
    super::suffixed(lock, ".owner.spare")
}

/// Outcome of [`take`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Take {
    /// `lock` is ours, made from the spare.
    Held,
    /// `lock` exists: somebody holds it.
    Busy,
    /// No usable spare: make `lock` with `mkdir`.
    NoSpare,
}

/// Try to make `lock` from its parked directory.
pub(super) fn take(lock: &Path) -> Take {
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return Take::NoSpare;
    }
    let spare = dir_path(lock);
    if touch_nofollow(&spare).is_err() {
        return Take::NoSpare; // none parked (or another acquirer took it)
    }
    match rename_exclusive(&spare, lock) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Take::Busy,
        Err(e) => {
            note_unsupported(&e);
            return Take::NoSpare;
        }
    }
    let Ok(meta) = fs::symlink_metadata(lock) else {
        return Take::NoSpare;
    };
    if !meta.is_dir() {
        // A planted link or file travelled along: never a lock; remove the
        // name itself (unlink never follows a link nor removes a directory).
        let _ = fs::remove_file(lock);
        return Take::NoSpare;
    }
    let fresh = meta.modified().is_ok_and(|m| {
        SystemTime::now()
            .duration_since(m)
            .map_or(true, |age| age < FRESH)
    });
    if !fresh {
        // Stopped between the touch and the rename: do not hold a lock that
        // may already look stale to others. Give it back and use mkdir.
        if rename_exclusive(lock, &spare).is_err() {
            let _ = fs::remove_dir(lock);
        }
        return Take::NoSpare;
    }
    Take::Held
}

/// Write `token` into the parked owner sidecar and rename it to `owner`.
/// False when there is none, it is not a private regular file, or any step
/// fails: the caller then writes the sidecar afresh.
pub(super) fn put_owner(lock: &Path, owner: &Path, token: &str) -> bool {
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return false;
    }
    let spare = owner_path(lock);
    let Ok((f, meta)) =
        crate::store::file::open_regular_io(&spare, fs::OpenOptions::new().read(true).write(true))
    else {
        return false;
    };
    if meta.nlink() != 1 {
        return false;
    }
    let len = token.len() as u64;
    if f.write_all_at(token.as_bytes(), 0).is_err() || (meta.len() > len && f.set_len(len).is_err())
    {
        return false;
    }
    drop(f);
    // A plain rename replaces whatever sits at `owner` (an orphaned sidecar,
    // a link: the link itself, never its target).
    fs::rename(&spare, owner).is_ok()
}

/// Park our own released `lock`: its owner sidecar `owner` first, then the
/// directory (the protocol's release order). False when the directory was
/// not parked; the caller removes what is left as usual.
pub(super) fn park(lock: &Path, owner: &Path) -> bool {
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return false;
    }
    match rename_exclusive(owner, &owner_path(lock)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(owner);
        }
        Err(e) => {
            note_unsupported(&e);
            let _ = fs::remove_file(owner);
        }
    }
    match rename_exclusive(lock, &dir_path(lock)) {
        Ok(()) => true,
        Err(e) => {
            note_unsupported(&e);
            false
        }
    }
}

/// Remove both spares of `lock` (for a lock whose file is going away).
pub(super) fn discard(lock: &Path) {
    let _ = fs::remove_file(owner_path(lock));
    let spare = dir_path(lock);
    if fs::remove_dir(&spare).is_err() {
        let _ = fs::remove_file(&spare); // a non-directory planted there
    }
}

fn note_unsupported(e: &io::Error) {
    if matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP)
    ) {
        UNSUPPORTED.store(true, Ordering::Relaxed);
    }
}

fn cstr(path: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Set `path`'s access and modification times to now, without following a
/// symlink at `path`.
fn touch_nofollow(path: &Path) -> io::Result<()> {
    let c = cstr(path)?;
    let now = libc::timespec {
        tv_sec: 0,
        tv_nsec: libc::UTIME_NOW,
    };
    let times = [now, now];
    // SAFETY: `c` is a valid NUL-terminated path and `times` two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Rename `from` to `to`, failing with `AlreadyExists` when `to` exists.
#[cfg(target_os = "linux")]
fn rename_exclusive(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: two valid NUL-terminated paths; renameat2 takes no buffers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Rename `from` to `to`, failing with `AlreadyExists` when `to` exists.
#[cfg(any(target_os = "macos", target_os = "ios"))]
fn rename_exclusive(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: two valid NUL-terminated paths.
    let r = unsafe { libc::renamex_np(f.as_ptr(), t.as_ptr(), libc::RENAME_EXCL) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// No exclusive rename on this OS: always the mkdir path.
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "ios")))]
fn rename_exclusive(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::DirBuilderExt;

    fn mkdir(p: &Path) {
        fs::DirBuilder::new().mode(0o700).create(p).unwrap();
    }

    #[test]
    fn take_without_a_spare_says_mkdir_and_a_parked_one_comes_back() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = tmp.path().join("m.jsonl.lock");
        assert_eq!(take(&lock), Take::NoSpare);
        mkdir(&lock);
        let owner = super::super::owner_path(&lock);
        fs::write(&owner, "1.ab").unwrap();
        assert!(park(&lock, &owner));
        assert!(!lock.exists() && !owner.exists());
        let ino = fs::metadata(dir_path(&lock)).unwrap().ino();
        assert_eq!(take(&lock), Take::Held);
        assert_eq!(fs::metadata(&lock).unwrap().ino(), ino, "same inode reused");
        assert!(!dir_path(&lock).exists());
        // A second taker finds the lock held.
        mkdir(&dir_path(&lock));
        assert_eq!(take(&lock), Take::Busy);
        assert!(dir_path(&lock).exists(), "the busy taker leaves the spare");
    }

    #[test]
    fn a_taken_spare_looks_brand_new() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = tmp.path().join("l.lock");
        let spare = dir_path(&lock);
        mkdir(&spare);
        let old = SystemTime::now() - Duration::from_secs(3600);
        fs::File::open(&spare)
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(old))
            .unwrap();
        assert_eq!(take(&lock), Take::Held);
        let age = SystemTime::now()
            .duration_since(fs::metadata(&lock).unwrap().modified().unwrap())
            .unwrap_or_default();
        assert!(age < Duration::from_secs(2), "mtime must be fresh: {age:?}");
    }

    #[test]
    fn a_symlink_or_file_parked_as_spare_is_never_a_lock_and_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("elsewhere");
        mkdir(&target);
        let lock = tmp.path().join("l.lock");
        std::os::unix::fs::symlink(&target, dir_path(&lock)).unwrap();
        assert_eq!(take(&lock), Take::NoSpare);
        assert!(fs::symlink_metadata(&lock).is_err(), "the link is removed");
        assert!(target.is_dir(), "its target is untouched");
        fs::write(dir_path(&lock), "x").unwrap();
        assert_eq!(take(&lock), Take::NoSpare);
        assert!(fs::symlink_metadata(&lock).is_err());
    }

    #[test]
    fn owner_spare_is_written_only_when_private_and_regular() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = tmp.path().join("l.lock");
        let owner = super::super::owner_path(&lock);
        assert!(!put_owner(&lock, &owner, "7.aa"), "no spare yet");
        fs::write(owner_path(&lock), "123456.longer-old-token").unwrap();
        assert!(put_owner(&lock, &owner, "7.aa"));
        assert_eq!(fs::read(&owner).unwrap(), b"7.aa", "shrunk to the token");
        assert!(!owner_path(&lock).exists());

        // A hard link to a file outside the store is never written through.
        let outside = tmp.path().join("precious");
        fs::write(&outside, "keep").unwrap();
        fs::hard_link(&outside, owner_path(&lock)).unwrap();
        assert!(!put_owner(&lock, &owner, "8.bb"));
        assert_eq!(fs::read(&outside).unwrap(), b"keep");

        // Nor is a symlink.
        fs::remove_file(owner_path(&lock)).unwrap();
        std::os::unix::fs::symlink(&outside, owner_path(&lock)).unwrap();
        assert!(!put_owner(&lock, &owner, "9.cc"));
        assert_eq!(fs::read(&outside).unwrap(), b"keep");
    }

    #[test]
    fn park_keeps_one_spare_and_discard_removes_both() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = tmp.path().join("l.lock");
        let owner = super::super::owner_path(&lock);
        mkdir(&dir_path(&lock));
        fs::write(owner_path(&lock), "1.aa").unwrap();
        mkdir(&lock);
        fs::write(&owner, "2.bb").unwrap();
        assert!(!park(&lock, &owner), "a spare is already parked");
        assert!(!owner.exists(), "the owner goes either way");
        assert!(lock.is_dir(), "the caller removes the lock itself");
        discard(&lock);
        assert!(!dir_path(&lock).exists() && !owner_path(&lock).exists());
    }
}
