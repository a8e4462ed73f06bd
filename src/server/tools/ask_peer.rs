//! `ask_peer`: send a question and block until the peer's reply lands or the
//! timeout elapses (messaging spec §9.4), waking the peer after a grace window.
//!
//! Improvements over the original, and the invariants they defend:
//! - the reply is picked up as soon as it lands: every mailbox of the caller's
//!   session (sibling servers included) is checked every [`POLL`] — a `stat`
//!   (size, mtime, inode) per mailbox, and a locked selective drain only when one
//!   changed — instead of a 500 ms sleep then 200 ms polls; the wake still waits
//!   for the [`GRACE`] window, and runs concurrently with the polling;
//! - a drained reply is never lost: if the client cancels the call
//!   (`notifications/cancelled`) after the reply was taken out of the mailbox but
//!   before the result was sent, the reply is re-delivered to the caller's own
//!   mailbox with the same id (ledger re-recorded), and the call fails with
//!   `ask_peer aborted by client`;
//! - a transient drain failure (a lock held by a hook) is retried on the next
//!   tick rather than failing a call whose question was already delivered;
//! - durable (beyond the original's result, which does not say so): the ask is
//!   recorded (`store::pending_ask`) while it waits; on a timeout the record
//!   turns `pending`, one last drain runs (a reply that landed meanwhile is
//!   returned normally), and the result says `pending: true`; the late reply
//!   then reaches the asker marked as the answer (`answers_message_id`) and
//!   wakes it (`send_message::reply_mode`, `server::late_replies` for a
//!   replier that knows nothing of pending asks). A reply returned in time or
//!   a cancelled call removes the record: a cancelled ask is not pending;
//! - `wake_status` is `fired` only when the question's receipt exists or a
//!   reply came, `fired_unconfirmed` otherwise; a peer whose idle watcher is
//!   armed gets no keystrokes (its mail wakes it), `wake_path` says which.
//!
//! All file work runs in `spawn_blocking`, never on the async reactor.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{js_number_value, positive_env};
use crate::delivery;
use crate::handoff::Handoff;
use crate::project;
use crate::store::activity::now_ms;
use crate::store::mailbox;
use crate::store::message::{Message, NewMessage, new_hex_id};
use crate::store::paths::Layout;
use crate::store::pending_ask::{self, PendingAsk};
use crate::store::receipts;
use crate::store::registry::{self, Entry};
use crate::trace;
use crate::wake::outlook;
use crate::wake::{self, WakeMode, WakePath, WakePeer, WakeStatus, Waker};

use super::common::{error_result, failure, json_result, payload};
use super::schema::{Args, Hints, Kind, Param, ToolSpec};
use super::send_message::{BODY, TARGET_PARAM, target_failure, write_outlook};
use super::{ToolCall, ToolFuture};
use crate::server::ServerCtx;

/// Wait before the first wake (the peer may answer through its hooks).
pub const GRACE: Duration = Duration::from_millis(500);
/// Interval between mailbox checks.
pub const POLL: Duration = Duration::from_millis(2);
/// Interval at which the mailboxes are drained even without a visible change
/// (guards against coarse timestamps) and the sibling list is refreshed.
pub const FORCE_CHECK: Duration = Duration::from_secs(1);
/// Schema maximum of `timeout_ms`.
pub const TIMEOUT_SCHEMA_MAX: i64 = 300_000;

pub static SPEC: ToolSpec = ToolSpec {
    name: "ask_peer",
    hints: Hints::MESSAGES,
    description: "Delegate and wait: send a question to a peer in the same project root and block until it replies or the timeout elapses. \
For back-and-forth; use send_message for fire-and-forget. \
If no reply arrives within 500 ms the peer is woken: an idle Claude Code whose idle watcher is armed by the question itself, an idle Codex through `codex queue` when its app-server daemon runs, otherwise by typing a short prompt into its verified tmux pane (Codex gets a pause before Enter; a peer that is mid-turn is not typed into: skipped_busy). \
The peer answers with reply_to_message, or send_message with reply_to=request_id; for reply_to-capable peers only that answer ends the wait (correlation:\"correlated\"), legacy peers end it with their first message (\"uncorrelated\"). \
The result has reply (or null), timed_out, wake_status (fired only once the peer saw the question; fired_unconfirmed otherwise), wake_path and correlation. \
timeout_ms defaults to 45000 (OXTAIL_ASK_PEER_TIMEOUT_MS) and is clamped to a ceiling (default 100000, OXTAIL_ASK_PEER_MAX_TIMEOUT_MS), reported as timeout_clamped_from_ms. \
On a timeout the ask stays pending (pending:true, for OXTAIL_PENDING_ASK_TTL_MS, default 1 h): the late reply is delivered to you marked as the answer to this question and wakes you; do not ask again. \
The target needs a session id (claim_session). Body at most 8192 UTF-8 bytes, verbatim: phrase it as an assignment. \
Wake routing: OXTAIL_ASK_PEER_WAKE_STRATEGY=auto|legacy|off.",
    params: &[
        TARGET_PARAM,
        Param {
            name: "body",
            kind: BODY,
            required: true,
            description: "The question, at most 8192 UTF-8 bytes, delivered verbatim.",
        },
        Param {
            name: "timeout_ms",
            kind: Kind::Int {
                minimum: None,
                exclusive_minimum: Some(0),
                maximum: Some(TIMEOUT_SCHEMA_MAX),
            },
            required: false,
            description: "Per-call timeout in milliseconds (default 45000). Clamped to a ceiling (default 100000, env OXTAIL_ASK_PEER_MAX_TIMEOUT_MS) so the wait cannot outlast the client's own tool-call timeout; the result reports timeout_clamped_from_ms when clamped.",
        },
    ],
};

/// Timeout settings (read once at startup; positive finite, not floored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AskSettings {
    pub default_timeout_ms: f64,
    pub max_timeout_ms: f64,
}

impl AskSettings {
    pub fn from_env() -> AskSettings {
        AskSettings {
            default_timeout_ms: positive_env("OXTAIL_ASK_PEER_TIMEOUT_MS", 45_000.0),
            max_timeout_ms: positive_env("OXTAIL_ASK_PEER_MAX_TIMEOUT_MS", 100_000.0),
        }
    }

    pub fn global() -> AskSettings {
        static S: OnceLock<AskSettings> = OnceLock::new();
        *S.get_or_init(AskSettings::from_env)
    }

    /// (effective, requested) timeout in ms for an optional per-call value.
    pub fn effective(&self, requested: Option<i64>) -> (f64, f64) {
        let requested = requested.map_or(self.default_timeout_ms, |v| v as f64);
        (requested.min(self.max_timeout_ms), requested)
    }
}

/// Client cancellation, as seen by the waiting call.
#[derive(Debug, Clone)]
pub struct Cancel {
    rx: watch::Receiver<bool>,
}

impl Cancel {
    /// A pair: set the sender to `true` to cancel.
    pub fn channel() -> (watch::Sender<bool>, Cancel) {
        let (tx, rx) = watch::channel(false);
        (tx, Cancel { rx })
    }

    pub fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolve when cancelled (never, if the sender is gone uncancelled).
    pub async fn cancelled(&mut self) {
        loop {
            if *self.rx.borrow_and_update() {
                return;
            }
            if self.rx.changed().await.is_err() {
                if *self.rx.borrow() {
                    return;
                }
                std::future::pending::<()>().await;
            }
        }
    }

    /// Sleep `d`; `true` when cancelled first.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => self.is_cancelled(),
            _ = self.cancelled() => true,
        }
    }
}

/// Size, mtime and inode of a mailbox: any change means "look again".
type Signature = Option<(u64, i64, i64, u64)>;

fn signature(path: &std::path::Path) -> Signature {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

/// Watches every mailbox of the caller's session for the reply.
struct Watcher {
    layout: Layout,
    caller: Entry,
    /// The ids the reply may come from: the peer's id when asked, plus
    /// (refreshed from its entry) the id it moved to with `/clear` or `/resume`.
    peer_ids: Vec<String>,
    peer_pid: u32,
    /// `Some(request_id)` for strict correlation.
    request_id: Option<String>,
    pids: Vec<u32>,
    seen: HashMap<u32, Signature>,
    last_forced: Instant,
}

impl Watcher {
    fn new(
        layout: Layout,
        caller: Entry,
        peer_session_id: String,
        peer_pid: u32,
        request_id: Option<String>,
    ) -> Self {
        let mut w = Watcher {
            layout,
            caller,
            peer_ids: vec![peer_session_id],
            peer_pid,
            request_id,
            pids: Vec::new(),
            seen: HashMap::new(),
            last_forced: Instant::now(),
        };
        w.refresh_pids();
        w
    }

    /// Own pid first, then every other registered pid of our session id.
    fn refresh_pids(&mut self) {
        let mut pids = vec![self.caller.server_pid];
        if let Some(sid) = self.caller.client.id() {
            for pid in registry::session_pids_for_id(&self.layout, sid) {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
        self.pids = pids;
        // Beyond the original: a peer that moved to a new id (/clear) while we
        // wait replies from that id; its live entry names both.
        if let Some(peer) = registry::read_pid(&self.layout, self.peer_pid)
            && peer
                .client
                .all_ids()
                .iter()
                .any(|id| self.peer_ids.iter().any(|p| p == id))
        {
            for id in peer.client.all_ids() {
                if !self.peer_ids.iter().any(|p| p == id) {
                    self.peer_ids.push(id.to_string());
                }
            }
        }
    }

    fn matches(&self, m: &Message) -> bool {
        m.from_session_id()
            .is_some_and(|from| self.peer_ids.iter().any(|p| p == from))
            && self
                .request_id
                .as_deref()
                .is_none_or(|rid| m.reply_to() == Some(rid))
    }

    /// One check: drain the first matching message from any mailbox whose
    /// signature changed (all of them on a forced round). Errors are traced and
    /// retried on the next round.
    fn poll(&mut self) -> Option<Message> {
        let forced = self.last_forced.elapsed() >= FORCE_CHECK;
        if forced {
            self.last_forced = Instant::now();
            self.refresh_pids();
        }
        for i in 0..self.pids.len() {
            let pid = self.pids[i];
            let sig = signature(&self.layout.mailbox(pid));
            let changed = self.seen.get(&pid) != Some(&sig);
            if sig.is_none() || !(changed || forced) {
                self.seen.insert(pid, sig);
                continue;
            }
            match mailbox::drain_first_matching(&self.layout, pid, |m| self.matches(m)) {
                Ok(Some(reply)) => return Some(reply),
                Ok(None) => {
                    self.seen.insert(pid, sig);
                }
                Err(e) => {
                    self.seen.remove(&pid);
                    trace::event(
                        "ask_peer_poll_failed",
                        json!({"pid": pid, "error": e.to_string()}),
                    );
                }
            }
        }
        None
    }
}

pub fn call(ctx: &ServerCtx, call: ToolCall) -> ToolFuture<'_> {
    Box::pin(async move {
        let ToolCall { args, request } = call;
        let (tx, cancel) = Cancel::channel();
        // The client's `notifications/cancelled` and server shutdown both cancel.
        let bridge = async {
            tokio::select! {
                _ = request.ct.cancelled() => {}
                _ = ctx.shutdown_requested() => {}
            }
            let _ = tx.send(true);
            std::future::pending::<Result<(Value, Handoff), String>>().await
        };
        let ask = run(
            ctx.layout.clone(),
            ctx.entry(),
            wake::global(),
            AskSettings::global(),
            args,
            cancel,
        );
        let outcome = tokio::select! {
            outcome = ask => outcome,
            never = bridge => never,
        };
        match outcome {
            Ok((value, handoff)) => {
                // The reply's receipt once this answer is on stdout.
                ctx.after_reply
                    .register(&request.id, Box::new(move |ok| handoff.finish(ok)));
                json_result(value)
            }
            Err(text) => error_result(text),
        }
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("ask_peer: internal task failed: {e}"))
}

/// The tool body. `args` are validated; `caller` is this server's entry now.
/// Returns the answer and the hand-off of the reply it carries (settle it once
/// the answer is out: the reply's receipt, or its requeue).
pub async fn run(
    layout: Layout,
    caller: Entry,
    waker: &'static Waker,
    settings: AskSettings,
    args: Map<String, Value>,
    mut cancel: Cancel,
) -> Result<(Value, Handoff), String> {
    let a = Args(&args);
    let target = a.str("target").unwrap_or_default().to_string();
    let body = a.str("body").unwrap_or_default().to_string();
    let (effective, requested) = settings.effective(a.int("timeout_ms"));

    let (l, c, t) = (layout.clone(), caller.clone(), target.clone());
    let resolved = blocking(move || project::resolve_target(&l, &t, &c)).await?;
    let peer = match resolved {
        Ok(peer) => peer,
        // ask_peer always intends a wake, and never on the strict reply path.
        Err(err) => {
            let out = target_failure(&err, WakeMode::Lenient, &[]);
            return Ok((out, Handoff::none(&layout, &caller)));
        }
    };
    let Some(peer_sid) = peer.client.id().map(str::to_string) else {
        let out = failure(
            "peer-has-no-session-id",
            "the peer has no session id yet; it must run claim_session (or register_my_session) before it can be asked",
        );
        return Ok((out, Handoff::none(&layout, &caller)));
    };

    let request_id = new_hex_id();
    let strict = peer.supports_reply_to();
    let sent = {
        let (l, c, p, rid, sid) = (
            layout.clone(),
            caller.clone(),
            peer.clone(),
            request_id.clone(),
            peer_sid.clone(),
        );
        blocking(move || {
            let opts = NewMessage {
                request_id: Some(&rid),
                to_session_id: project::addressed_id(&target, &p),
                ..NewMessage::default()
            };
            delivery::deliver(&l, Some(&sid), p.server_pid, &body, c.client.id(), &opts)
        })
        .await?
        .map_err(|e| e.to_string())?
    };
    let message_id = sent.id().unwrap_or_default().to_string();
    // The durable record of this ask (while it waits, then pending).
    let asker = caller.client.id().map(str::to_string);
    if let Some(sid) = &asker {
        let mut ask = PendingAsk::new(sid, &request_id, crate::clock::now_ms());
        ask.target = Some(peer_sid.clone());
        ask.message_id = Some(message_id.clone());
        ask.owner_epoch = Some(caller.started_at);
        ask.requester_server_pid = Some(caller.server_pid);
        ask.timeout_ms = Some(effective as i64);
        let l = layout.clone();
        if let Err(e) = blocking(move || pending_ask::create(&l, &ask)).await? {
            trace::event(
                "ask_peer_pending_record_failed",
                json!({"request_id": request_id, "error": e.to_string()}),
            );
        }
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(effective / 1000.0);
    trace::event(
        "ask_peer_start",
        json!({
            "target_session_id": peer_sid,
            "message_id": message_id,
            "request_id": request_id,
            "require_reply_to": strict,
        }),
    );

    let mut watcher = Some(Watcher::new(
        layout.clone(),
        caller.clone(),
        peer_sid.clone(),
        peer.server_pid,
        strict.then(|| request_id.clone()),
    ));
    let wake_peer = WakePeer::from(&peer);
    // (status, whether the wake path ran).
    let start_wake = |p: WakePeer| -> JoinHandle<(WakeStatus, bool)> {
        let (l, qid) = (layout.clone(), message_id.clone());
        tokio::task::spawn_blocking(move || {
            // Already in the peer's context (its idle watcher or its hooks
            // took it): nothing to type.
            if receipts::read(&l, &qid).is_some() {
                return (WakeStatus::Fired, false);
            }
            (waker.lenient(&p), true)
        })
    };
    let mut wake_task: Option<JoinHandle<(WakeStatus, bool)>> = None;
    let mut wake_status = WakeStatus::SkippedNoTarget;
    let mut reply: Option<Message> = None;
    let mut aborted = false;
    loop {
        let mut w = watcher.take().ok_or("ask_peer: watcher lost")?;
        let (w, found) = blocking(move || {
            let found = w.poll();
            (w, found)
        })
        .await?;
        watcher = Some(w);
        if let Some(found) = found {
            reply = Some(found);
            break;
        }
        if cancel.is_cancelled() {
            aborted = true;
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if wake_task.is_none() && now >= start + GRACE {
            wake_task = Some(start_wake(wake_peer.clone()));
        }
        if cancel.sleep(POLL.min(deadline - now)).await {
            aborted = true;
            break;
        }
    }
    aborted |= cancel.is_cancelled();
    // Timed out: the ask stays pending; then one last look, so a reply that
    // landed while the record turned is returned now rather than "late".
    let mut pending = false;
    if reply.is_none() && !aborted {
        if let Some(sid) = asker.clone() {
            let (l, rid) = (layout.clone(), request_id.clone());
            pending = blocking(move || {
                pending_ask::gc(&l, pending_ask::ttl_ms());
                pending_ask::mark_pending(&l, &sid, &rid).unwrap_or(false)
            })
            .await?;
        }
        let mut w = watcher.take().ok_or("ask_peer: watcher lost")?;
        let (w, found) = blocking(move || {
            if let Some(t) = Instant::now().checked_sub(FORCE_CHECK) {
                w.last_forced = t;
            }
            let found = w.poll();
            (w, found)
        })
        .await?;
        watcher = Some(w);
        if found.is_some() {
            reply = found;
            pending = false;
        }
    }
    if !pending && let Some(sid) = asker.clone() {
        let (l, rid) = (layout.clone(), request_id.clone());
        blocking(move || pending_ask::remove(&l, &sid, &rid)).await?;
    }
    drop(watcher);
    // No reply and no wake yet (timeout shorter than the grace): the question
    // still needs the peer's attention.
    if reply.is_none() && !aborted && wake_task.is_none() {
        wake_task = Some(start_wake(wake_peer.clone()));
    }
    let mut woke = false;
    let mut raw_status = None;
    if let Some(task) = wake_task {
        tokio::select! {
            status = task => {
                let (status, ran) = status.unwrap_or((WakeStatus::SkippedNoTarget, true));
                wake_status = status;
                raw_status = ran.then_some(status);
                woke = true;
            }
            _ = cancel.cancelled() => aborted = true,
        }
    } else if reply.is_some() {
        // Answered inside the grace window: no wake was needed.
        wake_status = WakeStatus::Fired;
    }
    if woke && wake_status.woke() {
        // Confirmed by the reply itself, else by the question's receipt.
        wake_status = if reply.is_some() {
            WakeStatus::Fired
        } else {
            let id = message_id.clone();
            blocking(move || waker.confirm(wake_status, &id, 0.0)).await?
        };
    }
    let wake_path = {
        let (p, l, qid) = (wake_peer.clone(), layout.clone(), message_id.clone());
        blocking(move || ask_path(waker, &l, &qid, &p, raw_status)).await?
    };
    if woke {
        wake::trace_outcome(
            "ask_peer",
            wake_status,
            Some(&peer_sid),
            peer.client.client_type.as_str(),
        );
    }

    // Cancelled after the reply was drained: hand it back to our own mailbox.
    let redeliver = if aborted { reply.take() } else { None };
    let abort = redeliver.is_some();
    if let Some(reply) = redeliver {
        let id = reply.id().unwrap_or_default().to_string();
        let (l, c) = (layout.clone(), caller.clone());
        let redelivered =
            blocking(move || delivery::deliver_existing(&l, c.client.id(), c.server_pid, &reply))
                .await?;
        match redelivered {
            Ok(()) => trace::event("ask_peer_abort_reenqueue", json!({"message_id": id})),
            Err(e) => trace::event(
                "ask_peer_abort_reenqueue_failed",
                json!({"message_id": id, "error": e.to_string()}),
            ),
        }
    }

    let correlation = match (&reply, strict) {
        (None, _) => "none",
        (Some(_), true) => "correlated",
        (Some(_), false) => "uncorrelated",
    };
    let timed_out = reply.is_none();
    trace::event(
        "ask_peer_end",
        json!({
            "target_session_id": peer_sid,
            "message_id": message_id,
            "request_id": request_id,
            "duration_ms": start.elapsed().as_millis() as u64,
            "wake_status": wake_status.as_str(),
            "timed_out": timed_out,
            "correlation": correlation,
        }),
    );
    if abort {
        return Err("ask_peer aborted by client".into());
    }
    let mut out = payload();
    out.insert("ok".into(), Value::Bool(true));
    out.insert("message_id".into(), Value::from(message_id.clone()));
    out.insert("request_id".into(), Value::from(request_id));
    out.insert("wake_status".into(), Value::from(wake_status.as_str()));
    out.insert("wake_path".into(), Value::from(wake_path.as_str()));
    out.insert(
        "reply".into(),
        reply
            .as_ref()
            .map_or(Value::Null, |r| reply_view(r, correlation)),
    );
    out.insert("correlation".into(), Value::from(correlation));
    out.insert("timeout_ms".into(), js_number_value(effective));
    if effective < requested {
        out.insert("timeout_clamped_from_ms".into(), js_number_value(requested));
    }
    out.insert("timed_out".into(), Value::Bool(timed_out));
    if timed_out {
        // The ask stays open: the late reply is delivered marked as its
        // answer and wakes this session (false: no record, e.g. no session id).
        out.insert("pending".into(), Value::Bool(pending));
        // What happens to the question now (the answer did not come in time).
        let (l, p, id) = (layout.clone(), peer.clone(), message_id.clone());
        let o = blocking(move || outlook::outlook(&l, &id, &p, now_ms())).await?;
        write_outlook(&mut out, Some(o));
    }
    let mut handoff = Handoff::none(&layout, &caller);
    handoff.via = receipts::VIA_ASK_PEER_REPLY;
    handoff.messages.extend(reply);
    Ok((Value::Object(out), handoff))
}

/// `wake_path` of an ask: what brought the question into the peer's context
/// when its receipt says so (the idle watcher, else its hooks or its own
/// read; keystrokes when they were typed), otherwise what will.
fn ask_path(
    waker: &Waker,
    layout: &Layout,
    question: &str,
    peer: &WakePeer,
    raw: Option<WakeStatus>,
) -> WakePath {
    match receipts::read(layout, question) {
        Some(r) if r.hook_event.as_deref() == Some("IdleWatch") => WakePath::Watcher,
        Some(_) if raw == Some(WakeStatus::Fired) => WakePath::Tmux,
        Some(_) if raw == Some(WakeStatus::CodexQueued) => WakePath::CodexQueue,
        Some(_) => WakePath::Hooks,
        None => waker.path(peer, raw),
    }
}

/// `{id, body, enqueued_at, from_session_id, reply_to, correlation}`: the first
/// three copied when present, the next two `null` when absent.
fn reply_view(r: &Message, correlation: &str) -> Value {
    let f = r.fields();
    let mut m = Map::new();
    for key in ["id", "body", "enqueued_at"] {
        if let Some(v) = f.get(key) {
            m.insert(key.into(), v.clone());
        }
    }
    for key in ["from_session_id", "reply_to"] {
        m.insert(key.into(), f.get(key).cloned().unwrap_or(Value::Null));
    }
    m.insert("correlation".into(), Value::from(correlation));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_and_numbers() {
        let s = AskSettings {
            default_timeout_ms: 45_000.0,
            max_timeout_ms: 100_000.0,
        };
        assert_eq!(s.effective(None), (45_000.0, 45_000.0));
        assert_eq!(s.effective(Some(250_000)), (100_000.0, 250_000.0));
    }

    #[tokio::test]
    async fn cancel_wakes_sleepers() {
        let (tx, mut c) = Cancel::channel();
        assert!(!c.sleep(Duration::from_millis(1)).await);
        tx.send(true).unwrap();
        assert!(c.sleep(Duration::from_secs(30)).await);
        assert!(c.is_cancelled());
        let (tx, mut c) = Cancel::channel();
        drop(tx);
        assert!(!c.sleep(Duration::from_millis(1)).await);
    }
}
