//! `oxtail demo` end to end: the built binary runs its scripted exchange
//! (real servers, real hooks) with a private HOME, TMUX_TMPDIR and TMPDIR, and
//! must report delivery through the hooks and a correlated ask/reply, exit 0,
//! leave no temporary directory behind and never write into HOME. A demo that
//! cannot run its hooks fails with a clear message and still cleans up.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        for d in ["home", "tmux", "tmp", "bin"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        Env { _dir: dir, root }
    }

    fn demo(&self, path: &std::ffi::OsStr) -> Output {
        Command::new(env!("CARGO_BIN_EXE_oxtail"))
            .arg("demo")
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.root.join("home"))
            .env("TMUX_TMPDIR", self.root.join("tmux"))
            .env("TMPDIR", self.root.join("tmp"))
            .current_dir(&self.root)
            .output()
            .expect("run oxtail demo")
    }

    fn entries(&self, d: &str) -> Vec<String> {
        fs::read_dir(self.root.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn system_path() -> std::ffi::OsString {
    std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into())
}

#[test]
fn demo_runs_the_exchange_and_cleans_up() {
    let env = Env::new();
    let out = env.demo(&system_path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for want in [
        "install-hook → ",
        "alice         claim_session(",
        "alice → bob   send_message(\"Heads-up",
        // Delivery through the real PreToolUse hook, the body in the context.
        "bob           PreToolUse hook before Bash → delivered 1 message via additionalContext",
        "Heads-up: I'm refactoring src/store/lock.rs",
        "PreToolUse hook again → nothing queued, no output",
        // ask_peer answered by reply_to_message, correlated.
        "alice → bob   ask_peer(\"Which port does the dev server listen on?\")",
        "reply_to_message(",
        "→ ok correlation=correlated",
        "ask_peer returned after",
        "reply \"8080 (see .env.example)\" (correlated by request_id)",
        // Delivery through the real Stop hook.
        "alice         Stop hook → {\"decision\":\"block\"}",
        "Reviewed your lock.rs change",
        "stop allowed, alice marked idle",
        "every message was delivered exactly once",
        "both servers exited",
        "demo passed in",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    // The ask_peer question was read before the reply: the transcript is in order.
    let q = stdout.find("read_my_messages → 1 message").unwrap();
    let r = stdout.find("ask_peer returned after").unwrap();
    assert!(q < r, "order:\n{stdout}");
    // Timed lines.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with('[') && l.contains(" ms] ")),
        "{stdout}"
    );
    // Nothing left in TMPDIR, nothing written into HOME.
    assert_eq!(env.entries("tmp"), Vec::<String>::new(), "{stdout}");
    assert_eq!(env.entries("home"), Vec::<String>::new());
}

#[test]
fn demo_without_bash_fails_clearly_and_cleans_up() {
    let env = Env::new();
    // An empty PATH: no bash (so no hook can run) and no tmux.
    let out = env.demo(env.root.join("bin").as_os_str());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "stdout:\n{stdout}");
    assert!(
        stderr.contains("oxtail demo: FAILED at step \"send_message + PreToolUse hook\""),
        "stderr:\n{stderr}"
    );
    assert!(stderr.contains("bash"), "stderr:\n{stderr}");
    // It got as far as the servers, without tmux.
    assert!(stdout.contains("no tmux"), "stdout:\n{stdout}");
    assert!(stdout.contains("claim_session("), "stdout:\n{stdout}");
    assert_eq!(env.entries("tmp"), Vec::<String>::new());
    assert_eq!(env.entries("home"), Vec::<String>::new());
}

#[test]
fn demo_removes_what_an_interrupted_run_left() {
    let env = Env::new();
    // A leftover from a demo whose process is gone, and a look-alike to keep.
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let stale = env.root.join(format!("tmp/oxtail-demo-{dead}-0badcafe"));
    fs::create_dir_all(stale.join("home/.oxtail")).unwrap();
    let other = env.root.join("tmp/oxtail-demo-notes");
    fs::create_dir_all(&other).unwrap();
    let out = env.demo(&system_path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new(&stale).exists(), "stale sandbox kept");
    assert!(other.exists(), "an unrelated directory was removed");
}
