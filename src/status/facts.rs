//! Gathering what `oxtail status` shows: every read it makes of the store and
//! of the process table happens here, and nowhere else in `status`.
//!
//! Invariant defended: read-only by construction. Only functions that neither
//! create, lock, rewrite nor remove anything are called —
//! `registry::read_all_passive` (no reaping), `mailbox::peek` (no mailbox
//! lock, so a sender is never delayed), `ledger::peek_tail` (no ledger lock),
//! `activity::read`, `kill(pid, 0)` and the process start time — so running
//! the view beside live agents changes nothing under `~/.oxtail`.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::project;
use crate::store::activity::{self, ActivitySnapshot};
use crate::store::ledger;
use crate::store::mailbox;
use crate::store::message::Message;
use crate::store::paths::Layout;
use crate::store::registry::{self, Entry};

use super::process::{self, ProcState};
use super::sources::{OpenAsk, Receipt, Sources};

/// How many of each agent's newest ledger records are read (message log,
/// last delivery, ask-target matching).
pub const LEDGER_TAIL: usize = 50;

/// Which agents a snapshot is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The project of `cwd` (the agents whose project matches it, with the
    /// same rule messaging uses); `root` is its root, for display.
    Project { cwd: String, root: String },
    /// Every agent on the machine.
    All,
}

impl Scope {
    /// The project of directory `cwd`.
    pub fn project_of(cwd: &str) -> Scope {
        let root = project::safe_realpath(&project::find_project_root(cwd).root);
        Scope::Project {
            cwd: cwd.to_string(),
            root,
        }
    }
}

/// One registry entry and what was found about it.
#[derive(Debug, Clone)]
pub struct EntryFacts {
    pub entry: Entry,
    pub proc: ProcState,
    pub activity: Option<ActivitySnapshot>,
    pub in_scope: bool,
    /// The project root of the entry's `cwd`.
    pub project_root: String,
}

/// A message sitting in a mailbox (no body: the view never shows queued text).
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub id: String,
    pub from_session_id: Option<String>,
    pub enqueued_at: Option<f64>,
}

/// One non-empty mailbox file.
#[derive(Debug, Clone, Default)]
pub struct BoxFacts {
    pub queued: Vec<Queued>,
    /// Lines a drain would drop, or a read error: the count may be off.
    pub unreadable: usize,
    pub error: Option<String>,
}

/// Everything a snapshot is built from (the pure model's only input).
#[derive(Debug, Clone)]
pub struct Facts {
    pub now_ms: i64,
    pub scope: Scope,
    pub entries: Vec<EntryFacts>,
    /// Every mailbox file that holds something, by pid.
    pub mailboxes: BTreeMap<u32, BoxFacts>,
    /// Liveness of mailbox pids that have no registry entry.
    pub unowned_procs: HashMap<u32, ProcState>,
    /// The newest [`LEDGER_TAIL`] ledger records of each in-scope session id.
    pub ledgers: HashMap<String, Vec<Message>>,
    pub receipts_recorded: bool,
    /// Receipts of the message ids in `ledgers`.
    pub receipts: HashMap<String, Receipt>,
    /// `None`: this store does not record open asks.
    pub asks: Option<Vec<OpenAsk>>,
    /// Store files that could not be read (shown as warnings).
    pub problems: Vec<String>,
}

impl Facts {
    /// The same facts at `now_ms`, without reading the store again: marker
    /// ages advanced and every pid probed anew (a process can die without
    /// touching a file). What a live view does between store changes.
    pub fn advance(&mut self, now_ms: i64) {
        let delta = (now_ms - self.now_ms) as f64;
        self.now_ms = now_ms;
        let mut pids: Vec<(u32, i64)> = self
            .entries
            .iter()
            .map(|e| (e.entry.server_pid, e.entry.started_at))
            .collect();
        pids.extend(self.unowned_procs.keys().map(|&p| (p, 0)));
        let procs = process::probe(&pids, now_ms.div_euclid(1000));
        for e in &mut self.entries {
            e.proc = procs[&e.entry.server_pid];
            if let Some(a) = &mut e.activity {
                a.age_ms += delta;
            }
        }
        for (pid, p) in &mut self.unowned_procs {
            *p = procs[pid];
        }
    }
}

/// Read the store (and the process table) once.
/// `log_limit`: how many messages the log will show (their receipts are
/// read; `None`: no log).
pub fn gather(
    layout: &Layout,
    sources: &Sources<'_>,
    scope: &Scope,
    now_ms: i64,
    log_limit: Option<usize>,
) -> Facts {
    let now_s = now_ms.div_euclid(1000);
    let raw = registry::read_all_passive(layout);
    let mailboxes = read_mailboxes(layout);
    let owned: HashSet<u32> = raw.iter().map(|e| e.server_pid).collect();
    let unowned: Vec<(u32, i64)> = mailboxes
        .keys()
        .filter(|p| !owned.contains(p))
        .map(|&p| (p, 0))
        .collect();
    let mut probes: Vec<(u32, i64)> = raw.iter().map(|e| (e.server_pid, e.started_at)).collect();
    probes.extend(&unowned);
    let procs = process::probe(&probes, now_s);

    let mut roots = RootCache::default();
    let entries: Vec<EntryFacts> = raw
        .into_iter()
        .map(|entry| {
            let cwd = entry.client.cwd.clone();
            EntryFacts {
                proc: procs[&entry.server_pid],
                activity: activity::read(layout, entry.client.id(), now_ms as f64),
                in_scope: roots.in_scope(scope, &cwd),
                project_root: roots.root_of(&cwd),
                entry,
            }
        })
        .collect();

    let mut ledgers = HashMap::new();
    let mut problems = Vec::new();
    for e in entries.iter().filter(|e| e.in_scope) {
        if let Some(sid) = e.entry.client.id()
            && !ledgers.contains_key(sid)
        {
            let tail = ledger::peek_tail(layout, sid, LEDGER_TAIL).unwrap_or_else(|e| {
                problems.push(format!(
                    "the received-ledger of {sid} could not be read: {e}"
                ));
                Vec::new()
            });
            ledgers.insert(sid.to_string(), tail);
        }
    }
    let receipts_recorded = sources.receipts.recorded();
    let receipts = if receipts_recorded {
        wanted_receipts(sources, &entries, &mailboxes, &ledgers, log_limit)
    } else {
        HashMap::new()
    };
    Facts {
        now_ms,
        scope: scope.clone(),
        entries,
        mailboxes,
        unowned_procs: unowned.iter().map(|&(p, _)| (p, procs[&p])).collect(),
        ledgers,
        receipts_recorded,
        receipts,
        asks: sources.asks.recorded().then(|| sources.asks.open_asks()),
        problems,
    }
}

/// The receipts the model can use, and no more (each is a file read): per
/// agent, newest first, the ledger records until the first one with a
/// receipt (its last delivery; queued ones cannot have been delivered), and
/// the newest `log_limit` records of each ledger (a superset of the log's).
fn wanted_receipts(
    sources: &Sources<'_>,
    entries: &[EntryFacts],
    mailboxes: &BTreeMap<u32, BoxFacts>,
    ledgers: &HashMap<String, Vec<Message>>,
    log_limit: Option<usize>,
) -> HashMap<String, Receipt> {
    let mut found: HashMap<String, Option<Receipt>> = HashMap::new();
    let mut lookup = |id: &str| {
        found
            .entry(id.to_string())
            .or_insert_with(|| sources.receipts.receipt(id))
            .is_some()
    };
    for (sid, tail) in ledgers {
        let queued: HashSet<&str> = entries
            .iter()
            .filter(|e| e.entry.client.id() == Some(sid.as_str()))
            .filter_map(|e| mailboxes.get(&e.entry.server_pid))
            .flat_map(|b| b.queued.iter().map(|q| q.id.as_str()))
            .collect();
        for id in tail.iter().rev().filter_map(Message::id) {
            if !queued.contains(id) && lookup(id) {
                break;
            }
        }
    }
    if let Some(limit) = log_limit.filter(|&l| l > 0) {
        let mut all: Vec<(f64, &str)> = ledgers
            .values()
            .flatten()
            .filter_map(|m| Some((m.enqueued_at().unwrap_or(0.0), m.id()?)))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        let cut = all.get(limit - 1).map_or(f64::NEG_INFINITY, |e| e.0);
        for (_, id) in all.iter().take_while(|e| e.0 >= cut) {
            lookup(id);
        }
    }
    found
        .into_iter()
        .filter_map(|(id, r)| r.map(|r| (id, r)))
        .collect()
}

/// Peek every non-empty mailbox file.
fn read_mailboxes(layout: &Layout) -> BTreeMap<u32, BoxFacts> {
    let mut out = BTreeMap::new();
    for pid in mailbox::list_pids(layout) {
        if !mailbox::has_messages(layout, pid).unwrap_or(true) {
            continue;
        }
        let facts = match mailbox::peek(layout, pid) {
            Ok(p) => BoxFacts {
                queued: p.messages.iter().map(queued).collect(),
                unreadable: p.unreadable,
                error: None,
            },
            Err(e) => BoxFacts {
                error: Some(e.to_string()),
                ..BoxFacts::default()
            },
        };
        if !facts.queued.is_empty() || facts.unreadable > 0 || facts.error.is_some() {
            out.insert(pid, facts);
        }
    }
    out
}

fn queued(m: &Message) -> Queued {
    Queued {
        id: m.id().unwrap_or_default().to_string(),
        from_session_id: m.from_session_id().map(str::to_string),
        enqueued_at: m.enqueued_at(),
    }
}

/// Project roots and scope answers per distinct cwd (agents share cwds, and
/// each answer walks the file system).
#[derive(Default)]
struct RootCache {
    roots: HashMap<String, String>,
    scope: HashMap<String, bool>,
}

impl RootCache {
    fn root_of(&mut self, cwd: &str) -> String {
        self.roots
            .entry(cwd.to_string())
            .or_insert_with(|| project::safe_realpath(&project::find_project_root(cwd).root))
            .clone()
    }

    fn in_scope(&mut self, scope: &Scope, cwd: &str) -> bool {
        match scope {
            Scope::All => true,
            Scope::Project { cwd: mine, .. } => *self
                .scope
                .entry(cwd.to_string())
                .or_insert_with(|| project::project_roots_match(mine, cwd)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::status::model::tests::{ALIVE, NOW, World, marker};
    use crate::status::process::ProcSig;

    #[test]
    fn advance_moves_ages_and_notices_a_process_that_died() {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        let me = std::process::id();
        let mut w = World::new();
        w.agent(dead, Some("gone"), None, ALIVE).activity = marker("busy", 1_000.0);
        w.agent(me, Some("here"), None, ALIVE).entry.started_at = crate::clock::now_s();
        w.facts.unowned_procs.insert(dead, ALIVE);
        w.facts.advance(NOW + 5_000);
        assert_eq!(w.facts.now_ms, NOW + 5_000);
        let gone = &w.facts.entries[0];
        assert!(!gone.proc.exists, "re-probed");
        assert_eq!(gone.activity.as_ref().unwrap().age_ms, 6_000.0);
        assert!(w.facts.entries[1].proc.alive());
        assert_eq!(w.facts.entries[1].proc.sig, ProcSig::Ok);
        assert!(!w.facts.unowned_procs[&dead].exists);
    }
}
