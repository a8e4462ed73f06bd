//! `claim_session`: pin this server's session id and answer compactly
//! (`ok`, `session_id`, `transcript_path`; no `entry`) (server spec §4.4).
//!
//! Invariant defended: same pin semantics as `register_my_session` — the only
//! path that may replace an existing id; the id must be path-safe.

use serde_json::Value;

use super::register_my_session::{SESSION_ID_PARAM, pin_and_answer};
use super::schema::{Hints, ToolSpec};
use super::{ToolCall, ToolFuture};
use crate::server::ServerCtx;

pub static SPEC: ToolSpec = ToolSpec {
    name: "claim_session",
    hints: Hints::SETS_OWN_STATE,
    description: "Pin this agent's session_id and get a compact confirmation { ok, session_id, transcript_path } (register_my_session + get_my_session in one call). The routine ceremony: run `echo $CLAUDE_CODE_SESSION_ID` (or `echo $CODEX_THREAD_ID`) in a shell tool, then call claim_session with the value. Use it in slash commands and skills.",
    params: &[SESSION_ID_PARAM],
};

pub fn call(ctx: &ServerCtx, call: ToolCall) -> ToolFuture<'_> {
    pin_and_answer(ctx, call, |entry, out| {
        out.insert(
            "session_id".into(),
            entry.client.session_id.map_or(Value::Null, Value::from),
        );
        out.insert(
            "transcript_path".into(),
            entry
                .client
                .transcript_path
                .map_or(Value::Null, Value::from),
        );
    })
}
