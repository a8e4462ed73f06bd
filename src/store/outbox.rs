//! The sender's outbox: one JSON line per message a server sent, appended by
//! the sender as part of the delivery (before the mailbox line becomes
//! visible) to the day log `~/.oxtail/outbox/<day>.jsonl` (module `daylog`).
//! `message_status` reads it to know who sent a message to whom, without
//! reading anyone else's mail. A record in a file of its own,
//! `outbox/<message id>` (the original's later layout, and ours before day
//! logs), is still read.
//!
//! The keys are the original's later versions' (`schema_version`,
//! `message_id`, `enqueued_at` in seconds, `target_session_id`,
//! `target_server_pid`, `from_session_id`); ours adds `from_server_pid`, so
//! an unclaimed sender can still recognise its own mail.
//!
//! Invariants defended: the first record of an id wins; a delivery that failed after its record
//! withdraws it with a tombstone line (`"forgotten":true`), since nothing is
//! rewritten; only 16-hex ids are recorded; a record whose `message_id`
//! differs from the id asked for is no record; retention is the receipts'
//! seven days ([`gc`]).

use std::io;
use std::time::Duration;

use serde_json::{Value, json};

use super::message::Message;
use super::paths::{Layout, is_message_id};
use super::{daylog, file};

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
            from_server_pid: Some(super::paths::own_pid()),
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

/// This process's view of the outbox logs, per store directory.
static INDEX: daylog::Indexes = daylog::Indexes::new();

/// Append the record of `sent`. `Ok(false)` = the id is not a message id
/// (nothing recorded). A second record of an id (a re-delivery) is appended
/// too and never read: the first wins.
pub fn record(layout: &Layout, sent: &Sent) -> io::Result<bool> {
    if !is_message_id(&sent.message_id) {
        return Ok(false);
    }
    append(layout, &sent.to_json())?;
    Ok(true)
}

/// Withdraw the record of `message_id` (a delivery that failed after it): a
/// tombstone line, since day logs are never rewritten.
pub fn forget(layout: &Layout, message_id: &str) {
    if let Some(path) = layout.outbox(message_id) {
        let _ = std::fs::remove_file(path);
    }
    if is_message_id(message_id) {
        let tomb = json!({"schema_version": 1, "message_id": message_id, "forgotten": true});
        let _ = append(layout, &tomb);
    }
}

fn append(layout: &Layout, record: &Value) -> io::Result<()> {
    let mut line = record.to_string().into_bytes();
    line.push(b'\n');
    let day = daylog::day_of_ms(crate::clock::now_ms());
    daylog::append(&layout.outbox_dir(), day, &line)
}

/// The record of `message_id`, if any: in a file of its own (the layout
/// before day logs), else in the day logs of the retention window.
pub fn read(layout: &Layout, message_id: &str) -> Option<Sent> {
    if !is_message_id(message_id) {
        return None;
    }
    if let Some(path) = layout.outbox(message_id)
        && let Ok(Some(bytes)) = file::read_all(&path)
        && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
    {
        return parse(message_id, &v);
    }
    let dir = layout.outbox_dir();
    let v = INDEX.with(
        &dir,
        crate::clock::now_ms(),
        super::receipts::RETENTION,
        |index| index.record(&dir, message_id),
    )?;
    parse(message_id, &v)
}

/// A record of `message_id` of our schema, else `None`.
fn parse(message_id: &str, v: &Value) -> Option<Sent> {
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

/// Remove day logs and record files older than `retention` (see
/// [`file::gc_records`]).
pub fn gc(layout: &Layout, now_ms: i64, retention: Duration) -> usize {
    file::gc_records(&layout.outbox_dir(), now_ms, retention)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::message::NewMessage;

    #[test]
    fn round_trip_first_wins_and_forget() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        let m = Message::build("hi", Some("from-s"), &NewMessage::default());
        let sent = Sent::of(&m, Some("to-s"), 77);
        assert!(record(&l, &sent).unwrap());
        assert!(record(&l, &Sent::of(&m, None, 1)).unwrap());
        assert_eq!(
            read(&l, m.id().unwrap()),
            Some(sent.clone()),
            "the first wins"
        );
        forget(&l, m.id().unwrap());
        assert_eq!(read(&l, m.id().unwrap()), None);
        assert!(
            !record(
                &l,
                &Sent {
                    message_id: "../x".into(),
                    ..sent
                }
            )
            .unwrap()
        );
        // One day log, no file per message.
        let names: Vec<String> = std::fs::read_dir(l.outbox_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].ends_with(".jsonl"));
    }

    #[test]
    fn a_record_in_a_file_of_its_own_is_still_read() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        let m = Message::build("hi", Some("from-s"), &NewMessage::default());
        let sent = Sent::of(&m, Some("to-s"), 77);
        std::fs::create_dir_all(l.outbox_dir()).unwrap();
        std::fs::write(
            l.outbox(m.id().unwrap()).unwrap(),
            sent.to_json().to_string(),
        )
        .unwrap();
        assert_eq!(read(&l, m.id().unwrap()), Some(sent));
    }
}
