//! `MCP_TRACE_FILE` tracing: one compact NDJSON record per event.
//!
//! Invariant defended: tracing never fails or slows the caller beyond one
//! best-effort append. Records are `{"ts","server_pid","event",...fields}` in
//! that key order; an event field named `ts`, `server_pid` or `event` replaces the
//! fixed slot (the original merges objects the same way).

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Map, Value};

struct Sink {
    path: Option<PathBuf>,
    parent_made: std::sync::Once,
}

static SINK: OnceLock<Sink> = OnceLock::new();

fn sink() -> &'static Sink {
    SINK.get_or_init(|| Sink {
        path: std::env::var_os("MCP_TRACE_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        parent_made: std::sync::Once::new(),
    })
}

/// Whether tracing is on (read once per process).
pub fn enabled() -> bool {
    sink().path.is_some()
}

/// Append one event. `fields` must be a JSON object (anything else is ignored).
pub fn event(name: &str, fields: Value) {
    let Some(path) = sink().path.as_ref() else {
        return;
    };
    let line = format_record(&now_iso(), std::process::id(), name, fields);
    sink().parent_made.call_once(|| {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
    });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Build one record line (with its trailing newline).
pub fn format_record(ts: &str, pid: u32, name: &str, fields: Value) -> String {
    let mut obj = Map::new();
    obj.insert("ts".into(), Value::from(ts));
    obj.insert("server_pid".into(), Value::from(pid));
    obj.insert("event".into(), Value::from(name));
    if let Value::Object(extra) = fields {
        for (k, v) in extra {
            obj.insert(k, v);
        }
    }
    let mut line = serde_json::to_string(&Value::Object(obj)).unwrap_or_default();
    line.push('\n');
    line
}

/// UTC ISO-8601 with milliseconds, e.g. `2026-05-13T09:41:07.123Z`.
pub fn now_iso() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_has_fixed_slots_first_and_merges_overrides() {
        let line = format_record(
            "2026-05-13T09:41:07.123Z",
            7,
            "ask_peer_wake_pane_refreshed",
            json!({"cached": "%1", "server_pid": 99, "live": "%2"}),
        );
        assert_eq!(
            line,
            "{\"ts\":\"2026-05-13T09:41:07.123Z\",\"server_pid\":99,\"event\":\"ask_peer_wake_pane_refreshed\",\"cached\":\"%1\",\"live\":\"%2\"}\n"
        );
    }

    #[test]
    fn timestamp_shape() {
        let ts = now_iso();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z'));
    }
}
