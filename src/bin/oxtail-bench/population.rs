//! A registry of other sessions, for the figures that must not depend on how
//! many there are (`--registry`).
//!
//! Each entry is a claimed session of another agent in the same project,
//! bound to its own tmux session name, whose pid is a live process: a
//! `sleep` child of this bench, so every implementation's liveness probe
//! keeps it and nobody reaps it. The children die with the population
//! (SIGKILL, reaped). They are exec'd, not bare forks of the bench: a bench
//! whose pages are shared copy-on-write with 2,000 children pays for that on
//! every page fault, which would show up in every figure taken meanwhile.

use std::path::Path;

use oxtail::store::registry::{self, Client, ClientType, Entry};

/// Live processes standing in for other sessions, and their registry files.
pub struct Population {
    children: Vec<std::process::Child>,
}

impl Population {
    /// `n` sleeping children (none for 0).
    pub fn spawn(n: usize) -> Population {
        let mut children = Vec::with_capacity(n);
        for _ in 0..n {
            match std::process::Command::new("sleep")
                .arg("86400")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
            {
                Ok(c) => children.push(c),
                Err(e) => {
                    eprintln!("population: spawn failed after {}: {e}", children.len());
                    break;
                }
            }
        }
        Population { children }
    }

    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Write one registry entry per child into `sessions` (created): a
    /// claimed Claude Code session in `project`, session id from `tag` and
    /// its index, tmux session `pop-<tag>-<index>`, in the shared format.
    pub fn register(&self, sessions: &Path, project: &Path, tag: u32) {
        std::fs::create_dir_all(sessions).expect("sessions dir");
        for (i, c) in self.children.iter().enumerate() {
            let pid = c.id();
            let client = Client {
                client_type: ClientType::ClaudeCode,
                session_id: Some(format!("{tag:08x}-0000-4000-8000-{i:012x}")),
                session_id_source: Some("sticky-claim".into()),
                cwd: project.to_string_lossy().into_owned(),
                ..Client::default()
            };
            let mut e = Entry::new(pid, 1_700_000_000_000 + i as i64, client);
            e.tmux_session = Some(format!("pop-{tag:x}-{i}"));
            e.tmux_pane = Some(format!("%{}", 1000 + i));
            std::fs::write(
                sessions.join(format!("{pid}.json")),
                registry::to_pretty(&e),
            )
            .expect("registry entry");
        }
    }
}

impl Drop for Population {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}
