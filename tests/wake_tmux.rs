//! Keystroke wake against a private tmux server (own `TMUX_TMPDIR`, own `-L`
//! socket): text lands only in the pane the process tree verifies, never in a
//! pane a registry entry merely claims; busy, idle, debounced and disabled
//! outcomes. Skips (passes vacuously, with a note) when tmux is not installed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use oxtail::store::paths::Layout;
use oxtail::wake::tmux::Tmux;
use oxtail::wake::{Strategy, WAKE_TEXT, WakePeer, WakeSettings, WakeStatus, Waker};

struct Server {
    _dir: tempfile::TempDir,
    root: PathBuf,
    tmux: Tmux,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.tmux.run(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private tmux server with two sessions: `a` runs a shell that starts a
/// background `sleep` (our fake peer server, a child of the pane process) and then
/// `cat`; `b` runs `cat`.
fn start() -> Option<Server> {
    if !tmux_available() {
        eprintln!("tmux not installed: skipping");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let tmux = Tmux::private(root.join("tmux"), Some("oxtail-wake-test"));
    fs::create_dir_all(root.join("tmux")).unwrap();
    let pidfile = root.join("peer.pid");
    let script = format!("sleep 300 & echo $! > {}; exec cat", pidfile.display());
    tmux.run(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "a",
        "-x",
        "200",
        "-y",
        "20",
        "sh",
        "-c",
        &script,
    ])
    .unwrap();
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "b",
        "-x",
        "200",
        "-y",
        "20",
        "cat",
    ])
    .unwrap();
    wait_for("peer pid file", || {
        fs::read_to_string(&pidfile).is_ok_and(|s| s.trim().parse::<u32>().is_ok())
    });
    Some(Server {
        _dir: dir,
        root,
        tmux,
    })
}

impl Server {
    fn pane_of(&self, session: &str) -> String {
        self.tmux
            .run(&["display-message", "-p", "-t", session, "#{pane_id}"])
            .unwrap()
            .trim()
            .to_string()
    }
    fn peer_pid(&self) -> u32 {
        fs::read_to_string(self.root.join("peer.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
    fn screen(&self, session: &str) -> String {
        self.tmux
            .run(&["capture-pane", "-p", "-J", "-t", session])
            .unwrap()
    }
    fn layout(&self) -> Layout {
        Layout::at(self.root.join(".oxtail"))
    }
    fn waker(&self, settings: WakeSettings) -> Waker {
        Waker::new(settings, Some(self.layout()), self.tmux.clone())
    }
    fn mark(&self, sid: &str, status: &str) {
        let layout = self.layout();
        fs::create_dir_all(layout.activity_dir()).unwrap();
        fs::write(layout.activity_marker(sid), status).unwrap();
    }
}

fn peer(sid: &str, pid: u32, cached: Option<&str>, client: &str) -> WakePeer {
    WakePeer {
        session_id: Some(sid.to_string()),
        server_pid: pid,
        tmux_pane: cached.map(str::to_string),
        client_type: client.to_string(),
    }
}

fn count(screen: &str) -> usize {
    screen.matches(WAKE_TEXT).count()
}

const SID: &str = "aaaaaaaa-1111-1111-1111-111111111111";

#[test]
fn keystrokes_land_only_in_the_verified_pane() {
    let Some(srv) = start() else { return };
    let (pane_a, pane_b) = (srv.pane_of("a"), srv.pane_of("b"));
    assert_ne!(pane_a, pane_b);
    let waker = srv.waker(WakeSettings::default());

    // The entry lies about its pane (claims b) but its pid lives under pane a.
    let status = waker.keystroke(&peer(SID, srv.peer_pid(), Some(&pane_b), "claude-code"));
    assert_eq!(status, WakeStatus::Fired);
    // Typed text + Enter: cat echoes the line back, so it shows twice in a.
    wait_for("text in pane a", || count(&srv.screen("a")) >= 2);
    assert_eq!(
        count(&srv.screen("b")),
        0,
        "nothing may reach the cached pane"
    );

    // A pid that no pane contains (this test process) gets no keystrokes, even
    // though its entry names a real pane.
    let liar = peer(
        "bbbbbbbb-1111-1111-1111-111111111111",
        std::process::id(),
        Some(&pane_b),
        "claude-code",
    );
    assert_eq!(waker.keystroke(&liar), WakeStatus::SkippedNoTarget);
    // No cached pane at all: suspect, no target even though the pid is verifiable.
    let paneless = peer(
        "cccccccc-1111-1111-1111-111111111111",
        srv.peer_pid(),
        None,
        "claude-code",
    );
    assert_eq!(waker.keystroke(&paneless), WakeStatus::SkippedNoTarget);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count(&srv.screen("b")), 0);
    assert_eq!(count(&srv.screen("a")), 2);
}

#[test]
fn busy_idle_debounced_disabled_and_codex() {
    let Some(srv) = start() else { return };
    let pane_a = srv.pane_of("a");
    let pid = srv.peer_pid();
    let waker = srv.waker(WakeSettings {
        debounce_ms: 60_000.0,
        ..WakeSettings::default()
    });

    srv.mark(SID, "busy");
    assert_eq!(
        waker.lenient(&peer(SID, pid, Some(&pane_a), "claude-code")),
        WakeStatus::SkippedBusy
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        count(&srv.screen("a")),
        0,
        "busy peer must not be typed into"
    );

    srv.mark(SID, "idle");
    assert_eq!(
        waker.lenient(&peer(SID, pid, Some(&pane_a), "claude-code")),
        WakeStatus::Fired
    );
    wait_for("first wake", || count(&srv.screen("a")) >= 2);
    // Same session again inside the window: coalesced, nothing typed.
    assert_eq!(
        waker.lenient(&peer(SID, pid, Some(&pane_a), "claude-code")),
        WakeStatus::SkippedDebounced
    );

    // Codex peer (another session id): text, a pause, then Enter.
    let started = Instant::now();
    let codex = peer(
        "dddddddd-1111-1111-1111-111111111111",
        pid,
        Some(&pane_a),
        "codex",
    );
    assert_eq!(waker.keystroke(&codex), WakeStatus::Fired);
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "codex gets the submit gap"
    );
    wait_for("codex wake", || count(&srv.screen("a")) >= 4);

    // Strategy off: disabled, nothing typed.
    let off = srv.waker(WakeSettings {
        strategy: Strategy::Off,
        ..WakeSettings::default()
    });
    let other = peer(
        "eeeeeeee-1111-1111-1111-111111111111",
        pid,
        Some(&pane_a),
        "claude-code",
    );
    assert_eq!(off.lenient(&other), WakeStatus::Disabled);
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(count(&srv.screen("a")), 4);
}

#[test]
fn reply_auto_wake_fires_once_for_a_fresh_idle_peer() {
    let Some(srv) = start() else { return };
    let pane_a = srv.pane_of("a");
    let pid = srv.peer_pid();
    let waker = srv.waker(WakeSettings {
        autowake_disabled: Some(false),
        ..WakeSettings::default()
    });
    let p = peer(SID, pid, Some(&pane_a), "claude-code");
    // No marker: not fresh idle.
    assert_eq!(
        waker.reply_default(&p, "req-1"),
        WakeStatus::SkippedNoFreshIdle
    );
    srv.mark(SID, "idle");
    assert_eq!(waker.reply_default(&p, "req-1"), WakeStatus::Fired);
    wait_for("reply wake", || count(&srv.screen("a")) >= 2);
    assert_eq!(waker.reply_default(&p, "req-1"), WakeStatus::SkippedDeduped);
    assert_eq!(
        waker.reply_default(&p, "req-2"),
        WakeStatus::SkippedRateLimited
    );
    let disabled = srv.waker(WakeSettings {
        autowake_disabled: Some(true),
        ..WakeSettings::default()
    });
    assert_eq!(disabled.reply_default(&p, "req-3"), WakeStatus::Disabled);
    assert!(!Path::new(&srv.layout().autowake_dedupe(SID, "req-3")).exists());
}
