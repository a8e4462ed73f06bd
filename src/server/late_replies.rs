//! The asker's own check for late replies to its pending asks that no
//! replier announced (beyond the original, where only the replier's server
//! consumes the record, so a 0.14 replier never pulls the asker back): every
//! [`EVERY`], while this session has pending asks, its received-ledger (where
//! every delivery is recorded before the mail is visible, by Node peers too)
//! is searched for a reply with `reply_to` = the ask's `request_id`; such an
//! ask is consumed and, unless the reply is already in the agent's context
//! (its receipt exists), this session is woken the best way it can be: its
//! idle watcher has the mail already, a busy agent gets it from its hooks,
//! else a lenient tmux wake of its own pane.
//!
//! Invariant defended: cheap when there is nothing to do (a directory listing
//! per tick; the ledger is read only when its size or mtime changed); it
//! never moves mail and a replier that consumed the record first wins
//! (`pending_ask::consume` has one winner), so no ask wakes twice.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use serde_json::json;

use super::ServerCtx;
use crate::store::pending_ask;
use crate::store::{ledger, receipts};
use crate::trace;
use crate::wake::{self, WakePeer, Waker};

/// How often the check runs.
pub const EVERY: Duration = Duration::from_secs(2);

/// What the previous tick saw of the ledger (size, mtime ns).
#[derive(Debug, Default)]
pub struct Seen {
    ledger: Option<(u64, i64, i64)>,
}

/// One check (blocking).
pub fn tick(ctx: &ServerCtx, waker: &Waker, seen: &mut Seen) {
    let Some(sid) = ctx.session_id() else { return };
    let layout = &ctx.layout;
    let ttl = pending_ask::ttl_ms();
    let asks = pending_ask::pending_for(layout, &sid, ttl);
    if asks.is_empty() {
        seen.ledger = None;
        return;
    }
    let sig = std::fs::metadata(layout.ledger(&sid))
        .ok()
        .map(|m| (m.len(), m.mtime(), m.mtime_nsec()));
    if sig.is_none() || sig == seen.ledger {
        return;
    }
    seen.ledger = sig;
    for ask in asks {
        let Some(reply_id) = ledger::find_reply_to(layout, &sid, &ask.request_id) else {
            continue;
        };
        if pending_ask::consume(layout, &sid, &ask.request_id, ttl).is_none() {
            continue;
        }
        trace::event(
            "pending_ask_consumed",
            json!({"session_id": sid, "request_id": ask.request_id, "by": "asker", "reply_id": reply_id}),
        );
        if receipts::read(layout, &reply_id).is_some() {
            continue;
        }
        let me = WakePeer::from(&ctx.entry());
        let status = waker.lenient(&me);
        wake::trace_outcome(
            "late_reply_self",
            status,
            Some(&sid),
            me.client_type.as_str(),
        );
    }
}
