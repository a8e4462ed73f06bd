//! Waking idle peers: typing a short prompt into a peer's tmux pane so its agent
//! starts a turn and drains its mailbox.
//!
//! Three paths (§10.3): *lenient* (`wake:"auto"`, every `ask_peer` and a late
//! reply to a pending ask: skip a fresh `busy` peer, else keystrokes), *strict
//! reply auto-wake* (`reply_to` set, `wake` unset: the [`gate`] decides) and
//! *none*. Every keystroke wake goes through [`Waker::keystroke`].
//!
//! Beyond the original: a receiver whose idle watcher is armed ([`watcher`],
//! Claude Code `asyncRewake`) is woken by its mail itself, so no keystrokes
//! are typed into its pane ([`WakeStatus::WatcherArmed`]); and a wake is
//! reported `fired` only once the message's delivery receipt exists
//! ([`Waker::confirm`]; for the watcher path it waits up to
//! [`WakeSettings::confirm_ms`]), otherwise `fired_unconfirmed`. Each result names the path that delivers
//! ([`WakePath`]).
//!
//! Invariants defended: keystrokes only go to the pane the process tree confirms
//! for the peer's pid ([`pane`]); a wake never affects delivery (the message is
//! already enqueued) and never fails a tool call — every outcome is a
//! [`WakeStatus`]; wakes to one session within the debounce window coalesce;
//! `fired` is never reported for a wake whose receipt did not appear.

pub mod codex_queue;
pub mod debounce;
pub mod gate;
pub mod outlook;
pub mod pane;
pub mod tmux;
pub mod watcher;

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::positive_env;
use crate::store::activity::{self, ActivitySnapshot};
use crate::store::idle_watch;
use crate::store::paths::Layout;
use crate::store::receipts;
use crate::store::registry::Entry;
use crate::trace;

use debounce::Debounce;
use gate::AutowakeSettings;
use tmux::Tmux;

/// The prompt typed into an idle peer's composer (88 bytes).
pub const WAKE_TEXT: &str =
    "oxtail msg: read_my_messages; reply via send_message; set reply_to=request_id if present";

/// A `busy` marker younger than this blocks a lenient wake.
pub const BUSY_TTL_MS: f64 = 600_000.0;

/// Pause between the typed text and Enter for Codex (its paste heuristic).
pub const CODEX_SUBMIT_GAP: Duration = Duration::from_millis(500);

/// `wake_reason` of the strict reply path.
pub const REPLY_TO_DEFAULT: &str = "reply_to_default";
/// `wake_reason` of a reply that consumed a pending ask (the original's name).
pub const LATE_REPLY_TO_PENDING: &str = "late_reply_to_pending";
/// `wake_reason` of such a reply sent with `wake:"off"`.
pub const LATE_REPLY_SUPPRESSED: &str = "late_reply_to_pending_suppressed";
/// Default confirm window of a wake (`OXTAIL_WAKE_CONFIRM_MS`).
pub const CONFIRM_MS: f64 = 1500.0;

/// Outcome of a wake decision, as reported in `wake_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WakeStatus {
    /// Woken, and the message's receipt appeared (or an ask's reply came).
    Fired,
    /// Woken (keystrokes typed, or the idle watcher had it), no receipt yet.
    FiredUnconfirmed,
    /// Internal, before [`Waker::confirm`]: the receiver's idle watcher is
    /// armed, so its mail wakes it; reported as `fired` / `fired_unconfirmed`.
    WatcherArmed,
    /// Internal, before [`Waker::confirm`]: the wake text was queued into the
    /// idle Codex session (`codex queue`, [`codex_queue`]).
    CodexQueued,
    SkippedBusy,
    SkippedDebounced,
    SkippedNoTarget,
    SkippedNoFreshIdle,
    SkippedRateLimited,
    SkippedDeduped,
    SkippedStoreError,
    Disabled,
    SkippedUnsupported,
}

impl WakeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WakeStatus::Fired => "fired",
            WakeStatus::FiredUnconfirmed => "fired_unconfirmed",
            WakeStatus::WatcherArmed => "watcher_armed",
            WakeStatus::CodexQueued => "codex_queued",
            WakeStatus::SkippedBusy => "skipped_busy",
            WakeStatus::SkippedDebounced => "skipped_debounced",
            WakeStatus::SkippedNoTarget => "skipped_no_target",
            WakeStatus::SkippedNoFreshIdle => "skipped_no_fresh_idle",
            WakeStatus::SkippedRateLimited => "skipped_rate_limited",
            WakeStatus::SkippedDeduped => "skipped_deduped",
            WakeStatus::SkippedStoreError => "skipped_store_error",
            WakeStatus::Disabled => "disabled",
            WakeStatus::SkippedUnsupported => "skipped_unsupported",
        }
    }
}

impl WakeStatus {
    /// A wake happened (keystrokes typed or the watcher has the mail).
    pub fn woke(self) -> bool {
        matches!(
            self,
            WakeStatus::Fired
                | WakeStatus::FiredUnconfirmed
                | WakeStatus::WatcherArmed
                | WakeStatus::CodexQueued
        )
    }
}

/// `wake_path`: what brings the message into the receiver's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakePath {
    /// Its idle watcher (Claude Code `asyncRewake`) delivers it and wakes it.
    Watcher,
    /// It is mid-turn: its hooks deliver it at the next tool call or turn end.
    Hooks,
    /// Keystrokes were typed into its verified tmux pane.
    Tmux,
    /// The wake text was queued into its Codex session (`codex queue`).
    CodexQueue,
    /// Nothing does until it reads (or is woken).
    None,
}

impl WakePath {
    pub fn as_str(self) -> &'static str {
        match self {
            WakePath::Watcher => "watcher",
            WakePath::Hooks => "hooks",
            WakePath::Tmux => "tmux",
            WakePath::CodexQueue => "codex_queue",
            WakePath::None => "none",
        }
    }
}

impl std::fmt::Display for WakeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `OXTAIL_ASK_PEER_WAKE_STRATEGY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Per-client routing (Codex gets the gap before Enter).
    Auto,
    /// Text + Enter with no gap for every client.
    Legacy,
    /// Never type.
    Off,
}

impl Strategy {
    /// Lower-cased, not trimmed; anything unknown is `auto`.
    pub fn parse(value: Option<&str>) -> Strategy {
        match value.map(str::to_lowercase).as_deref() {
            Some("legacy") => Strategy::Legacy,
            Some("off") => Strategy::Off,
            _ => Strategy::Auto,
        }
    }
}

/// Everything wake reads from the environment at startup.
#[derive(Debug, Clone)]
pub struct WakeSettings {
    pub strategy: Strategy,
    pub debounce_ms: f64,
    pub autowake: AutowakeSettings,
    pub codex_gap: Duration,
    /// `Some(v)` pins the `OXTAIL_AUTOWAKE` kill switch; `None` reads it per decision.
    pub autowake_disabled: Option<bool>,
    /// How long a send waits for the receipt that confirms a wake
    /// (`OXTAIL_WAKE_CONFIRM_MS`, default 1500).
    pub confirm_ms: f64,
    /// `codex queue` for Codex peers (`None`: off, or no `codex`).
    pub codex_queue: Option<codex_queue::CodexQueue>,
}

impl Default for WakeSettings {
    fn default() -> Self {
        WakeSettings {
            strategy: Strategy::Auto,
            debounce_ms: 1000.0,
            autowake: AutowakeSettings::default(),
            codex_gap: CODEX_SUBMIT_GAP,
            autowake_disabled: None,
            confirm_ms: CONFIRM_MS,
            codex_queue: None,
        }
    }
}

impl WakeSettings {
    pub fn from_env() -> WakeSettings {
        WakeSettings {
            strategy: Strategy::parse(
                std::env::var("OXTAIL_ASK_PEER_WAKE_STRATEGY")
                    .ok()
                    .as_deref(),
            ),
            debounce_ms: positive_env("OXTAIL_WAKE_DEBOUNCE_MS", 1000.0),
            autowake: AutowakeSettings::from_env(),
            codex_gap: CODEX_SUBMIT_GAP,
            autowake_disabled: None,
            confirm_ms: positive_env("OXTAIL_WAKE_CONFIRM_MS", CONFIRM_MS),
            codex_queue: codex_queue::CodexQueue::from_env(),
        }
    }
}

/// What wake needs to know about a peer (taken from its registry entry).
#[derive(Debug, Clone, PartialEq)]
pub struct WakePeer {
    pub session_id: Option<String>,
    pub server_pid: u32,
    /// The peer's self-written cached pane: only its presence counts.
    pub tmux_pane: Option<String>,
    /// `claude-code`, `codex` or `unknown`.
    pub client_type: String,
}

impl From<&Entry> for WakePeer {
    fn from(e: &Entry) -> WakePeer {
        WakePeer {
            session_id: e.client.session_id.clone(),
            server_pid: e.server_pid,
            tmux_pane: e.tmux_pane.clone(),
            client_type: e.client.client_type.as_str().to_string(),
        }
    }
}

/// The `wake` argument of `send_message` / `reply_to_message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeArg {
    Off,
    Auto,
}

impl WakeArg {
    pub fn parse(s: &str) -> Option<WakeArg> {
        match s {
            "off" => Some(WakeArg::Off),
            "auto" => Some(WakeArg::Auto),
            _ => None,
        }
    }
}

/// Which wake path a delivery takes (§10.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeMode<'a> {
    /// `wake:"off"`, or unset without `reply_to`.
    None,
    /// `wake:"auto"` (also for replies).
    Lenient,
    /// `reply_to` set and `wake` unset: the strict gate, `wake_reason` set.
    ReplyDefault(&'a str),
    /// A reply that consumed a pending ask: lenient, `late_reply_to_pending`.
    LateReply,
    /// The same with `wake:"off"`: no wake, `late_reply_to_pending_suppressed`.
    LateReplySuppressed,
}

impl<'a> WakeMode<'a> {
    pub fn choose(wake: Option<WakeArg>, reply_to: Option<&'a str>) -> WakeMode<'a> {
        match (wake, reply_to.filter(|r| !r.is_empty())) {
            (Some(WakeArg::Auto), _) => WakeMode::Lenient,
            (None, Some(r)) => WakeMode::ReplyDefault(r),
            _ => WakeMode::None,
        }
    }

    /// The mode of a reply that consumed a pending ask.
    pub fn late(wake: Option<WakeArg>) -> WakeMode<'a> {
        match wake {
            Some(WakeArg::Off) => WakeMode::LateReplySuppressed,
            _ => WakeMode::LateReply,
        }
    }

    /// Whether a wake is intended at all.
    pub fn intended(&self) -> bool {
        !matches!(self, WakeMode::None | WakeMode::LateReplySuppressed)
    }

    /// `wake_reason`: `reply_to_default` on the strict reply path, the late
    /// reply reasons on theirs.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            WakeMode::ReplyDefault(_) => Some(REPLY_TO_DEFAULT),
            WakeMode::LateReply => Some(LATE_REPLY_TO_PENDING),
            WakeMode::LateReplySuppressed => Some(LATE_REPLY_SUPPRESSED),
            _ => None,
        }
    }
}

impl WakePeer {
    fn sid(&self) -> Option<&str> {
        self.session_id.as_deref().filter(|s| !s.is_empty())
    }
}

/// The wake machinery of one server process (one debounce store).
#[derive(Debug)]
pub struct Waker {
    settings: WakeSettings,
    /// `None`: `Layout::from_env()` on every decision.
    layout: Option<Layout>,
    tmux: Tmux,
    debounce: Debounce,
}

static GLOBAL: OnceLock<Waker> = OnceLock::new();

/// This process's waker, configured from the environment on first use.
pub fn global() -> &'static Waker {
    GLOBAL.get_or_init(|| Waker::new(WakeSettings::from_env(), None, Tmux::ambient()))
}

impl Waker {
    pub fn new(settings: WakeSettings, layout: Option<Layout>, tmux: Tmux) -> Waker {
        let debounce = Debounce::new(settings.debounce_ms);
        Waker {
            settings,
            layout,
            tmux,
            debounce,
        }
    }

    pub fn settings(&self) -> &WakeSettings {
        &self.settings
    }

    pub fn debounce(&self) -> &Debounce {
        &self.debounce
    }

    fn layout(&self) -> Layout {
        self.layout.clone().unwrap_or_else(Layout::from_env)
    }

    fn autowake_disabled(&self) -> bool {
        self.settings
            .autowake_disabled
            .unwrap_or_else(gate::kill_switch_from_env)
    }

    /// The peer's activity marker now.
    pub fn activity(&self, peer: &WakePeer) -> Option<ActivitySnapshot> {
        activity::read(&self.layout(), peer.sid(), activity::now_ms())
    }

    /// Run the chosen path; `None` when no wake is intended.
    pub fn wake(&self, mode: WakeMode<'_>, peer: &WakePeer) -> Option<WakeStatus> {
        match mode {
            WakeMode::None | WakeMode::LateReplySuppressed => None,
            WakeMode::Lenient | WakeMode::LateReply => Some(self.lenient(peer)),
            WakeMode::ReplyDefault(reply_to) => Some(self.reply_default(peer, reply_to)),
        }
    }

    fn fresh_busy(&self, peer: &WakePeer) -> bool {
        self.activity(peer)
            .is_some_and(|s| s.busy_within(BUSY_TTL_MS))
    }

    /// Whether the peer's idle watcher is armed now (a live record, and the
    /// peer not mid-turn): its own mail wakes it.
    pub fn watcher_armed(&self, peer: &WakePeer) -> bool {
        let Some(sid) = peer.sid() else { return false };
        idle_watch::armed(&self.layout(), sid, crate::clock::now_ms()).is_some()
            && !self.fresh_busy(peer)
    }

    /// Lenient path: skip a fresh `busy` peer; a peer whose idle watcher is
    /// armed needs no keystrokes; else keystrokes.
    pub fn lenient(&self, peer: &WakePeer) -> WakeStatus {
        if let Some(snap) = self.activity(peer)
            && snap.is("busy")
            && snap.age_ms < BUSY_TTL_MS
        {
            trace::event(
                "send_wake_skipped_busy",
                json!({"target_session_id": peer.session_id}),
            );
            return WakeStatus::SkippedBusy;
        }
        if self.watcher_armed(peer) {
            return WakeStatus::WatcherArmed;
        }
        self.keystroke(peer)
    }

    /// Strict reply auto-wake path (`reply_to` set, `wake` unset). An armed
    /// idle watcher wakes the requester with the reply itself.
    pub fn reply_default(&self, peer: &WakePeer, reply_to: &str) -> WakeStatus {
        if self.watcher_armed(peer) {
            return WakeStatus::WatcherArmed;
        }
        let now = activity::now_ms();
        let layout = self.layout();
        let snapshot = activity::read(&layout, peer.sid(), now);
        let decision = gate::decide(
            &layout,
            &self.settings.autowake,
            self.autowake_disabled(),
            peer.sid(),
            reply_to,
            snapshot.as_ref(),
            now,
        );
        match decision {
            Err(status) => {
                trace::event(
                    "autowake_reply_skipped",
                    json!({"target_session_id": peer.session_id, "status": status.as_str()}),
                );
                status
            }
            Ok(()) => {
                trace::event(
                    "autowake_reply_fire",
                    json!({"target_session_id": peer.session_id}),
                );
                self.keystroke(peer)
            }
        }
    }

    /// The wake itself: strategy, debounce, then for a Codex peer whose
    /// app-server daemon is up `codex queue` (no keystrokes), else the
    /// verified pane and send-keys.
    pub fn keystroke(&self, peer: &WakePeer) -> WakeStatus {
        if self.settings.strategy == Strategy::Off {
            trace::event("ask_peer_wake_skipped", json!({"reason": "strategy-off"}));
            return WakeStatus::Disabled;
        }
        let sid = peer.sid();
        if let Some(sid) = sid
            && self.debounce.recently_woke(sid, activity::now_ms())
        {
            return debounced(peer);
        }
        let mut claimed = false;
        if let (Some(q), Some(sid)) = (&self.settings.codex_queue, sid)
            && peer.client_type == "codex"
            && q.daemon_up()
        {
            if !self.debounce.try_claim(sid, activity::now_ms()) {
                return debounced(peer);
            }
            claimed = true;
            match q.queue(sid, WAKE_TEXT) {
                Ok(()) => {
                    trace::event("codex_queue_wake_fired", json!({"target_session_id": sid}));
                    return WakeStatus::CodexQueued;
                }
                Err(error) => trace::event(
                    "codex_queue_wake_failed",
                    json!({"target_session_id": sid, "error": error}),
                ),
            }
        }
        let cached = peer.tmux_pane.as_deref().filter(|p| !p.is_empty());
        let Some(pane) = pane::verified_pane(&self.tmux, cached, peer.server_pid) else {
            trace::event(
                "ask_peer_wake_skipped",
                json!({
                    "reason": "no-verified-pane",
                    "cached": peer.tmux_pane,
                    "server_pid": peer.server_pid,
                    "target_session_id": peer.session_id,
                }),
            );
            return WakeStatus::SkippedNoTarget;
        };
        if cached != Some(pane.as_str()) {
            trace::event(
                "ask_peer_wake_pane_refreshed",
                json!({"cached": peer.tmux_pane, "live": pane, "server_pid": peer.server_pid}),
            );
        }
        // Stamp before firing so a concurrent second wake is coalesced.
        if let Some(sid) = sid
            && !claimed
            && !self.debounce.try_claim(sid, activity::now_ms())
        {
            return debounced(peer);
        }
        let gap = self.settings.strategy == Strategy::Auto && peer.client_type == "codex";
        match self.fire(&pane, gap) {
            Ok(()) => {
                trace::event("ask_peer_wake_fired", json!({"target": pane}));
                WakeStatus::Fired
            }
            Err(error) => {
                trace::event(
                    "ask_peer_wake_failed",
                    json!({"target": pane, "error": error}),
                );
                WakeStatus::SkippedNoTarget
            }
        }
    }

    /// The reported status of a wake for `message_id`: a wake that happened
    /// (keystrokes, a queued Codex prompt, or the watcher had the mail) is
    /// `fired` once the message's receipt exists, else `fired_unconfirmed`;
    /// any other status is returned as it is. Only the watcher path waits (at
    /// most `window_ms`): it delivers within tens of milliseconds, while an
    /// agent woken by keystrokes or a queued prompt first runs a model turn,
    /// seconds away — a sender must not sit out the window for that.
    pub fn confirm(&self, status: WakeStatus, message_id: &str, window_ms: f64) -> WakeStatus {
        if !status.woke() {
            return status;
        }
        let window_ms = if status == WakeStatus::WatcherArmed {
            window_ms
        } else {
            0.0
        };
        let layout = self.layout();
        let deadline =
            std::time::Instant::now() + Duration::from_secs_f64(window_ms.max(0.0) / 1000.0);
        loop {
            if receipts::read(&layout, message_id).is_some() {
                return WakeStatus::Fired;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return WakeStatus::FiredUnconfirmed;
            }
            std::thread::sleep(Duration::from_millis(20).min(deadline - now));
        }
    }

    /// `wake_path` of a delivery to `peer` whose wake had `status` (before
    /// [`Waker::confirm`]).
    pub fn path(&self, peer: &WakePeer, status: Option<WakeStatus>) -> WakePath {
        match status {
            Some(WakeStatus::WatcherArmed) => WakePath::Watcher,
            Some(WakeStatus::CodexQueued) => WakePath::CodexQueue,
            Some(WakeStatus::Fired | WakeStatus::FiredUnconfirmed) => WakePath::Tmux,
            _ if self.fresh_busy(peer) => WakePath::Hooks,
            _ if self.watcher_armed(peer) => WakePath::Watcher,
            _ => WakePath::None,
        }
    }

    fn fire(&self, pane: &str, codex_gap: bool) -> Result<(), String> {
        self.tmux.send_literal(pane, WAKE_TEXT)?;
        if codex_gap {
            std::thread::sleep(self.settings.codex_gap);
        }
        self.tmux.send_enter(pane)
    }
}

fn debounced(peer: &WakePeer) -> WakeStatus {
    trace::event(
        "ask_peer_wake_skipped",
        json!({"reason": "debounced", "target_session_id": peer.session_id}),
    );
    WakeStatus::SkippedDebounced
}

/// Trace the `wake_outcome` event that `oxtail diagnose` tallies.
pub fn trace_outcome(
    via: &str,
    status: WakeStatus,
    target_session_id: Option<&str>,
    client_type: &str,
) {
    trace::event(
        "wake_outcome",
        json!({
            "via": via,
            "wake_status": status.as_str(),
            "target_session_id": target_session_id.map_or(Value::Null, Value::from),
            "client_type": client_type,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_text_is_short_and_names_the_tools() {
        assert_eq!(WAKE_TEXT.len(), 88);
        assert!(WAKE_TEXT.contains("read_my_messages"));
        assert!(WAKE_TEXT.contains("send_message"));
    }

    #[test]
    fn wake_mode_choice() {
        assert_eq!(WakeMode::choose(None, None), WakeMode::None);
        assert_eq!(WakeMode::choose(None, Some("")), WakeMode::None);
        assert_eq!(
            WakeMode::choose(Some(WakeArg::Off), Some("r")),
            WakeMode::None
        );
        assert_eq!(
            WakeMode::choose(Some(WakeArg::Auto), Some("r")),
            WakeMode::Lenient
        );
        assert_eq!(
            WakeMode::choose(Some(WakeArg::Auto), None),
            WakeMode::Lenient
        );
        let strict = WakeMode::choose(None, Some("r"));
        assert_eq!(strict, WakeMode::ReplyDefault("r"));
        assert_eq!(strict.reason(), Some("reply_to_default"));
        assert!(strict.intended());
        assert_eq!(WakeMode::Lenient.reason(), None);
        assert_eq!(WakeMode::late(None), WakeMode::LateReply);
        assert_eq!(
            WakeMode::late(Some(WakeArg::Auto)).reason(),
            Some("late_reply_to_pending")
        );
        let off = WakeMode::late(Some(WakeArg::Off));
        assert_eq!(off.reason(), Some("late_reply_to_pending_suppressed"));
        assert!(!off.intended());
        assert_eq!(WakeArg::parse("auto"), Some(WakeArg::Auto));
        assert_eq!(WakeArg::parse("AUTO"), None);
    }

    #[test]
    fn strategy_parsing() {
        assert_eq!(Strategy::parse(None), Strategy::Auto);
        assert_eq!(Strategy::parse(Some("LEGACY")), Strategy::Legacy);
        assert_eq!(Strategy::parse(Some("Off")), Strategy::Off);
        assert_eq!(Strategy::parse(Some(" off")), Strategy::Auto);
        assert_eq!(Strategy::parse(Some("bogus")), Strategy::Auto);
    }

    fn peer(pane: Option<&str>) -> WakePeer {
        WakePeer {
            session_id: Some("11111111-1111-1111-1111-111111111111".into()),
            server_pid: std::process::id(),
            tmux_pane: pane.map(str::to_string),
            client_type: "claude-code".into(),
        }
    }

    #[test]
    fn strategy_off_is_disabled_and_no_pane_is_no_target() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path().join(".oxtail"));
        let off = WakeSettings {
            strategy: Strategy::Off,
            ..WakeSettings::default()
        };
        let tmux = Tmux::private(tmp.path(), Some("none"));
        let w = Waker::new(off, Some(layout.clone()), tmux.clone());
        assert_eq!(w.keystroke(&peer(Some("%1"))), WakeStatus::Disabled);
        let w = Waker::new(WakeSettings::default(), Some(layout), tmux);
        assert_eq!(w.keystroke(&peer(None)), WakeStatus::SkippedNoTarget);
        // A cached pane but no tmux server: nothing verifies it.
        assert_eq!(w.keystroke(&peer(Some("%0"))), WakeStatus::SkippedNoTarget);
        assert!(w.debounce().is_empty());
    }
}
