//! The receiving side of a delivery: what happens once a server has taken
//! messages out of its mailboxes to hand them to its agent in a tool answer
//! (`read_my_messages`, a reply `ask_peer` consumed).
//!
//! Invariants defended:
//! - the receipt of each handed message is written only when the answer
//!   carrying it reached stdout ([`Handoff::finish`] with `true`), so a receipt
//!   never claims a delivery that did not happen;
//! - if the answer could not be written (`false`), the messages go back to the
//!   front of the receiver's own mailbox with their ids: nothing is lost, a
//!   duplicate (same id, so the agent can dedupe) is the worst case.

use serde_json::json;

use crate::store::mailbox;
use crate::store::message::Message;
use crate::store::paths::Layout;
use crate::store::receipts::{self, Receipt};
use crate::store::registry::Entry;
use crate::trace;

/// Messages taken out of the mailboxes of `pid` for one answer.
pub struct Handoff {
    pub layout: Layout,
    /// The receiving server (where undelivered messages go back).
    pub pid: u32,
    /// The receiving session's current id (the receipt's recipient).
    pub session_id: Option<String>,
    /// `receipts::VIA_*`.
    pub via: &'static str,
    pub messages: Vec<Message>,
}

impl Handoff {
    /// Nothing handed over yet, for `caller` (fill `messages` and `via`).
    pub fn none(layout: &Layout, caller: &Entry) -> Handoff {
        Handoff {
            layout: layout.clone(),
            pid: caller.server_pid,
            session_id: caller.client.id().map(str::to_string),
            via: receipts::VIA_READ_MY_MESSAGES,
            messages: Vec::new(),
        }
    }

    /// Settle the hand-off: receipts when `delivered`, requeue otherwise.
    pub fn finish(self, delivered: bool) {
        if self.messages.is_empty() {
            return;
        }
        if delivered {
            let now = crate::clock::now_ms();
            let all: Vec<Receipt> = self
                .messages
                .iter()
                .filter_map(Message::id)
                .map(|id| Receipt {
                    message_id: id.to_string(),
                    delivered_at_ms: now,
                    via: self.via.to_string(),
                    recipient_session_id: self.session_id.clone(),
                    recipient_server_pid: Some(self.pid),
                    hook_event: None,
                })
                .collect();
            if let Err(e) = receipts::record_many(&self.layout, &all) {
                let ids: Vec<&str> = all.iter().map(|r| r.message_id.as_str()).collect();
                trace::event(
                    "receipt_write_failed",
                    json!({"message_ids": ids, "error": e.to_string()}),
                );
            }
            return;
        }
        let ids: Vec<&str> = self.messages.iter().filter_map(Message::id).collect();
        match mailbox::requeue_front(&self.layout, self.pid, &self.messages) {
            Ok(()) => trace::event("handoff_requeued", json!({"message_ids": ids})),
            Err(e) => trace::event(
                "handoff_requeue_failed",
                json!({"message_ids": ids, "error": e.to_string()}),
            ),
        }
    }
}
