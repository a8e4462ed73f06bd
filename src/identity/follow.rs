//! Following the client to a new session id (beyond the original): the rules,
//! without the I/O (`server::follow` runs them).
//!
//! Claude Code keeps one MCP server per process across `/clear` and `/resume`,
//! which give the session a new id without telling the server. The server
//! learns the new id from a client record its client's hooks wrote
//! (`store::clients`) or from the transcript that holds the `tool_use` id of
//! the call it is serving, adopts it as current and keeps the old one as an
//! alias of the same live server.
//!
//! Invariants defended:
//! - a record applies only to the server whose client process it names, and
//!   only if it was written after that process started (a reused pid's old
//!   record is ignored);
//! - moving keeps every id this server answered to: the old current id
//!   becomes the newest alias, an alias that becomes current again leaves the
//!   list, the list is bounded and never holds the current id;
//! - this is the one automatic replacement of an id (AGENTS.md, monotonic
//!   identity): detection, handshakes and guesses still never replace one.

use crate::store::clients::ClientRecord;
use crate::store::registry::{Client, MAX_PREVIOUS_IDS};
use crate::transcripts::transcript_path_for;

/// Learned from a SessionStart hook's client record (`/clear`, `/resume`).
pub const SOURCE_SESSION_START: &str = "session-start";
/// Learned from a client record another hook wrote when it found the record
/// naming an older id (a missed SessionStart).
pub const SOURCE_HOOK_FALLBACK: &str = "hook-fallback";
/// Learned from the transcript that holds the `tool_use` id Claude Code sent
/// with the `tools/call` (`_meta["claudecode/toolUseId"]`).
pub const SOURCE_TOOL_USE_ID: &str = "tool-use-id";

/// Slack on the "written after the client started" test: a start time read
/// from `ps` is only exact to the second.
const START_SLACK_MS: f64 = 1000.0;

/// The `session_id_source` an adoption from `rec` gets.
pub fn record_source(rec: &ClientRecord) -> &'static str {
    if rec.event == "SessionStart" {
        SOURCE_SESSION_START
    } else {
        SOURCE_HOOK_FALLBACK
    }
}

/// Whether `rec` speaks for the client process of a server whose entry holds
/// `client` and that started at `server_started_at` (Unix seconds): same pid,
/// written after that process started (after the server started when the
/// client's start time is unknown), and an id that may become a path part.
pub fn record_applies(rec: &ClientRecord, client: &Client, server_started_at: i64) -> bool {
    let started_s = client.pid_started_at.unwrap_or(server_started_at);
    client.pid == Some(rec.client_pid)
        && rec.modified_ms >= started_s as f64 * 1000.0 - START_SLACK_MS
        && super::is_safe_id(&rec.session_id)
}

/// `client` moved to `new_id` (learned through `source`), or `None` when
/// `new_id` already is its id. The transcript path follows the id: `transcript`
/// when the client named it, else where the client type keeps it.
pub fn moved_to(
    client: &Client,
    new_id: &str,
    source: &str,
    transcript: Option<&str>,
) -> Option<Client> {
    if client.id() == Some(new_id) || !super::is_safe_id(new_id) {
        return None;
    }
    let mut previous: Vec<String> = Vec::with_capacity(MAX_PREVIOUS_IDS);
    let older = client.id().into_iter().chain(
        client
            .previous_session_ids
            .iter()
            .map(String::as_str)
            .filter(|p| !p.is_empty()),
    );
    for id in older {
        if id != new_id && !previous.iter().any(|p| p == id) && previous.len() < MAX_PREVIOUS_IDS {
            previous.push(id.to_string());
        }
    }
    Some(Client {
        session_id: Some(new_id.to_string()),
        session_id_source: Some(source.to_string()),
        transcript_path: transcript
            .map(str::to_string)
            .or_else(|| transcript_path_for(client.client_type, new_id, &client.cwd)),
        previous_session_ids: previous,
        ..client.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::registry::ClientType;

    fn client(id: &str, previous: &[&str]) -> Client {
        Client {
            client_type: ClientType::ClaudeCode,
            session_id: Some(id.into()),
            session_id_source: Some("env".into()),
            cwd: "/p".into(),
            pid: Some(77),
            pid_started_at: Some(1_000),
            previous_session_ids: previous.iter().map(|s| s.to_string()).collect(),
            ..Client::default()
        }
    }

    fn record(pid: u32, id: &str, at_s: f64, event: &str) -> ClientRecord {
        ClientRecord {
            client_pid: pid,
            session_id: id.into(),
            source: "clear".into(),
            event: event.into(),
            transcript_path: None,
            modified_ms: at_s * 1000.0,
        }
    }

    #[test]
    fn moving_keeps_every_id_once_newest_first() {
        let a = client("A", &[]);
        assert_eq!(moved_to(&a, "A", SOURCE_SESSION_START, None), None);
        let b = moved_to(&a, "B", SOURCE_SESSION_START, None).unwrap();
        assert_eq!(b.session_id.as_deref(), Some("B"));
        assert_eq!(b.previous_session_ids, ["A"]);
        assert_eq!(b.session_id_source.as_deref(), Some(SOURCE_SESSION_START));
        assert!(b.transcript_path.unwrap().ends_with("/B.jsonl"));
        let named = moved_to(&a, "B", SOURCE_SESSION_START, Some("/t/B.jsonl")).unwrap();
        assert_eq!(named.transcript_path.as_deref(), Some("/t/B.jsonl"));
        assert_eq!((b.pid, b.pid_started_at), (Some(77), Some(1_000)));
        let c = moved_to(&client("B", &["A"]), "C", SOURCE_TOOL_USE_ID, None).unwrap();
        assert_eq!(c.previous_session_ids, ["B", "A"]);
        // /resume back to an alias: it leaves the list, the current id joins it.
        let back = moved_to(&client("C", &["B", "A"]), "A", SOURCE_SESSION_START, None).unwrap();
        assert_eq!(back.previous_session_ids, ["C", "B"]);
        let many: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let bounded = moved_to(&client("X", &refs), "Y", SOURCE_SESSION_START, None).unwrap();
        assert_eq!(bounded.previous_session_ids.len(), MAX_PREVIOUS_IDS);
        assert_eq!(bounded.previous_session_ids[0], "X");
        assert!(moved_to(&a, "../x", SOURCE_SESSION_START, None).is_none());
        let none = Client {
            session_id: None,
            ..a.clone()
        };
        assert!(
            moved_to(&none, "B", SOURCE_SESSION_START, None)
                .unwrap()
                .previous_session_ids
                .is_empty()
        );
    }

    #[test]
    fn records_apply_to_their_own_fresh_client_only() {
        let c = client("A", &[]);
        assert!(record_applies(
            &record(77, "B", 1_000.5, "SessionStart"),
            &c,
            1_005
        ));
        assert!(!record_applies(
            &record(78, "B", 2_000.0, "SessionStart"),
            &c,
            1_005
        ));
        // Written before the client process started: a reused pid's record.
        assert!(!record_applies(
            &record(77, "B", 990.0, "SessionStart"),
            &c,
            1_005
        ));
        let unknown_start = Client {
            pid_started_at: None,
            ..c.clone()
        };
        assert!(!record_applies(
            &record(77, "B", 1_001.0, "SessionStart"),
            &unknown_start,
            1_005
        ));
        assert!(record_applies(
            &record(77, "B", 1_005.0, "PreToolUse"),
            &unknown_start,
            1_005
        ));
        let unbound = Client {
            pid: None,
            ..c.clone()
        };
        assert!(!record_applies(
            &record(77, "B", 2_000.0, "SessionStart"),
            &unbound,
            1_005
        ));
        assert_eq!(
            record_source(&record(77, "B", 1.0, "SessionStart")),
            SOURCE_SESSION_START
        );
        assert_eq!(
            record_source(&record(77, "B", 1.0, "Stop")),
            SOURCE_HOOK_FALLBACK
        );
    }
}
