//! Waking an idle Codex session without keystrokes (beyond the original):
//! `codex queue --thread <session id> --message <wake text>`, which Codex
//! (0.169 and 0.171, measured) hands to the running interactive session
//! through its app-server daemon; an idle TUI starts a turn with it at once
//! (~0.2 s for the command, the turn within 20 ms of it returning).
//!
//! Used only when the daemon is up (its control socket
//! `$CODEX_HOME/app-server-control/app-server-control.sock` exists), so oxtail
//! never starts one; otherwise, or when the command fails or takes longer
//! than [`QUEUE_TIMEOUT`], the caller falls back to the tmux wake.
//! `OXTAIL_CODEX_QUEUE=off` disables it.
//!
//! Invariant defended: the wake never blocks a tool for long (bounded, the
//! child is killed at the timeout) and never runs through a shell (the text
//! is one argv element).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for `codex queue`.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(3);

/// The `codex` to run: `$OXTAIL_CODEX_BIN`, else `codex` on `PATH`.
pub fn find_codex() -> Option<PathBuf> {
    crate::config::find_program("OXTAIL_CODEX_BIN", "codex")
}

use crate::store::paths::codex_home;

/// Where `codex queue` may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexQueue {
    pub codex: PathBuf,
    pub codex_home: PathBuf,
}

impl CodexQueue {
    /// From the environment; `None` when disabled or no `codex` is found.
    pub fn from_env() -> Option<CodexQueue> {
        let off = std::env::var("OXTAIL_CODEX_QUEUE")
            .is_ok_and(|v| v.eq_ignore_ascii_case("off") || v == "0");
        if off {
            return None;
        }
        Some(CodexQueue {
            codex: find_codex()?,
            codex_home: codex_home(),
        })
    }

    /// The daemon's control socket exists (a socket, not a leftover file).
    pub fn daemon_up(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        let sock = self
            .codex_home
            .join("app-server-control")
            .join("app-server-control.sock");
        std::fs::metadata(sock).is_ok_and(|m| m.file_type().is_socket())
    }

    /// Queue `text` for `thread`; `Err` with what went wrong.
    pub fn queue(&self, thread: &str, text: &str) -> Result<(), String> {
        run_bounded(
            Command::new(&self.codex)
                .args(["queue", "--thread", thread, "--message", text])
                .env("CODEX_HOME", &self.codex_home),
            QUEUE_TIMEOUT,
        )
    }
}

fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run codex: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(format!("codex queue exited with {s}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("codex queue timed out".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}
