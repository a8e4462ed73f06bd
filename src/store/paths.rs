//! The `~/.oxtail` layout: every path oxtail (and the hooks) share is named here
//! and nowhere else.
//!
//! Invariants defended:
//! - the root is derived from `HOME` on every call (tests and sibling processes
//!   swap `HOME`), falling back to the platform home only when `HOME` is unset;
//! - derived names are byte-identical to the original's (ledger key = first 32 hex
//!   of sha256(session id), activity key = per-UTF-16-unit sanitising), so a Node
//!   peer and the bash hooks find the same files;
//! - directories we create are `0700` and files we create are `0600`; an existing
//!   directory or file with looser bits is tightened, never loosened.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Directory mode for everything under `~/.oxtail`.
pub const DIR_MODE: u32 = 0o700;
/// File mode for everything oxtail writes under `~/.oxtail`.
pub const FILE_MODE: u32 = 0o600;

/// The on-disk layout rooted at `<HOME>/.oxtail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout for the current `HOME` (re-read on every call).
    pub fn from_env() -> Layout {
        Layout::at(home_dir().join(".oxtail"))
    }

    /// A layout rooted at an explicit directory (tests, benchmarks).
    pub fn at(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn mailboxes_dir(&self) -> PathBuf {
        self.root.join("mailboxes")
    }

    /// `mailboxes/<pid>.jsonl`: the queue of server `pid`.
    pub fn mailbox(&self, pid: u32) -> PathBuf {
        self.mailboxes_dir().join(format!("{pid}.jsonl"))
    }

    /// The pid of a mailbox file name `<pid>.jsonl` (inverse of `mailbox`).
    pub fn mailbox_pid(file_name: &str) -> Option<u32> {
        let digits = file_name.strip_suffix(".jsonl")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u32>().ok().filter(|&p| p > 0)
    }

    pub fn received_dir(&self) -> PathBuf {
        self.root.join("received")
    }

    /// `received/<key>.jsonl`: the received-ledger of `session_id`.
    pub fn ledger(&self, session_id: &str) -> PathBuf {
        self.received_dir()
            .join(format!("{}.jsonl", ledger_key(session_id)))
    }

    pub fn activity_dir(&self) -> PathBuf {
        self.root.join("activity")
    }

    /// `activity/<sanitised session id>`: the busy/idle marker the hooks write.
    pub fn activity_marker(&self, session_id: &str) -> PathBuf {
        self.activity_dir().join(activity_key(session_id))
    }

    pub fn autowake_dir(&self) -> PathBuf {
        self.root.join("autowake")
    }

    /// `autowake/d-<32hex>`: one-shot dedupe record for (session, reply_to).
    pub fn autowake_dedupe(&self, session_id: &str, reply_to: &str) -> PathBuf {
        let pair = serde_json::to_string(&[session_id, reply_to]).unwrap_or_default();
        self.autowake_dir()
            .join(format!("d-{}", hash32(pair.as_bytes())))
    }

    /// `autowake/r-<32hex>`: per-target rate record.
    pub fn autowake_rate(&self, session_id: &str) -> PathBuf {
        self.autowake_dir()
            .join(format!("r-{}", ledger_key(session_id)))
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.root.join("sessions")
    }

    /// `sessions/<pid>.json`: the registry entry of server `pid`.
    pub fn session_entry(&self, pid: u32) -> PathBuf {
        self.sessions_dir().join(format!("{pid}.json"))
    }

    pub fn claims_dir(&self) -> PathBuf {
        self.root.join("claims")
    }

    /// `claims/<32hex>.json`, keyed by `"<client_type> <cwd> <session_id>"`.
    pub fn claim(&self, client_type: &str, cwd: &str, session_id: &str) -> PathBuf {
        let key = hash32(format!("{client_type} {cwd} {session_id}").as_bytes());
        self.claims_dir().join(format!("{key}.json"))
    }

    pub fn receipts_dir(&self) -> PathBuf {
        self.root.join("receipts")
    }

    /// `receipts/<message id>`: a delivery receipt in its own file (the
    /// original's later layout, and ours before day logs; still read, no
    /// longer written). `None` unless `id` is a message id.
    pub fn receipt(&self, message_id: &str) -> Option<PathBuf> {
        is_message_id(message_id).then(|| self.receipts_dir().join(message_id))
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.root.join("outbox")
    }

    /// `outbox/<message id>`: a sent-message record in its own file (the
    /// original's later layout, and ours before day logs; still read, no
    /// longer written). `None` unless `id` is a message id.
    pub fn outbox(&self, message_id: &str) -> Option<PathBuf> {
        is_message_id(message_id).then(|| self.outbox_dir().join(message_id))
    }

    pub fn idle_watch_dir(&self) -> PathBuf {
        self.root.join("idlewatch")
    }

    /// `idlewatch/<activity key>`: the record of the idle watcher waiting for
    /// `session_id`'s mail (written by `assets/idlewatch.sh`).
    pub fn idle_watch(&self, session_id: &str) -> PathBuf {
        self.idle_watch_dir().join(activity_key(session_id))
    }

    pub fn pending_ask_dir(&self) -> PathBuf {
        self.root.join("pending-ask")
    }

    /// `pending-ask/p-<32hex>`: the durable record of an `ask_peer` by
    /// `session_id` with `request_id` (the original's later layout: the first
    /// 32 hex of sha256 of the JSON array `[session_id, request_id]`).
    pub fn pending_ask(&self, session_id: &str, request_id: &str) -> PathBuf {
        let pair = serde_json::to_string(&[session_id, request_id]).unwrap_or_default();
        self.pending_ask_dir()
            .join(format!("p-{}", hash32(pair.as_bytes())))
    }

    pub fn clients_dir(&self) -> PathBuf {
        self.root.join("clients")
    }

    /// `clients/<pid>.json`: what the hooks of client process `pid` (a Claude
    /// Code process) last saw as its current session (beyond the original).
    pub fn client_record(&self, pid: u32) -> PathBuf {
        self.clients_dir().join(format!("{pid}.json"))
    }

    pub fn hooks_dir(&self) -> PathBuf {
        self.root.join("hooks")
    }

    /// `hooks/<file name>`: an installed hook script or library.
    pub fn hook(&self, file_name: &str) -> PathBuf {
        self.hooks_dir().join(file_name)
    }
}

/// This process's pid, asked of the kernel once: it names temp files and lock
/// tokens on every send (`getpid(2)` each time otherwise).
/// oxtail never forks without exec, so the cached value is always right.
pub fn own_pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// `$HOME`, or the platform home when `HOME` is unset or empty.
pub fn home_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => dirs::home_dir().unwrap_or_else(|| PathBuf::from("/")),
    }
}

/// Codex's home: `$CODEX_HOME` when set and non-empty, else `~/.codex`.
pub fn codex_home() -> PathBuf {
    match std::env::var_os("CODEX_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => home_dir().join(".codex"),
    }
}

/// A message id as this crate and the original mint them: 16 lowercase hex
/// characters. Only such ids ever become file names.
pub fn is_message_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// First 32 lowercase hex characters of sha256(bytes).
pub fn hash32(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    hex::encode(&digest[..16])
}

/// Ledger (and rate-record) key of a session id.
pub fn ledger_key(session_id: &str) -> String {
    hash32(session_id.as_bytes())
}

/// Activity key: every UTF-16 code unit outside `A-Za-z0-9_-` becomes `_`
/// (so a non-BMP character becomes two underscores, as in the original).
pub fn activity_key(session_id: &str) -> String {
    let mut out = String::with_capacity(session_id.len());
    for ch in session_id.chars() {
        if ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' {
            out.push(ch);
        } else {
            for _ in 0..ch.len_utf16() {
                out.push('_');
            }
        }
    }
    out
}

/// `mkdir -p` with `0700` on every directory created, and the final directory
/// tightened to `0700` if it already existed with looser bits.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => tighten(dir, &meta, DIR_MODE),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir),
        Err(e) => Err(e),
    }
}

/// Remove group/other bits beyond `mode` from an existing file (best effort).
pub fn tighten_file(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let _ = tighten(path, &meta, FILE_MODE);
    }
}

fn tighten(path: &Path, meta: &fs::Metadata, mode: u32) -> io::Result<()> {
    let current = meta.permissions().mode() & 0o7777;
    if current & !mode != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(current & mode))?;
    }
    Ok(())
}

/// `<dir>/<day>.jsonl`: the day log of UTC day `day` (whole days since the
/// epoch) in `dir` (`receipts/`, `outbox/`; module `daylog`). The hooks build
/// the same name.
pub fn day_log(dir: &Path, day: i64) -> PathBuf {
    dir.join(format!("{day}.jsonl"))
}

/// The day of a day log's file name (`<digits>.jsonl`), else `None`.
pub fn day_log_day(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".jsonl")?;
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_key_matches_the_original_test_vector() {
        let layout = Layout::at("/h/.oxtail");
        let p = layout.ledger("11111111-1111-1111-1111-111111111111");
        assert_eq!(
            p,
            PathBuf::from("/h/.oxtail/received/bafde89c041e1756082b933aaf16cad8.jsonl")
        );
    }

    #[test]
    fn autowake_names_match_the_original_test_vectors() {
        let layout = Layout::at("/h/.oxtail");
        let sid = "11111111-1111-1111-1111-111111111111";
        assert!(
            layout
                .autowake_dedupe(sid, "req-a")
                .ends_with("d-43d31c835c6d0726f5e1cfa39578d95d")
        );
        assert!(
            layout
                .autowake_rate(sid)
                .ends_with("r-bafde89c041e1756082b933aaf16cad8")
        );
    }

    #[test]
    fn activity_key_sanitises_per_utf16_unit() {
        assert_eq!(activity_key("ab-_9"), "ab-_9");
        assert_eq!(activity_key("a/b.c"), "a_b_c");
        assert_eq!(activity_key("é"), "_");
        assert_eq!(activity_key("😀"), "__");
    }

    #[test]
    fn ensure_private_dir_creates_and_tightens() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("a/b");
        ensure_private_dir(&d).unwrap();
        let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&d).unwrap();
        let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
