//! Which Claude Code is installed, and whether it supports the hook option
//! the idle watcher needs (`"asyncRewake": true`, in 2.1.197 and 2.1.332 at
//! least; which release introduced it is not documented). Detected, never
//! assumed: the option's name must occur in the `claude` program itself (the
//! native binary or the JavaScript bundle, both carry their settings schema
//! as text).
//!
//! Invariant defended: detection never fails and never runs the program; a
//! missing, unreadable or foreign `claude` is "unsupported", so install-hook
//! then registers no watcher and the tmux wake stays the idle path.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The option string searched for.
pub const ASYNC_REWAKE: &[u8] = b"asyncRewake";

/// The `claude` to inspect: `$OXTAIL_CLAUDE_BIN`, else `claude` on `PATH`,
/// symlinks resolved (npm installs a link to the native binary).
pub fn find() -> Option<PathBuf> {
    let p = crate::config::find_program("OXTAIL_CLAUDE_BIN", "claude")?;
    Some(p.canonicalize().unwrap_or(p))
}

/// Whether the file at `path` contains [`ASYNC_REWAKE`] (streamed in 8 MiB
/// chunks: the native binary is ~400 MB).
pub fn supports_async_rewake(path: &Path) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let finder = memchr::memmem::Finder::new(ASYNC_REWAKE);
    let keep = ASYNC_REWAKE.len() - 1;
    let mut buf = vec![0u8; 8 << 20];
    let mut filled = 0;
    loop {
        let n = match f.read(&mut buf[filled..]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        filled += n;
        if finder.find(&buf[..filled]).is_some() {
            return true;
        }
        // Keep the tail so a match across two chunks is found.
        let tail = filled.saturating_sub(keep);
        buf.copy_within(tail..filled, 0);
        filled -= tail;
    }
}

/// The installed Claude Code, when it supports `asyncRewake`.
pub fn idle_watch_capable() -> Option<PathBuf> {
    find().filter(|p| supports_async_rewake(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_option_anywhere_even_across_chunks() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("claude");
        std::fs::write(&p, b"#!/bin/sh\necho 2.1.0\n").unwrap();
        assert!(!supports_async_rewake(&p));
        let mut big = vec![b'x'; (8 << 20) - 5];
        big.extend_from_slice(b"asyncRewake:M().optional()");
        std::fs::write(&p, &big).unwrap();
        assert!(supports_async_rewake(&p));
        assert!(!supports_async_rewake(&tmp.path().join("missing")));
    }
}
