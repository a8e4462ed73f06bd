//! Issue 13, Codex: an idle Codex peer is woken with `codex queue --thread
//! <session id> --message <wake text>` (measured with Codex 0.169 and 0.171:
//! its idle TUI starts a turn with the queued text) when its app-server
//! daemon is up, without keystrokes; otherwise, or when the command fails,
//! the tmux path is tried as before; a Claude Code peer never gets it. A fake
//! `codex` records its arguments; the daemon is a real Unix socket.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use oxtail::store::paths::Layout;
use oxtail::wake::codex_queue::CodexQueue;
use oxtail::wake::tmux::Tmux;
use oxtail::wake::{WAKE_TEXT, WakePath, WakePeer, WakeSettings, WakeStatus, Waker};

const SID: &str = "019d0000-0000-7000-8000-000000000001";

struct Fixture {
    dir: tempfile::TempDir,
    codex: PathBuf,
    codex_home: PathBuf,
    args: PathBuf,
}

impl Fixture {
    fn new(exit: i32) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let args = dir.path().join("args");
        let codex = dir.path().join("codex");
        fs::write(
            &codex,
            format!(
                "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >>'{}'\nprintf 'home=%s\\n' \"$CODEX_HOME\" >>'{}'\nexit {exit}\n",
                args.display(),
                args.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&codex, fs::Permissions::from_mode(0o755)).unwrap();
        let codex_home = dir.path().join("codex-home");
        fs::create_dir_all(codex_home.join("app-server-control")).unwrap();
        Fixture {
            dir,
            codex,
            codex_home,
            args,
        }
    }

    fn daemon(&self) -> UnixListener {
        let sock = self
            .codex_home
            .join("app-server-control/app-server-control.sock");
        UnixListener::bind(sock).unwrap()
    }

    fn waker(&self) -> Waker {
        let settings = WakeSettings {
            codex_queue: Some(CodexQueue {
                codex: self.codex.clone(),
                codex_home: self.codex_home.clone(),
            }),
            ..WakeSettings::default()
        };
        let root = self.dir.path();
        Waker::new(
            settings,
            Some(Layout::at(root.join(".oxtail"))),
            Tmux::private(root, Some("none")),
        )
    }

    fn calls(&self) -> String {
        fs::read_to_string(&self.args).unwrap_or_default()
    }
}

fn peer(client: &str) -> WakePeer {
    WakePeer {
        session_id: Some(SID.into()),
        server_pid: std::process::id(),
        tmux_pane: None,
        client_type: client.into(),
    }
}

#[test]
fn an_idle_codex_peer_is_woken_through_codex_queue_without_keystrokes() {
    let f = Fixture::new(0);
    let _daemon = f.daemon();
    let w = f.waker();
    let status = w.lenient(&peer("codex"));
    assert_eq!(status, WakeStatus::CodexQueued);
    assert_eq!(w.path(&peer("codex"), Some(status)), WakePath::CodexQueue);
    let want = format!(
        "queue\n--thread\n{SID}\n--message\n{WAKE_TEXT}\nhome={}\n",
        f.codex_home.display()
    );
    assert_eq!(f.calls(), want);
    // Debounced like any wake; confirmed only by a receipt.
    assert_eq!(w.lenient(&peer("codex")), WakeStatus::SkippedDebounced);
    assert_eq!(
        w.confirm(status, "0123456789abcdef", 1.0),
        WakeStatus::FiredUnconfirmed
    );
}

#[test]
fn without_the_daemon_or_when_codex_fails_the_tmux_path_is_tried() {
    let f = Fixture::new(0);
    // No control socket: codex is not run at all.
    assert_eq!(
        f.waker().lenient(&peer("codex")),
        WakeStatus::SkippedNoTarget
    );
    assert_eq!(f.calls(), "");
    // A regular file in its place is not a daemon either.
    fs::write(
        f.codex_home
            .join("app-server-control/app-server-control.sock"),
        "",
    )
    .unwrap();
    assert_eq!(
        f.waker().lenient(&peer("codex")),
        WakeStatus::SkippedNoTarget
    );
    assert_eq!(f.calls(), "");

    let failing = Fixture::new(1);
    let _daemon = failing.daemon();
    assert_eq!(
        failing.waker().lenient(&peer("codex")),
        WakeStatus::SkippedNoTarget,
        "a failed queue falls back to the (here absent) pane"
    );
    assert!(failing.calls().starts_with("queue\n"));
}

#[test]
fn a_claude_code_peer_never_gets_codex_queue() {
    let f = Fixture::new(0);
    let _daemon = f.daemon();
    assert_eq!(
        f.waker().lenient(&peer("claude-code")),
        WakeStatus::SkippedNoTarget
    );
    assert_eq!(f.calls(), "");
}
