//! The start-up hook-freshness hint (server.md §1.8, hooks.md §5.8): a Claude
//! Code server prints one stderr line when the hooks are missing or stale, and
//! nothing once they are current; other clients never get it; it never blocks
//! the handshake.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn stderr_of_server(home: &Path, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxtail"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TMUX_TMPDIR", home)
        .current_dir(home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn oxtail");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"probe","version":"0"}}}}}}"#
    )
    .unwrap();
    // Let the hint's blocking task run, then close stdin: the server exits.
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = child.wait();
    err
}

fn install_hooks(home: &Path) {
    let st = Command::new(env!("CARGO_BIN_EXE_oxtail"))
        .arg("install-hook")
        .env("HOME", home)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn claude_code_server_hints_until_the_hooks_are_current() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let err = stderr_of_server(home, &[("CLAUDECODE", "1")]);
    assert!(err.contains("hooks are not installed"), "stderr: {err}");
    assert_eq!(err.matches("install-hook").count(), 1, "one line: {err}");

    install_hooks(home);
    let err = stderr_of_server(home, &[("CLAUDECODE", "1")]);
    assert!(!err.contains("install-hook"), "stderr: {err}");

    // An edited marker hash makes the installation stale.
    let settings = home.join(".claude/settings.json");
    let text = std::fs::read_to_string(&settings).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["_oxtailHook"]["hashes"]["pretooluse"] = "0000000000000000".into();
    std::fs::write(&settings, doc.to_string()).unwrap();
    let err = stderr_of_server(home, &[("CLAUDECODE", "1")]);
    assert!(
        err.contains("out of date") && err.contains("pretooluse"),
        "stderr: {err}"
    );
}

#[test]
fn other_clients_get_no_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let err = stderr_of_server(tmp.path(), &[]);
    assert!(!err.contains("install-hook"), "stderr: {err}");
}
