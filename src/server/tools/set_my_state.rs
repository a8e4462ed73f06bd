//! `set_my_state`: write the one-field state card peers see in
//! `list_project_sessions` (server spec §4.6).
//!
//! Invariant defended: `purpose` is at most 200 UTF-16 code units (the
//! original's count); an omitted purpose keeps the old one, an empty one is
//! stored as `""`; every call bumps `updated_at`.

use serde_json::{Value, json};

use super::common::{error_result, map_result, payload};
use super::schema::{Hints, Kind, Param, ToolSpec};
use super::{ToolCall, ToolFuture};
use crate::clock::now_s;
use crate::server::ServerCtx;
use crate::store::registry::StateCard;

/// Longest `purpose`, in UTF-16 code units.
pub const PURPOSE_MAX: usize = 200;

pub static SPEC: ToolSpec = ToolSpec {
    name: "set_my_state",
    hints: Hints::SETS_OWN_STATE,
    description: "Write a small state card onto this agent's registry entry so peers can see what it is doing without reading its transcript. One field for now, `purpose` (≤200 chars): a one-sentence \"what this agent is working on right now\". The card shows up in list_project_sessions rows. Calling with no fields is a touch: it bumps `updated_at` and keeps the content.",
    params: &[Param {
        name: "purpose",
        kind: Kind::Str {
            min_len: None,
            max_len: Some(PURPOSE_MAX),
            max_utf8_bytes: None,
            safe_id: false,
        },
        required: false,
        description: "One sentence on what this agent is working on now. ≤200 chars. Omit to keep the current purpose.",
    }],
};

pub fn call(ctx: &ServerCtx, call: ToolCall) -> ToolFuture<'_> {
    Box::pin(async move {
        let given = call.args().str("purpose").map(str::to_string);
        let mut card = None;
        let res = ctx.update(|e| {
            let purpose = given.or_else(|| e.state.as_ref().and_then(|s| s.purpose.clone()));
            let next = StateCard {
                purpose,
                updated_at: now_s(),
            };
            card = Some(next.clone());
            e.state = Some(next);
        });
        if let Err(e) = res {
            return error_result(format!("could not write the session registry: {e}"));
        }
        let mut out = payload();
        out.insert("ok".into(), Value::Bool(true));
        out.insert("state".into(), card.map_or(Value::Null, |c| json!(c)));
        map_result(out)
    })
}
