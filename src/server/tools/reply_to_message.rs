//! `reply_to_message`: answer an inbound message by its id (messaging spec §9.2).
//!
//! Invariants defended: ownership is structural — the id is looked up only in the
//! caller's own received-ledger, so a session can only reply to mail delivered to
//! it, and an unknown or aged-out id fails closed (`message-not-found`) instead of
//! guessing a target; the reply carries `reply_to` = the inbound `request_id`
//! (when there was one) and `source_message_id` = the inbound id. A ledger
//! that cannot be used (a symlink, which is never followed, or a file that
//! cannot be read) is answered as `message-not-found` with a `reason` (beyond
//! the original, which follows the link or throws), never as a bare OS error.

use serde_json::{Map, Value};

use crate::project;
use crate::server::ServerCtx;
use crate::store::error::StoreError;
use crate::store::ledger;
use crate::store::message::NewMessage;
use crate::store::paths::Layout;
use crate::store::registry::Entry;
use crate::wake::{WakeArg, WakeMode, Waker};

use super::common::failure;
use super::schema::{Args, Hints, Param, ToolSpec};
use super::send_message::{
    BODY, NON_EMPTY, WAKE, call_off_reactor, deliver_and_wake, reply_mode, target_failure,
};
use super::{ToolCall, ToolFuture};

pub static SPEC: ToolSpec = ToolSpec {
    name: "reply_to_message",
    hints: Hints::MESSAGES,
    description: "Reply to an inbound peer message by its message_id (as shown by the hook or read_my_messages). \
The id is looked up in this session's own received-ledger, so you can only reply to messages delivered to you; \
the reply goes to the original sender, carries reply_to=request_id when the inbound was an ask_peer (so the asker's wait ends), \
and records source_message_id. Body at most 8192 UTF-8 bytes, verbatim. \
Wake works as in send_message: unset wakes a freshly idle asker when the inbound had a request_id, \"auto\" wakes any idle peer, \"off\" never wakes. \
Fails closed: an unknown or aged-out id returns message-not-found; the session must have a session id (claim_session).",
    params: &[
        Param {
            name: "message_id",
            kind: NON_EMPTY,
            required: true,
            description: "message_id of the inbound message you are answering.",
        },
        Param {
            name: "body",
            kind: BODY,
            required: true,
            description: "Reply body, at most 8192 UTF-8 bytes, delivered verbatim.",
        },
        Param {
            name: "wake",
            kind: WAKE,
            required: false,
            description: "Same as send_message: unset wakes a freshly idle asker of an ask_peer; \"auto\" wakes any idle peer; \"off\" never wakes.",
        },
    ],
};

pub fn call(ctx: &ServerCtx, call: ToolCall) -> ToolFuture<'_> {
    call_off_reactor(ctx, call, "reply_to_message", run)
}

/// The tool body (blocking: run it off the async reactor). `args` are validated.
pub fn run(
    layout: &Layout,
    caller: &Entry,
    waker: &Waker,
    args: &Map<String, Value>,
) -> Result<Value, String> {
    let a = Args(args);
    let message_id = a.str("message_id").unwrap_or_default();
    let body = a.str("body").unwrap_or_default();
    let wake_arg = a.str("wake").and_then(WakeArg::parse);
    if caller.client.id().is_none() {
        return Ok(failure(
            "no-session-id",
            "this session has no session id, so it has no received-ledger to reply from; run claim_session first",
        ));
    }
    // Our ledger, then (beyond the original) the ledgers of our previous ids:
    // mail delivered before a /clear was recorded under the id it was sent to.
    let mut inbound = None;
    for id in caller.client.all_ids() {
        inbound = match ledger::lookup(layout, id, message_id) {
            Ok(found) => found,
            // The original's wording and shape: an isError result.
            Err(e) if e.is_lock_timeout() => return Err(e.to_string()),
            Err(e) => return Ok(ledger_unusable(message_id, &e)),
        };
        if inbound.is_some() {
            break;
        }
    }
    let Some(inbound) = inbound else {
        return Ok(failure(
            "message-not-found",
            format!(
                "no message with id {message_id} was delivered to this session (it may have aged out of the received-ledger or predate it); use send_message with an explicit target instead"
            ),
        ));
    };
    let Some(sender) = inbound.from_session_id().filter(|s| !s.is_empty()) else {
        return Ok(failure(
            "no-reply-target",
            "the inbound message carries no from_session_id (its sender had no session id); use send_message with an explicit target instead",
        ));
    };
    let reply_to = inbound.request_id().filter(|s| !s.is_empty());
    let peer = match project::resolve_target(layout, sender, caller) {
        Ok(peer) => peer,
        Err(err) => {
            let extra = [
                ("in_reply_to_message_id", message_id),
                ("original_from_session_id", sender),
            ];
            let mode = WakeMode::choose(wake_arg, reply_to);
            return Ok(target_failure(&err, mode, &extra));
        }
    };
    let (mode, late) = reply_mode(layout, &peer, wake_arg, reply_to);
    let opts = NewMessage {
        request_id: None,
        reply_to,
        source_message_id: Some(message_id),
        answers_message_id: late.as_ref().and_then(|l| l.message_id.as_deref()),
        to_session_id: project::addressed_id(sender, &peer),
    };
    let done = deliver_and_wake(
        layout,
        caller,
        waker,
        &peer,
        body,
        &opts,
        mode,
        late.as_ref(),
        "reply_to_message",
    )?;
    let mut out = done.payload(Some(message_id), &peer);
    out.insert(
        "correlation".into(),
        Value::from(if reply_to.is_some() {
            "correlated"
        } else {
            "uncorrelated"
        }),
    );
    done.write_tail(&mut out);
    Ok(Value::Object(out))
}

/// `message-not-found` with a `reason` for a received-ledger that could not be
/// used: `ledger-is-symlink` (never followed; the next delivery to this
/// session replaces the link with a regular file) or `ledger-unreadable`.
fn ledger_unusable(message_id: &str, e: &StoreError) -> Value {
    let (reason, why) = if e.is_symlink() {
        (
            "ledger-is-symlink",
            format!(
                "this session's received-ledger is a symlink, which oxtail never follows ({e}); the next message delivered to this session replaces it with a regular file"
            ),
        )
    } else {
        (
            "ledger-unreadable",
            format!("this session's received-ledger could not be read ({e})"),
        )
    };
    let mut out = failure(
        "message-not-found",
        format!(
            "message {message_id} cannot be looked up: {why}; use send_message with an explicit target instead"
        ),
    );
    out["reason"] = Value::from(reason);
    out
}
