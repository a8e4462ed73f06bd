//! Registry and trace fixtures shared by the test support modules: a registry
//! entry in the original's shape, written as the server writes it, and the
//! trace records of one event.
#![allow(dead_code)]

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

/// A registry entry value in the original's shape (capabilities included).
pub fn entry_json(
    pid: u32,
    client_type: &str,
    sid: Option<&str>,
    cwd: &Path,
    tmux_session: Option<&str>,
    transcript: Option<&Path>,
) -> Value {
    json!({
        "server_pid": pid,
        "started_at": 1_700_000_000,
        "client": {
            "type": client_type,
            "session_id": sid,
            "transcript_path": transcript.map(|t| t.to_string_lossy().into_owned()),
            "session_id_source": sid.map(|_| "self-register"),
            "cwd": cwd.to_string_lossy(),
        },
        "tmux_pane": null,
        "tmux_session": tmux_session,
        "state": null,
        "capabilities": {"mailbox": {"reply_to": true, "provenance": true, "push_budget": true}},
    })
}

/// Write `sessions_dir/<pid>.json` verbatim (pretty-printed, as the server does).
pub fn write_entry(sessions_dir: &Path, pid: u32, entry: &Value) {
    fs::create_dir_all(sessions_dir).unwrap();
    fs::write(
        sessions_dir.join(format!("{pid}.json")),
        serde_json::to_string_pretty(entry).unwrap(),
    )
    .unwrap();
}

/// The records named `event` in the trace file `trace` (none when absent).
pub fn trace_events(trace: &Path, event: &str) -> Vec<Value> {
    fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == event)
        .collect()
}
