//! Delivery receipts: `~/.oxtail/receipts/<message id>`, one JSON object per
//! file, written by the receiving side at the moment a message entered the
//! agent's context — by the hooks after they printed it, by `read_my_messages`
//! and `ask_peer` after their answer reached stdout.
//!
//! The layout and the first five keys are the original's later versions'
//! (`schema_version`, `message_id`, `delivered_at` in seconds, `via`,
//! `recipient_session_id`), so a later Node peer reads our receipts and we read
//! theirs; ours add `delivered_at_ms`, `recipient_server_pid` and, for hooks,
//! `hook_event`.
//!
//! Invariants defended:
//! - a receipt is written only after the delivery happened, never before: a
//!   receipt never claims a delivery that did not happen (the writers order it;
//!   this module only publishes);
//! - write-once: the first receipt of an id wins (link(2) publish in Rust,
//!   noclobber in the hooks); a duplicate delivery of the same id (the
//!   documented crash residue) never rewrites it;
//! - only 16-hex message ids become file names; a record whose `message_id`
//!   differs from its file name is ignored;
//! - a receipt file that exists but does not parse (a hook killed between
//!   creating and writing it — it creates only after printing) still means
//!   "delivered", with the details unknown;
//! - retention is bounded: receipts older than [`RETENTION`] (7 days, by
//!   mtime) are removed by [`gc`]. Seven days is the original's figure, long
//!   enough for any sender to ask about a message it sent this week, and it
//!   bounds the directory to a week of traffic.

use std::fs;
use std::io;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::file;
use super::paths::Layout;

/// How long receipts (and outbox records) are kept.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// `via` of a hook delivery (PreToolUse, Stop, or the idle watcher).
pub const VIA_HOOK: &str = "hook";
/// `via` of a `read_my_messages` answer.
pub const VIA_READ_MY_MESSAGES: &str = "read_my_messages";
/// `via` of a reply `ask_peer` returned to its caller.
pub const VIA_ASK_PEER_REPLY: &str = "ask_peer_reply";
/// `via` of a receipt file that exists but could not be read.
pub const VIA_UNKNOWN: &str = "unknown";

/// One receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: String,
    /// When the message entered the agent's context (ms since the epoch; a
    /// hook on bash < 5 knows only the second).
    pub delivered_at_ms: i64,
    /// [`VIA_HOOK`], [`VIA_READ_MY_MESSAGES`], [`VIA_ASK_PEER_REPLY`], or
    /// whatever another writer put there.
    pub via: String,
    /// The receiving session (the drainer's current id), when known.
    pub recipient_session_id: Option<String>,
    /// The receiving server, when the writer knew it.
    pub recipient_server_pid: Option<u32>,
    /// `PreToolUse`, `Stop`, ... for hook deliveries.
    pub hook_event: Option<String>,
}

impl Receipt {
    /// The JSON object written to disk (the original's keys first).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("schema_version".into(), json!(1));
        m.insert("message_id".into(), json!(self.message_id));
        m.insert("delivered_at".into(), json!(self.delivered_at_ms / 1000));
        m.insert("via".into(), json!(self.via));
        m.insert(
            "recipient_session_id".into(),
            json!(self.recipient_session_id),
        );
        m.insert("delivered_at_ms".into(), json!(self.delivered_at_ms));
        if let Some(pid) = self.recipient_server_pid {
            m.insert("recipient_server_pid".into(), json!(pid));
        }
        if let Some(ev) = &self.hook_event {
            m.insert("hook_event".into(), json!(ev));
        }
        Value::Object(m)
    }

    fn from_json(id: &str, v: &Value, mtime_ms: Option<i64>) -> Option<Receipt> {
        if v.get("schema_version").and_then(Value::as_i64) != Some(1)
            || v.get("message_id").and_then(Value::as_str) != Some(id)
        {
            return None;
        }
        let ms = v
            .get("delivered_at_ms")
            .and_then(Value::as_i64)
            .or_else(|| {
                v.get("delivered_at")
                    .and_then(Value::as_i64)
                    .map(|s| s * 1000)
            })
            .or(mtime_ms)
            .unwrap_or(0);
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Receipt {
            message_id: id.to_string(),
            delivered_at_ms: ms,
            via: text("via").unwrap_or_else(|| VIA_UNKNOWN.to_string()),
            recipient_session_id: text("recipient_session_id").filter(|s| !s.is_empty()),
            recipient_server_pid: v
                .get("recipient_server_pid")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok()),
            hook_event: text("hook_event"),
        })
    }
}

/// Publish `receipt` unless one already exists. `Ok(false)` = it did (or the
/// id is not a message id: nothing to record).
pub fn record(layout: &Layout, receipt: &Receipt) -> io::Result<bool> {
    let Some(path) = layout.receipt(&receipt.message_id) else {
        return Ok(false);
    };
    let text = receipt.to_json().to_string();
    file::create_record(&layout.receipts_dir(), &path, text.as_bytes())
}

/// The receipt of `message_id`, if one exists (see the module doc for a file
/// that exists but does not parse). A receipt for another id, or of another
/// schema, is no receipt.
pub fn read(layout: &Layout, message_id: &str) -> Option<Receipt> {
    let path = layout.receipt(message_id)?;
    let meta = fs::symlink_metadata(&path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mtime = super::activity::mtime_ms(&meta).map(|m| m as i64);
    let bytes = file::read_all(&path).ok().flatten()?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => Receipt::from_json(message_id, &v, mtime),
        // Created after the print, killed before the write: delivered.
        Err(_) => Some(Receipt {
            message_id: message_id.to_string(),
            delivered_at_ms: mtime.unwrap_or(0),
            via: VIA_UNKNOWN.to_string(),
            recipient_session_id: None,
            recipient_server_pid: None,
            hook_event: None,
        }),
    }
}

/// Remove receipts older than `retention` (by mtime) and temp files a crashed
/// writer left (older than an hour). Returns how many files were removed.
pub fn gc(layout: &Layout, now_ms: i64, retention: Duration) -> usize {
    file::gc_records(&layout.receipts_dir(), now_ms, retention)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(id: &str) -> Receipt {
        Receipt {
            message_id: id.into(),
            delivered_at_ms: 1_767_225_600_123,
            via: VIA_HOOK.into(),
            recipient_session_id: Some("s1".into()),
            recipient_server_pid: Some(42),
            hook_event: Some("PreToolUse".into()),
        }
    }

    #[test]
    fn round_trip_and_write_once() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        let r = receipt("0123456789abcdef");
        assert!(record(&l, &r).unwrap());
        let mut later = r.clone();
        later.via = VIA_READ_MY_MESSAGES.into();
        assert!(!record(&l, &later).unwrap(), "the first receipt wins");
        assert_eq!(read(&l, "0123456789abcdef"), Some(r));
        let text = fs::read_to_string(l.receipt("0123456789abcdef").unwrap()).unwrap();
        assert!(text.starts_with(
            r#"{"schema_version":1,"message_id":"0123456789abcdef","delivered_at":1767225600,"via":"hook","recipient_session_id":"s1""#
        ));
    }

    #[test]
    fn only_message_ids_become_files_and_mismatches_are_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        assert!(!record(&l, &receipt("../../etc/passwd")).unwrap());
        assert!(!tmp.path().join(".oxtail/receipts").exists());
        fs::create_dir_all(l.receipts_dir()).unwrap();
        let other = receipt("1111111111111111").to_json().to_string();
        fs::write(l.receipts_dir().join("2222222222222222"), other).unwrap();
        assert_eq!(read(&l, "2222222222222222"), None);
    }

    #[test]
    fn a_created_but_unwritten_receipt_still_means_delivered() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        fs::create_dir_all(l.receipts_dir()).unwrap();
        fs::write(l.receipts_dir().join("3333333333333333"), "").unwrap();
        let r = read(&l, "3333333333333333").unwrap();
        assert_eq!(r.via, VIA_UNKNOWN);
    }

    #[test]
    fn gc_removes_only_old_records() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        record(&l, &receipt("4444444444444444")).unwrap();
        fs::write(l.receipts_dir().join("notes.txt"), "x").unwrap();
        let now = crate::clock::now_ms();
        assert_eq!(gc(&l, now, RETENTION), 0);
        assert_eq!(
            gc(&l, now + RETENTION.as_millis() as i64 + 1000, RETENTION),
            1
        );
        assert_eq!(read(&l, "4444444444444444"), None);
        assert!(l.receipts_dir().join("notes.txt").exists());
    }
}
