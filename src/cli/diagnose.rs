//! `oxtail diagnose`: summarise the `wake_outcome` events of `MCP_TRACE_FILE`
//! (newest 200) by status and by tool.
//!
//! Invariant defended: diagnose only reads; it never starts a server, registers
//! a session or writes a file, and no line of the trace (blank, malformed, JSON
//! `null`, wrong types) can make it crash.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::Value;

/// How many of the newest `wake_outcome` records are tallied.
pub const RECENCY_CAP: usize = 200;

/// Tallies of the kept records.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Records tallied (at most the cap).
    pub total: usize,
    /// `wake_outcome` records found.
    pub considered: usize,
    pub by_status: BTreeMap<String, usize>,
    pub by_via: BTreeMap<String, BTreeMap<String, usize>>,
}

/// Tally `content` (NDJSON) keeping the newest `cap` `wake_outcome` records.
pub fn summarize(content: &str, cap: usize) -> Summary {
    let records: Vec<serde_json::Map<String, Value>> = content
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(o)) => Some(o),
            _ => None,
        })
        .filter(|o| o.get("event").and_then(Value::as_str) == Some("wake_outcome"))
        .collect();
    let considered = records.len();
    let kept = &records[considered.saturating_sub(cap)..];
    let mut summary = Summary {
        total: kept.len(),
        considered,
        ..Summary::default()
    };
    for rec in kept {
        let status = js_string(rec.get("wake_status"));
        let via = js_string(rec.get("via"));
        *summary.by_status.entry(status.clone()).or_default() += 1;
        *summary
            .by_via
            .entry(via)
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
    summary
}

/// JavaScript `String(value)`, with missing / `null` as `unknown`.
fn js_string(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "unknown".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Null => String::new(),
                other => js_string(Some(other)),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "[object Object]".into(),
        Some(other) => other.to_string(),
    }
}

/// Count descending, then name ascending.
fn ordered(counts: &BTreeMap<String, usize>) -> Vec<(&str, usize)> {
    let mut v: Vec<(&str, usize)> = counts.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v
}

/// The JavaScript default sort key of a `[via, counts]` pair: `"<via>,[object Object]"`
/// compared by UTF-16 code units.
fn via_sort_key(via: &str) -> Vec<u16> {
    format!("{via},[object Object]").encode_utf16().collect()
}

/// Render the report (every line ends with `\n`).
pub fn format(summary: &Summary) -> String {
    if summary.total == 0 {
        return "oxtail diagnose: no wake_outcome events in the trace file (no ask_peer, wake:\"auto\" or reply-default wakes recorded yet).\n".into();
    }
    let mut out = if summary.considered > summary.total {
        format!(
            "oxtail diagnose \u{2014} wake outcomes (newest {} of {}):\n",
            summary.total, summary.considered
        )
    } else {
        format!(
            "oxtail diagnose \u{2014} wake outcomes ({}):\n",
            summary.total
        )
    };
    for (status, n) in ordered(&summary.by_status) {
        out.push_str(&format!("  {status}: {n}\n"));
    }
    out.push_str("by tool:\n");
    let mut vias: Vec<(&String, &BTreeMap<String, usize>)> = summary.by_via.iter().collect();
    vias.sort_by_key(|(via, _)| via_sort_key(via));
    for (via, counts) in vias {
        let pairs: Vec<String> = ordered(counts)
            .into_iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        out.push_str(&format!("  {via}: {}\n", pairs.join(", ")));
    }
    out
}

/// Outcome of a diagnose run: text for stdout and the exit status.
pub fn report(trace_file: Option<&str>) -> (String, u8) {
    let Some(path) = trace_file.filter(|p| !p.is_empty()) else {
        return (
            "oxtail diagnose: MCP_TRACE_FILE is not set, so there is no trace data to summarise.\n\
             Set MCP_TRACE_FILE to a file path in the oxtail server's env (e.g. in .mcp.json, ~/.claude.json or ~/.codex/config.toml), reproduce some wakes, then re-run `oxtail diagnose`.\n"
                .into(),
            0,
        );
    };
    match std::fs::read(path) {
        Ok(bytes) => (
            format(&summarize(&String::from_utf8_lossy(&bytes), RECENCY_CAP)),
            0,
        ),
        Err(e) => (
            format!(
                "oxtail diagnose: could not read trace file {path} ({e}); set MCP_TRACE_FILE in the oxtail server's env and reproduce some wakes first.\n"
            ),
            1,
        ),
    }
}

pub fn run() -> ExitCode {
    let var = std::env::var_os("MCP_TRACE_FILE").map(|v| v.to_string_lossy().into_owned());
    let (text, code) = report(var.as_deref());
    print!("{text}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(via: &str, status: &str) -> String {
        format!(
            "{{\"ts\":\"2026-05-13T09:41:07.123Z\",\"server_pid\":1,\"event\":\"wake_outcome\",\"via\":\"{via}\",\"wake_status\":\"{status}\",\"target_session_id\":null,\"client_type\":\"codex\"}}"
        )
    }

    #[test]
    fn tallies_only_wake_outcome_and_skips_junk() {
        let content = [
            rec("ask_peer", "fired"),
            "".into(),
            "   ".into(),
            "not json".into(),
            "null".into(),
            "42".into(),
            "{\"event\":\"ask_peer_start\"}".into(),
            rec("send_message", "skipped_no_target"),
            "{\"event\":\"wake_outcome\",\"wake_status\":5}".into(),
        ]
        .join("\n");
        let s = summarize(&content, 200);
        assert_eq!(s.total, 3);
        assert_eq!(s.considered, 3);
        assert_eq!(s.by_status["fired"], 1);
        assert_eq!(s.by_status["5"], 1);
        assert_eq!(s.by_via["unknown"]["5"], 1);
        assert_eq!(s.by_via["ask_peer"]["fired"], 1);
    }

    #[test]
    fn recency_cap_keeps_the_newest() {
        let mut lines: Vec<String> = (0..8).map(|_| rec("ask_peer", "fired")).collect();
        lines.extend((0..3).map(|_| rec("ask_peer", "skipped_busy")));
        let s = summarize(&lines.join("\n"), 3);
        assert_eq!((s.total, s.considered), (3, 11));
        assert_eq!(s.by_status.get("fired"), None);
        assert_eq!(s.by_status["skipped_busy"], 3);
        assert!(
            format(&s).starts_with("oxtail diagnose \u{2014} wake outcomes (newest 3 of 11):\n")
        );
    }

    #[test]
    fn exact_layout() {
        let content = [
            rec("send_message", "skipped_no_target"),
            rec("ask_peer", "fired"),
            rec("ask_peer", "skipped_busy"),
            rec("ask_peer", "skipped_busy"),
            rec("reply_default", "fired"),
        ]
        .join("\n");
        assert_eq!(
            format(&summarize(&content, 200)),
            "oxtail diagnose \u{2014} wake outcomes (5):\n\
             \x20 fired: 2\n\
             \x20 skipped_busy: 2\n\
             \x20 skipped_no_target: 1\n\
             by tool:\n\
             \x20 ask_peer: skipped_busy 2, fired 1\n\
             \x20 reply_default: fired 1\n\
             \x20 send_message: skipped_no_target 1\n"
        );
        assert!(format(&Summary::default()).contains("no wake_outcome events"));
    }

    #[test]
    fn via_order_follows_the_javascript_default_sort() {
        let content = [rec("a", "fired"), rec("a!", "fired"), rec("b", "fired")].join("\n");
        let text = format(&summarize(&content, 200));
        let a_bang = text.find("  a!:").unwrap();
        let a = text.find("  a:").unwrap();
        assert!(a_bang < a, "{text}");
    }

    #[test]
    fn report_cases() {
        let (text, code) = report(None);
        assert_eq!(code, 0);
        assert!(
            text.lines()
                .next()
                .unwrap()
                .contains("MCP_TRACE_FILE is not set")
        );
        assert_eq!(text.lines().count(), 2);
        let (text, code) = report(Some("/nonexistent/oxtail/trace.ndjson"));
        assert_eq!(code, 1);
        assert!(text.contains("could not read trace file"));
        assert!(text.contains("/nonexistent/oxtail/trace.ndjson"));
    }
}
