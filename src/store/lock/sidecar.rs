//! Owner sidecars: the token file beside a lock (`L.owner`) and beside its
//! steal marker (`L.steal.owner`), and what a token proves about its holder.
//!
//! Invariants defended:
//! - a sidecar is never written or read through a symlink (beyond the
//!   original, which follows one): writing unlinks whatever sits at the name
//!   (an orphaned sidecar, a link, a fifo) and creates a fresh `0600` file with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW`, so a link to a file outside the store
//!   never receives our token; reading opens with `O_NOFOLLOW | O_NONBLOCK`
//!   and accepts only a regular file, so a link reads as "no owner" and a fifo
//!   cannot hang the reader. The name is ours to replace (we hold the object
//!   it sits beside); what a link points at is not;
//! - a holder is *provably dead* only when all three hold: its token has the
//!   shape every implementation mints (`<pid>.<lowercase hex>`: Node and Rust
//!   `<pid>.<16 hex>`, bash `$$.<12 hex>`, the original's fallback bash
//!   `$$.<decimal>`), the sidecar is not older than the object it sits beside
//!   (a sidecar left over from an earlier lock names an earlier holder), and
//!   `kill(pid, 0)` fails with `ESRCH`. An absent, empty or malformed token, a
//!   live pid, a zombie, and `EPERM` (the pid exists under another user: it
//!   might be a holder running as root) all prove nothing, and the caller
//!   keeps the 30 s rule. A reused pid therefore only delays a clear.
//!
//! Limit (documented, not defended): peers sharing one `~/.oxtail` from
//! different pid namespaces (a container bind-mounting the home directory)
//! see each other's pids as absent; such a fleet must not mix namespaces.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use crate::store::registry;

/// Longest sidecar content read (tokens are ~30 bytes; a longer foreign file
/// is compared on this prefix).
const MAX_READ: u64 = 4096;

/// A sidecar as read: its content and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sidecar {
    pub(super) token: Vec<u8>,
    pub(super) mtime: Option<SystemTime>,
}

impl Sidecar {
    /// Whether this sidecar proves that the holder of the object beside it
    /// (modified at `object_mtime`) is dead: see the module doc.
    pub(super) fn proves_dead_holder(&self, object_mtime: SystemTime) -> bool {
        let Some(pid) = token_pid(&self.token) else {
            return false;
        };
        // Written for this object: a sidecar is always written after its
        // object is created, and the object (an empty directory) is never
        // modified afterwards.
        if self.mtime.is_none_or(|m| m < object_mtime) {
            return false;
        }
        !registry::is_alive(pid)
    }
}

/// Create `path` afresh holding `token`, never through a symlink (module doc).
/// Fails when something that cannot be unlinked (a directory) is in the way.
pub(super) fn put(path: &Path, token: &str) -> io::Result<()> {
    let create = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    let mut f = match create() {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            create()?
        }
        Err(e) => return Err(e),
    };
    f.write_all(token.as_bytes())
}

/// The sidecar at `path`; `None` when it is absent, unreadable, a symlink or
/// not a regular file.
pub(super) fn read(path: &Path) -> Option<Sidecar> {
    let (f, meta) =
        crate::store::file::open_regular_io(path, fs::OpenOptions::new().read(true)).ok()?;
    let mut token = Vec::new();
    f.take(MAX_READ).read_to_end(&mut token).ok()?;
    Some(Sidecar {
        token,
        mtime: meta.modified().ok(),
    })
}

/// The holder pid of a token of the minted shape `<pid>.<lowercase hex>`
/// (pid without leading zero, at most `i32::MAX`); `None` for anything else.
pub(super) fn token_pid(token: &[u8]) -> Option<u32> {
    let dot = token.iter().position(|&b| b == b'.')?;
    let (pid, hex) = (&token[..dot], &token[dot + 1..]);
    let pid_ok = matches!(pid.first(), Some(b'1'..=b'9'))
        && pid.len() <= 10
        && pid.iter().all(u8::is_ascii_digit);
    let hex_ok = !hex.is_empty() && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !(pid_ok && hex_ok) {
        return None;
    }
    let pid: u32 = std::str::from_utf8(pid).ok()?.parse().ok()?;
    (pid <= i32::MAX as u32).then_some(pid)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_shapes() {
        assert_eq!(token_pid(b"123.00ff00ff00ff00ff"), Some(123));
        assert_eq!(token_pid(b"4242.0123456789ab"), Some(4242));
        assert_eq!(token_pid(b"77.123456789"), Some(77), "0.14 bash fallback");
        assert_eq!(token_pid(b"2147483647.a"), Some(2147483647));
        for bad in [
            &b""[..],
            b"x",
            b"123",
            b"123.",
            b".abc",
            b"0.abc",
            b"012.abc",
            b"-1.abc",
            b"+1.abc",
            b"12.AB",
            b"12.ab.cd",
            b"12.ab\n",
            b" 12.ab",
            b"2147483648.a",
            b"99999999999.a",
            b"999.dead beef",
            b"someone.else",
        ] {
            assert_eq!(token_pid(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn put_replaces_a_symlink_and_an_orphan_and_read_refuses_links() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, "precious").unwrap();
        let side = tmp.path().join("x.lock.owner");
        std::os::unix::fs::symlink(&outside, &side).unwrap();
        assert_eq!(read(&side), None, "a link reads as no owner");
        put(&side, "1.ab").unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "precious");
        assert!(!fs::symlink_metadata(&side).unwrap().is_symlink());
        assert_eq!(read(&side).unwrap().token, b"1.ab");
        put(&side, "2.cd").unwrap();
        assert_eq!(read(&side).unwrap().token, b"2.cd", "orphan replaced");
        // Dangling link, and a directory in the way (cannot be unlinked).
        fs::remove_file(&side).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("nowhere"), &side).unwrap();
        put(&side, "3.ef").unwrap();
        assert!(!tmp.path().join("nowhere").exists());
        fs::remove_file(&side).unwrap();
        fs::create_dir(&side).unwrap();
        assert!(put(&side, "4.ab").is_err());
        assert_eq!(read(&side), None);
    }

    #[test]
    fn a_fifo_sidecar_never_hangs_the_reader() {
        let tmp = tempfile::tempdir().unwrap();
        let side = tmp.path().join("x.lock.owner");
        let c = std::ffi::CString::new(side.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read(&side), None);
        put(&side, "1.ab").unwrap();
        assert_eq!(read(&side).unwrap().token, b"1.ab");
    }

    /// A pid that existed a moment ago and exists no more (reaped).
    pub(in crate::store::lock) fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    #[test]
    fn dead_holder_needs_shape_freshness_and_a_missing_pid() {
        let dead = dead_pid();
        let now = SystemTime::now();
        let side = |token: String, mtime| Sidecar {
            token: token.into_bytes(),
            mtime: Some(mtime),
        };
        let earlier = now - Duration::from_secs(60);
        assert!(side(format!("{dead}.ab"), now).proves_dead_holder(earlier));
        assert!(side(format!("{dead}.ab"), now).proves_dead_holder(now));
        assert!(
            !side(format!("{dead}.ab"), earlier).proves_dead_holder(now),
            "a sidecar older than its object is a leftover"
        );
        let me = std::process::id();
        assert!(!side(format!("{me}.ab"), now).proves_dead_holder(earlier));
        assert!(!side(format!("{dead}"), now).proves_dead_holder(earlier));
        let no_mtime = Sidecar {
            token: format!("{dead}.ab").into_bytes(),
            mtime: None,
        };
        assert!(!no_mtime.proves_dead_holder(earlier));
    }
}
