//! A registry of other sessions, for the figures that must not depend on how
//! many there are (`--registry`).
//!
//! Each entry is a claimed session of another agent in the same project,
//! bound to its own tmux session name, whose pid is a live process: a child
//! of this bench forked to sleep in `pause(2)` (no exec, pages shared with
//! the bench, a few KiB each), so every implementation's liveness probe keeps
//! it and nobody reaps it. The children die with the population (SIGKILL,
//! reaped) and, on Linux, with the bench itself (`PR_SET_PDEATHSIG`).
//!
//! Fork before starting any server of a scenario: a child inherits the
//! bench's open descriptors, and one holding a server's stdin pipe would keep
//! that server from seeing EOF.

use std::path::Path;

use oxtail::store::registry::{self, Client, ClientType, Entry};

/// Live processes standing in for other sessions, and their registry files.
pub struct Population {
    pids: Vec<libc::pid_t>,
}

impl Population {
    /// `n` sleeping children (none for 0).
    pub fn spawn(n: usize) -> Population {
        let parent = std::process::id() as libc::pid_t;
        let mut pids = Vec::with_capacity(n);
        for _ in 0..n {
            // SAFETY: the child only makes async-signal-safe calls (prctl,
            // getppid, pause, _exit) and never returns into Rust code.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe {
                    #[cfg(target_os = "linux")]
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if libc::getppid() != parent {
                        libc::_exit(0);
                    }
                    loop {
                        libc::pause();
                    }
                }
            }
            if pid < 0 {
                eprintln!("population: fork failed after {} children", pids.len());
                break;
            }
            pids.push(pid);
        }
        Population { pids }
    }

    pub fn len(&self) -> usize {
        self.pids.len()
    }

    /// Write one registry entry per child into `sessions` (created): a
    /// claimed Claude Code session in `project`, session id from `tag` and
    /// its index, tmux session `pop-<tag>-<index>`, in the shared format.
    pub fn register(&self, sessions: &Path, project: &Path, tag: u32) {
        std::fs::create_dir_all(sessions).expect("sessions dir");
        for (i, &pid) in self.pids.iter().enumerate() {
            let pid = pid as u32;
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
        for &pid in &self.pids {
            // SAFETY: signalling and reaping our own children.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for &pid in &self.pids {
            let mut status = 0;
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
    }
}
