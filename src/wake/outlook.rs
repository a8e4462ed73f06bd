//! `delivery_outlook`: what will bring a message just sent into the receiver's
//! context, said at send time so a silent strand is visible (the original's
//! later field, with more values: the original only says
//! `stranded_until_read` and `unknown_liveness`).
//!
//! | value | when | what happens |
//! |---|---|---|
//! | `delivered` | a receipt already exists | it is in the agent's context |
//! | `hooks_mid_turn` | the receiver is busy (fresh `busy` marker) | its hooks deliver it at its next tool call or when its turn ends |
//! | `watcher_armed` | idle, its idle watcher is armed (Claude Code `asyncRewake`) | the watcher delivers it now and the agent starts a turn with it |
//! | `stranded_until_read` | idle or stale-busy, no wake fired | nothing delivers it until the agent reads or is woken |
//! | `unknown_liveness` | no activity marker (no hooks, or never claimed) | it arrives whenever that agent next reads |
//!
//! Invariant defended: a pure reading of markers and receipts; it never
//! changes what happens to the message.

use crate::store::activity;
use crate::store::idle_watch;
use crate::store::paths::Layout;
use crate::store::receipts;
use crate::store::registry::Entry;

use super::BUSY_TTL_MS;

/// One `delivery_outlook` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outlook {
    Delivered,
    HooksMidTurn,
    WatcherArmed,
    StrandedUntilRead,
    UnknownLiveness,
}

impl Outlook {
    pub fn as_str(self) -> &'static str {
        match self {
            Outlook::Delivered => "delivered",
            Outlook::HooksMidTurn => "hooks_mid_turn",
            Outlook::WatcherArmed => "watcher_armed",
            Outlook::StrandedUntilRead => "stranded_until_read",
            Outlook::UnknownLiveness => "unknown_liveness",
        }
    }

    /// The one-line `hint` beside it.
    pub fn hint(self) -> &'static str {
        match self {
            Outlook::Delivered => {
                "already in the peer's context (message_status says when and how)"
            }
            Outlook::HooksMidTurn => {
                "the peer is mid-turn: its hooks show it at its next tool call or when its turn ends"
            }
            Outlook::WatcherArmed => {
                "the peer is idle and its idle watcher delivers this now: it starts a turn with it"
            }
            Outlook::StrandedUntilRead => {
                "the peer is idle and nothing delivers this until it reads or is woken: fine for FYI; if it must act now, use ask_peer or wake:\"auto\""
            }
            Outlook::UnknownLiveness => {
                "the peer's liveness is unknown (no activity marker: no hooks, or Codex without them): it sees this at its next read; if it must act, use ask_peer"
            }
        }
    }
}

/// The outlook of `message_id`, just delivered to `peer`, at `now_ms`.
pub fn outlook(layout: &Layout, message_id: &str, peer: &Entry, now_ms: f64) -> Outlook {
    if receipts::read(layout, message_id).is_some() {
        return Outlook::Delivered;
    }
    let watcher = || {
        peer.client
            .id()
            .is_some_and(|sid| idle_watch::armed(layout, sid, now_ms as i64).is_some())
    };
    match activity::read(layout, peer.client.id(), now_ms) {
        Some(a) if a.busy_within(BUSY_TTL_MS) => Outlook::HooksMidTurn,
        _ if watcher() => Outlook::WatcherArmed,
        None => Outlook::UnknownLiveness,
        Some(_) => Outlook::StrandedUntilRead,
    }
}
