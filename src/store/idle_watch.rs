//! Idle-watcher records: `~/.oxtail/idlewatch/<activity key>`, one JSON
//! object per session, written by the Claude Code `asyncRewake` hook
//! (`assets/idlewatch.sh`) while it waits for that session's mail, removed by
//! it when it stops waiting.
//!
//! ```json
//! {"schema_version":1,"session_id":"<sid>","token":"<pid>.<random>","pid":<watcher pid>,
//!  "client_pid":<Claude Code pid, 0 = unknown>,"armed_at_ms":<ms>,"until_ms":<ms>}
//! ```
//!
//! Beyond the original (which has no watcher): the record is how one waiter
//! per session is kept (the newest instance writes its token; an older one
//! that finds another token gives up) and how a sender knows the receiver's
//! own mail will wake it, so it need not type into its pane.
//!
//! Invariants defended: a record only counts as armed while its watcher and
//! its client are alive and its deadline has not passed, so a watcher killed
//! without cleaning up never hides a receiver from the tmux wake for longer
//! than its deadline (and not at all once its pid is gone); reading never
//! fails (anything unreadable is "no watcher").

use serde_json::Value;

use super::paths::Layout;
use super::registry::is_alive;

/// One watcher record, as written by the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRecord {
    pub session_id: String,
    /// `<pid>.<random>`: which instance owns the record.
    pub token: String,
    /// The waiting hook process.
    pub pid: u32,
    /// The Claude Code process the hook belongs to (0 = unknown).
    pub client_pid: u32,
    pub armed_at_ms: i64,
    /// The watcher gives up at this time (before the client's hook timeout).
    pub until_ms: i64,
}

impl WatchRecord {
    fn parse(text: &[u8]) -> Option<WatchRecord> {
        let v: Value = serde_json::from_slice(text).ok()?;
        if v.get("schema_version").and_then(Value::as_i64) != Some(1) {
            return None;
        }
        let num = |k: &str| v.get(k).and_then(Value::as_i64);
        let pid = |k: &str| num(k).and_then(|n| u32::try_from(n).ok());
        Some(WatchRecord {
            session_id: v.get("session_id")?.as_str()?.to_string(),
            token: v.get("token")?.as_str()?.to_string(),
            pid: pid("pid")?,
            client_pid: pid("client_pid").unwrap_or(0),
            armed_at_ms: num("armed_at_ms").unwrap_or(0),
            until_ms: num("until_ms")?,
        })
    }

    /// Whether this record still stands for a waiting watcher at `now_ms`:
    /// deadline ahead, watcher alive, client alive (when known).
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.until_ms > now_ms
            && is_alive(self.pid)
            && (self.client_pid == 0 || is_alive(self.client_pid))
    }
}

/// The record for `session_id`, whatever its liveness; `None` when there is
/// none, it cannot be read, or it names another session (a sanitising
/// collision of the activity key).
pub fn read(layout: &Layout, session_id: &str) -> Option<WatchRecord> {
    let bytes = super::file::read_all(&layout.idle_watch(session_id))
        .ok()
        .flatten()?;
    let rec = WatchRecord::parse(&bytes)?;
    (rec.session_id == session_id).then_some(rec)
}

/// The record for `session_id` when it is live at `now_ms` ([`WatchRecord::is_live`]).
pub fn armed(layout: &Layout, session_id: &str, now_ms: i64) -> Option<WatchRecord> {
    read(layout, session_id).filter(|r| r.is_live(now_ms))
}

/// The token in the record for `session_id`, as the watcher compares it
/// (`None`: no readable record).
pub fn token(layout: &Layout, session_id: &str) -> Option<String> {
    read(layout, session_id).map(|r| r.token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(layout: &Layout, sid: &str, text: &str) {
        fs::create_dir_all(layout.idle_watch_dir()).unwrap();
        fs::write(layout.idle_watch(sid), text).unwrap();
    }

    #[test]
    fn a_live_record_is_armed_and_a_dead_or_expired_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path());
        let sid = "11111111-1111-1111-1111-111111111111";
        assert_eq!(armed(&layout, sid, 0), None);
        let me = std::process::id();
        let rec = format!(
            "{{\"schema_version\":1,\"session_id\":\"{sid}\",\"token\":\"{me}.ab\",\"pid\":{me},\"client_pid\":{me},\"armed_at_ms\":5,\"until_ms\":1000}}"
        );
        write(&layout, sid, &rec);
        let got = armed(&layout, sid, 999).expect("armed");
        assert_eq!(got.token, format!("{me}.ab"));
        assert_eq!(token(&layout, sid), Some(format!("{me}.ab")));
        assert_eq!(armed(&layout, sid, 1000), None, "deadline passed");
        // A watcher pid that is gone.
        write(
            &layout,
            sid,
            &rec.replace(&format!("\"pid\":{me}"), "\"pid\":999999999"),
        );
        assert_eq!(armed(&layout, sid, 0), None);
        assert!(
            read(&layout, sid).is_some(),
            "still readable, just not live"
        );
        // Another session's record under a colliding key, and garbage.
        write(&layout, sid, &rec.replace(sid, "other"));
        assert_eq!(read(&layout, sid), None);
        write(&layout, sid, "{not json");
        assert_eq!(read(&layout, sid), None);
    }
}
