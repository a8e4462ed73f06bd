//! `read_session` and `list_project_sessions` against registry fixtures and a
//! private tmux server (server spec §3.6, §4.1, §4.2, §8.5).

mod server_support;

use std::path::Path;

use serde_json::{Value, json};
use server_support::{Sandbox, Server, Sleeper, dead_pid, entry_json, have_tmux};

const PEER: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const PEER2: &str = "bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee";

fn claude_turns(path: &Path, n: usize, size: usize) {
    let mut text = String::new();
    for i in 0..n {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        let body = format!("turn {i} {}", "y".repeat(size));
        text.push_str(&json!({"type": role, "message": {"role": role, "content": body}, "timestamp": format!("2026-01-01T00:00:{i:02}Z")}).to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn read_session_by_uuid_budgets_and_scope() {
    let sb = Sandbox::new();
    let peer = Sleeper::new();
    let t = sb.root().join("peer.jsonl");
    claude_turns(&t, 8, 1000);
    let sub = sb.proj().join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    sb.write_entry(
        peer.pid(),
        &entry_json(peer.pid(), "claude-code", Some(PEER), &sub, None, Some(&t)),
    );
    // Garbage in the registry never breaks a read.
    sb.write_entry(4_000_000, &json!("junk"));
    std::fs::write(sb.sessions_dir().join("5.json"), "{broken").unwrap();
    let mut s = Server::spawn(&sb, &sb.proj(), &[]);
    s.initialize("claude-code");
    let root = sb.proj().to_string_lossy().into_owned();

    let r = s.call_json(
        "read_session",
        json!({"name": PEER, "project_root": root, "limit": 3, "max_bytes": 2500}),
    );
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "schema_version",
            "session",
            "mode",
            "client_type",
            "messages",
            "pane_text",
            "truncated",
            "count_truncated",
            "bytes_truncated",
            "total_messages",
            "total_messages_exact",
            "project_root",
            "inferred",
            "error"
        ]
    );
    assert_eq!(r["mode"], "transcript");
    assert_eq!(r["session"], PEER);
    assert_eq!(r["client_type"], "claude-code");
    assert_eq!(r["total_messages"], 8);
    assert_eq!(r["inferred"], false);
    assert_eq!(
        (
            r["truncated"].clone(),
            r["count_truncated"].clone(),
            r["bytes_truncated"].clone()
        ),
        (json!(true), json!(true), json!(true))
    );
    let msgs = r["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert!(
        msgs[2]["text"].as_str().unwrap().starts_with("turn 7 ")
            && !msgs[2]["text"].as_str().unwrap().contains('…')
    );
    assert!(msgs[0]["text"].as_str().unwrap().ends_with("B truncated]"));
    assert_eq!(msgs[2]["timestamp"], Value::Null);
    let r = s.call_json(
        "read_session",
        json!({"name": PEER, "limit": 1, "include_timestamps": true}),
    );
    assert_eq!(r["inferred"], true);
    assert_eq!(r["project_root"], root.as_str());
    assert_eq!(r["messages"][0]["timestamp"], "2026-01-01T00:00:07Z");
    // Tail scan.
    let r = s.call_json(
        "read_session",
        json!({"name": PEER, "tail_scan": true, "limit": 2}),
    );
    assert_eq!(r["messages"].as_array().unwrap().len(), 2);
    assert_eq!(
        (
            r["count_truncated"].clone(),
            r["total_messages"].clone(),
            r["total_messages_exact"].clone()
        ),
        (json!(true), Value::Null, json!(false))
    );
    let r = s.call_json(
        "read_session",
        json!({"name": PEER, "tail_scan": true, "limit": 1000, "max_bytes": 1000000}),
    );
    assert_eq!(
        (
            r["total_messages"].clone(),
            r["total_messages_exact"].clone()
        ),
        (json!(8), json!(true))
    );
    // Unknown UUID, out-of-scope root, transcript file missing.
    let r = s.call_json(
        "read_session",
        json!({"name": "cccccccc-bbbb-cccc-dddd-eeeeeeeeeeee"}),
    );
    assert_eq!(r["mode"], "none");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown-or-unclaimed-session:"),
        "{r}"
    );
    let other = sb.root().join("other");
    std::fs::create_dir_all(other.join(".git")).unwrap();
    let r = s.call_json(
        "read_session",
        json!({"name": PEER, "project_root": other.to_string_lossy()}),
    );
    assert_eq!(r["mode"], "none");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("not in project scope")
    );
    std::fs::remove_file(&t).unwrap();
    let r = s.call_json("read_session", json!({"name": PEER}));
    assert_eq!(
        (
            r["mode"].clone(),
            r["messages"].clone(),
            r["total_messages"].clone(),
            r["error"].clone()
        ),
        (json!("transcript"), json!([]), json!(0), Value::Null)
    );
    // An empty name is simply out of scope.
    let r = s.call_json("read_session", json!({"name": ""}));
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("not in project scope")
    );
}

#[test]
fn read_session_codex_peer_and_tmux_name_resolution() {
    let sb = Sandbox::new();
    let (p1, p2, p3) = (Sleeper::new(), Sleeper::new(), Sleeper::new());
    let rollout =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transcripts/codex.jsonl");
    let proj = sb.proj();
    sb.write_entry(
        p1.pid(),
        &entry_json(p1.pid(), "codex", Some(PEER), &proj, None, Some(&rollout)),
    );
    sb.write_entry(
        p2.pid(),
        &entry_json(
            p2.pid(),
            "claude-code",
            Some(PEER2),
            &proj,
            Some("shared"),
            None,
        ),
    );
    sb.write_entry(
        p3.pid(),
        &entry_json(
            p3.pid(),
            "claude-code",
            Some("cccccccc-bbbb-cccc-dddd-eeeeeeeeeeee"),
            &proj,
            Some("shared"),
            None,
        ),
    );
    let outside = sb.root().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    let p4 = Sleeper::new();
    sb.write_entry(
        p4.pid(),
        &entry_json(
            p4.pid(),
            "claude-code",
            Some("dddddddd-bbbb-cccc-dddd-eeeeeeeeeeee"),
            &outside,
            Some("away"),
            None,
        ),
    );
    let p5 = Sleeper::new();
    sb.write_entry(
        p5.pid(),
        &entry_json(
            p5.pid(),
            "claude-code",
            Some("eeeeeeee-bbbb-cccc-dddd-eeeeeeeeeeee"),
            &proj,
            Some("notx"),
            None,
        ),
    );
    let dead = dead_pid();
    sb.write_entry(
        dead,
        &entry_json(
            dead,
            "codex",
            Some("ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee"),
            &proj,
            None,
            Some(&rollout),
        ),
    );
    let mut s = Server::spawn(&sb, &proj, &[]);
    s.initialize("codex-mcp-client");

    let r = s.call_json("read_session", json!({"name": PEER}));
    assert_eq!(
        (
            r["mode"].clone(),
            r["client_type"].clone(),
            r["error"].clone()
        ),
        (json!("transcript"), json!("codex"), Value::Null)
    );
    assert_eq!(r["messages"][1]["text"], "Added --verbose; see src/cli.rs.");

    let r = s.call_json("read_session", json!({"name": "shared"}));
    assert_eq!(r["mode"], "none");
    let err = r["error"].as_str().unwrap();
    assert!(
        err.starts_with("ambiguous-target:")
            && err.contains(PEER2)
            && err.contains("cccccccc-bbbb-cccc-dddd-eeeeeeeeeeee"),
        "{err}"
    );
    let r = s.call_json("read_session", json!({"name": PEER2, "mode": "transcript"}));
    let err = r["error"].as_str().unwrap();
    assert!(
        !err.contains("ambiguous") && !err.contains("scope"),
        "{err}"
    );
    assert!(
        err.contains("no registry entry with transcript path"),
        "{err}"
    );
    assert_eq!(r["session"], "shared");

    let r = s.call_json("read_session", json!({"name": "away"}));
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("not in project scope")
    );
    assert_eq!(r["project_root"], proj.to_string_lossy().as_ref());
    // A registered peer whose tmux session does not exist: pane capture fails cleanly.
    let r = s.call_json("read_session", json!({"name": "notx", "mode": "pane"}));
    assert_eq!(r["mode"], "none");
    assert_eq!(r["session"], "notx");
    assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()));
    // A dead peer is reaped: its UUID is unknown.
    let r = s.call_json(
        "read_session",
        json!({"name": "ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee"}),
    );
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown-or-unclaimed-session:")
    );
    assert!(!sb.sessions_dir().join(format!("{dead}.json")).exists());
}

#[test]
fn list_and_pane_reads_with_private_tmux() {
    let sb = Sandbox::new();
    let proj = sb.proj();
    let mut s = Server::spawn(&sb, &proj, &[]);
    s.initialize("claude-code");
    // Before any tmux server exists: no rows, tmux's own error text.
    let r = s.call_json("list_project_sessions", json!({}));
    assert_eq!(r["sessions"], json!([]));
    if !have_tmux() {
        assert_eq!(r["error"], "tmux not found");
        return;
    }
    assert!(r["error"].as_str().is_some(), "{r}");
    let nested = proj.join("vendor/lib");
    std::fs::create_dir_all(nested.join(".git")).unwrap();
    let outside = sb.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    assert!(sb.tmux_session("alpha", &proj));
    assert!(sb.tmux_session("beta", &proj.join("vendor")));
    assert!(sb.tmux_session("nested", &nested));
    assert!(sb.tmux_session("far", &outside));
    let (a1, a2) = (Sleeper::new(), Sleeper::new());
    sb.write_entry(
        a1.pid(),
        &entry_json(
            a1.pid(),
            "claude-code",
            Some(PEER),
            &proj,
            Some("alpha"),
            None,
        ),
    );
    sb.write_entry(
        a2.pid(),
        &entry_json(a2.pid(), "codex", Some(PEER2), &proj, Some("alpha"), None),
    );

    let root = proj.to_string_lossy().into_owned();
    let r = s.call_json("list_project_sessions", json!({"project_root": root}));
    assert_eq!(r["error"], Value::Null, "{r}");
    assert!(r.get("tmux_sessions").is_none());
    let rows = r["sessions"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "alpha", "beta"], "{r}");
    // Registry order is directory order: compare the pair as a set.
    let mut ids = vec![
        rows[0]["client_session_id"].clone(),
        rows[1]["client_session_id"].clone(),
    ];
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(ids, [json!(PEER), json!(PEER2)]);
    assert!(rows[..2].iter().any(|x| x["client_type"] == "codex"));
    assert_eq!(rows[2]["client_session_id"], Value::Null);
    assert_eq!(rows[0]["windows"], 1);
    assert_eq!(rows[0]["attached"], false);
    assert!(rows[0]["created_at"].as_i64().unwrap() > 0);

    let c = s.call_json(
        "list_project_sessions",
        json!({"project_root": root, "compact": true}),
    );
    assert!(c.get("sessions").is_none());
    let groups = c["tmux_sessions"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["agents"].as_array().unwrap().len(), 2);
    assert_eq!(groups[1]["agents"], json!([]));

    // Pane mode on an unregistered in-scope session.
    let _ = sb
        .tmux()
        .args([
            "send-keys",
            "-t",
            "beta",
            "seq 1000 1300; echo oxtail-pane-marker",
            "Enter",
        ])
        .output();
    let found = Server::wait_for(std::time::Duration::from_secs(10), || {
        let r = s.call_json(
            "read_session",
            json!({"name": "beta", "project_root": root}),
        );
        r["mode"] == "pane"
            && r["pane_text"]
                .as_str()
                .is_some_and(|t| t.contains("1300\noxtail-pane-marker"))
    });
    assert!(found, "pane capture never showed the marker");
    let r = s.call_json(
        "read_session",
        json!({"name": "beta", "project_root": root, "pane_max_chars": 1}),
    );
    assert_eq!(r["truncated"], true);
    assert!(
        r["pane_text"]
            .as_str()
            .unwrap()
            .starts_with("…[pane truncated to last 500 chars]\n")
    );
    // Nested repository and outside sessions are out of scope.
    for name in ["nested", "far", "nonexistent-session"] {
        let r = s.call_json("read_session", json!({"name": name, "project_root": root}));
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .contains("not in project scope"),
            "{name}: {r}"
        );
    }
}
