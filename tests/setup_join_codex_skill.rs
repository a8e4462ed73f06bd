//! The `oxtail-join` skill that `oxtail setup` installs is discovered by the
//! real Codex 0.169 (`codex app-server`, method `skills/list`) as an enabled
//! user skill. Codex comes from `../shared/realclients`, installed under
//! `~/.cache/oxtail-realclients`; the test is skipped, saying so, without it.
//! HOME lives under `CARGO_TARGET_TMPDIR` (Codex refuses helpers below /tmp).

mod setup_support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use setup_support::{Home, NO_REAL_CODEX, ok, real_codex};

/// `skills/list` through `codex app-server` with `CODEX_HOME`.
fn codex_skills(codex: &Path, h: &Home) -> Value {
    let codex_home = h.p(".codex");
    let mut child = Command::new(codex)
        .arg("app-server")
        .env("HOME", &h.home)
        .env("CODEX_HOME", &codex_home)
        .current_dir(&h.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut call = |id: u64, method: &str, params: Value| -> Value {
        let msg = if id == 0 {
            json!({"jsonrpc": "2.0", "method": method})
        } else {
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        };
        writeln!(stdin, "{msg}").unwrap();
        if id == 0 {
            return Value::Null;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = rx.recv_timeout(left).expect("codex app-server answer");
            if v["id"] == id {
                return v;
            }
        }
    };
    call(
        1,
        "initialize",
        json!({"clientInfo": {"name": "oxtail-test", "version": "1"}}),
    );
    // `initialized` is a notification; id 0 keeps the closure the only writer.
    call(0, "initialized", Value::Null);
    let r = call(
        2,
        "skills/list",
        json!({"cwds": [h.home.display().to_string()]}),
    );
    let _ = child.kill();
    let _ = child.wait();
    r
}

#[test]
fn codex_discovers_the_installed_skill() {
    let Some(codex) = real_codex() else {
        eprintln!("{NO_REAL_CODEX}");
        return;
    };
    let h = Home::new_in(env!("CARGO_TARGET_TMPDIR"));
    ok(&h.oxtail(&["setup", "--no-claude", "--no-codex-trust"]));
    let r = codex_skills(&codex, &h);
    let skills: Vec<&Value> = r["result"]["data"]
        .as_array()
        .unwrap_or_else(|| panic!("skills/list: {r}"))
        .iter()
        .flat_map(|d| d["skills"].as_array().unwrap().iter())
        .collect();
    let ours = skills
        .iter()
        .find(|s| s["name"] == "oxtail-join")
        .unwrap_or_else(|| panic!("oxtail-join not discovered: {r}"));
    assert_eq!(ours["scope"], "user", "{ours}");
    assert_eq!(ours["enabled"], true, "{ours}");
    assert!(
        ours["description"]
            .as_str()
            .unwrap()
            .starts_with("Join the oxtail peer network"),
        "{ours}"
    );
    assert!(
        ours["path"]
            .as_str()
            .unwrap()
            .ends_with("skills/oxtail-join/SKILL.md"),
        "{ours}"
    );
}
