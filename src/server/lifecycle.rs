//! Identity over the server's life: the startup entry, the handshake
//! refinement, the late re-detect schedule, explicit pins, ids learned from a
//! Codex `tools/call` `_meta`, and cleanup at exit (registry entry, empty
//! mailbox) (server spec §1.2, §1.5, §1.7, §6.8.5).
//!
//! Invariant defended: the monotonic identity rule — detection (startup,
//! handshake, retries, `get_my_session`) never replaces an id; only an explicit
//! pin does, and an id learned from `_meta.threadId` only replaces a guess
//! (`birth-time`, `sticky-claim`), never a claim or an env id.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::ServerCtx;
use super::tmux_query;
use crate::clock::now_s;
use crate::identity::detect::{self, Diagnosis};
use crate::identity::{self, EnvVars, SOURCE_TOOLS_CALL_META, sticky};
use crate::store::mailbox;
use crate::store::paths::{Layout, ensure_private_dir};
use crate::store::registry::{ClientType, Entry};
use crate::store::{outbox, pending_ask, receipts};
use crate::trace;
use crate::transcripts::{codex, transcript_path_for};
use crate::wake::tmux::Tmux;

/// Late re-detect delays, measured from `notifications/initialized`.
pub const RETRY_DELAYS_MS: [u64; 4] = [1_000, 5_000, 30_000, 300_000];

/// The process cwd as the OS reports it (physical path).
pub fn process_cwd() -> String {
    std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".into())
}

fn trace_detect_run(trigger: &str, d: &Diagnosis) {
    trace::event(
        "detect_run",
        json!({
            "trigger": trigger,
            "winning_strategy": d.winning.as_ref().map(|w| w.3),
            "session_id": d.winning.as_ref().map(|w| w.0.clone()),
            "per_strategy": d.per_strategy_json(),
            "next_step": d.next_step_json(),
        }),
    );
}

/// Steps 1–5 of server startup: detect, build the entry, recover a sticky
/// claim, publish. An error means the registry could not be written.
pub fn startup(layout: Layout, env: EnvVars, tmux: Tmux) -> io::Result<ServerCtx> {
    let cwd = process_cwd();
    let mut client = identity::client_from_env(&env, &cwd);
    let started_at = now_s();
    // A trusted TMUX_PANE costs nothing; the process-tree walk (tmux + ps
    // spawns) is deferred until the transport is up (`bind_tmux_late`).
    let env_pane = env
        .get("TMUX_PANE")
        .filter(|p| crate::wake::pane::is_pane_id(p));
    let (tmux_pane, tmux_session) = match env_pane {
        Some(_) => tmux_query::own_binding(&tmux, env_pane.as_deref()),
        None => (None, None),
    };
    if client.id().is_none() && client.client_type != ClientType::Unknown {
        let (enriched, diag) = detect::enrich(&client, started_at, &env);
        if let Some(d) = &diag {
            trace_detect_run("startup", d);
        }
        client = enriched;
    }
    let mut entry = Entry {
        tmux_pane,
        tmux_session,
        ..Entry::new(std::process::id(), started_at, client)
    };
    super::follow::bind_client(&mut entry);
    let ctx = ServerCtx::new(layout, entry, env, tmux);
    recover_sticky(&ctx);
    ctx.publish()?;
    Ok(ctx)
}

/// Resolve the tmux binding by walking the process tree, off the startup path,
/// and publish it unless a pin already set one. A no-op when `TMUX_PANE`
/// was trusted at startup.
pub fn bind_tmux_late(ctx: &ServerCtx) {
    if ctx.lock_entry().tmux_pane.is_some() {
        return;
    }
    let (pane, session) = tmux_query::own_binding(&ctx.tmux, None);
    if pane.is_none() {
        return;
    }
    let mut g = ctx.lock_entry();
    if g.tmux_pane.is_none() {
        g.tmux_pane = pane;
        g.tmux_session = session;
        let _ = ctx.register_locked(&g);
    }
}

/// §6.8.5: adopt a sticky claim when we have no id and a known type.
pub fn recover_sticky(ctx: &ServerCtx) {
    let client = ctx.entry().client;
    let Some(recovered) = sticky::recover(&ctx.layout, &client) else {
        return;
    };
    let mut g = ctx.lock_entry();
    if g.client.id().is_some() {
        return;
    }
    trace::event(
        "sticky_claim_recovered",
        json!({"session_id": recovered.session_id, "cwd": recovered.cwd}),
    );
    g.client = recovered;
    sticky::persist(&ctx.layout, &g);
    let _ = ctx.register_locked(&g);
}

/// §1.5 `refine(trigger)`: fold the handshake's client into the entry.
pub fn refine(ctx: &ServerCtx, trigger: &str) -> Option<Diagnosis> {
    let name = ctx.client_name()?;
    let (cwd, started_at) = {
        let e = ctx.lock_entry();
        (e.client.cwd.clone(), e.started_at)
    };
    let detected = identity::client_from_handshake(Some(&name), &ctx.env, &cwd);
    let (enriched, diag) = detect::enrich(&detected, started_at, &ctx.env);
    if let Some(d) = &diag {
        trace_detect_run(trigger, d);
    }
    {
        let mut g = ctx.lock_entry();
        let merged = identity::merge(&g.client, &enriched);
        if let (Some(cur), Some(det)) = (g.client.id(), enriched.id())
            && cur != det
        {
            {
                trace::event(
                    "detect_preserved_existing_session_id",
                    json!({
                        "trigger": trigger,
                        "existing_session_id": cur,
                        "existing_source": g.client.session_id_source,
                        "detected_session_id": det,
                        "detected_source": enriched.session_id_source,
                    }),
                );
            }
        }
        if merged != g.client {
            g.client = merged;
            let _ = ctx.register_locked(&g);
        }
    }
    recover_sticky(ctx);
    diag
}

/// Periodic store upkeep of a running server: the receipt and outbox
/// retention (and the receipts directory the hooks write into exists), and
/// expired pending asks and the client records of processes that are gone.
pub fn housekeeping(layout: &Layout) {
    let _ = ensure_private_dir(&layout.receipts_dir());
    let now = crate::clock::now_ms();
    receipts::gc(layout, now, receipts::RETENTION);
    outbox::gc(layout, now, receipts::RETENTION);
    pending_ask::gc(layout, pending_ask::ttl_ms());
    crate::store::clients::gc(layout, now as f64);
}

/// `notifications/initialized`: refine, then schedule the late re-detect
/// unless every strategy abstained structurally.
pub fn on_initialized(ctx: &Arc<ServerCtx>) {
    let diag = refine(ctx, "oninitialized");
    let e = ctx.entry();
    if e.client.id().is_some() || e.client.client_type == ClientType::Unknown {
        return;
    }
    if diag.as_ref().is_some_and(Diagnosis::all_structural) {
        trace::event("detect_skip_retries", json!({"reason": "all-structural"}));
        return;
    }
    if ctx.claim_retry_schedule() {
        let ctx = Arc::clone(ctx);
        tokio::spawn(async move {
            let t0 = tokio::time::Instant::now();
            for delay in RETRY_DELAYS_MS {
                tokio::time::sleep_until(t0 + Duration::from_millis(delay)).await;
                if ctx.is_shutting_down() {
                    return;
                }
                retry(&ctx, delay);
            }
        });
    }
}

fn retry(ctx: &ServerCtx, delay: u64) {
    let e = ctx.entry();
    if e.client.id().is_some() {
        return;
    }
    let (enriched, diag) = detect::enrich(&e.client, e.started_at, &ctx.env);
    if let Some(d) = &diag {
        trace_detect_run(&format!("retry+{delay}ms"), d);
    }
    if enriched.id().is_some() && enriched.session_id != e.client.session_id {
        let _ = ctx.update(|g| {
            if g.client.id().is_none() {
                g.client = enriched;
            }
        });
    }
}

/// `get_my_session`'s live detection when still unresolved: returns the
/// diagnosis (or `None` when enrichment did not run).
pub fn detect_now(ctx: &ServerCtx) -> io::Result<Option<Diagnosis>> {
    let e = ctx.entry();
    let (enriched, diag) = detect::enrich(&e.client, e.started_at, &ctx.env);
    if enriched.id().is_some() && enriched.session_id != e.client.session_id {
        ctx.update(|g| {
            if g.client.id().is_none() {
                g.client = enriched;
            }
        })?;
    }
    Ok(diag)
}

/// `pinSessionId` (claim_session / register_my_session): set the id, recompute
/// the transcript path and tmux binding, publish, persist a sticky claim.
pub fn pin_session_id(ctx: &ServerCtx, sid: &str) -> io::Result<Entry> {
    let (pane, session) = tmux_query::own_binding(&ctx.tmux, ctx.env.get("TMUX_PANE").as_deref());
    let entry = ctx.update(|g| {
        g.client.session_id = Some(sid.to_string());
        g.client.session_id_source = Some("self-register".into());
        if g.client.client_type != ClientType::Unknown {
            g.client.transcript_path =
                transcript_path_for(g.client.client_type, sid, &g.client.cwd);
        }
        g.tmux_pane = pane;
        g.tmux_session = session;
    })?;
    sticky::persist(&ctx.layout, &entry);
    Ok(entry)
}

/// Ours: learn a Codex agent's id from `tools/call` `_meta.threadId`.
/// Adopted when we have no id or only a guessed one; errors are ignored.
pub fn adopt_call_meta(ctx: &ServerCtx, meta: &Map<String, Value>) {
    let Some(tid) = meta
        .get("threadId")
        .and_then(Value::as_str)
        .filter(|t| identity::is_safe_id(t))
    else {
        return;
    };
    let codex_by_name = ctx
        .client_name()
        .is_some_and(|n| n.to_lowercase().contains("codex"));
    let replaceable = |e: &Entry| {
        let is_codex = e.client.client_type == ClientType::Codex
            || (e.client.client_type == ClientType::Unknown && codex_by_name);
        is_codex
            && e.client.session_id.as_deref() != Some(tid)
            && (e.client.id().is_none()
                || matches!(
                    e.client.session_id_source.as_deref(),
                    Some("birth-time" | "sticky-claim")
                ))
    };
    if !replaceable(&ctx.entry()) {
        return;
    }
    let transcript = codex::find_rollout(tid);
    let mut previous = None;
    let res = ctx.update(|g| {
        if replaceable(g) {
            previous = Some((
                g.client.session_id.clone(),
                g.client.session_id_source.clone(),
            ));
            g.client.client_type = ClientType::Codex;
            g.client.session_id = Some(tid.to_string());
            g.client.session_id_source = Some(SOURCE_TOOLS_CALL_META.into());
            g.client.transcript_path = transcript;
        }
    });
    if let (Ok(entry), Some((prev_id, prev_source))) = (res, previous) {
        trace::event(
            "detect_tools_call_meta",
            json!({"session_id": tid, "previous_session_id": prev_id, "previous_source": prev_source}),
        );
        sticky::persist(&ctx.layout, &entry);
    }
}

/// How long the exit path waits for our mailbox lock. Short: a busy mailbox
/// is simply left for later (`doctor --fix` or nobody), and the server must
/// still exit within about a second.
const EXIT_MAILBOX_LOCK_WAIT: Duration = Duration::from_millis(200);

/// The exit path: delete our registry entry, then our mailbox if it is empty
/// (beyond the original, which leaves an empty `<pid>.jsonl` behind for every
/// server that ever received mail). The entry goes first, so no new sender
/// picks our pid; a sender that already did appends after us to a fresh file
/// (nothing lost). A mailbox holding mail is never removed.
pub fn cleanup(ctx: &ServerCtx) {
    ctx.unregister();
    let pid = ctx.entry().server_pid;
    match mailbox::remove_if_empty(&ctx.layout, pid, EXIT_MAILBOX_LOCK_WAIT, || true) {
        Ok(true) => trace::event("mailbox_removed_at_exit", json!({"pid": pid})),
        Ok(false) => {}
        Err(e) => trace::event(
            "mailbox_remove_at_exit_failed",
            json!({"pid": pid, "error": e.to_string()}),
        ),
    }
}
