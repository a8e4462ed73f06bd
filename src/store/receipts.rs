//! Delivery receipts: one JSON line per message, recorded by the receiving
//! side at the moment the message entered the agent's context — by the hooks
//! after they printed it, by `read_my_messages` and `ask_peer` after their
//! answer reached stdout — in the day log `~/.oxtail/receipts/<day>.jsonl`
//! (module `daylog`; the hooks append to the same file, one line per write).
//! A receipt in a file of its own, `receipts/<message id>` (the original's
//! later layout, and ours before day logs), is still read.
//!
//! The first five keys are the original's later versions' (`schema_version`,
//! `message_id`, `delivered_at` in seconds, `via`, `recipient_session_id`);
//! ours add `delivered_at_ms`, `recipient_server_pid` and, for hooks,
//! `hook_event`.
//!
//! Invariants defended:
//! - a receipt is written only after the delivery happened, never before: a
//!   receipt never claims a delivery that did not happen (the writers order it;
//!   this module only publishes);
//! - the first receipt of an id wins: a writer skips ids already known, and a
//!   reader keeps the earliest line, so a duplicate delivery of the same id
//!   (the documented crash residue) never changes it;
//! - only 16-hex message ids are recorded; a record whose `message_id`
//!   differs from the id asked for is no receipt;
//! - a receipt file of its own that exists but does not parse (a hook of the
//!   earlier layout killed between creating and writing it) still means
//!   "delivered", with the details unknown;
//! - retention is bounded: day logs and receipt files older than [`RETENTION`]
//!   (7 days) are removed by [`gc`]. Seven days is the original's figure, long
//!   enough for any sender to ask about a message it sent this week, and it
//!   bounds the store to a week of traffic.

use std::io;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::paths::{Layout, is_message_id};
use super::{daylog, file};

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

/// This process's view of the receipt logs, per store directory.
static INDEX: daylog::Indexes = daylog::Indexes::new();

/// Publish `receipt` unless one is already known. `Ok(false)` = it was (or
/// the id is not a message id: nothing to record).
pub fn record(layout: &Layout, receipt: &Receipt) -> io::Result<bool> {
    Ok(record_many(layout, std::slice::from_ref(receipt))? == 1)
}

/// Publish every receipt of `receipts` not already known, in one append to
/// the day log of the first one's delivery. Returns how many were written.
pub fn record_many(layout: &Layout, receipts: &[Receipt]) -> io::Result<usize> {
    let Some(first) = receipts.first() else {
        return Ok(0);
    };
    let (lines, n) = with_index(layout, |index| {
        let mut lines = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for r in receipts {
            if is_message_id(&r.message_id)
                && !index.contains(&r.message_id)
                && ids.insert(r.message_id.as_str())
            {
                lines.extend_from_slice(r.to_json().to_string().as_bytes());
                lines.push(b'\n');
            }
        }
        (lines, ids.len())
    });
    let day = daylog::day_of_ms(first.delivered_at_ms);
    daylog::append(&layout.receipts_dir(), day, &lines)?;
    Ok(n)
}

/// Run `f` on this process's index of the receipt logs, brought up to date.
fn with_index<R>(layout: &Layout, f: impl FnOnce(&daylog::Index) -> R) -> R {
    INDEX.with(&layout.receipts_dir(), crate::clock::now_ms(), RETENTION, f)
}

/// The receipt of `message_id`, if one exists: in a receipt file of its own
/// (see the module doc for one that exists but does not parse), else in the
/// day logs of the retention window. A receipt for another id, or of
/// another schema, is no receipt.
pub fn read(layout: &Layout, message_id: &str) -> Option<Receipt> {
    if !is_message_id(message_id) {
        return None;
    }
    if let Some(r) = read_own_file(layout, message_id) {
        return Some(r);
    }
    let v = with_index(layout, |index| {
        index.record(&layout.receipts_dir(), message_id)
    })?;
    Receipt::from_json(message_id, &v, None)
}

/// A receipt in its own file `receipts/<id>`.
fn read_own_file(layout: &Layout, message_id: &str) -> Option<Receipt> {
    let path = layout.receipt(message_id)?;
    let (bytes, meta) = file::read_all_with_meta(&path).ok().flatten()?;
    let mtime = super::activity::mtime_ms(&meta).map(|m| m as i64);
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

/// Remove day logs older than `retention`, receipt files older than it (by
/// mtime) and temp files a crashed writer left (older than an hour).
/// Returns how many files were removed.
pub fn gc(layout: &Layout, now_ms: i64, retention: Duration) -> usize {
    file::gc_records(&layout.receipts_dir(), now_ms, retention)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn receipt(id: &str) -> Receipt {
        Receipt {
            message_id: id.into(),
            delivered_at_ms: crate::clock::now_ms(),
            via: VIA_HOOK.into(),
            recipient_session_id: Some("s1".into()),
            recipient_server_pid: Some(42),
            hook_event: Some("PreToolUse".into()),
        }
    }

    fn log_text(l: &Layout) -> String {
        let day = daylog::day_of_ms(crate::clock::now_ms());
        fs::read_to_string(super::super::paths::day_log(&l.receipts_dir(), day)).unwrap()
    }

    #[test]
    fn round_trip_and_first_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        let r = receipt("0123456789abcdef");
        assert!(record(&l, &r).unwrap());
        let mut later = r.clone();
        later.via = VIA_READ_MY_MESSAGES.into();
        assert!(!record(&l, &later).unwrap(), "the first receipt wins");
        assert_eq!(read(&l, "0123456789abcdef"), Some(r.clone()));
        let text = log_text(&l);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with(&format!(
            r#"{{"schema_version":1,"message_id":"0123456789abcdef","delivered_at":{},"via":"hook","recipient_session_id":"s1""#,
            r.delivered_at_ms / 1000
        )));
        // A batch writes only what is new, once each, in one line per receipt.
        let batch = [
            receipt("0123456789abcdef"),
            receipt("1111111111111111"),
            receipt("1111111111111111"),
        ];
        assert_eq!(record_many(&l, &batch).unwrap(), 1);
        assert_eq!(log_text(&l).lines().count(), 2);
    }

    #[test]
    fn only_message_ids_are_recorded_and_mismatches_are_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        assert!(!record(&l, &receipt("../../etc/passwd")).unwrap());
        assert_eq!(read(&l, "../../etc/passwd"), None);
        fs::create_dir_all(l.receipts_dir()).unwrap();
        let other = receipt("1111111111111111").to_json().to_string();
        fs::write(l.receipts_dir().join("2222222222222222"), other).unwrap();
        assert_eq!(read(&l, "2222222222222222"), None);
    }

    #[test]
    fn a_receipt_file_of_its_own_is_read_even_when_unwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        fs::create_dir_all(l.receipts_dir()).unwrap();
        let r = receipt("5555555555555555");
        fs::write(
            l.receipt("5555555555555555").unwrap(),
            r.to_json().to_string(),
        )
        .unwrap();
        assert_eq!(read(&l, "5555555555555555"), Some(r));
        fs::write(l.receipts_dir().join("3333333333333333"), "").unwrap();
        let r = read(&l, "3333333333333333").unwrap();
        assert_eq!(r.via, VIA_UNKNOWN);
    }

    #[test]
    fn gc_removes_only_old_logs_and_records() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        record(&l, &receipt("4444444444444444")).unwrap();
        fs::write(l.receipts_dir().join("notes.txt"), "x").unwrap();
        let now = crate::clock::now_ms();
        assert_eq!(gc(&l, now, RETENTION), 0);
        assert_eq!(
            gc(
                &l,
                now + RETENTION.as_millis() as i64 + 86_400_000,
                RETENTION
            ),
            1
        );
        assert_eq!(read(&l, "4444444444444444"), None);
        assert!(l.receipts_dir().join("notes.txt").exists());
    }
}
