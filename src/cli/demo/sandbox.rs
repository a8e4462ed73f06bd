//! The private world `oxtail demo` runs in: a fresh temporary directory with
//! its own `HOME`, a git project both agents share, a private `TMUX_TMPDIR`
//! (with, when tmux is installed, a private tmux server holding one session per
//! agent), and the helpers that start processes inside it.
//!
//! Invariants defended: nothing the demo starts can see the user's real HOME
//! or tmux server (every child gets `HOME`, `TMUX_TMPDIR` and a cleared
//! environment); the temporary directory and the private tmux server are
//! removed when the sandbox is dropped, on success and on every error path.

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Environment variables passed through to children (everything else is
/// cleared so no client or tmux hint of the user's session leaks in).
const PASS_THROUGH: [&str; 4] = ["PATH", "LANG", "LC_ALL", "TERM"];

/// Name prefix of the sandbox directory (followed by `<pid>-<random hex>`).
const PREFIX: &str = "oxtail-demo-";

/// How long the private tmux sessions live if nobody kills them (their pane
/// runs `sleep`): an interrupted demo's tmux server goes away by itself.
const TMUX_PANE_LIFETIME: &str = "120";

pub struct Sandbox {
    root: PathBuf,
    tmux_started: bool,
}

impl Sandbox {
    /// Create `$TMPDIR/oxtail-demo-<pid>-<random>/{home,project/.git,tmux}`,
    /// first removing what an interrupted earlier run (a dead pid) left.
    pub fn create() -> Result<Sandbox, String> {
        let tmp = std::env::temp_dir();
        sweep_leftovers(&tmp);
        let mut r = [0u8; 4];
        rand::fill(&mut r[..]);
        let name = format!("{PREFIX}{}-{}", std::process::id(), hex::encode(r));
        let base = tmp.join(name);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&base)
            .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
        // Canonical (macOS /tmp is a symlink): project roots compare real paths.
        let root = fs::canonicalize(&base).unwrap_or(base);
        let sb = Sandbox {
            root,
            tmux_started: false,
        };
        for d in ["home", "project/.git", "tmux"] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(sb.root.join(d))
                .map_err(|e| format!("cannot create {}: {e}", sb.root.join(d).display()))?;
        }
        Ok(sb)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    pub fn project(&self) -> PathBuf {
        self.root.join("project")
    }

    pub fn tmux_tmpdir(&self) -> PathBuf {
        self.root.join("tmux")
    }

    /// A command with a cleared environment plus `HOME`, `TMUX_TMPDIR`, a
    /// few pass-through variables, cwd = the project.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear();
        for k in PASS_THROUGH {
            if let Some(v) = std::env::var_os(k) {
                c.env(k, v);
            }
        }
        c.env("HOME", self.home())
            .env("TMUX_TMPDIR", self.tmux_tmpdir())
            .current_dir(self.project());
        c
    }

    /// A tmux command aimed at the private server (no user config read).
    fn tmux(&self) -> Command {
        let mut c = self.command("tmux");
        c.arg("-f").arg("/dev/null");
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Start a private tmux server with one detached session per name, each
    /// in the project; returns the pane id of each (`%N`). `Err` when tmux is
    /// missing or will not start (the demo then runs without it).
    pub fn start_tmux(&mut self, names: &[&str]) -> Result<Vec<String>, String> {
        let mut panes = Vec::new();
        for name in names {
            let out = self
                .tmux()
                .args(["new-session", "-d", "-s", name, "-x", "100", "-y", "20"])
                .args(["-c"])
                .arg(self.project())
                .args(["-P", "-F", "#{pane_id}", "sleep", TMUX_PANE_LIFETIME])
                .output()
                .map_err(|e| format!("tmux not available ({e})"))?;
            self.tmux_started = true;
            if !out.status.success() {
                return Err(format!(
                    "tmux new-session failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            let pane = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !pane.starts_with('%') {
                return Err(format!("tmux gave no pane id for session {name}"));
            }
            panes.push(pane);
        }
        Ok(panes)
    }

    /// Run `bash <script>` with `stdin` as its standard input, as Claude Code
    /// runs a hook command; waits at most `timeout`.
    pub fn run_hook(
        &self,
        script: &Path,
        stdin: &str,
        timeout: Duration,
    ) -> Result<Output, String> {
        let mut child = self
            .command("bash")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
        if let Some(mut input) = child.stdin.take() {
            // A hook may exit without reading stdin (its fast path): ignore EPIPE.
            let _ = input.write_all(stdin.as_bytes());
        }
        // Collect the output on a thread so a full pipe can never stall us.
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(timeout) {
            Ok(out) => out,
            Err(_) => {
                // SAFETY: signalling our own, not yet reaped, child.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
                let _ = rx.recv_timeout(Duration::from_secs(5));
                return Err(format!(
                    "hook {} did not finish within {timeout:?}",
                    script.display()
                ));
            }
        };
        out.map_err(|e| format!("hook {}: {e}", script.display()))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.tmux_started {
            let _ = self.tmux().arg("kill-server").output();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Remove `oxtail-demo-<pid>-<hex>` directories in `tmp` whose demo process is
/// gone (a run stopped by a signal cannot clean up after itself).
fn sweep_leftovers(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = leftover_pid(&name) else {
            continue;
        };
        // SAFETY: kill with signal 0 only probes whether the pid exists.
        let gone = unsafe { libc::kill(pid as libc::pid_t, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// The pid in a sandbox directory name, or `None` for any other name.
fn leftover_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, tag) = rest.split_once('-')?;
    let hex_ok = tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit());
    let pid_ok = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    if hex_ok && pid_ok {
        pid.parse().ok().filter(|p| *p > 0)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_names() {
        assert_eq!(leftover_pid("oxtail-demo-123-0a1b2c3d"), Some(123));
        assert_eq!(leftover_pid("oxtail-demo-123-0a1b2c3"), None);
        assert_eq!(leftover_pid("oxtail-demo-x-0a1b2c3d"), None);
        assert_eq!(leftover_pid("oxtail-demo-0-0a1b2c3d"), None);
        assert_eq!(leftover_pid("other-123-0a1b2c3d"), None);
    }
}
