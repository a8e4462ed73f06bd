//! `message_status`: did a message this session sent (or received) reach the
//! other agent's model? (the original's later tool, same name and fields.)
//!
//! Answers `delivered` (with `delivered_at` in seconds, `delivered_at_ms`,
//! `via`, `hook_event` for hooks, `recipient_session_id`), `pending` (still in
//! a mailbox of the recipient: `enqueued_at`, `target_session_id`,
//! `target_server_pid`) or `unknown` with a machine-readable `cause` and a
//! `note`. Beyond the original, another session's messages stay private: their
//! status is `unknown` with cause `not_yours`.
//!
//! Invariant defended: read-only (no lock, no drain, no write), so asking never
//! delays a delivery.

use serde_json::{Map, Value};

use super::common::{off_reactor, payload};
use super::schema::{Hints, Kind, Param, ToolSpec};
use super::{ToolCall, ToolFuture};
use crate::delivery_status::{Status, Viewer, status_of};
use crate::server::ServerCtx;
use crate::store::outbox::Sent;
use crate::store::paths::Layout;

pub static SPEC: ToolSpec = ToolSpec {
    name: "message_status",
    description: "Did my message land? Pass a message_id that send_message, reply_to_message or ask_peer returned (or one you received). \
\"delivered\": the recipient's hook, read_my_messages or ask_peer handed it into the agent's context (delivered_at, via, recipient_session_id). \
\"pending\": still queued in the recipient's mailbox; wake it if it must act now. \
\"unknown\": see cause — receiver_without_receipts (an older receiver took it: probably delivered, unverifiable), no_receipt, aged_out (receipts are kept 7 days), unknown_id, not_yours (another session's message stays private). \
Delivered means it entered the agent's context, not that the agent acted on it: use ask_peer for an answer.",
    hints: Hints::READ_ONLY,
    params: &[Param {
        name: "message_id",
        kind: Kind::MessageId,
        required: true,
        description: "The 16-hex message_id a send tool returned.",
    }],
};

pub fn call(ctx: &ServerCtx, call: ToolCall) -> ToolFuture<'_> {
    let layout = ctx.layout.clone();
    let entry = ctx.entry();
    let id = call
        .args()
        .str("message_id")
        .unwrap_or_default()
        .to_string();
    Box::pin(off_reactor("message_status", move || {
        let viewer = Viewer {
            // Current id first, then the ids it had before a /clear.
            session_ids: entry
                .client
                .all_ids()
                .into_iter()
                .map(str::to_string)
                .collect(),
            server_pid: entry.server_pid,
        };
        Ok(answer(&layout, &id, &viewer))
    }))
}

/// The tool's payload for `id` as `viewer` sees it.
pub fn answer(layout: &Layout, id: &str, viewer: &Viewer) -> Value {
    let mut out = payload();
    out.insert("ok".into(), Value::Bool(true));
    out.insert("message_id".into(), Value::from(id));
    match status_of(layout, id, viewer) {
        Status::Delivered { role, receipt } => {
            out.insert("status".into(), Value::from("delivered"));
            out.insert(
                "delivered_at".into(),
                Value::from(receipt.delivered_at_ms / 1000),
            );
            out.insert(
                "delivered_at_ms".into(),
                Value::from(receipt.delivered_at_ms),
            );
            out.insert("via".into(), Value::from(receipt.via));
            if let Some(ev) = receipt.hook_event {
                out.insert("hook_event".into(), Value::from(ev));
            }
            out.insert(
                "recipient_session_id".into(),
                receipt
                    .recipient_session_id
                    .map_or(Value::Null, Value::from),
            );
            out.insert("role".into(), Value::from(role.as_str()));
        }
        Status::Pending { role, sent } => {
            out.insert("status".into(), Value::from("pending"));
            write_sent(&mut out, sent.as_ref());
            out.insert("role".into(), Value::from(role.as_str()));
        }
        Status::Unknown { cause, sent } => {
            out.insert("status".into(), Value::from("unknown"));
            write_sent(&mut out, sent.as_ref());
            out.insert("cause".into(), Value::from(cause.as_str()));
            out.insert("note".into(), Value::from(cause.note()));
        }
    }
    Value::Object(out)
}

fn write_sent(out: &mut Map<String, Value>, sent: Option<&Sent>) {
    let Some(s) = sent else { return };
    out.insert("enqueued_at".into(), Value::from(s.enqueued_at));
    out.insert(
        "target_session_id".into(),
        s.target_session_id.clone().map_or(Value::Null, Value::from),
    );
    out.insert("target_server_pid".into(), Value::from(s.target_server_pid));
}
