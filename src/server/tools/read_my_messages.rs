//! `read_my_messages`: drain every mailbox of this agent's session (messaging
//! spec §9.3) and return the messages, oldest first, within a budget.
//!
//! Invariants defended: nothing is lost — overflow goes back to the FRONT of the
//! caller's own mailbox (ahead of mail that arrived meanwhile), and if that fails
//! it is returned inline (over budget rather than lost); no message id is
//! returned twice by one call (the union drain dedupes ids); and, unlike the
//! original, the budget never reorders one sender's messages — once a sender's
//! message is deferred, every later message of that sender is deferred too.
//! The returned messages get their delivery receipts only once the answer is
//! on stdout, and go back to the mailbox if it never gets there
//! ([`crate::handoff`]).

use std::collections::HashSet;
use std::sync::OnceLock;

use serde_json::Value;

use crate::config::{js_number, positive_env};
use crate::handoff::Handoff;
use crate::store::mailbox;
use crate::store::message::Message;
use crate::store::paths::Layout;
use crate::store::registry::{self, Entry};

use super::common::off_reactor;
use super::common::payload;
use super::schema::{Hints, ToolSpec};
use super::{ToolCall, ToolFuture};
use crate::server::ServerCtx;

pub static SPEC: ToolSpec = ToolSpec {
    name: "read_my_messages",
    hints: Hints::MESSAGES,
    description: "Drain this session's mailbox and return the messages peers sent (oldest first), each with its message_id (use it with reply_to_message) and, for an ask_peer, its request_id. \
Claude Code sessions with the oxtail hooks usually get messages pushed mid-turn or at turn end, so this may return count:0; Codex and hookless sessions must call it. \
Drains every mailbox of this session (sibling and earlier server processes with the same session id). \
A message sent to an id this session had before /clear or /resume carries addressed_to_previous_session_id. \
Budgeted: a large backlog comes in chunks — the rest stays queued in order, reported as deferred_count — and nothing is dropped. Always safe to call.",
    params: &[],
};

/// The read budget (startup settings; positive finite, not floored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub max_messages: f64,
    pub max_body_bytes: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_messages: 50.0,
            max_body_bytes: 65536.0,
        }
    }
}

impl Budget {
    pub fn from_env() -> Budget {
        Budget {
            max_messages: positive_env("OXTAIL_READ_MAX_MESSAGES", 50.0),
            max_body_bytes: positive_env("OXTAIL_READ_MAX_BODY_BYTES", 65536.0),
        }
    }

    /// The process-wide budget, read from the environment once.
    pub fn global() -> Budget {
        static B: OnceLock<Budget> = OnceLock::new();
        *B.get_or_init(Budget::from_env)
    }
}

/// `enqueued_at` coerced like JavaScript's `Number()` in arithmetic; `None` = NaN.
fn sort_key(m: &Message) -> Option<f64> {
    match m.fields().get("enqueued_at")? {
        Value::Number(n) => n.as_f64(),
        Value::Null => Some(0.0),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => js_number(s),
        _ => None,
    }
}

/// Stable, total order: numeric `enqueued_at` ascending, then every message
/// without one, in drain order.
pub fn sort_messages(messages: &mut [Message]) {
    messages.sort_by(|a, b| match (sort_key(a), sort_key(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// Split sorted messages into (accepted, deferred). The first message is always
/// accepted; a message is deferred when the count limit is reached, when it
/// would push the accepted bytes past the limit, or when an earlier message of
/// the same sender was deferred (per-sender order is kept).
pub fn apply_budget(sorted: Vec<Message>, budget: Budget) -> (Vec<Message>, Vec<Message>) {
    let mut accepted: Vec<Message> = Vec::new();
    let mut deferred = Vec::new();
    let mut bytes = 0f64;
    let mut blocked: HashSet<Option<String>> = HashSet::new();
    for m in sorted {
        let sender = m.from_session_id().map(str::to_string);
        let size = m.size_bytes() as f64;
        let over = accepted.len() as f64 >= budget.max_messages
            || (!accepted.is_empty() && bytes + size > budget.max_body_bytes)
            || blocked.contains(&sender);
        if over {
            blocked.insert(sender);
            deferred.push(m);
        } else {
            bytes += size;
            accepted.push(m);
        }
    }
    (accepted, deferred)
}

/// The mailboxes of the caller's session: every registered pid with its session
/// id (oldest first, dead ones included), plus its own pid.
pub fn session_pids(layout: &Layout, caller: &Entry) -> Vec<u32> {
    match caller.client.id() {
        Some(sid) => {
            let mut pids = registry::session_pids_for_id(layout, sid);
            if !pids.contains(&caller.server_pid) {
                pids.push(caller.server_pid);
            }
            pids
        }
        None => vec![caller.server_pid],
    }
}

/// Beyond the original: a message sent to an id this session had before
/// `/clear` or `/resume` says so (`addressed_to_previous_session_id`).
fn label_previous_id(caller: &Entry, m: &Message) -> serde_json::Map<String, Value> {
    let to = m
        .to_session_id()
        .filter(|to| caller.client.id().is_some_and(|me| me != *to))
        .map(str::to_string);
    let mut fields = m.fields().clone();
    if let Some(to) = to {
        fields.insert("addressed_to_previous_session_id".into(), Value::from(to));
    }
    fields
}

pub fn call(ctx: &ServerCtx, call: ToolCall) -> ToolFuture<'_> {
    let (layout, caller) = (ctx.layout.clone(), ctx.entry());
    let hooks = std::sync::Arc::clone(&ctx.after_reply);
    let id = call.request.id.clone();
    Box::pin(off_reactor("read_my_messages", move || {
        let (value, handoff) = run(&layout, &caller, Budget::global())?;
        // Receipts once this answer is on stdout; requeue if it never is.
        hooks.register(&id, Box::new(move |flushed| handoff.finish(flushed)));
        Ok(value)
    }))
}

/// The tool body (blocking: run it off the async reactor): the answer, and the
/// hand-off of the messages it carries (settle it once the answer is out).
pub fn run(layout: &Layout, caller: &Entry, budget: Budget) -> Result<(Value, Handoff), String> {
    // Drain and put the over-budget part back under one hold of our own
    // mailbox's lock: a hook cannot deliver a sender's later message between.
    let kept = mailbox::drain_many_keeping(
        layout,
        caller.server_pid,
        &session_pids(layout, caller),
        |mut messages| {
            sort_messages(&mut messages);
            apply_budget(messages, budget)
        },
    );
    let deferred_count = kept.kept;
    let drained = kept.drain;
    let accepted = drained.messages;
    let mut out = payload();
    out.insert("ok".into(), Value::Bool(true));
    out.insert("drained".into(), Value::Bool(true));
    out.insert("count".into(), Value::from(accepted.len()));
    out.insert(
        "messages".into(),
        Value::Array(
            accepted
                .iter()
                .map(|m| Value::Object(label_previous_id(caller, m)))
                .collect(),
        ),
    );
    if deferred_count > 0 {
        out.insert("deferred_count".into(), Value::from(deferred_count));
        out.insert("budget_truncated".into(), Value::Bool(true));
    }
    if drained.skipped > 0 {
        out.insert("mailboxes_skipped".into(), Value::from(drained.skipped));
    }
    let mut handoff = Handoff::none(layout, caller);
    handoff.messages = accepted;
    Ok((Value::Object(out), handoff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::message::NewMessage;

    fn msg(from: &str, at: u64, body: &str) -> Message {
        Message::build_with(
            crate::store::message::new_hex_id(),
            at,
            body,
            Some(from),
            &NewMessage::default(),
        )
    }

    fn bodies(v: &[Message]) -> Vec<&str> {
        v.iter().map(|m| m.body().unwrap_or_default()).collect()
    }

    #[test]
    fn sort_is_stable_and_total() {
        let mut v = vec![
            msg("a", 5, "5"),
            msg("a", 3, "3"),
            msg("a", 1, "1"),
            msg("a", 3, "3b"),
        ];
        let mut odd = msg("a", 0, "missing").into_map();
        odd.remove("enqueued_at");
        v.insert(1, Message::from_map(odd));
        sort_messages(&mut v);
        assert_eq!(bodies(&v), ["1", "3", "3b", "5", "missing"]);
    }

    #[test]
    fn budget_keeps_each_senders_order() {
        let big = "x".repeat(100);
        let sorted = vec![
            msg("a", 1, "a1"),
            msg("a", 2, &big),
            msg("b", 3, "b1"),
            msg("a", 4, "a3"),
        ];
        let budget = Budget {
            max_messages: 50.0,
            max_body_bytes: 10.0,
        };
        let (acc, def) = apply_budget(sorted, budget);
        // a's big message is deferred, so a3 must wait behind it; b1 still fits.
        assert_eq!(bodies(&acc), ["a1", "b1"]);
        assert_eq!(bodies(&def), [big.as_str(), "a3"]);
    }

    #[test]
    fn count_limit_and_first_message_always_fits() {
        let sorted = vec![
            msg("a", 1, &"y".repeat(500)),
            msg("b", 2, "b"),
            msg("c", 3, "c"),
        ];
        let (acc, def) = apply_budget(
            sorted,
            Budget {
                max_messages: 2.0,
                max_body_bytes: 10.0,
            },
        );
        assert_eq!(acc.len(), 1);
        assert_eq!(def.len(), 2);
        let sorted = vec![msg("a", 1, "1"), msg("b", 2, "2"), msg("c", 3, "3")];
        let (acc, def) = apply_budget(
            sorted,
            Budget {
                max_messages: 1.5,
                max_body_bytes: 1e9,
            },
        );
        assert_eq!((acc.len(), def.len()), (2, 1));
    }

    #[test]
    fn overflow_is_requeued_in_front_and_never_repeated() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path());
        let caller: Entry = serde_json::from_value(serde_json::json!({
            "server_pid": 4242, "started_at": 1,
            "client": {"type": "codex", "session_id": null, "cwd": "/"}
        }))
        .unwrap();
        for i in 0..5 {
            mailbox::requeue(&layout, 4242, &msg("a", i, &format!("m{i}"))).unwrap();
        }
        let budget = Budget {
            max_messages: 2.0,
            max_body_bytes: 1e9,
        };
        let mut seen = Vec::new();
        for round in 0..3 {
            let (v, _) = run(&layout, &caller, budget).unwrap();
            let msgs = v["messages"].as_array().unwrap();
            if round < 2 {
                assert_eq!(v["deferred_count"], [3, 2][round]);
                assert_eq!(v["budget_truncated"], true);
            }
            // Mail arriving between reads queues behind the deferred backlog.
            if round == 0 {
                mailbox::requeue(&layout, 4242, &msg("a", 99, "late")).unwrap();
            }
            seen.extend(msgs.iter().map(|m| m["body"].as_str().unwrap().to_string()));
        }
        assert_eq!(seen, ["m0", "m1", "m2", "m3", "m4", "late"]);
    }
}
