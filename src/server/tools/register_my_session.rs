//! `register_my_session`: the debugging escape hatch that pins this server's
//! session id and returns a four-key view of the entry (server spec §4.3).
//!
//! Invariant defended: an explicit pin is the only way an existing id changes;
//! the id must be path-safe because it becomes part of a transcript path.

use serde_json::{Map, Value, json};

use super::common::{error_result, map_result, payload};
use super::schema::{Hints, Kind, Param, ToolSpec};
use super::{ToolCall, ToolFuture};
use crate::server::ServerCtx;
use crate::server::lifecycle::pin_session_id;
use crate::store::registry::Entry;

pub static SPEC: ToolSpec = ToolSpec {
    name: "register_my_session",
    hints: Hints::SETS_OWN_STATE,
    description: "Pin this MCP server's session_id directly (the registry entry is updated in place and persisted). Escape hatch for when auto-detection cannot resolve the id: read the value with `echo $CLAUDE_CODE_SESSION_ID` (or `echo $CODEX_THREAD_ID`) in a shell tool subshell. Prefer claim_session for routine use; this one is for debugging.",
    params: &[SESSION_ID_PARAM],
};

/// The `session_id` parameter shared with `claim_session`.
pub(super) const SESSION_ID_PARAM: Param = Param {
    name: "session_id",
    kind: Kind::ID,
    required: true,
    description: "The session id to record for the agent that owns this MCP server.",
};

/// Pin the validated `session_id` of `call` and answer `ok:true` followed by
/// the fields `fill` writes from the pinned entry; a registry write failure is
/// an `isError` result.
pub(super) fn pin_and_answer(
    ctx: &ServerCtx,
    call: ToolCall,
    fill: fn(Entry, &mut Map<String, Value>),
) -> ToolFuture<'_> {
    Box::pin(async move {
        let sid = call.args().str("session_id").unwrap_or_default();
        let entry = match pin_session_id(ctx, sid) {
            Ok(entry) => entry,
            Err(e) => return error_result(format!("could not write the session registry: {e}")),
        };
        let mut out = payload();
        out.insert("ok".into(), Value::Bool(true));
        fill(entry, &mut out);
        map_result(out)
    })
}

pub fn call(ctx: &ServerCtx, call: ToolCall) -> ToolFuture<'_> {
    pin_and_answer(ctx, call, |entry, out| {
        out.insert(
            "entry".into(),
            json!({
                "server_pid": entry.server_pid,
                "started_at": entry.started_at,
                "tmux_session": entry.tmux_session,
                "client": entry.client,
            }),
        );
    })
}
