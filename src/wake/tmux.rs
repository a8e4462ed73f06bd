//! The tmux commands wake needs: the pane snapshot and `send-keys`.
//!
//! Invariant defended: programs are exec'd directly (no shell), the wake text is
//! sent in literal mode (`-l`) so it can never be read as key names, and Enter is
//! a separate command. Production uses the ambient tmux server; tests point a
//! `Tmux` at a private server through its environment overrides.

use std::collections::HashMap;
use std::ffi::OsString;
use std::process::{Command, Stdio};

use super::pane::parse_pane_map;

/// How to reach a tmux server.
#[derive(Debug, Clone, Default)]
pub struct Tmux {
    /// `-L <socket name>` when set.
    pub socket: Option<String>,
    /// Extra environment for every tmux command (e.g. a private `TMUX_TMPDIR`).
    pub env: Vec<(OsString, OsString)>,
    /// Variables removed from the environment of every tmux command (e.g. `TMUX`).
    pub env_remove: Vec<OsString>,
}

impl Tmux {
    /// The ambient tmux server (whatever `tmux` with this process's env reaches).
    pub fn ambient() -> Tmux {
        Tmux::default()
    }

    /// A private tmux server: `TMUX_TMPDIR=<dir>`, `TMUX` unset, optional `-L`.
    pub fn private(tmpdir: impl Into<OsString>, socket: Option<&str>) -> Tmux {
        Tmux {
            socket: socket.map(str::to_string),
            env: vec![("TMUX_TMPDIR".into(), tmpdir.into())],
            env_remove: vec!["TMUX".into()],
        }
    }

    /// A `tmux` command with this server's socket and environment applied.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        for k in &self.env_remove {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(socket) = &self.socket {
            cmd.arg("-L").arg(socket);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run tmux with `args`; `Ok(stdout)` on exit status 0, else the error text.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("tmux: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "tmux {} failed ({}): {}",
                args.first().copied().unwrap_or(""),
                out.status,
                stderr.trim()
            ))
        }
    }

    /// Pane-process pid → pane id for every pane of the server (empty on failure).
    pub fn pane_map(&self) -> HashMap<u32, String> {
        self.run(&["list-panes", "-a", "-F", "#{pane_pid}|#{pane_id}"])
            .map(|out| parse_pane_map(&out))
            .unwrap_or_default()
    }

    /// Type `text` literally into `pane`.
    pub fn send_literal(&self, pane: &str, text: &str) -> Result<(), String> {
        self.run(&["send-keys", "-t", pane, "-l", text]).map(drop)
    }

    /// Press Enter in `pane`.
    pub fn send_enter(&self, pane: &str) -> Result<(), String> {
        self.run(&["send-keys", "-t", pane, "Enter"]).map(drop)
    }
}
