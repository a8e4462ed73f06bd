//! Lock sidecars are never followed through a symlink (issue 10 item 3), in
//! the Rust lock and in the bash library alike: a symlinked `L.owner` or
//! `L.steal.owner` never receives a token outside the temp HOME, and a
//! symlink at `L` or `L.steal` is removed (the link, never its target)
//! instead of wedging the lock. Every path outside HOME is checked byte for
//! byte afterwards.

mod store_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use oxtail::store::lock::{self, LockKind, LockOptions};
use store_support::{backdate, bash, bash_acquire, owner_of, side, stdout, trace_file};

#[derive(Clone, Copy, Debug)]
enum Side {
    Bash,
    Rust,
}

const SIDES: [Side; 2] = [Side::Bash, Side::Rust];

/// A temp HOME with a mailboxes dir, and a directory outside it holding a
/// file and a subdirectory that links may point at.
struct World {
    home: tempfile::TempDir,
    outside: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        trace_file();
        let w = World {
            home: tempfile::tempdir().unwrap(),
            outside: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(w.home.path().join(".oxtail/mailboxes")).unwrap();
        fs::write(w.target_file(), "precious\n").unwrap();
        fs::create_dir(w.target_dir()).unwrap();
        w
    }

    fn lock(&self) -> PathBuf {
        self.home.path().join(".oxtail/mailboxes/55.jsonl.lock")
    }

    fn target_file(&self) -> PathBuf {
        self.outside.path().join("file")
    }

    fn target_dir(&self) -> PathBuf {
        self.outside.path().join("dir")
    }

    /// What a test link points at: `existing`, or a path outside that does
    /// not exist.
    fn link_target(&self, dangling: bool, existing: PathBuf) -> PathBuf {
        if dangling {
            self.outside.path().join("absent")
        } else {
            existing
        }
    }

    /// Every path under the outside dir with its content (dirs: "<dir>").
    fn outside_snapshot(&self) -> BTreeMap<PathBuf, String> {
        fn walk(p: &Path, out: &mut BTreeMap<PathBuf, String>) {
            for e in fs::read_dir(p).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    out.insert(p.clone(), "<dir>".into());
                    walk(&p, out);
                } else {
                    out.insert(p.clone(), fs::read_to_string(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.outside.path(), &mut out);
        out
    }

    /// Acquire with the protocol's defaults; the token on success (held).
    fn acquire(&self, side: Side) -> Option<String> {
        let l = self.lock();
        match side {
            Side::Bash => {
                let (ok, tok) = bash_acquire(self.home.path(), &l, &[]);
                ok.then_some(tok)
            }
            Side::Rust => lock::acquire(&l, &LockKind::Mailbox(55), &LockOptions::default())
                .ok()
                .map(|g| {
                    let t = g.token().to_string();
                    std::mem::forget(g);
                    t
                }),
        }
    }
}

fn is_plain_file(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
}

#[test]
fn a_symlinked_owner_sidecar_never_receives_the_token() {
    for next in SIDES {
        for dangling in [false, true] {
            let w = World::new();
            let l = w.lock();
            let before = w.outside_snapshot();
            let target = w.link_target(dangling, w.target_file());
            symlink(&target, side(&l, ".owner")).unwrap();
            let tok = w.acquire(next).unwrap_or_else(|| panic!("{next:?}"));
            assert_eq!(w.outside_snapshot(), before, "{next:?} wrote outside HOME");
            assert!(is_plain_file(&side(&l, ".owner")), "{next:?}");
            assert_eq!(owner_of(&l).as_deref(), Some(tok.as_str()));
            // Release reads the real sidecar and removes the lock.
            match next {
                Side::Rust => lock::release(&l, &tok),
                Side::Bash => {
                    let s = format!("oxtail_lock_release '{}' '{tok}'", l.display());
                    assert!(bash(w.home.path(), &s, &[]).status.success());
                }
            }
            assert!(!l.exists() && !side(&l, ".owner").exists(), "{next:?}");
        }
    }
}

#[test]
fn a_symlinked_owner_never_counts_as_our_token() {
    // A link to a file that holds our token: release must not trust it.
    for next in SIDES {
        let w = World::new();
        let l = w.lock();
        let tok = w.acquire(next).unwrap();
        fs::write(w.target_file(), &tok).unwrap();
        fs::remove_file(side(&l, ".owner")).unwrap();
        symlink(w.target_file(), side(&l, ".owner")).unwrap();
        match next {
            Side::Rust => lock::release(&l, &tok),
            Side::Bash => {
                let s = format!("oxtail_lock_release '{}' '{tok}'", l.display());
                assert!(bash(w.home.path(), &s, &[]).status.success());
            }
        }
        assert!(l.is_dir(), "{next:?} released on the word of a symlink");
        assert_eq!(fs::read_to_string(w.target_file()).unwrap(), tok);
    }
}

#[test]
fn a_symlinked_steal_sidecar_never_receives_the_token() {
    for next in SIDES {
        let w = World::new();
        let l = w.lock();
        let before = w.outside_snapshot();
        fs::create_dir(&l).unwrap();
        backdate(&l, 60);
        symlink(w.target_file(), side(&l, ".steal.owner")).unwrap();
        let tok = w.acquire(next).unwrap_or_else(|| panic!("{next:?}"));
        assert_eq!(w.outside_snapshot(), before, "{next:?} wrote outside HOME");
        assert_eq!(owner_of(&l).as_deref(), Some(tok.as_str()));
        assert!(fs::symlink_metadata(side(&l, ".steal.owner")).is_err());
        assert!(!side(&l, ".steal").exists());
    }
}

#[test]
fn a_symlink_at_the_steal_marker_is_removed_not_followed() {
    for next in SIDES {
        for dangling in [false, true] {
            let w = World::new();
            let l = w.lock();
            fs::create_dir(&l).unwrap();
            backdate(&l, 60);
            let target = w.link_target(dangling, w.target_dir());
            symlink(&target, side(&l, ".steal")).unwrap();
            let before = w.outside_snapshot();
            let tok = w
                .acquire(next)
                .unwrap_or_else(|| panic!("{next:?} wedged on a symlinked steal marker"));
            assert_eq!(w.outside_snapshot(), before, "{next:?} touched the target");
            assert_eq!(owner_of(&l).as_deref(), Some(tok.as_str()));
            assert!(fs::symlink_metadata(side(&l, ".steal")).is_err());
        }
    }
}

#[test]
fn a_symlink_at_the_lock_path_is_removed_not_followed() {
    for next in SIDES {
        for dangling in [false, true] {
            let w = World::new();
            let l = w.lock();
            let target = w.link_target(dangling, w.target_dir());
            symlink(&target, &l).unwrap();
            let before = w.outside_snapshot();
            let tok = w
                .acquire(next)
                .unwrap_or_else(|| panic!("{next:?} wedged on a symlinked lock"));
            assert_eq!(w.outside_snapshot(), before, "{next:?} touched the target");
            let m = fs::symlink_metadata(&l).unwrap();
            assert!(m.is_dir(), "{next:?}: the lock is a real directory again");
            assert_eq!(owner_of(&l).as_deref(), Some(tok.as_str()));
        }
    }
}

#[test]
fn a_fifo_owner_sidecar_never_hangs_bash() {
    let w = World::new();
    let l = w.lock();
    let script = format!(
        ". '{lib}'\nmkfifo '{o}' && oxtail_lock_acquire '{l}' && [ -f '{o}' ] && \
         oxtail_lock_release '{l}' \"$OXTAIL_LOCK_TOKEN\" && [ ! -e '{l}' ] && echo ok",
        lib = store_support::bash_lib().display(),
        o = side(&l, ".owner").display(),
        l = l.display()
    );
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("HOME", w.home.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Hang guard only (a write to a fifo without reader blocks for good).
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("bash hung on a fifo owner sidecar");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "ok");
}
