//! Where a message is now, as far as its sender or its recipient may know:
//! delivered (a receipt), pending (still in a mailbox of the recipient), or
//! unknown with a cause. `message_status` answers with it; `oxtail status`
//! can use it for its message log.
//!
//! Invariants defended:
//! - privacy: only the session that sent a message (its outbox record names
//!   the viewer) or the session it was delivered to (the viewer's own ledger,
//!   or the receipt's recipient) learns anything beyond `unknown`/`not_yours`;
//! - never `pending` forever: a message is pending only while its line is in a
//!   mailbox of the recipient; once it left without a receipt (a 0.14 receiver
//!   took it) the answer is `unknown` with that cause;
//! - read-only and lock-free: mailboxes are peeked, never drained or locked
//!   (a racing drain makes the answer stale at once; the next call sees the
//!   receipt that drain wrote).

use crate::store::ledger;
use crate::store::mailbox;
use crate::store::outbox::{self, Sent};
use crate::store::paths::Layout;
use crate::store::receipts::{self, Receipt};
use crate::store::registry;

/// Who asks: a session's current id, its previous ids, and its server.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub session_ids: Vec<String>,
    pub server_pid: u32,
}

impl Viewer {
    fn is(&self, sid: Option<&str>) -> bool {
        sid.is_some_and(|s| self.session_ids.iter().any(|v| v == s))
    }
}

/// The viewer's relation to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Sender,
    Recipient,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Recipient => "recipient",
        }
    }
}

/// Why a status is `unknown` (the `cause` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Neither sent by nor delivered to the viewer.
    NotYours,
    /// No record at all: mistyped, sent from elsewhere, or older than the
    /// seven-day retention.
    UnknownId,
    /// Left the recipient's mailbox without a receipt, and the recipient's
    /// server does not write receipts (oxtail 0.14 and earlier).
    ReceiverWithoutReceipts,
    /// Left the mailbox without a receipt although the receiver writes them
    /// (drained by hooks of an older version, or by a receiver that is gone).
    NoReceipt,
    /// Delivered to the viewer more than the retention ago: its receipt is gone.
    AgedOut,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::NotYours => "not_yours",
            Cause::UnknownId => "unknown_id",
            Cause::ReceiverWithoutReceipts => "receiver_without_receipts",
            Cause::NoReceipt => "no_receipt",
            Cause::AgedOut => "aged_out",
        }
    }

    /// One line for the agent.
    pub fn note(self) -> &'static str {
        match self {
            Cause::NotYours => {
                "this message was neither sent by nor delivered to this session, so its status is private"
            }
            Cause::UnknownId => {
                "no record of this id: mistyped, not sent from this machine, or older than the 7-day retention"
            }
            Cause::ReceiverWithoutReceipts => {
                "it left the recipient's mailbox, but the recipient runs a version without delivery receipts (oxtail 0.14): probably delivered, cannot be verified"
            }
            Cause::NoReceipt => {
                "it left the recipient's mailbox without a receipt (read by hooks of an older version, or the recipient went away with it): cannot be verified"
            }
            Cause::AgedOut => {
                "delivered to this session longer ago than the 7-day receipt retention"
            }
        }
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Delivered { role: Role, receipt: Receipt },
    Pending { role: Role, sent: Option<Sent> },
    Unknown { cause: Cause, sent: Option<Sent> },
}

/// The status of `message_id` for `viewer`.
pub fn status_of(layout: &Layout, message_id: &str, viewer: &Viewer) -> Status {
    let sent = outbox::read(layout, message_id);
    let receipt = receipts::read(layout, message_id);
    let own_ledger = viewer
        .session_ids
        .iter()
        .find_map(|sid| ledger::lookup(layout, sid, message_id).ok().flatten());

    let sender = sent.as_ref().is_some_and(|s| {
        viewer.is(s.from_session_id.as_deref())
            || (s.from_session_id.is_none() && s.from_server_pid == Some(viewer.server_pid))
    });
    let recipient = own_ledger.is_some()
        || receipt
            .as_ref()
            .is_some_and(|r| viewer.is(r.recipient_session_id.as_deref()));
    let role = match (sender, recipient) {
        (true, _) => Role::Sender,
        (false, true) => Role::Recipient,
        (false, false) => {
            let cause = if sent.is_some() || receipt.is_some() {
                Cause::NotYours
            } else {
                Cause::UnknownId
            };
            return Status::Unknown { cause, sent: None };
        }
    };
    if let Some(receipt) = receipt {
        return Status::Delivered { role, receipt };
    }
    let boxes = match (role, &sent) {
        (Role::Sender, Some(s)) => recipient_boxes(layout, s),
        _ => own_boxes(layout, viewer),
    };
    if boxes
        .iter()
        .any(|&pid| mailbox::contains_id(layout, pid, message_id))
    {
        return Status::Pending { role, sent };
    }
    let cause = match (role, &sent) {
        (Role::Sender, Some(s)) => match registry::read_one(layout, s.target_server_pid) {
            Some(e) if !e.writes_receipts() => Cause::ReceiverWithoutReceipts,
            _ => Cause::NoReceipt,
        },
        _ => {
            let old = own_ledger
                .as_ref()
                .and_then(|m| m.enqueued_at())
                .is_some_and(|at| {
                    let age_ms = crate::clock::now_ms() - (at as i64) * 1000;
                    age_ms > receipts::RETENTION.as_millis() as i64
                });
            if old {
                Cause::AgedOut
            } else {
                Cause::NoReceipt
            }
        }
    };
    Status::Unknown { cause, sent }
}

/// The recipient's mailboxes as the sender knows them: the pid it sent to,
/// and every registered server of the recipient session now.
fn recipient_boxes(layout: &Layout, s: &Sent) -> Vec<u32> {
    let mut pids = vec![s.target_server_pid];
    if let Some(sid) = &s.target_session_id {
        for pid in registry::session_pids_for_id(layout, sid) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The viewer's own mailboxes: its pid and every server of its session ids.
fn own_boxes(layout: &Layout, viewer: &Viewer) -> Vec<u32> {
    let mut pids = vec![viewer.server_pid];
    for sid in &viewer.session_ids {
        for pid in registry::session_pids_for_id(layout, sid) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
    pids
}
