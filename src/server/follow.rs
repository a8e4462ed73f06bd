//! Following the client across `/clear` and `/resume` while the server runs
//! (beyond the original; the rules are in `identity::follow`).
//!
//! Two signals, both about this server's own client:
//! - the client record (`~/.oxtail/clients/<client pid>.json`) its hooks
//!   write: stat'ed every [`POLL_INTERVAL`] and before every `tools/call`;
//! - the `tool_use` id of each Claude Code `tools/call`: the transcript that
//!   holds it is the calling session's, so a missed SessionStart heals at the
//!   next tool call.
//!
//! Invariants defended: all file work runs off the async reactor; a record is
//! read only when its stamp changed; an adoption happens under the entry lock
//! and is published, persisted as a sticky claim and traced
//! (`identity_followed`); nothing here ever fails a tool call.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::ServerCtx;
use crate::identity::follow::{self, SOURCE_TOOL_USE_ID};
use crate::identity::{proctree, start_time, sticky};
use crate::store::clients::{self, Stamp};
use crate::store::registry::{ClientType, Entry};
use crate::trace;
use crate::transcripts::{claude, tool_use};

/// How often the client record is stat'ed.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The `_meta` key Claude Code puts the `tool_use` id under.
pub const TOOL_USE_META_KEY: &str = "claudecode/toolUseId";

/// What the follower remembers between checks.
#[derive(Debug, Default)]
pub struct FollowState {
    last_stamp: Mutex<Option<Stamp>>,
}

/// Startup: bind `entry` to its client process (the parent). The start time,
/// which may need a `ps`, is read later by [`bind_start_time`].
pub fn bind_client(entry: &mut Entry) {
    entry.client.pid = proctree::client_pid();
}

/// Read the client's start time (off the handshake path) and publish it.
pub fn bind_start_time(ctx: &ServerCtx) {
    let Some(pid) = ctx.lock_entry().client.pid else {
        return;
    };
    let Some(started) = start_time::start_time_s(pid) else {
        return;
    };
    {
        let mut g = ctx.lock_entry();
        if g.client.pid != Some(pid) || g.client.pid_started_at.is_some() {
            return;
        }
        g.client.pid_started_at = Some(started);
        let _ = ctx.register_locked(&g);
    }
    // A record judged before the start time was known is judged again.
    *ctx.follow
        .last_stamp
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = None;
    check_record(ctx);
}

/// Poll the client record until shutdown.
pub fn spawn_watch(ctx: Arc<ServerCtx>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = ctx.shutdown_requested() => return,
            }
            // Only a Claude Code server with a client follows records; the
            // type may still change at the handshake, so ask every tick.
            let follows = {
                let e = ctx.lock_entry();
                e.client.client_type == ClientType::ClaudeCode && e.client.pid.is_some()
            };
            if follows {
                let c = Arc::clone(&ctx);
                let _ = tokio::task::spawn_blocking(move || check_record(&c)).await;
            }
        }
    });
}

/// Before a `tools/call` is dispatched: look at the record, then confirm the
/// call's `tool_use` id against the transcripts.
pub async fn before_call(ctx: &Arc<ServerCtx>, metas: [Option<&Map<String, Value>>; 2]) {
    let tool_use_id = metas
        .into_iter()
        .flatten()
        .find_map(|m| m.get(TOOL_USE_META_KEY).and_then(Value::as_str))
        .filter(|t| clients::is_hook_safe_id(t))
        .map(str::to_string);
    let c = Arc::clone(ctx);
    let _ = tokio::task::spawn_blocking(move || {
        check_record(&c);
        if let Some(t) = tool_use_id {
            confirm_tool_use(&c, &t);
        }
    })
    .await;
}

/// Adopt what the client record says, when it changed and applies to us.
/// Returns whether the id changed.
pub fn check_record(ctx: &ServerCtx) -> bool {
    // Claude Code only: Codex starts one server per thread (0.169, 0.171), so
    // several servers of one Codex process would all follow one record.
    let pid = {
        let e = ctx.lock_entry();
        match (e.client.client_type, e.client.pid) {
            (ClientType::ClaudeCode, Some(pid)) => pid,
            _ => return false,
        }
    };
    let stamp = clients::stamp(&ctx.layout, pid);
    {
        let mut last = ctx
            .follow
            .last_stamp
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.as_ref() == Some(&stamp) {
            return false;
        }
        *last = Some(stamp);
    }
    let Some(rec) = clients::read(&ctx.layout, pid) else {
        return false;
    };
    let (applies, current) = {
        let e = ctx.lock_entry();
        (
            follow::record_applies(&rec, &e.client, e.started_at),
            e.client.session_id.clone(),
        )
    };
    if !applies {
        if current.as_deref() != Some(rec.session_id.as_str()) {
            trace::event(
                "identity_record_ignored",
                json!({"client_pid": pid, "session_id": rec.session_id, "source": rec.source}),
            );
        }
        return false;
    }
    adopt(
        ctx,
        &rec.session_id,
        follow::record_source(&rec),
        rec.transcript_path.as_deref(),
        json!({"client_pid": pid, "record_source": rec.source, "record_event": rec.event}),
    )
}

/// The transcript directories a Claude Code session of this server can
/// write to: the current transcript's, then the ones its cwd maps to.
fn transcript_dirs(current: Option<&Path>, cwd: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = current
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .into_iter()
        .collect();
    for d in claude::project_dirs(cwd) {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// Confirm the binding with the call's `tool_use` id: found in our own
/// transcript, nothing to do; found in exactly one other transcript of the
/// project, that transcript's session is the caller's and is adopted, unless
/// it is one of our previous ids.
pub fn confirm_tool_use(ctx: &ServerCtx, tool_use_id: &str) -> bool {
    let e = ctx.entry();
    if e.client.client_type != ClientType::ClaudeCode {
        return false;
    }
    let current = e.client.transcript_path.as_deref().map(Path::new);
    match current {
        // No transcript on disk for our own session: transcripts are off (or
        // elsewhere), and nothing can be confirmed either way.
        Some(p) if !p.is_file() => return false,
        Some(p) if tool_use::tail_contains(p, tool_use_id) => return false,
        _ => {}
    }
    let found = tool_use::holders(
        &transcript_dirs(current, &e.client.cwd),
        tool_use_id,
        current,
    );
    match found.as_slice() {
        // A call still in flight from before the move names an old id: it
        // never moves the server back (a /resume back comes as a record).
        [one] if e.client.is_alias(one) => false,
        [one] => adopt(
            ctx,
            one,
            SOURCE_TOOL_USE_ID,
            None,
            json!({"tool_use_id": tool_use_id}),
        ),
        other => {
            trace::event(
                "identity_tool_use_unconfirmed",
                json!({"tool_use_id": tool_use_id, "session_id": e.client.session_id, "holders": other}),
            );
            false
        }
    }
}

/// Move this server to `new_id` (no-op when it already is current).
fn adopt(
    ctx: &ServerCtx,
    new_id: &str,
    source: &str,
    transcript: Option<&str>,
    why: Value,
) -> bool {
    let (entry, from) = {
        let mut g = ctx.lock_entry();
        let Some(moved) = follow::moved_to(&g.client, new_id, source, transcript) else {
            return false;
        };
        let from = g.client.session_id.clone();
        g.client = moved;
        if let Err(e) = ctx.register_locked(&g) {
            trace::event(
                "identity_follow_publish_failed",
                json!({"session_id": new_id, "error": e.to_string()}),
            );
        }
        (g.clone(), from)
    };
    sticky::persist(&ctx.layout, &entry);
    trace::event(
        "identity_followed",
        json!({
            "session_id": new_id,
            "previous_session_id": from,
            "source": source,
            "detail": why,
        }),
    );
    true
}
