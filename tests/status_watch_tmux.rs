//! `oxtail status --watch` in a private tmux server (own `TMUX_TMPDIR`,
//! killed at the end), read back with `capture-pane`: it shows the agents,
//! follows a new message, opens the log on `l`, and `q` (or SIGTERM) quits
//! with the terminal restored (the shell afterwards is back in cooked mode).
//! Skipped with a note when tmux is missing.

mod messaging_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::json;

use messaging_support::*;

/// The world's private tmux server; killed on drop.
struct Tmux<'a> {
    world: &'a World,
}

impl Tmux<'_> {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(args)
            .env("TMUX_TMPDIR", &self.world.tmux_tmpdir)
            .env("HOME", &self.world.home)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A session running `oxtail status --watch` under `sh`, which then
    /// prints the exit code and the terminal modes and lingers.
    /// The pid of the `oxtail status --watch` running in session `name`
    /// (the child of the pane's shell).
    fn watch_pid(&self, name: &str) -> i32 {
        let out = self.cmd(&["display-message", "-p", "-t", name, "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let child = Command::new("pgrep").args(["-P", &shell]).output().unwrap();
        String::from_utf8_lossy(&child.stdout)
            .trim()
            .parse()
            .expect("the watch process")
    }

    fn start_watch(&self, name: &str, cwd: &Path) {
        let script = format!(
            "'{}' status --watch; echo EXIT=$?; stty -a; sleep 600",
            env!("CARGO_BIN_EXE_oxtail")
        );
        let o = self.cmd(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "160",
            "-y",
            "40",
            "-c",
            &cwd.to_string_lossy(),
            "-e",
            &format!("HOME={}", self.world.home.display()),
            "sh",
            "-c",
            &script,
        ]);
        assert!(
            o.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn screen(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", name]).stdout).into_owned()
    }

    fn keys(&self, name: &str, keys: &str) {
        assert!(self.cmd(&["send-keys", "-t", name, keys]).status.success());
    }

    fn wait_screen(&self, name: &str, what: &str, f: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        wait_until(what, || {
            last = self.screen(name);
            f(&last)
        });
        last
    }
}

impl Drop for Tmux<'_> {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn have_tmux() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: tmux not installed; skipping the --watch screen test");
    }
    ok
}

/// The UNREAD cell of the row whose SID column is `short`.
fn unread_of(screen: &str, short: &str) -> Option<String> {
    screen.lines().find_map(|l| {
        let cells: Vec<&str> = l
            .trim_matches(|c| c == '│' || c == ' ')
            .split_whitespace()
            .collect();
        (cells.get(2) == Some(&short))
            .then(|| cells.get(4).map(|s| s.to_string()))
            .flatten()
    })
}

fn restored(screen: &str) -> bool {
    screen.contains("EXIT=0") && screen.contains(" icanon") && !screen.contains("-icanon")
}

#[test]
fn watch_shows_agents_follows_mail_and_quits_cleanly() {
    if !have_tmux() {
        return;
    }
    let world = World::new();
    let mut a = world.server(&[]);
    let mut b = world.server(&[]);
    a.claim(SID_A);
    b.claim(SID_B);
    a.tool("set_my_state", json!({"purpose": "watching the watcher"}))
        .json();
    let tmux = Tmux { world: &world };
    tmux.start_watch("w", &world.project);
    let (sa, sb) = (&SID_A[..8], &SID_B[..8]);
    let s = tmux.wait_screen("w", "the agents on screen", |s| {
        s.contains(sa) && s.contains(sb)
    });
    assert!(s.contains("watching the watcher"), "{s}");
    assert!(s.contains("q quit"), "keys listed: {s}");
    assert!(s.contains("OK: nothing needs you"), "{s}");
    assert_eq!(unread_of(&s, sb).as_deref(), Some("0"), "{s}");

    let r = a
        .tool("send_message", json!({"target": SID_B, "body": "ping"}))
        .json();
    assert_eq!(r["ok"], true);
    tmux.wait_screen("w", "the new message counted", |s| {
        unread_of(s, sb).as_deref() == Some("1")
    });

    tmux.keys("w", "l");
    let s = tmux.wait_screen("w", "the log panel", |s| s.contains("Message log"));
    assert!(s.contains(&format!("{sa} -> {sb}")), "{s}");
    assert!(s.contains("queued"), "{s}");
    assert!(!s.contains("ping"), "bodies hidden: {s}");
    tmux.keys("w", "b");
    tmux.wait_screen("w", "the body shown", |s| s.contains("\"ping\""));

    tmux.keys("w", "q");
    tmux.wait_screen("w", "exit with the terminal restored", restored);
}

#[test]
fn sigterm_also_restores_the_terminal() {
    if !have_tmux() {
        return;
    }
    let world = World::new();
    let mut a = world.server(&[]);
    a.claim(SID_A);
    let tmux = Tmux { world: &world };
    tmux.start_watch("t", &world.project);
    tmux.wait_screen("t", "the agent on screen", |s| s.contains(&SID_A[..8]));
    let pid = tmux.watch_pid("t");
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    tmux.wait_screen("t", "exit with the terminal restored", restored);
}

/// The view never outlives its terminal: when the tmux server dies outright
/// (SIGKILL: the terminal hangs up), the process ends instead of spinning on
/// the dead tty (crossterm's input poll never returns there).
#[test]
fn the_watch_never_outlives_its_terminal() {
    if !have_tmux() {
        return;
    }
    let world = World::new();
    let mut a = world.server(&[]);
    a.claim(SID_A);
    let tmux = Tmux { world: &world };
    tmux.start_watch("k", &world.project);
    tmux.wait_screen("k", "the agent on screen", |s| s.contains(&SID_A[..8]));
    let pid = tmux.watch_pid("k").to_string();
    let server = tmux.cmd(&["display-message", "-p", "#{pid}"]);
    let server: i32 = String::from_utf8_lossy(&server.stdout)
        .trim()
        .parse()
        .expect("the tmux server pid");
    // SAFETY: signalling the private tmux server this test started.
    unsafe { libc::kill(server, libc::SIGKILL) };
    wait_until("the watch process to end with its terminal", || {
        let st = Command::new("ps")
            .args(["-o", "stat=", "-p", &pid])
            .output()
            .unwrap();
        let st = String::from_utf8_lossy(&st.stdout);
        st.trim().is_empty() || st.trim().starts_with('Z')
    });
}
