//! `send_message`: fire-and-forget delivery to a peer in the same project
//! (messaging spec §9.1), with the optional wake (§10.3).
//!
//! Invariants defended: the message is recorded in the receiver's ledger before
//! it becomes visible in the mailbox (via [`crate::delivery`]); a wake never
//! affects delivery and never turns into a tool error; a resolution failure
//! delivers nothing. The messaging pieces shared with `reply_to_message` and
//! `ask_peer` live here: the body/target/wake parameter kinds, the off-reactor
//! entry point, the resolution-failure payload and the "deliver, then wake,
//! then trace" step.

use serde_json::{Map, Value, json};

use crate::delivery;
use crate::project::{self, TargetError};
use crate::store::activity::now_ms;
use crate::store::message::{Message, NewMessage};
use crate::store::paths::Layout;
use crate::store::pending_ask::{self, PendingAsk};
use crate::store::registry::Entry;
use crate::trace;
use crate::wake::outlook::{self, Outlook};
use crate::wake::{self, WakeArg, WakeMode, WakePath, WakePeer, WakeStatus, Waker};

use super::common::{off_reactor, payload};
use super::schema::{Args, Hints, Kind, Param, ToolSpec};
use super::{ToolCall, ToolFuture};
use crate::server::ServerCtx;

/// Body cap at the tool boundary, in UTF-8 bytes.
pub const MAX_BODY_BYTES: usize = 8192;

/// A message body: non-empty, at most [`MAX_BODY_BYTES`] UTF-8 bytes.
pub const BODY: Kind = Kind::Str {
    min_len: Some(1),
    max_len: None,
    max_utf8_bytes: Some(MAX_BODY_BYTES),
    safe_id: false,
};

/// A non-empty string (targets, ids, request ids).
pub const NON_EMPTY: Kind = Kind::Str {
    min_len: Some(1),
    max_len: None,
    max_utf8_bytes: None,
    safe_id: false,
};

/// `"off"` | `"auto"`.
pub const WAKE: Kind = Kind::Enum(&["off", "auto"]);

/// The `target` parameter shared with `ask_peer`.
pub const TARGET_PARAM: Param = Param {
    name: "target",
    kind: NON_EMPTY,
    required: true,
    description: "tmux session name OR session id (UUID) of the peer.",
};

/// The signature of a messaging tool body ([`run`], `reply_to_message::run`).
pub type MessagingBody = fn(&Layout, &Entry, &Waker, &Map<String, Value>) -> Result<Value, String>;

/// The entry point of a blocking messaging tool: `body` runs off the reactor
/// with this server's layout, its entry now, and the process's waker.
pub fn call_off_reactor<'a>(
    ctx: &'a ServerCtx,
    call: ToolCall,
    tool: &'static str,
    body: MessagingBody,
) -> ToolFuture<'a> {
    let (layout, caller, args) = (ctx.layout.clone(), ctx.entry(), call.args);
    Box::pin(off_reactor(tool, move || {
        body(&layout, &caller, wake::global(), &args)
    }))
}

pub static SPEC: ToolSpec = ToolSpec {
    name: "send_message",
    hints: Hints::MESSAGES,
    description: "Fire-and-forget: queue a message for a peer agent in the same project root and return at once. \
Target is the peer's tmux session name or its session id (UUID); peers in other projects are refused. \
The peer sees it mid-turn or at turn end (Claude Code hooks) or by calling read_my_messages. \
Body is verbatim, at most 8192 UTF-8 bytes. \
An idle Claude Code peer with an armed idle watcher wakes on the message itself (wake_path:\"watcher\"); otherwise a plain message does not wake an idle peer, and wake:\"auto\" types a short prompt into the peer's verified tmux pane unless it is mid-turn. \
When answering an ask_peer, set reply_to to the inbound request_id: with wake unset that also wakes a freshly idle requester (strictly gated, once per reply); a reply to an ask that already timed out (still pending) is marked as its answer and wakes the requester (wake_reason:\"late_reply_to_pending\"); wake:\"off\" suppresses either. \
The result carries message_id, wake_path (watcher, codex_queue, hooks, tmux or none), and wake_status (fired once the receipt confirms it, else fired_unconfirmed; plus wake_reason on the reply paths) when a wake was considered. \
To block for an answer use ask_peer; to answer a message you received, reply_to_message is simpler.",
    params: &[
        TARGET_PARAM,
        Param {
            name: "body",
            kind: BODY,
            required: true,
            description: "Message body, at most 8192 UTF-8 bytes, delivered verbatim.",
        },
        Param {
            name: "wake",
            kind: WAKE,
            required: false,
            description: "Unset: no wake for a plain message; a reply (reply_to set) wakes a freshly idle requester. \"off\": never wake. \"auto\": wake an idle peer via its verified tmux pane, skipped if it is mid-turn.",
        },
        Param {
            name: "reply_to",
            kind: NON_EMPTY,
            required: false,
            description: "The ask_peer request_id this message answers.",
        },
        Param {
            name: "source_message_id",
            kind: NON_EMPTY,
            required: false,
            description: "The message_id this message derives from (provenance only, not a trust boundary).",
        },
    ],
};

/// The wake extras of a resolution failure (§9.1): `skipped_no_target` only for
/// `target-not-found` when a wake was intended; `wake_reason` whenever the strict
/// reply path was chosen (whatever the error).
pub fn resolve_error_wake(
    err: &TargetError,
    mode: WakeMode<'_>,
) -> (Option<WakeStatus>, Option<&'static str>) {
    let status = (mode.intended() && matches!(err, TargetError::NotFound))
        .then_some(WakeStatus::SkippedNoTarget);
    (status, mode.reason())
}

/// The payload of a resolution failure: `ok:false`, `error` (and the ambiguity
/// details), then `extra` in order, then the wake fields of
/// [`resolve_error_wake`].
pub fn target_failure(err: &TargetError, mode: WakeMode<'_>, extra: &[(&str, &str)]) -> Value {
    let mut out = payload();
    err.write_into(&mut out);
    for (key, value) in extra {
        out.insert((*key).into(), Value::from(*value));
    }
    let (status, reason) = resolve_error_wake(err, mode);
    write_wake(&mut out, status, reason);
    Value::Object(out)
}

/// Outcome of [`deliver_and_wake`].
pub struct Delivered {
    pub message: Message,
    pub wake_status: Option<WakeStatus>,
    pub wake_reason: Option<&'static str>,
    /// What brings the message into the receiver's context.
    pub wake_path: WakePath,
    /// What will deliver it, when no wake happened ([`outlook`]).
    pub outlook: Option<Outlook>,
}

/// The wake mode of a message to `peer` (`reply_to` set when it answers an
/// ask): a reply that consumes the requester's pending ask
/// ([`pending_ask::consume`], one winner) is a late reply, woken leniently
/// (`late_reply_to_pending`, or `_suppressed` with `wake:"off"`) and marked
/// as the answer to that question; anything else is [`WakeMode::choose`].
pub fn reply_mode<'a>(
    layout: &Layout,
    peer: &Entry,
    wake: Option<WakeArg>,
    reply_to: Option<&'a str>,
) -> (WakeMode<'a>, Option<PendingAsk>) {
    let late = reply_to
        .filter(|r| !r.is_empty())
        .zip(peer.client.id())
        .and_then(|(rt, sid)| pending_ask::consume(layout, sid, rt, pending_ask::ttl_ms()));
    match late {
        Some(ask) => {
            trace::event(
                "pending_ask_consumed",
                json!({"session_id": ask.session_id, "request_id": ask.request_id, "by": "replier"}),
            );
            (WakeMode::late(wake), Some(ask))
        }
        None => (WakeMode::choose(wake, reply_to), None),
    }
}

/// Deliver `body` to `peer` (ledger first, then mailbox), run the chosen wake,
/// confirm it by the message's receipt ([`Waker::confirm`]) and trace its
/// `wake_outcome` (`via` = `reply_default` on the strict path, else
/// `plain_via`). A delivery failure is the error text of the tool call; a
/// pending ask consumed for it (`late`) is then put back.
#[allow(clippy::too_many_arguments)]
pub fn deliver_and_wake(
    layout: &Layout,
    caller: &Entry,
    waker: &Waker,
    peer: &Entry,
    body: &str,
    opts: &NewMessage<'_>,
    mode: WakeMode<'_>,
    late: Option<&PendingAsk>,
    plain_via: &str,
) -> Result<Delivered, String> {
    let delivered = delivery::deliver(
        layout,
        peer.client.id(),
        peer.server_pid,
        body,
        caller.client.id(),
        opts,
    );
    let message = match delivered {
        Ok(m) => m,
        Err(e) => {
            if let Some(ask) = late {
                let _ = pending_ask::restore(layout, ask);
            }
            return Err(e.to_string());
        }
    };
    let id = message.id().unwrap_or_default().to_string();
    let wake_peer = WakePeer::from(peer);
    let raw = waker.wake(mode, &wake_peer);
    let wake_path = waker.path(&wake_peer, raw);
    let wake_status = raw.map(|s| waker.confirm(s, &id, waker.settings().confirm_ms));
    if let Some(status) = wake_status {
        let via = if matches!(mode, WakeMode::ReplyDefault(_)) {
            "reply_default"
        } else {
            plain_via
        };
        wake::trace_outcome(
            via,
            status,
            peer.client.session_id.as_deref(),
            peer.client.client_type.as_str(),
        );
    }
    let woke = wake_status.is_some_and(WakeStatus::woke);
    let outlook = (!woke).then(|| outlook::outlook(layout, &id, peer, now_ms()));
    Ok(Delivered {
        message,
        wake_status,
        wake_reason: mode.reason(),
        wake_path,
        outlook,
    })
}

impl Delivered {
    /// The success payload up to the target: `ok:true`, `message_id`, then
    /// `in_reply_to_message_id` when given, `target_session_id` and
    /// `target_server_pid` of `peer`. The caller appends the rest.
    pub fn payload(&self, in_reply_to: Option<&str>, peer: &Entry) -> Map<String, Value> {
        let mut out = payload();
        out.insert("ok".into(), Value::Bool(true));
        out.insert(
            "message_id".into(),
            Value::from(self.message.id().unwrap_or_default()),
        );
        if let Some(id) = in_reply_to {
            out.insert("in_reply_to_message_id".into(), Value::from(id));
        }
        out.insert(
            "target_session_id".into(),
            peer.client
                .session_id
                .clone()
                .map_or(Value::Null, Value::from),
        );
        out.insert("target_server_pid".into(), Value::from(peer.server_pid));
        out
    }
}

impl Delivered {
    /// The wake fields, `wake_path`, `answers_message_id` on a late reply,
    /// then `delivery_outlook` and its `hint` when present.
    pub fn write_tail(&self, out: &mut Map<String, Value>) {
        write_wake(out, self.wake_status, self.wake_reason);
        out.insert("wake_path".into(), Value::from(self.wake_path.as_str()));
        if let Some(q) = self.message.answers_message_id() {
            out.insert("answers_message_id".into(), Value::from(q));
        }
        write_outlook(out, self.outlook);
    }
}

/// Append `delivery_outlook` and `hint` when there is an outlook.
pub fn write_outlook(out: &mut Map<String, Value>, outlook: Option<Outlook>) {
    if let Some(o) = outlook {
        out.insert("delivery_outlook".into(), Value::from(o.as_str()));
        out.insert("hint".into(), Value::from(o.hint()));
    }
}

/// Append `wake_status` / `wake_reason` when present.
pub fn write_wake(out: &mut Map<String, Value>, status: Option<WakeStatus>, reason: Option<&str>) {
    if let Some(s) = status {
        out.insert("wake_status".into(), Value::from(s.as_str()));
    }
    if let Some(r) = reason {
        out.insert("wake_reason".into(), Value::from(r));
    }
}

pub fn call(ctx: &ServerCtx, call: ToolCall) -> ToolFuture<'_> {
    call_off_reactor(ctx, call, "send_message", run)
}

/// The tool body (blocking: run it off the async reactor). `args` are validated.
pub fn run(
    layout: &Layout,
    caller: &Entry,
    waker: &Waker,
    args: &Map<String, Value>,
) -> Result<Value, String> {
    let a = Args(args);
    let target = a.str("target").unwrap_or_default();
    let body = a.str("body").unwrap_or_default();
    let reply_to = a.str("reply_to");
    let wake_arg = a.str("wake").and_then(WakeArg::parse);
    let peer = match project::resolve_target(layout, target, caller) {
        Ok(peer) => peer,
        Err(err) => {
            return Ok(target_failure(
                &err,
                WakeMode::choose(wake_arg, reply_to),
                &[],
            ));
        }
    };
    let (mode, late) = reply_mode(layout, &peer, wake_arg, reply_to);
    let opts = NewMessage {
        request_id: None,
        reply_to,
        source_message_id: a.str("source_message_id"),
        answers_message_id: late.as_ref().and_then(|l| l.message_id.as_deref()),
        to_session_id: project::addressed_id(target, &peer),
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
        "send_message",
    )?;
    let mut out = done.payload(None, &peer);
    done.write_tail(&mut out);
    Ok(Value::Object(out))
}
