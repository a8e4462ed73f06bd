//! The steal marker `L.steal`: the single-winner right to clear an abandoned
//! lock `L` (messaging.md §4.4), and its owner sidecar `L.steal.owner`.
//!
//! The marker stays a plain, empty directory, as the original expects: both
//! its 0.14 and its later versions remove a leftover marker with a plain
//! `rmdir`, which a file inside would make fail for good. Its owner token
//! therefore sits *beside* it (beyond the original, which gives the marker
//! no owner and ignores the sidecar). The token is the clearer's acquire
//! token, so its pid is the clearer's.
//!
//! Invariants defended:
//! - one clearer at a time: taking the marker is only ever `mkdir L.steal`;
//! - a dead clearer does not wedge clearing: a marker whose owner is provably
//!   dead (see `sidecar`) is removed at once, by exactly one reclaimer — the
//!   one whose `rename` took the dead owner's sidecar away (rename of one name
//!   succeeds once; the others find it gone and back off). The winner removes
//!   the marker only if what it took is still the dead token and still not
//!   older than the marker, so a marker re-taken meanwhile by a live clearer
//!   is never removed;
//! - a marker older than the stale window is removed as the original does
//!   (plain `rmdir`, "no work"), whatever its owner says;
//! - a symlink at `L.steal` is never a marker (every side creates it with
//!   `mkdir`): the link itself is removed, never followed;
//! - release removes the sidecar and then the marker, and leaves a marker
//!   whose sidecar names another clearer alone.
//!
//! A reclaimer killed between its `rename` and its cleanup leaves the marker
//! without owner (the 30 s rule then applies) and its private
//! `L.steal.reap.<token>` file behind; both need a second fault inside a
//! window of microseconds.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::sidecar;
use super::{make_dir, older_than, steal_owner_path, steal_path, suffixed};
use crate::trace;

/// A held steal marker; released when dropped.
#[derive(Debug)]
pub struct StealMarker {
    steal: PathBuf,
    owner: PathBuf,
    token: String,
}

/// Outcome of [`take`].
pub(super) enum Take {
    /// We are the sole clearer.
    Held(StealMarker),
    /// Another clearer holds it (or it could not be created): back off.
    Busy,
    /// A dead clearer's marker or a symlink was removed: retry at once.
    Reclaimed,
}

/// Take `L.steal` for the clear of `lock`, writing `token` beside it.
pub(super) fn take(lock: &Path, stale: Duration, token: &str) -> Take {
    let steal = steal_path(lock);
    let owner = steal_owner_path(lock);
    match make_dir(&steal) {
        Ok(()) => {
            // Best effort: a marker without owner falls back to the 30 s rule.
            let _ = sidecar::put(&owner, token);
            Take::Held(StealMarker {
                steal,
                owner,
                token: token.to_string(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => reclaim(lock, stale, token),
        Err(_) => Take::Busy,
    }
}

/// The marker exists: remove it if it is a symlink, its clearer is provably
/// dead, or it is older than `stale`.
fn reclaim(lock: &Path, stale: Duration, token: &str) -> Take {
    let steal = steal_path(lock);
    let Ok(meta) = fs::symlink_metadata(&steal) else {
        return Take::Busy;
    };
    if meta.file_type().is_symlink() {
        if fs::remove_file(&steal).is_ok() {
            reclaimed(lock, "symlink");
        }
        return Take::Reclaimed;
    }
    let owner = steal_owner_path(lock);
    if let (Some(seen), Ok(mtime)) = (sidecar::read(&owner), meta.modified())
        && seen.proves_dead_holder(mtime)
    {
        return reap(lock, &owner, &seen, token);
    }
    if older_than(&meta, stale) {
        // The original's rule: a leaked marker is force-cleared once it is
        // older than the window; that is not clearing work.
        let _ = fs::remove_dir(&steal);
    }
    Take::Busy
}

/// Remove a dead clearer's marker: compare-and-take its owner sidecar by
/// renaming it to a private name, then remove the marker only if what we
/// took is still the dead token, written for this marker.
fn reap(lock: &Path, owner: &Path, seen: &sidecar::Sidecar, token: &str) -> Take {
    let steal = steal_path(lock);
    let claimed = suffixed(&steal, &format!(".reap.{token}"));
    if fs::rename(owner, &claimed).is_err() {
        return Take::Busy; // another reclaimer took it, or its clearer released
    }
    let still_dead = match (sidecar::read(&claimed), fs::symlink_metadata(&steal)) {
        (Some(took), Ok(meta)) => {
            took.token == seen.token
                && meta.is_dir()
                && meta.modified().is_ok_and(|m| took.proves_dead_holder(m))
        }
        _ => false,
    };
    if still_dead {
        let _ = fs::remove_dir(&steal);
    }
    let _ = fs::remove_file(&claimed);
    if still_dead {
        reclaimed(lock, "dead_holder");
        Take::Reclaimed
    } else {
        // We took a live clearer's sidecar: its marker now has no owner and
        // falls back to the 30 s rule; it is never removed by us.
        Take::Busy
    }
}

fn reclaimed(lock: &Path, reason: &str) {
    trace::event(
        "lock_steal_reclaimed",
        json!({"lock": lock.display().to_string(), "reason": reason}),
    );
}

impl Drop for StealMarker {
    fn drop(&mut self) {
        match sidecar::read(&self.owner) {
            // Reclaimed from us and re-taken by another clearer: not ours.
            Some(s) if s.token != self.token.as_bytes() => return,
            Some(_) => {
                let _ = fs::remove_file(&self.owner);
            }
            None => {}
        }
        let _ = fs::remove_dir(&self.steal);
    }
}

#[cfg(test)]
mod tests {
    use super::super::sidecar::tests::dead_pid;
    use super::*;
    use std::time::SystemTime;

    const STALE: Duration = Duration::from_secs(30);

    fn backdate(path: &Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        fs::File::open(path)
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(t))
            .unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn take_writes_the_token_beside_the_marker_and_drop_removes_both() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        let Take::Held(m) = take(&l, STALE, "7.ab") else {
            panic!("not taken")
        };
        assert!(steal_path(&l).is_dir());
        assert_eq!(
            fs::read_dir(steal_path(&l)).unwrap().count(),
            0,
            "stays empty"
        );
        assert_eq!(fs::read_to_string(steal_owner_path(&l)).unwrap(), "7.ab");
        assert!(
            matches!(take(&l, STALE, "8.ab"), Take::Busy),
            "live clearer"
        );
        drop(m);
        assert!(names(tmp.path()).is_empty());
    }

    #[test]
    fn a_dead_clearers_marker_is_reaped_at_once_a_live_ones_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        fs::create_dir(steal_path(&l)).unwrap();
        fs::write(steal_owner_path(&l), format!("{}.ab", dead_pid())).unwrap();
        assert!(matches!(take(&l, STALE, "9.cd"), Take::Reclaimed));
        assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
        let Take::Held(m) = take(&l, STALE, "9.cd") else {
            panic!("not taken after the reap")
        };
        drop(m);

        fs::create_dir(steal_path(&l)).unwrap();
        fs::write(steal_owner_path(&l), format!("{}.ab", std::process::id())).unwrap();
        assert!(matches!(take(&l, STALE, "9.cd"), Take::Busy));
        assert!(steal_path(&l).is_dir() && steal_owner_path(&l).is_file());
    }

    #[test]
    fn an_ownerless_malformed_or_leftover_owner_keeps_the_30_s_rule() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        fs::create_dir(steal_path(&l)).unwrap();
        assert!(matches!(take(&l, STALE, "9.cd"), Take::Busy), "ownerless");
        fs::write(steal_owner_path(&l), "dead.holder").unwrap();
        assert!(matches!(take(&l, STALE, "9.cd"), Take::Busy), "malformed");
        // A dead token written before this marker existed (left behind when a
        // peer that ignores sidecars removed an earlier marker).
        fs::write(steal_owner_path(&l), format!("{}.ab", dead_pid())).unwrap();
        backdate(&steal_owner_path(&l), 100);
        assert!(matches!(take(&l, STALE, "9.cd"), Take::Busy), "leftover");
        assert!(steal_path(&l).is_dir());
        // Older than the window: removed the original's way, "no work".
        backdate(&steal_path(&l), 60);
        assert!(matches!(take(&l, STALE, "9.cd"), Take::Busy));
        assert!(!steal_path(&l).exists());
    }

    #[test]
    fn reaping_never_removes_a_marker_retaken_by_a_live_clearer() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        fs::create_dir(steal_path(&l)).unwrap();
        let dead = format!("{}.ab", dead_pid());
        fs::write(steal_owner_path(&l), &dead).unwrap();
        let stale_view = sidecar::read(&steal_owner_path(&l)).unwrap();
        // Meanwhile another reclaimer reaped it and a live clearer took it.
        assert!(matches!(take(&l, STALE, "1.aa"), Take::Reclaimed));
        let Take::Held(live) = take(&l, STALE, "1.bb") else {
            panic!()
        };
        // The late reclaimer acts on what it saw before.
        assert!(matches!(
            reap(&l, &steal_owner_path(&l), &stale_view, "1.cc"),
            Take::Busy
        ));
        assert!(
            steal_path(&l).is_dir(),
            "a live clearer's marker was removed"
        );
        // It took the live sidecar away; the live clearer still releases.
        drop(live);
        assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
    }

    #[test]
    fn release_leaves_a_marker_that_another_clearer_owns_now() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        let Take::Held(m) = take(&l, STALE, "1.aa") else {
            panic!()
        };
        fs::write(steal_owner_path(&l), "2.bb").unwrap();
        drop(m);
        assert!(steal_path(&l).is_dir());
        assert_eq!(fs::read_to_string(steal_owner_path(&l)).unwrap(), "2.bb");
    }

    #[test]
    fn a_symlinked_marker_or_sidecar_is_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let l = tmp.path().join("x.lock");
        std::os::unix::fs::symlink(outside.path(), steal_path(&l)).unwrap();
        assert!(matches!(take(&l, STALE, "1.aa"), Take::Reclaimed));
        assert!(outside.path().is_dir());
        assert!(fs::symlink_metadata(steal_path(&l)).is_err());
        let target = outside.path().join("token");
        fs::write(&target, "precious").unwrap();
        std::os::unix::fs::symlink(&target, steal_owner_path(&l)).unwrap();
        let Take::Held(m) = take(&l, STALE, "1.aa") else {
            panic!()
        };
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
        assert_eq!(fs::read_to_string(steal_owner_path(&l)).unwrap(), "1.aa");
        drop(m);
        assert_eq!(names(outside.path()), ["token"]);
        assert!(names(tmp.path()).is_empty());
    }
}
