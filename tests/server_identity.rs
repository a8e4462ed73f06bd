//! Identity over a server's life, end to end: handshake type, explicit pins,
//! the monotonic rule, state cards, the late re-detect, ids from a Codex
//! `tools/call` `_meta`, and sticky-claim recovery across restarts (server spec
//! §1.4–§1.6, §4.3–§4.6, §6).

mod server_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use server_support::{Sandbox, Server};

const SID: &str = "11111111-2222-3333-4444-555555555555";
const SID2: &str = "66666666-7777-8888-9999-aaaaaaaaaaaa";

fn day_dirs() -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    oxtail::transcripts::dates::recent_day_dirs(now)[..2].to_vec()
}

/// Write a Codex rollout for `sid` (cwd = `cwd`) into today's UTC and local dirs.
fn write_rollout(codex_home: &Path, sid: &str, cwd: &Path) -> PathBuf {
    let mut first = None;
    for d in day_dirs() {
        let dir = codex_home.join("sessions").join(d);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("rollout-2026-01-01T00-00-00-{sid}.jsonl"));
        let meta = json!({"type": "session_meta", "payload": {"id": sid, "cwd": cwd.to_string_lossy(), "instructions": "x".repeat(30_000)}});
        let msg = json!({"timestamp": "2026-01-01T00:00:01Z", "type": "response_item", "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("hello from {sid}")}]}});
        std::fs::write(&p, format!("{meta}\n{msg}\n")).unwrap();
        first.get_or_insert(p);
    }
    first.unwrap()
}

#[test]
fn claude_handshake_register_and_claim() {
    let sb = Sandbox::new();
    let mut s = Server::spawn(&sb, &sb.proj(), &[]);
    s.initialize("claude-code");
    let me = s.call_json("get_my_session", json!({}));
    assert_eq!(me["schema_version"], 1);
    assert_eq!(me["entry"]["client"]["type"], "claude-code");
    assert_eq!(me["entry"]["client"]["session_id"], Value::Null);
    assert!(me["entry"].get("capabilities").is_none());
    let d = &me["detect_diagnosis"];
    assert_eq!(d["winning"], Value::Null);
    assert_eq!(d["next_step"]["tool"], "register_my_session");
    assert_eq!(
        d["next_step"]["bash_command"],
        "echo $CLAUDE_CODE_SESSION_ID"
    );
    assert!(
        d["per_strategy"]["env"]["reason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("strips")
    );
    assert!(
        d["per_strategy"]["birth-time"]["reason"]
            .as_str()
            .unwrap()
            .contains("no transcript files")
    );

    let r = s.call_json("register_my_session", json!({"session_id": SID}));
    assert_eq!(r["ok"], true);
    let keys: Vec<&String> = r["entry"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["server_pid", "started_at", "tmux_session", "client"]);
    assert_eq!(r["entry"]["client"]["session_id"], SID);
    let me = s.call_json("get_my_session", json!({}));
    assert_eq!(me["entry"]["client"]["session_id_source"], "self-register");
    assert!(
        me["entry"]["client"]["transcript_path"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{SID}.jsonl"))
    );
    assert_eq!(me["detect_diagnosis"]["next_step"], Value::Null);
    assert_eq!(
        me["detect_diagnosis"]["winning"]["strategy"],
        "self-register"
    );

    let c = s.call_json("claim_session", json!({"session_id": SID2}));
    let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["schema_version", "ok", "session_id", "transcript_path"]
    );
    assert_eq!(c["session_id"], SID2);
    let tp = c["transcript_path"].as_str().unwrap();
    assert_eq!(Path::new(tp), sb.claude_dir().join(format!("{SID2}.jsonl")));
    // The registry file agrees. The first claim's transcript never existed, so
    // writing the second claim garbage-collected it: one claim file remains.
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(s.entry_path()).unwrap()).unwrap();
    assert_eq!(on_disk["client"]["session_id"], SID2);
    assert_eq!(
        std::fs::read_dir(sb.home().join(".oxtail/claims"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn stale_env_id_is_replaced_only_by_a_claim() {
    let sb = Sandbox::new();
    let mut s = Server::spawn(
        &sb,
        &sb.proj(),
        &[("CLAUDECODE", "1"), ("CLAUDE_CODE_SESSION_ID", SID)],
    );
    s.initialize("claude-code");
    let me = s.call_json("get_my_session", json!({}));
    assert_eq!(me["entry"]["client"]["session_id"], SID);
    assert_eq!(me["detect_diagnosis"]["winning"]["source"], "env");
    s.call_json("claim_session", json!({"session_id": SID2}));
    for _ in 0..2 {
        let me = s.call_json("get_my_session", json!({}));
        assert_eq!(
            me["entry"]["client"]["session_id"], SID2,
            "the handshake's env id must not come back"
        );
        assert_eq!(me["entry"]["client"]["session_id_source"], "self-register");
    }
}

#[test]
fn state_card_set_touch_and_limit() {
    let sb = Sandbox::new();
    let mut s = Server::spawn(&sb, &sb.proj(), &[]);
    s.initialize("claude-code");
    let r = s.call_json("set_my_state", json!({"purpose": "refactoring the parser"}));
    assert_eq!(r["ok"], true);
    assert_eq!(r["state"]["purpose"], "refactoring the parser");
    let t0 = r["state"]["updated_at"].as_i64().unwrap();
    assert!(t0 > 0);
    let r = s.call_json("set_my_state", json!({}));
    assert_eq!(r["state"]["purpose"], "refactoring the parser");
    assert!(r["state"]["updated_at"].as_i64().unwrap() >= t0);
    let r = s.call_json("set_my_state", json!({"purpose": ""}));
    assert_eq!(r["state"]["purpose"], "");
    let text = s.call_error("set_my_state", json!({"purpose": "x".repeat(201)}));
    assert!(text.contains("200") && text.contains("purpose"), "{text}");
    let me = s.call_json("get_my_session", json!({}));
    assert_eq!(me["entry"]["state"]["purpose"], "");
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(s.entry_path()).unwrap()).unwrap();
    assert_eq!(on_disk["state"]["purpose"], "");
}

#[test]
fn late_redetect_adopts_a_new_claude_transcript() {
    let sb = Sandbox::new();
    let mut s = Server::spawn(&sb, &sb.proj(), &[("CLAUDECODE", "1")]);
    s.initialize("claude-code");
    let me = s.call_json("get_my_session", json!({}));
    assert_eq!(me["detect_diagnosis"]["winning"], Value::Null);
    let dir = sb.claude_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{SID}.jsonl")), "").unwrap();
    // Watch the registry file only: the +1 s retry must publish the id by itself.
    let path = s.entry_path();
    let adopted = Server::wait_for(Duration::from_secs(15), || {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|v| {
                v["client"]["session_id"] == SID && v["client"]["session_id_source"] == "birth-time"
            })
    });
    assert!(adopted, "late re-detect did not adopt the transcript");
}

#[test]
fn codex_thread_id_from_tools_call_meta() {
    let sb = Sandbox::new();
    let codex_home = sb.root().join("codex");
    let rollout = write_rollout(&codex_home, SID, &sb.proj());
    // Codex gives its MCP children no CODEX_* variables at all.
    let mut s = Server::spawn(&sb, &sb.proj(), &[]);
    s.initialize("codex-mcp-client");
    let meta = json!({"callId": "call_1", "threadId": SID, "sessionId": SID, "progressToken": 1});
    let r = s.call_meta("get_my_session", json!({}), Some(meta));
    let me: Value = serde_json::from_str(&Server::text(&r)).unwrap();
    assert_eq!(me["entry"]["client"]["type"], "codex");
    assert_eq!(me["entry"]["client"]["session_id"], SID);
    assert_eq!(
        me["entry"]["client"]["session_id_source"],
        "tools-call-meta"
    );
    // No CODEX_HOME in the server's env: ~/.codex/sessions is searched, not ours.
    assert_eq!(me["entry"]["client"]["transcript_path"], Value::Null);
    drop(s);

    let mut s = Server::spawn(
        &sb,
        &sb.proj(),
        &[("CODEX_HOME", codex_home.to_str().unwrap())],
    );
    s.initialize("codex-mcp-client");
    let r = s.call_meta(
        "set_my_state",
        json!({"purpose": "x"}),
        Some(json!({"threadId": SID})),
    );
    assert!(r.get("isError").is_none());
    let me = s.call_json("get_my_session", json!({}));
    assert_eq!(
        me["entry"]["client"]["transcript_path"],
        rollout.to_string_lossy().as_ref()
    );
    // An explicit claim wins over a later _meta thread id; unsafe ids are ignored.
    s.call_json("claim_session", json!({"session_id": SID2}));
    s.call_meta("get_my_session", json!({}), Some(json!({"threadId": SID})));
    s.call_meta(
        "get_my_session",
        json!({}),
        Some(json!({"threadId": "../x"})),
    );
    let me = s.call_json("get_my_session", json!({}));
    assert_eq!(me["entry"]["client"]["session_id"], SID2);
}

#[test]
fn restarted_codex_child_recovers_its_sticky_claim() {
    let sb = Sandbox::new();
    let codex_home = sb.root().join("codex");
    write_rollout(&codex_home, SID, &sb.proj());
    write_rollout(&codex_home, SID2, &sb.proj()); // decoy: birth-time cannot pick one
    let env = [("CODEX_HOME", codex_home.to_str().unwrap())];
    let mut a = Server::spawn(&sb, &sb.proj(), &env);
    a.initialize("codex");
    let me = a.call_json("get_my_session", json!({}));
    assert_eq!(me["entry"]["client"]["session_id"], Value::Null, "{me}");
    a.call_json("claim_session", json!({"session_id": SID}));
    a.close_stdin();
    a.wait_exit(Duration::from_secs(10)).unwrap();

    let mut b = Server::spawn(&sb, &sb.proj(), &env);
    b.initialize("codex");
    let me = b.call_json("get_my_session", json!({}));
    assert_eq!(me["entry"]["client"]["session_id"], SID, "{me}");
    assert_eq!(me["entry"]["client"]["session_id_source"], "sticky-claim");
    assert_eq!(
        std::fs::read_dir(sb.home().join(".oxtail/claims"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn claude_child_typed_only_at_handshake_recovers_via_sticky_claim() {
    let sb = Sandbox::new();
    let dir = sb.claude_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{SID}.jsonl")), "").unwrap();
    std::fs::write(dir.join(format!("{SID2}.jsonl")), "").unwrap();
    let mut a = Server::spawn(&sb, &sb.proj(), &[("CLAUDECODE", "1")]);
    a.initialize("claude-code");
    a.call_json("claim_session", json!({"session_id": SID}));
    assert_eq!(
        std::fs::read_dir(sb.home().join(".oxtail/claims"))
            .unwrap()
            .count(),
        1
    );
    a.close_stdin();
    a.wait_exit(Duration::from_secs(10)).unwrap();

    let mut b = Server::spawn(&sb, &sb.proj(), &[]);
    b.initialize("claude-code");
    let me = b.call_json("get_my_session", json!({}));
    assert_eq!(me["entry"]["client"]["session_id"], SID, "{me}");
    assert_eq!(me["entry"]["client"]["session_id_source"], "sticky-claim");
    let layout = oxtail::store::paths::Layout::at(sb.home().join(".oxtail"));
    let all = oxtail::store::registry::read_all(&layout);
    assert!(
        all.iter()
            .any(|e| e.server_pid == b.pid && e.client.session_id.as_deref() == Some(SID))
    );
}
