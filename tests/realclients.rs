//! Opt-in: the real Claude Code and Codex CLIs against this oxtail, through
//! the shared offline harness (`../shared/realclients`, a scripted fake model
//! on 127.0.0.1). Runs only with `OXTAIL_REALCLIENTS=1` and the CLIs installed
//! (`../shared/realclients/install.sh`); otherwise it prints a skip note.
//! Scenarios: `handshake` (both CLIs), `oxtail_stop_delivery` (Claude Code),
//! `oxtail_codex_peer` (Claude Code sends, Codex receives through the hooks),
//! `tests/setup_e2e_codex_peer.json` (the hooks `oxtail setup` installed,
//! trusted by setup itself, deliver into a Codex session), and
//! `tests/realclients_receipts.json` (a Claude Code session receives through
//! its PreToolUse hook; its sender's `message_status` says delivered via the
//! hook).

use std::path::{Path, PathBuf};
use std::process::Command;

fn harness() -> Option<PathBuf> {
    if std::env::var("OXTAIL_REALCLIENTS").as_deref() != Ok("1") {
        eprintln!("skip: set OXTAIL_REALCLIENTS=1 to drive the real CLIs");
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realclients");
    if !dir.join("run.py").is_file() {
        eprintln!("skip: no ../shared/realclients harness beside the repository");
        return None;
    }
    Some(dir)
}

fn run(harness: &Path, args: &[&str]) {
    let bin = env!("CARGO_BIN_EXE_oxtail");
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let out = Command::new("python3")
        .arg(harness.join("run.py"))
        .args(["--mcp-cmd", bin, "--mcp-name", "oxtail"])
        .arg("--hooks-dir")
        .arg(&assets)
        .args(args)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(" 0 failed"),
        "{args:?}:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn real_clients_talk_through_oxtail() {
    let Some(h) = harness() else { return };
    for scenario in ["handshake", "oxtail_stop_delivery", "oxtail_codex_peer"] {
        let path = h.join(format!("scenarios/{scenario}.json"));
        run(&h, &["--scenario", path.to_str().unwrap()]);
    }
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/setup_e2e_codex_peer.json");
    let setup_env = format!("OXTAIL_SETUP_BIN={}", env!("CARGO_BIN_EXE_oxtail"));
    run(
        &h,
        &[
            "--no-hook-trust-bypass",
            "--env",
            &setup_env,
            "--scenario",
            setup.to_str().unwrap(),
        ],
    );
    let receipts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/realclients_receipts.json");
    run(&h, &["--scenario", receipts.to_str().unwrap()]);
}
