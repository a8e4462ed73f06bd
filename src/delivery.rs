//! The delivery primitive (messaging.md §7): record in the receiver's ledger
//! and (for a fresh message) in the sender's outbox, then append to the target
//! mailbox.
//!
//! Invariant defended: the ledger record is written strictly before the
//! mailbox line becomes visible, so every id a hook or drain can show a
//! receiver already resolves in that receiver's ledger. Delivery beats the
//! reply handle: a ledger failure is traced (`received_ledger_write_failed`)
//! and ignored; only a failed append fails the delivery.

use serde_json::json;

use crate::store::error::StoreResult;
use crate::store::ledger;
use crate::store::mailbox;
use crate::store::message::{Message, NewMessage};
use crate::store::outbox;
use crate::store::paths::Layout;
use crate::trace;

/// Build a fresh message and deliver it to `target_pid`, recording it first in
/// `receiver_session_id`'s ledger when that id is non-empty.
pub fn deliver(
    layout: &Layout,
    receiver_session_id: Option<&str>,
    target_pid: u32,
    body: &str,
    from_session_id: Option<&str>,
    opts: &NewMessage<'_>,
) -> StoreResult<Message> {
    let msg = Message::build(body, from_session_id, opts);
    msg.to_line()?;
    // The sender's record, before the line is visible (so a message the
    // receiver can already see always has one); best effort, like the ledger.
    let sent = outbox::Sent::of(&msg, receiver_session_id, target_pid);
    if let Err(e) = outbox::record(layout, &sent) {
        trace::event(
            "outbox_write_failed",
            json!({"message_id": msg.id(), "error": e.to_string()}),
        );
    }
    if let Err(e) = deliver_existing(layout, receiver_session_id, target_pid, &msg) {
        outbox::forget(layout, &sent.message_id);
        return Err(e);
    }
    Ok(msg)
}

/// Deliver an existing message (same id): the ledger keeps the object as held
/// (unknown keys included), the mailbox gets the §5.10 re-serialised line.
/// A record that cannot be serialised fails before anything is written.
pub fn deliver_existing(
    layout: &Layout,
    receiver_session_id: Option<&str>,
    target_pid: u32,
    msg: &Message,
) -> StoreResult<()> {
    msg.to_line()?;
    if let Some(receiver) = receiver_session_id.filter(|s| !s.is_empty())
        && let Err(e) = ledger::record(layout, receiver, msg)
    {
        trace::event(
            "received_ledger_write_failed",
            json!({"message_id": msg.id(), "error": e.to_string()}),
        );
    }
    mailbox::requeue(layout, target_pid, msg)
}
