//! The status model: what `oxtail status` shows, computed from [`Facts`] by a
//! pure function (no I/O, no clock: `Facts::now_ms` is the only time), so
//! every rule here is tested with fixtures and every renderer (the one-shot
//! table, `--json`, the live screen) shows the same thing.
//!
//! Invariants defended:
//! - one row per agent: entries sharing a session id are one agent (alive if
//!   any of them is), and its unread count is the number of distinct message
//!   ids across all of their mailboxes — what a union drain would deliver;
//! - mail nobody can read is never hidden: a dead agent's queued mail and a
//!   mailbox with no registry entry and no live owner are "stranded";
//! - what the store does not record (receipts, open asks; a 0.14 peer writes
//!   neither) is reported as unknown, not as absent;
//! - a cycle of waits whose members are all alive is a deadlock; a live
//!   agent waiting on a dead or vanished one is an orphaned wait.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::store::registry::StateCard;
use crate::wake::BUSY_TTL_MS;

use super::facts::{EntryFacts, Facts, Scope};
use super::process::ProcSig;
use super::sources::OpenAsk;
use super::waits;

/// A marker timestamp this far in the future reads as "unknown age".
const FUTURE_TOLERANCE_MS: i64 = 2_000;

/// Default number of messages in the log.
pub const DEFAULT_LOG_LIMIT: usize = 20;

/// What the caller wants beyond the agent rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Include the message log, at most this many messages (newest last).
    pub log: Option<usize>,
    /// Include message bodies in the log.
    pub bodies: bool,
}

/// One whole view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub schema_version: u32,
    /// The project shown; `null` with `--all`.
    pub project_root: Option<String>,
    pub all_projects: bool,
    /// Unix seconds and milliseconds.
    pub generated_at: i64,
    pub generated_at_ms: i64,
    /// Which record kinds this store holds (`false`: shown as unknown).
    pub records: Records,
    pub agents: Vec<Agent>,
    /// Mailboxes with mail and no registry entry.
    pub unowned_mailboxes: Vec<UnownedMailbox>,
    /// The wait graph: one edge per open ask of an agent shown.
    pub waits: Vec<Wait>,
    pub cycles: Vec<Cycle>,
    pub trouble: Trouble,
    pub warnings: Vec<String>,
    /// The message log (with `--log` / the `l` key), oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comms: Option<Vec<CommsMessage>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Records {
    pub receipts: bool,
    pub pending_asks: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Alive, its hook marked it busy less than 10 minutes ago.
    Busy,
    /// Alive, its hook marked it idle.
    Idle,
    /// Alive, activity unknown (no marker, a stale busy marker, an odd one).
    Unknown,
    /// Its server process is gone (or its pid now belongs to another process).
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LivenessReason {
    MarkerBusy,
    MarkerIdle,
    /// A busy marker older than the busy window (a turn interrupted without
    /// its Stop hook, or a very long turn).
    BusyStale,
    NoMarker,
    /// A marker holding something other than `busy` / `idle`.
    OtherMarker,
    Exited,
    PidReused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    High,
    /// Some line could not be read: the count may be off.
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// `last_delivery` holds the newest receipt.
    Delivered,
    /// Nothing has been taken out of its mailboxes yet.
    None,
    /// Messages were taken but no receipt says when (a reader that writes no
    /// receipts, e.g. a 0.14 peer; or this store records none).
    Unknown,
}

/// The newest receipted delivery to an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub message_id: String,
    pub delivered_at_ms: i64,
    pub age_s: Option<i64>,
    pub via: Option<String>,
    pub from_session_id: Option<String>,
}

/// One agent (all registry entries sharing a session id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agent {
    pub session_id: Option<String>,
    /// First 8 characters of the session id, or `pid:<n>` without one.
    pub short_id: String,
    /// The tmux session, else the short id.
    pub name: String,
    pub client_type: String,
    /// The newest live entry's pid (else the newest entry's).
    pub server_pid: u32,
    /// Every entry's pid (their mailboxes are this agent's).
    pub server_pids: Vec<u32>,
    pub started_at: i64,
    pub cwd: String,
    pub project_root: String,
    pub tmux_session: Option<String>,
    pub tmux_pane: Option<String>,
    /// The state card as stored (`set_my_state`).
    pub state: Option<StateCard>,
    pub purpose: Option<String>,
    pub purpose_age_s: Option<i64>,
    pub liveness: Liveness,
    pub liveness_reason: LivenessReason,
    /// Age of the activity marker (`null`: none, or dated in the future).
    pub activity_age_s: Option<i64>,
    pub proc_sig: ProcSig,
    pub unread: usize,
    pub unread_confidence: Confidence,
    /// Dead with unread mail.
    pub stranded: bool,
    pub last_delivery: Option<Delivery>,
    pub last_delivery_state: DeliveryState,
    /// `null`: this store records no open asks (unknown).
    pub open_asks: Option<usize>,
    /// The freshest open ask of this agent.
    pub waiting: Option<Wait>,
}

/// A mailbox with mail and no registry entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnownedMailbox {
    pub server_pid: u32,
    /// Some process has the pid (it may not be an oxtail server).
    pub pid_alive: bool,
    pub unread: usize,
    pub unread_confidence: Confidence,
    /// Dead owner: nobody will ever read this mail.
    pub stranded: bool,
    pub senders: Vec<String>,
    pub oldest_enqueued_at: Option<f64>,
}

/// One open ask: an edge of the wait graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wait {
    pub requester_session_id: String,
    pub requester_short_id: String,
    pub requester_name: String,
    /// `null`: the ask names no target and none could be matched.
    pub target_session_id: Option<String>,
    pub target_short_id: Option<String>,
    pub target_name: Option<String>,
    /// `null`: the target is not registered (any more).
    pub target_liveness: Option<Liveness>,
    pub request_id: String,
    pub message_id: Option<String>,
    pub state: Option<String>,
    pub since_ms: i64,
    pub age_s: Option<i64>,
    /// A live requester waiting on a dead or vanished target.
    pub orphaned: bool,
    pub in_cycle: bool,
    pub cycle_all_live: bool,
}

/// A cycle of the wait graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cycle {
    pub members: Vec<String>,
    pub session_ids: Vec<String>,
    /// Every member alive: a deadlock.
    pub all_live: bool,
}

/// What needs a person (`--check` fails when `needs_attention`).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Trouble {
    pub deadlocks: usize,
    pub stale_cycles: usize,
    pub orphaned: usize,
    /// Messages queued for agents that are dead or gone.
    pub stranded_mail: usize,
    pub stranded_mail_owners: Vec<String>,
    pub needs_attention: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommsStatus {
    /// A receipt says it reached the recipient's model.
    Delivered,
    /// Still in the recipient's mailboxes.
    Queued,
    /// Taken out of the mailbox, no receipt (see [`DeliveryState::Unknown`]).
    Unknown,
}

/// One message of the log (from the recipient's received-ledger).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommsMessage {
    pub message_id: String,
    pub from_session_id: Option<String>,
    pub from_name: String,
    pub to_session_id: String,
    pub to_name: String,
    /// `enqueued_at`, unix seconds.
    pub at: Option<f64>,
    pub status: CommsStatus,
    pub delivered_at_ms: Option<i64>,
    pub via: Option<String>,
    pub request_id: Option<String>,
    pub reply_to: Option<String>,
    /// Only with `--bodies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// `now - then` in whole seconds, `None` when `then` lies in the future
/// beyond the tolerance.
fn age_s(now_ms: i64, then_ms: i64) -> Option<i64> {
    elapsed_s(now_ms - then_ms)
}

/// An elapsed time in whole seconds; `None` when it is negative beyond the
/// tolerance (a timestamp in the future).
fn elapsed_s(ms: i64) -> Option<i64> {
    (ms >= -FUTURE_TOLERANCE_MS).then(|| ms.max(0) / 1000)
}

/// The first 8 characters of a session id.
pub fn short_sid(sid: &str) -> String {
    sid.chars().take(8).collect()
}

/// Build the snapshot (pure).
pub fn build(facts: &Facts, opts: &Options) -> Snapshot {
    let groups = group(&facts.entries);
    let mut agents: Vec<Agent> = groups.iter().map(|g| agent(facts, g)).collect();
    let sids: Vec<Option<String>> = agents.iter().map(|a| a.session_id.clone()).collect();
    let by_sid: HashMap<&str, usize> = sids
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_deref().map(|s| (s, i)))
        .collect();
    let all = facts.scope == Scope::All;
    let in_scope: Vec<bool> = groups
        .iter()
        .map(|g| all || g.rep(facts).in_scope)
        .collect();

    let (waits, cycles) = match &facts.asks {
        Some(asks) => wait_graph(facts, asks, &agents, &by_sid, &in_scope),
        None => (Vec::new(), Vec::new()),
    };
    for (i, a) in agents.iter_mut().enumerate() {
        if facts.asks.is_none() || !in_scope[i] {
            continue;
        }
        let mine: Vec<&Wait> = waits
            .iter()
            .filter(|w| Some(w.requester_session_id.as_str()) == a.session_id.as_deref())
            .collect();
        a.open_asks = Some(mine.len());
        a.waiting = mine.iter().max_by_key(|w| w.since_ms).map(|w| (*w).clone());
    }

    let shown_sids: HashSet<String> = agents
        .iter()
        .zip(&in_scope)
        .filter(|(_, s)| **s)
        .filter_map(|(a, _)| a.session_id.clone())
        .collect();
    let unowned = unowned_mailboxes(facts, &shown_sids);
    let comms = opts
        .log
        .map(|n| comms_log(facts, &agents, &by_sid, &in_scope, n, opts.bodies));

    let mut shown: Vec<Agent> = agents
        .into_iter()
        .zip(&in_scope)
        .filter(|(_, s)| **s)
        .map(|(a, _)| a)
        .collect();
    shown.sort_by(|a, b| {
        (a.liveness == Liveness::Dead, &a.name, &a.short_id).cmp(&(
            b.liveness == Liveness::Dead,
            &b.name,
            &b.short_id,
        ))
    });
    let trouble = trouble(&shown, &unowned, &waits, &cycles);
    let warnings = warnings(facts, &shown, &waits);
    let project_root = match &facts.scope {
        Scope::Project { root, .. } => Some(root.clone()),
        Scope::All => None,
    };
    Snapshot {
        schema_version: 1,
        project_root,
        all_projects: all,
        generated_at: facts.now_ms.div_euclid(1000),
        generated_at_ms: facts.now_ms,
        records: Records {
            receipts: facts.receipts_recorded,
            pending_asks: facts.asks.is_some(),
        },
        agents: shown,
        unowned_mailboxes: unowned,
        waits,
        cycles,
        trouble,
        warnings,
        comms,
    }
}

/// Entries of one agent (indices into `facts.entries`).
struct Group {
    members: Vec<usize>,
}

impl Group {
    /// The newest live member, else the newest member.
    fn rep<'a>(&self, facts: &'a Facts) -> &'a EntryFacts {
        let e = |i: &usize| &facts.entries[*i];
        self.members
            .iter()
            .map(e)
            .filter(|m| m.proc.alive())
            .max_by_key(|m| m.entry.started_at)
            .or_else(|| {
                self.members
                    .iter()
                    .map(e)
                    .max_by_key(|m| m.entry.started_at)
            })
            .expect("a group has members")
    }
}

/// One group per non-empty session id (first-seen order), then one per
/// id-less entry.
fn group(entries: &[EntryFacts]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut anonymous = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match e.entry.client.id() {
            Some(sid) => match index.get(sid) {
                Some(&g) => groups[g].members.push(i),
                None => {
                    index.insert(sid, groups.len());
                    groups.push(Group { members: vec![i] });
                }
            },
            None => anonymous.push(Group { members: vec![i] }),
        }
    }
    groups.extend(anonymous);
    groups
}

fn agent(facts: &Facts, g: &Group) -> Agent {
    let rep = g.rep(facts);
    let e = &rep.entry;
    let sid = e.client.id().map(str::to_string);
    let short_id = sid
        .as_deref()
        .map_or_else(|| format!("pid:{}", e.server_pid), short_sid);
    let alive = g.members.iter().any(|&i| facts.entries[i].proc.alive());
    let (liveness, reason, activity_age_s) = liveness(rep, alive);
    let pids: Vec<u32> = {
        let mut p: Vec<u32> = g
            .members
            .iter()
            .map(|&i| facts.entries[i].entry.server_pid)
            .collect();
        p.sort_unstable();
        p
    };
    let (unread, queued_low) = unread(facts, &pids);
    let (last_delivery, last_delivery_state) = match &sid {
        Some(s) => last_delivery(facts, s, &pids),
        None => (None, DeliveryState::None),
    };
    let purpose = e.state.as_ref().and_then(|s| s.purpose.clone());
    let purpose_age_s = e
        .state
        .as_ref()
        .filter(|s| s.updated_at > 0)
        .and_then(|s| age_s(facts.now_ms, s.updated_at.saturating_mul(1000)));
    Agent {
        name: e
            .tmux_session
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| short_id.clone()),
        short_id,
        session_id: sid,
        client_type: e.client.client_type.as_str().to_string(),
        server_pid: e.server_pid,
        server_pids: pids,
        started_at: e.started_at,
        cwd: e.client.cwd.clone(),
        project_root: rep.project_root.clone(),
        tmux_session: e.tmux_session.clone(),
        tmux_pane: e.tmux_pane.clone(),
        state: e.state.clone(),
        purpose,
        purpose_age_s,
        liveness,
        liveness_reason: reason,
        activity_age_s,
        proc_sig: rep.proc.sig,
        unread,
        unread_confidence: if queued_low {
            Confidence::Low
        } else {
            Confidence::High
        },
        stranded: !alive && unread > 0,
        last_delivery,
        last_delivery_state,
        open_asks: None,
        waiting: None,
    }
}

fn liveness(rep: &EntryFacts, alive: bool) -> (Liveness, LivenessReason, Option<i64>) {
    let age_ms = rep.activity.as_ref().map(|a| a.age_ms as i64);
    let age = age_ms.and_then(elapsed_s);
    if !alive {
        let reason = if rep.proc.exists {
            LivenessReason::PidReused
        } else {
            LivenessReason::Exited
        };
        return (Liveness::Dead, reason, age);
    }
    let Some(marker) = &rep.activity else {
        return (Liveness::Unknown, LivenessReason::NoMarker, None);
    };
    let fresh = age_ms.is_some_and(|a| a < BUSY_TTL_MS as i64);
    match marker.status.as_str() {
        "busy" if fresh => (Liveness::Busy, LivenessReason::MarkerBusy, age),
        "busy" => (Liveness::Unknown, LivenessReason::BusyStale, age),
        "idle" => (Liveness::Idle, LivenessReason::MarkerIdle, age),
        _ => (Liveness::Unknown, LivenessReason::OtherMarker, age),
    }
}

/// Distinct queued ids across `pids`' mailboxes, and whether any box could
/// not be fully read.
fn unread(facts: &Facts, pids: &[u32]) -> (usize, bool) {
    let mut ids = HashSet::new();
    let mut low = false;
    for b in pids.iter().filter_map(|p| facts.mailboxes.get(p)) {
        low |= b.unreadable > 0 || b.error.is_some();
        ids.extend(b.queued.iter().map(|q| q.id.as_str()));
    }
    (ids.len(), low)
}

fn queued_ids<'a>(facts: &'a Facts, pids: &[u32]) -> HashSet<&'a str> {
    pids.iter()
        .filter_map(|p| facts.mailboxes.get(p))
        .flat_map(|b| b.queued.iter().map(|q| q.id.as_str()))
        .collect()
}

/// The newest receipted message of `sid`'s ledger tail.
fn last_delivery(facts: &Facts, sid: &str, pids: &[u32]) -> (Option<Delivery>, DeliveryState) {
    let Some(tail) = facts.ledgers.get(sid) else {
        return (None, DeliveryState::Unknown);
    };
    let newest = tail.iter().rev().find_map(|m| {
        let id = m.id()?;
        let r = facts.receipts.get(id)?;
        Some(Delivery {
            message_id: id.to_string(),
            delivered_at_ms: r.delivered_at_ms,
            age_s: age_s(facts.now_ms, r.delivered_at_ms),
            via: r.via.clone(),
            from_session_id: m.from_session_id().map(str::to_string),
        })
    });
    if let Some(d) = newest {
        return (Some(d), DeliveryState::Delivered);
    }
    let queued = queued_ids(facts, pids);
    let taken = tail
        .iter()
        .filter_map(|m| m.id())
        .any(|id| !queued.contains(id));
    let state = if taken {
        DeliveryState::Unknown
    } else {
        DeliveryState::None
    };
    (None, state)
}

fn unowned_mailboxes(facts: &Facts, shown_sids: &HashSet<String>) -> Vec<UnownedMailbox> {
    let known_sids: HashSet<&str> = facts
        .entries
        .iter()
        .filter_map(|e| e.entry.client.id())
        .collect();
    let mut out = Vec::new();
    for (&pid, b) in &facts.mailboxes {
        let Some(proc) = facts.unowned_procs.get(&pid) else {
            continue; // has a registry entry: counted on its agent
        };
        let mut senders: Vec<String> = b
            .queued
            .iter()
            .filter_map(|q| q.from_session_id.clone())
            .collect();
        senders.sort();
        senders.dedup();
        // Shown with the project of any registered sender; mail from nobody
        // we know is shown in every view (it belongs to no project we can tell).
        let attributable = senders.iter().any(|s| known_sids.contains(s.as_str()));
        let shown = facts.scope == Scope::All
            || !attributable
            || senders.iter().any(|s| shown_sids.contains(s));
        if !shown {
            continue;
        }
        let ids: HashSet<&str> = b.queued.iter().map(|q| q.id.as_str()).collect();
        out.push(UnownedMailbox {
            server_pid: pid,
            pid_alive: proc.exists,
            unread: ids.len(),
            unread_confidence: if b.unreadable > 0 || b.error.is_some() {
                Confidence::Low
            } else {
                Confidence::High
            },
            stranded: !proc.exists,
            senders,
            oldest_enqueued_at: b
                .queued
                .iter()
                .filter_map(|q| q.enqueued_at)
                .min_by(f64::total_cmp),
        });
    }
    out
}

fn wait_graph(
    facts: &Facts,
    asks: &[OpenAsk],
    agents: &[Agent],
    by_sid: &HashMap<&str, usize>,
    in_scope: &[bool],
) -> (Vec<Wait>, Vec<Cycle>) {
    let mut out = Vec::new();
    for ask in asks {
        let Some(&ri) = by_sid.get(ask.requester_session_id.as_str()) else {
            continue; // the requester is not registered: nobody waits
        };
        if !in_scope[ri] || answered(facts, ask) {
            continue;
        }
        let requester = &agents[ri];
        let target_sid = ask
            .target_session_id
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| match_target(facts, ask));
        let target = target_sid
            .as_deref()
            .and_then(|t| by_sid.get(t))
            .map(|&i| &agents[i]);
        let requester_alive = requester.liveness != Liveness::Dead;
        let target_gone = target.is_none_or(|t| t.liveness == Liveness::Dead);
        out.push(Wait {
            requester_session_id: ask.requester_session_id.clone(),
            requester_short_id: requester.short_id.clone(),
            requester_name: requester.name.clone(),
            target_short_id: target_sid.as_deref().map(short_sid),
            target_name: target.map(|t| t.name.clone()),
            target_liveness: target.map(|t| t.liveness),
            target_session_id: target_sid.clone(),
            request_id: ask.request_id.clone(),
            message_id: ask.message_id.clone(),
            state: ask.state.clone(),
            since_ms: ask.at_ms,
            age_s: age_s(facts.now_ms, ask.at_ms),
            orphaned: requester_alive && target_sid.is_some() && target_gone,
            in_cycle: false,
            cycle_all_live: false,
        });
    }
    let edges: Vec<(&str, &str)> = out
        .iter()
        .filter_map(|w| {
            Some((
                w.requester_session_id.as_str(),
                w.target_session_id.as_deref()?,
            ))
        })
        .collect();
    let mut cycles = Vec::new();
    for members in waits::cycles(&edges) {
        let all_live = members.iter().all(|m| {
            by_sid
                .get(m.as_str())
                .is_some_and(|&i| agents[i].liveness != Liveness::Dead)
        });
        cycles.push(Cycle {
            members: members.iter().map(|m| short_sid(m)).collect(),
            session_ids: members,
            all_live,
        });
    }
    for w in &mut out {
        let Some(t) = &w.target_session_id else {
            continue;
        };
        // An edge inside one strongly connected component lies on a cycle.
        if let Some(c) = cycles
            .iter()
            .find(|c| c.session_ids.contains(&w.requester_session_id) && c.session_ids.contains(t))
        {
            w.in_cycle = true;
            w.cycle_all_live = c.all_live;
        }
    }
    (out, cycles)
}

/// The requester's ledger already holds a reply to this ask.
fn answered(facts: &Facts, ask: &OpenAsk) -> bool {
    facts
        .ledgers
        .get(&ask.requester_session_id)
        .is_some_and(|t| {
            t.iter()
                .any(|m| m.reply_to() == Some(ask.request_id.as_str()))
        })
}

/// The session whose ledger holds the ask message itself.
fn match_target(facts: &Facts, ask: &OpenAsk) -> Option<String> {
    facts.ledgers.iter().find_map(|(sid, tail)| {
        tail.iter()
            .any(|m| {
                m.request_id() == Some(ask.request_id.as_str())
                    && m.from_session_id() == Some(ask.requester_session_id.as_str())
            })
            .then(|| sid.clone())
    })
}

fn comms_log(
    facts: &Facts,
    agents: &[Agent],
    by_sid: &HashMap<&str, usize>,
    in_scope: &[bool],
    limit: usize,
    bodies: bool,
) -> Vec<CommsMessage> {
    let name_of = |sid: &str| {
        by_sid
            .get(sid)
            .map_or_else(|| short_sid(sid), |&i| agents[i].name.clone())
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        let Some(to) = a.session_id.as_deref().filter(|_| in_scope[i]) else {
            continue;
        };
        let queued = queued_ids(facts, &a.server_pids);
        for m in facts.ledgers.get(to).into_iter().flatten() {
            let Some(id) = m.id() else { continue };
            if !seen.insert(id.to_string()) {
                continue;
            }
            let receipt = facts.receipts.get(id);
            let status = if receipt.is_some() {
                CommsStatus::Delivered
            } else if queued.contains(id) {
                CommsStatus::Queued
            } else {
                CommsStatus::Unknown
            };
            let from = m.from_session_id().map(str::to_string);
            out.push(CommsMessage {
                message_id: id.to_string(),
                from_name: from
                    .as_deref()
                    .map_or_else(|| "(unclaimed)".to_string(), name_of),
                from_session_id: from,
                to_session_id: to.to_string(),
                to_name: a.name.clone(),
                at: m.enqueued_at(),
                status,
                delivered_at_ms: receipt.map(|r| r.delivered_at_ms),
                via: receipt.and_then(|r| r.via.clone()),
                request_id: m.request_id().map(str::to_string),
                reply_to: m.reply_to().map(str::to_string),
                body: bodies.then(|| m.body().unwrap_or_default().to_string()),
            });
        }
    }
    // Stable: within one second (`enqueued_at` is whole seconds) each
    // receiver's messages keep their ledger (arrival) order.
    out.sort_by(|a, b| a.at.unwrap_or(0.0).total_cmp(&b.at.unwrap_or(0.0)));
    let skip = out.len().saturating_sub(limit);
    out.split_off(skip)
}

fn trouble(
    agents: &[Agent],
    unowned: &[UnownedMailbox],
    waits: &[Wait],
    cycles: &[Cycle],
) -> Trouble {
    let mut t = Trouble {
        deadlocks: cycles.iter().filter(|c| c.all_live).count(),
        stale_cycles: cycles.iter().filter(|c| !c.all_live).count(),
        orphaned: waits.iter().filter(|w| w.orphaned).count(),
        ..Trouble::default()
    };
    for a in agents.iter().filter(|a| a.stranded) {
        t.stranded_mail += a.unread;
        t.stranded_mail_owners.push(a.short_id.clone());
    }
    for m in unowned.iter().filter(|m| m.stranded) {
        t.stranded_mail += m.unread;
        t.stranded_mail_owners.push(format!("pid:{}", m.server_pid));
    }
    t.needs_attention = t.deadlocks + t.orphaned + t.stranded_mail > 0;
    t
}

fn warnings(facts: &Facts, agents: &[Agent], waits: &[Wait]) -> Vec<String> {
    let mut w = facts.problems.clone();
    for (pid, b) in &facts.mailboxes {
        if let Some(e) = &b.error {
            w.push(format!("mailbox of pid {pid} could not be read: {e}"));
        }
    }
    for a in agents
        .iter()
        .filter(|a| a.unread_confidence == Confidence::Low)
    {
        w.push(format!(
            "{}: some mailbox lines are not readable messages; the unread count may be off",
            a.short_id
        ));
    }
    for x in waits.iter().filter(|x| x.target_session_id.is_none()) {
        w.push(format!(
            "{}: an open ask (request {}) names no target that could be found",
            x.requester_short_id, x.request_id
        ));
    }
    w
}

#[cfg(test)]
#[path = "model_tests.rs"]
pub(crate) mod tests;
