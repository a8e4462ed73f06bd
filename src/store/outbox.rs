//! The sender's outbox: `~/.oxtail/outbox/<message id>`, one JSON object per
//! message a server sent, written once by the sender as part of the delivery
//! (before the mailbox line becomes visible). `message_status` reads it to
//! know who sent a message to whom, without reading anyone else's mail.
//!
//! The layout and keys are the original's later versions'
//! (`schema_version`, `message_id`, `enqueued_at` in seconds,
//! `target_session_id`, `target_server_pid`, `from_session_id`); ours adds
//! `from_server_pid`, so an unclaimed sender can still recognise its own mail.
//!
//! Invariants defended: write-once (the first record of an id wins); only
//! 16-hex ids become file names; a record whose `message_id` differs from its
//! name is no record; retention is the receipts' seven days ([`gc`]).

use std::io;
use std::time::Duration;

use serde_json::{Value, json};

use super::file;
use super::message::Message;
use super::paths::Layout;

/// One outbox record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message_id: String,
    pub enqueued_at: i64,
    pub target_session_id: Option<String>,
    pub target_server_pid: u32,
    pub from_session_id: Option<String>,
    pub from_server_pid: Option<u32>,
}

impl Sent {
    /// The record of `msg`, sent by this process to `target_pid`.
    pub fn of(msg: &Message, target_session_id: Option<&str>, target_pid: u32) -> Sent {
        Sent {
            message_id: msg.id().unwrap_or_default().to_string(),
            enqueued_at: msg.enqueued_at().unwrap_or(0.0) as i64,
            target_session_id: target_session_id.map(str::to_string),
            target_server_pid: target_pid,
            from_session_id: msg.from_session_id().map(str::to_string),
            from_server_pid: Some(std::process::id()),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "schema_version": 1,
            "message_id": self.message_id,
            "enqueued_at": self.enqueued_at,
            "target_session_id": self.target_session_id,
            "target_server_pid": self.target_server_pid,
            "from_session_id": self.from_session_id,
            "from_server_pid": self.from_server_pid,
        })
    }
}

/// Publish `sent` unless a record of its id exists. `Ok(false)` = it did, or
/// the id is not a message id.
pub fn record(layout: &Layout, sent: &Sent) -> io::Result<bool> {
    let Some(path) = layout.outbox(&sent.message_id) else {
        return Ok(false);
    };
    let text = sent.to_json().to_string();
    file::create_record(&layout.outbox_dir(), &path, text.as_bytes())
}

/// Remove the record of `message_id` (a delivery that failed after it).
pub fn forget(layout: &Layout, message_id: &str) {
    if let Some(path) = layout.outbox(message_id) {
        let _ = std::fs::remove_file(path);
    }
}

/// The record of `message_id`, if any.
pub fn read(layout: &Layout, message_id: &str) -> Option<Sent> {
    let path = layout.outbox(message_id)?;
    let bytes = file::read_all(&path).ok().flatten()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    if v.get("schema_version").and_then(Value::as_i64) != Some(1)
        || v.get("message_id").and_then(Value::as_str) != Some(message_id)
    {
        return None;
    }
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let pid = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
    };
    Some(Sent {
        message_id: message_id.to_string(),
        enqueued_at: v.get("enqueued_at").and_then(Value::as_i64).unwrap_or(0),
        target_session_id: text("target_session_id"),
        target_server_pid: pid("target_server_pid")?,
        from_session_id: text("from_session_id"),
        from_server_pid: pid("from_server_pid"),
    })
}

/// Remove records older than `retention` (see [`file::gc_records`]).
pub fn gc(layout: &Layout, now_ms: i64, retention: Duration) -> usize {
    file::gc_records(&layout.outbox_dir(), now_ms, retention)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::message::NewMessage;

    #[test]
    fn round_trip_write_once_and_forget() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        let m = Message::build("hi", Some("from-s"), &NewMessage::default());
        let sent = Sent::of(&m, Some("to-s"), 77);
        assert!(record(&l, &sent).unwrap());
        assert!(!record(&l, &Sent::of(&m, None, 1)).unwrap());
        assert_eq!(read(&l, m.id().unwrap()), Some(sent));
        forget(&l, m.id().unwrap());
        assert_eq!(read(&l, m.id().unwrap()), None);
    }
}
