//! `get_my_session`: this server's entry plus how each identity strategy fared
//! (server spec §4.5).
//!
//! Invariant defended: once an id is known the answer is the cached identity
//! (no detection I/O, no push to re-register); `next_step` appears only when
//! nothing won, and always names `register_my_session` with the exact shell
//! command to run.

use serde_json::{Value, json};

use super::common::{error_result, map_result, payload};
use super::schema::{Hints, ToolSpec};
use super::{ToolCall, ToolFuture};
use crate::server::{ServerCtx, lifecycle};

pub static SPEC: ToolSpec = ToolSpec {
    name: "get_my_session",
    hints: Hints::READ_ONLY,
    description: "Return this MCP server's own registry entry plus a per-strategy identity diagnosis. Each strategy reports a hit ({session_id, source, confidence}) or an abstention ({abstain: true, reason}) explaining why it did not fire. When `winning` is null, follow `next_step`: it gives the exact shell command that prints your session id and the tool to call with it; do not investigate each strategy. Both env and birth-time can be null in normal operation (birth-time abstains whenever 2+ agents share a project).",
    params: &[],
};

pub fn call(ctx: &ServerCtx, _call: ToolCall) -> ToolFuture<'_> {
    Box::pin(async move {
        lifecycle::refine(ctx, "get_my_session");
        let current = ctx.entry();
        let diagnosis = if let Some(sid) = current.client.id() {
            let src = current
                .client
                .session_id_source
                .clone()
                .unwrap_or_else(|| "self-register".into());
            json!({
                "per_strategy": {},
                "winning": {"session_id": sid, "source": src, "confidence": "high", "strategy": src},
                "next_step": null,
            })
        } else {
            match lifecycle::detect_now(ctx) {
                Ok(Some(d)) => d.to_json(),
                Ok(None) => json!({"per_strategy": {}, "winning": null, "next_step": null}),
                Err(e) => {
                    return error_result(format!("could not write the session registry: {e}"));
                }
            }
        };
        let e = ctx.entry();
        let mut out = payload();
        out.insert(
            "entry".into(),
            json!({
                "server_pid": e.server_pid,
                "started_at": e.started_at,
                "tmux_pane": e.tmux_pane,
                "tmux_session": e.tmux_session,
                "client": e.client,
                "state": e.state,
            }),
        );
        out.insert("detect_diagnosis".into(), diagnosis);
        let _: &Value = &Value::Null;
        map_result(out)
    })
}
