//! The idle watcher (beyond the original, which has none): Claude Code's
//! `asyncRewake` Stop hook (`assets/idlewatch.sh`) waits here, through
//! `oxtail wait-mail`, for mail addressed to its session, and senders ask
//! here whether a receiver's watcher is armed.
//!
//! Waiting blocks on file-change notifications (inotify / FSEvents through
//! `notify`) on `mailboxes/`, `activity/` and `idlewatch/`, with a re-check
//! every [`RECHECK`] as a safety net (and for the client's liveness, which no
//! file tells); when notifications cannot be set up it polls with a backoff
//! from 50 ms to 1 s.
//!
//! Invariants defended: the wait ends as soon as the agent is busy again
//! (its own hooks deliver mid-turn), another instance owns the session's
//! record (one waiter per session), the client process is gone, or the
//! deadline passed; it reports mail only, it never moves any (delivery is the
//! hook's, under the mailbox lock); nothing here writes under `~/.oxtail`
//! except the directories it watches, created `0700` when missing.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::store::activity;
use crate::store::idle_watch;
use crate::store::paths::{Layout, ensure_private_dir};
use crate::store::registry;

/// Re-check interval while notifications are working.
pub const RECHECK: Duration = Duration::from_secs(2);

/// Why a wait ended (the `oxtail wait-mail` exit codes, for the hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A mailbox of the session is non-empty (exit 0).
    Mail,
    /// The activity marker says `busy` (exit 3).
    Busy,
    /// The record names another instance (exit 4).
    Superseded,
    /// The client process is gone (exit 5).
    ClientGone,
    /// The deadline passed (exit 6).
    Deadline,
}

impl WaitOutcome {
    pub fn exit_code(self) -> u8 {
        match self {
            WaitOutcome::Mail => 0,
            WaitOutcome::Busy => 3,
            WaitOutcome::Superseded => 4,
            WaitOutcome::ClientGone => 5,
            WaitOutcome::Deadline => 6,
        }
    }
}

/// What to wait for.
#[derive(Debug, Clone)]
pub struct WaitSpec {
    pub session_id: String,
    /// This instance's token (see [`idle_watch`]).
    pub token: String,
    /// The client to outlive us (0 = unknown, not checked).
    pub client_pid: u32,
    /// Give up at this time (ms since the epoch).
    pub until_ms: i64,
    /// Report mail only once the session's mailboxes changed from what they
    /// are now (after a message too large for the hook was announced).
    pub after_change: bool,
}

/// Size, mtime and inode of each non-empty mailbox of the session.
type Signature = Vec<(u32, u64, i64, i64, u64)>;

/// The session's non-empty mailboxes now (regular files only, as the hooks
/// see them).
fn mail_signature(layout: &Layout, session_id: &str) -> Signature {
    let mut sig = Vec::new();
    for pid in registry::session_pids_for_id(layout, session_id) {
        let Ok(m) = fs::symlink_metadata(layout.mailbox(pid)) else {
            continue;
        };
        if m.is_file() && m.len() > 0 {
            sig.push((pid, m.len(), m.mtime(), m.mtime_nsec(), m.ino()));
        }
    }
    sig
}

fn check(layout: &Layout, spec: &WaitSpec, baseline: Option<&Signature>) -> Option<WaitOutcome> {
    let now = crate::clock::now_ms();
    if now >= spec.until_ms {
        return Some(WaitOutcome::Deadline);
    }
    if spec.client_pid != 0 && !registry::is_alive(spec.client_pid) {
        return Some(WaitOutcome::ClientGone);
    }
    if idle_watch::token(layout, &spec.session_id).is_some_and(|t| t != spec.token) {
        return Some(WaitOutcome::Superseded);
    }
    if activity::read(layout, Some(&spec.session_id), now as f64).is_some_and(|a| a.is("busy")) {
        return Some(WaitOutcome::Busy);
    }
    let sig = mail_signature(layout, &spec.session_id);
    (!sig.is_empty() && baseline.is_none_or(|b| *b != sig)).then_some(WaitOutcome::Mail)
}

/// Block until one of the [`WaitOutcome`]s holds.
pub fn wait(layout: &Layout, spec: &WaitSpec) -> WaitOutcome {
    let baseline = spec
        .after_change
        .then(|| mail_signature(layout, &spec.session_id));
    let (tx, rx) = mpsc::channel();
    let watcher = notify::recommended_watcher(tx).ok().and_then(|mut w| {
        for dir in [
            layout.mailboxes_dir(),
            layout.activity_dir(),
            layout.idle_watch_dir(),
        ] {
            ensure_private_dir(&dir).ok()?;
            w.watch(&dir, RecursiveMode::NonRecursive).ok()?;
        }
        Some(w)
    });
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Some(outcome) = check(layout, spec, baseline.as_ref()) {
            return outcome;
        }
        let left = Duration::from_millis((spec.until_ms - crate::clock::now_ms()).max(1) as u64);
        if watcher.is_some() {
            if rx.recv_timeout(RECHECK.min(left)).is_ok() {
                // Coalesce a burst (a lock dir, an append, a release) into one check.
                std::thread::sleep(Duration::from_millis(5));
                while rx.try_recv().is_ok() {}
            }
        } else {
            std::thread::sleep(backoff.min(left));
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::mailbox;
    use crate::store::message::NewMessage;
    use crate::store::registry::{Client, ClientType, Entry};

    const SID: &str = "11111111-1111-1111-1111-111111111111";

    fn spec(until_ms: i64) -> WaitSpec {
        WaitSpec {
            session_id: SID.into(),
            token: "1.a".into(),
            client_pid: std::process::id(),
            until_ms,
            after_change: false,
        }
    }

    fn register(layout: &Layout, pid: u32) {
        let client = Client {
            client_type: ClientType::ClaudeCode,
            session_id: Some(SID.into()),
            ..Client::default()
        };
        registry::register(layout, &Entry::new(pid, 1, client)).unwrap();
    }

    #[test]
    fn mail_arriving_during_the_wait_ends_it() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path().join(".oxtail"));
        register(&layout, 4242);
        let l = layout.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            mailbox::enqueue(&l, 4242, "hi", None, &NewMessage::default()).unwrap();
        });
        let until = crate::clock::now_ms() + 30_000;
        assert_eq!(wait(&layout, &spec(until)), WaitOutcome::Mail);
        sender.join().unwrap();
        // Already queued: at once; with after_change: only a change counts.
        assert_eq!(wait(&layout, &spec(until)), WaitOutcome::Mail);
        let mut s = spec(crate::clock::now_ms() + 300);
        s.after_change = true;
        assert_eq!(wait(&layout, &s), WaitOutcome::Deadline);
    }

    #[test]
    fn busy_superseded_and_gone_clients_end_the_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path().join(".oxtail"));
        let until = crate::clock::now_ms() + 30_000;
        fs::create_dir_all(layout.activity_dir()).unwrap();
        fs::write(layout.activity_marker(SID), "busy").unwrap();
        assert_eq!(wait(&layout, &spec(until)), WaitOutcome::Busy);
        fs::write(layout.activity_marker(SID), "idle").unwrap();
        fs::create_dir_all(layout.idle_watch_dir()).unwrap();
        fs::write(
            layout.idle_watch(SID),
            format!("{{\"schema_version\":1,\"session_id\":\"{SID}\",\"token\":\"2.b\",\"pid\":2,\"until_ms\":1}}"),
        )
        .unwrap();
        assert_eq!(wait(&layout, &spec(until)), WaitOutcome::Superseded);
        fs::remove_file(layout.idle_watch(SID)).unwrap();
        let mut s = spec(until);
        s.client_pid = 999_999_999;
        assert_eq!(wait(&layout, &s), WaitOutcome::ClientGone);
    }
}
