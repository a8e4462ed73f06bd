//! Model rules, pinned with in-memory facts (no store, no clock).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::*;
use crate::status::facts::{EntryFacts, Facts, Queued, Scope};
use crate::status::process::{ProcSig, ProcState};
use crate::status::sources::{OpenAsk, Receipt};
use crate::store::activity::ActivitySnapshot;
use crate::store::message::Message;
use crate::store::registry::{Client, ClientType, Entry, StateCard};

pub const NOW: i64 = 1_800_000_000_000;
pub const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
pub const C: &str = "cccccccc-0000-4000-8000-000000000003";

pub const ALIVE: ProcState = ProcState {
    exists: true,
    sig: ProcSig::Ok,
};
pub const EXITED: ProcState = ProcState {
    exists: false,
    sig: ProcSig::Unknown,
};
pub const REUSED: ProcState = ProcState {
    exists: true,
    sig: ProcSig::Reused,
};

/// Facts built by hand.
pub struct World {
    pub facts: Facts,
}

impl World {
    pub fn new() -> World {
        World {
            facts: Facts {
                now_ms: NOW,
                scope: Scope::Project {
                    cwd: "/p".into(),
                    root: "/p".into(),
                },
                entries: Vec::new(),
                mailboxes: BTreeMap::new(),
                unowned_procs: HashMap::new(),
                ledgers: HashMap::new(),
                receipts_recorded: true,
                receipts: HashMap::new(),
                asks: Some(Vec::new()),
                problems: Vec::new(),
            },
        }
    }

    /// An agent entry in project `/p`.
    pub fn agent(
        &mut self,
        pid: u32,
        sid: Option<&str>,
        tmux: Option<&str>,
        proc: ProcState,
    ) -> &mut EntryFacts {
        let client = Client {
            client_type: ClientType::ClaudeCode,
            session_id: sid.map(str::to_string),
            transcript_path: None,
            session_id_source: None,
            cwd: "/p".into(),
            ..Client::default()
        };
        let mut entry = Entry::new(pid, NOW / 1000 - 3600, client);
        entry.tmux_session = tmux.map(str::to_string);
        self.facts.entries.push(EntryFacts {
            entry,
            proc,
            activity: None,
            in_scope: true,
            project_root: "/p".into(),
        });
        self.facts.entries.last_mut().unwrap()
    }

    pub fn queue(&mut self, pid: u32, id: &str, from: Option<&str>) {
        self.facts
            .mailboxes
            .entry(pid)
            .or_default()
            .queued
            .push(Queued {
                id: id.into(),
                from_session_id: from.map(str::to_string),
                enqueued_at: Some((NOW / 1000 - 60) as f64),
            });
    }

    pub fn ledger(&mut self, to: &str, id: &str, from: &str, at_s: i64, extra: Value) {
        let mut v = json!({"schema_version": 1, "id": id, "body": format!("body of {id}"),
            "enqueued_at": at_s, "origin": "peer", "from_session_id": from});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        let m = Message::parse_line(&v.to_string()).unwrap();
        self.facts.ledgers.entry(to.into()).or_default().push(m);
    }

    pub fn receipt(&mut self, id: &str, at_ms: i64, via: &str) {
        self.facts.receipts.insert(
            id.into(),
            Receipt {
                message_id: id.into(),
                delivered_at_ms: at_ms,
                via: Some(via.into()),
                recipient_session_id: None,
            },
        );
    }

    pub fn ask(&mut self, from: &str, request_id: &str, target: Option<&str>, at_ms: i64) {
        self.facts.asks.get_or_insert_with(Vec::new).push(OpenAsk {
            requester_session_id: from.into(),
            request_id: request_id.into(),
            target_session_id: target.map(str::to_string),
            message_id: None,
            at_ms,
            state: Some("waiting".into()),
        });
    }

    pub fn build(&self) -> Snapshot {
        build(&self.facts, &Options::default())
    }
}

pub fn marker(status: &str, age_ms: f64) -> Option<ActivitySnapshot> {
    Some(ActivitySnapshot {
        status: status.into(),
        age_ms,
    })
}

fn agent<'a>(s: &'a Snapshot, short: &str) -> &'a Agent {
    s.agents
        .iter()
        .find(|a| a.short_id == short)
        .unwrap_or_else(|| panic!("no agent {short}"))
}

#[test]
fn entries_sharing_a_session_id_are_one_agent_with_a_union_unread_count() {
    let mut w = World::new();
    w.agent(10, Some(A), Some("alpha"), EXITED);
    w.agent(11, Some(A), Some("alpha"), ALIVE).entry.started_at += 10;
    w.queue(10, "m1", Some(B));
    w.queue(11, "m1", Some(B)); // a crash mid-migration left it twice
    w.queue(11, "m2", Some(B));
    w.agent(12, None, None, ALIVE);
    w.queue(12, "m3", None);
    let s = w.build();
    assert_eq!(s.agents.len(), 2);
    let a = agent(&s, "aaaaaaaa");
    assert_eq!(a.server_pids, vec![10, 11]);
    assert_eq!(a.server_pid, 11, "the live entry represents the agent");
    assert_eq!(a.unread, 2, "distinct ids");
    assert_ne!(a.liveness, Liveness::Dead);
    assert!(!a.stranded, "a live sibling reads the dead one's box");
    assert_eq!(a.name, "alpha");
    let anon = agent(&s, "pid:12");
    assert_eq!((anon.unread, anon.name.as_str()), (1, "pid:12"));
    assert!(!s.trouble.needs_attention);
}

#[test]
fn liveness_from_markers_and_processes() {
    let mut w = World::new();
    w.agent(1, Some("s-busy"), None, ALIVE).activity = marker("busy", 4_000.0);
    w.agent(2, Some("s-stale"), None, ALIVE).activity = marker("busy", 11.0 * 60_000.0);
    w.agent(3, Some("s-idle"), None, ALIVE).activity = marker("idle", 180_000.0);
    w.agent(4, Some("s-none"), None, ALIVE);
    w.agent(5, Some("s-dead"), None, EXITED).activity = marker("busy", 1_000.0);
    w.agent(6, Some("s-reuse"), None, REUSED);
    w.agent(7, Some("s-future"), None, ALIVE).activity = marker("idle", -60_000.0);
    w.agent(8, Some("s-odd"), None, ALIVE).activity = marker("thinking", 1_000.0);
    let s = w.build();
    let l = |id: &str| {
        let a = agent(&s, id);
        (a.liveness, a.liveness_reason, a.activity_age_s)
    };
    assert_eq!(
        l("s-busy"),
        (Liveness::Busy, LivenessReason::MarkerBusy, Some(4))
    );
    assert_eq!(
        l("s-stale"),
        (Liveness::Unknown, LivenessReason::BusyStale, Some(660))
    );
    assert_eq!(
        l("s-idle"),
        (Liveness::Idle, LivenessReason::MarkerIdle, Some(180))
    );
    assert_eq!(
        l("s-none"),
        (Liveness::Unknown, LivenessReason::NoMarker, None)
    );
    assert_eq!(
        l("s-dead"),
        (Liveness::Dead, LivenessReason::Exited, Some(1))
    );
    assert_eq!(
        l("s-reuse"),
        (Liveness::Dead, LivenessReason::PidReused, None)
    );
    assert_eq!(agent(&s, "s-reuse").proc_sig, ProcSig::Reused);
    assert_eq!(
        l("s-future"),
        (Liveness::Idle, LivenessReason::MarkerIdle, None)
    );
    assert_eq!(
        l("s-odd"),
        (Liveness::Unknown, LivenessReason::OtherMarker, Some(1))
    );
    // Dead agents sort last.
    let order: Vec<&str> = s.agents.iter().map(|a| a.short_id.as_str()).collect();
    assert_eq!(&order[order.len() - 2..], ["s-dead", "s-reuse"]);
}

#[test]
fn mail_queued_for_a_dead_agent_is_stranded() {
    let mut w = World::new();
    w.agent(20, Some(A), Some("alpha"), EXITED);
    w.queue(20, "m1", Some(B));
    w.queue(20, "m2", Some(B));
    w.agent(21, Some(B), Some("beta"), ALIVE);
    let s = w.build();
    let a = agent(&s, "aaaaaaaa");
    assert!(a.stranded && a.unread == 2);
    assert_eq!(s.trouble.stranded_mail, 2);
    assert_eq!(s.trouble.stranded_mail_owners, vec!["aaaaaaaa"]);
    assert!(s.trouble.needs_attention);
    // Read (the mailbox emptied): nothing needs a person any more.
    w.facts.mailboxes.clear();
    let s = w.build();
    assert_eq!(s.trouble, Trouble::default());
}

#[test]
fn mailboxes_without_an_entry_are_shown_and_dead_ones_are_stranded() {
    let mut w = World::new();
    w.agent(30, Some(A), None, ALIVE);
    w.queue(900, "x1", Some(A)); // from an agent of this project
    w.queue(900, "x2", Some(A));
    w.facts.unowned_procs.insert(900, EXITED);
    w.queue(901, "y1", None); // from nobody we know: shown everywhere
    w.facts.unowned_procs.insert(901, ALIVE);
    // From an agent of another project: not shown here.
    w.agent(31, Some(C), None, ALIVE).in_scope = false;
    w.queue(902, "z1", Some(C));
    w.facts.unowned_procs.insert(902, EXITED);
    let s = w.build();
    let pids: Vec<u32> = s.unowned_mailboxes.iter().map(|m| m.server_pid).collect();
    assert_eq!(pids, vec![900, 901]);
    let m = &s.unowned_mailboxes[0];
    assert!(m.stranded && m.unread == 2 && !m.pid_alive);
    assert_eq!(m.senders, vec![A]);
    assert!(
        !s.unowned_mailboxes[1].stranded,
        "a live pid may still read it"
    );
    assert_eq!(s.trouble.stranded_mail, 2);
    assert_eq!(s.trouble.stranded_mail_owners, vec!["pid:900"]);
    assert_eq!(s.agents.len(), 1, "the other project's agent is not shown");
    w.facts.scope = Scope::All;
    let all = w.build();
    assert_eq!(all.unowned_mailboxes.len(), 3);
    assert_eq!(all.agents.len(), 2);
    assert_eq!(all.project_root, None);
}

#[test]
fn last_delivery_comes_from_receipts_and_is_unknown_without_them() {
    let mut w = World::new();
    w.agent(40, Some(A), None, ALIVE);
    w.ledger(A, "m1", B, NOW / 1000 - 300, json!({}));
    w.ledger(A, "m2", B, NOW / 1000 - 200, json!({}));
    w.ledger(A, "m3", B, NOW / 1000 - 100, json!({}));
    w.queue(40, "m3", Some(B));
    w.receipt("m1", NOW - 290_000, "hook");
    w.receipt("m2", NOW - 190_000, "read_my_messages");
    let s = w.build();
    let a = agent(&s, "aaaaaaaa");
    assert_eq!(a.last_delivery_state, DeliveryState::Delivered);
    let d = a.last_delivery.as_ref().unwrap();
    assert_eq!(
        (d.message_id.as_str(), d.age_s, d.via.as_deref()),
        ("m2", Some(190), Some("read_my_messages"))
    );
    assert_eq!(d.from_session_id.as_deref(), Some(B));
    // A 0.14 reader took m1 and m2 without receipts.
    w.facts.receipts.clear();
    let a = w.build().agents.remove(0);
    assert_eq!(
        (a.last_delivery, a.last_delivery_state),
        (None, DeliveryState::Unknown)
    );
    // Everything still queued: nothing delivered yet.
    w.queue(40, "m1", Some(B));
    w.queue(40, "m2", Some(B));
    let a = w.build().agents.remove(0);
    assert_eq!(a.last_delivery_state, DeliveryState::None);
}

#[test]
fn two_live_agents_asking_each_other_are_a_deadlock() {
    let mut w = World::new();
    w.agent(50, Some(A), Some("alpha"), ALIVE).activity = marker("busy", 1_000.0);
    w.agent(51, Some(B), Some("beta"), ALIVE).activity = marker("busy", 1_000.0);
    w.ask(A, "r-ab", Some(B), NOW - 120_000);
    w.ask(B, "r-ba", Some(A), NOW - 60_000);
    let s = w.build();
    assert_eq!(s.cycles.len(), 1);
    assert_eq!(s.cycles[0].members, vec!["aaaaaaaa", "bbbbbbbb"]);
    assert!(s.cycles[0].all_live);
    assert_eq!(s.trouble.deadlocks, 1);
    assert!(s.trouble.needs_attention);
    assert!(
        s.waits
            .iter()
            .all(|x| x.in_cycle && x.cycle_all_live && !x.orphaned)
    );
    let a = agent(&s, "aaaaaaaa");
    let wa = a.waiting.as_ref().unwrap();
    assert_eq!(
        (wa.target_name.as_deref(), wa.age_s),
        (Some("beta"), Some(120))
    );
    assert_eq!(a.open_asks, Some(1));
    // One of them dies: a stale cycle, and the survivor's wait is orphaned.
    w.facts.entries[1].proc = EXITED;
    let s = w.build();
    assert_eq!(
        (
            s.trouble.deadlocks,
            s.trouble.stale_cycles,
            s.trouble.orphaned
        ),
        (0, 1, 1)
    );
    assert!(s.trouble.needs_attention);
}

#[test]
fn a_wait_on_a_vanished_or_dead_agent_is_orphaned_and_an_answered_ask_is_dropped() {
    let mut w = World::new();
    w.agent(60, Some(A), None, ALIVE);
    w.ask(A, "r1", Some(C), NOW - 5_000); // C is registered nowhere
    let s = w.build();
    assert!(s.waits[0].orphaned);
    assert_eq!(s.waits[0].target_liveness, None);
    assert_eq!(s.trouble.orphaned, 1);
    // The reply sits in A's ledger: no longer waiting.
    w.ledger(A, "rep", C, NOW / 1000, json!({"reply_to": "r1"}));
    let s = w.build();
    assert!(s.waits.is_empty());
    assert_eq!(agent(&s, "aaaaaaaa").open_asks, Some(0));
    // A dead requester's leftover ask is not an orphan.
    let mut w = World::new();
    w.agent(61, Some(A), None, EXITED);
    w.ask(A, "r2", Some(C), NOW);
    assert_eq!(w.build().trouble.orphaned, 0);
}

#[test]
fn an_ask_without_a_target_is_matched_through_the_ledgers() {
    let mut w = World::new();
    w.agent(70, Some(A), None, ALIVE);
    w.agent(71, Some(B), Some("beta"), EXITED);
    w.ledger(B, "q1", A, NOW / 1000 - 10, json!({"request_id": "r9"}));
    w.ask(A, "r9", None, NOW - 10_000);
    let s = w.build();
    assert_eq!(s.waits[0].target_session_id.as_deref(), Some(B));
    assert_eq!(s.waits[0].target_liveness, Some(Liveness::Dead));
    assert!(s.waits[0].orphaned);
    // Nothing to match: reported, not guessed.
    w.facts.ledgers.clear();
    let s = w.build();
    assert_eq!(s.waits[0].target_session_id, None);
    assert!(!s.waits[0].orphaned);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
}

#[test]
fn unrecorded_kinds_read_as_unknown() {
    let mut w = World::new();
    w.facts.asks = None;
    w.facts.receipts_recorded = false;
    w.agent(80, Some(A), None, ALIVE);
    w.ledger(A, "m1", B, NOW / 1000, json!({}));
    let s = w.build();
    assert_eq!(
        s.records,
        Records {
            receipts: false,
            pending_asks: false
        }
    );
    let a = agent(&s, "aaaaaaaa");
    assert_eq!(a.open_asks, None);
    assert_eq!(a.last_delivery_state, DeliveryState::Unknown);
    assert!(s.waits.is_empty() && s.cycles.is_empty());
}

#[test]
fn the_log_merges_ledgers_oldest_first_and_hides_bodies_unless_asked() {
    let mut w = World::new();
    w.agent(90, Some(A), Some("alpha"), ALIVE);
    w.agent(91, Some(B), Some("beta"), ALIVE);
    w.ledger(A, "m2", B, 200, json!({"reply_to": "r1"}));
    w.ledger(B, "m1", A, 100, json!({"request_id": "r1"}));
    w.ledger(B, "m3", A, 300, json!({}));
    w.ledger(A, "m4", C, 400, json!({}));
    w.queue(91, "m3", Some(A));
    w.receipt("m1", 101_000, "hook");
    let opts = Options {
        log: Some(3),
        bodies: false,
    };
    let log = build(&w.facts, &opts).comms.unwrap();
    let ids: Vec<&str> = log.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, ["m2", "m3", "m4"], "newest three, oldest first");
    assert_eq!(log[0].status, CommsStatus::Unknown);
    assert_eq!(log[1].status, CommsStatus::Queued);
    assert_eq!(
        (log[0].from_name.as_str(), log[0].to_name.as_str()),
        ("beta", "alpha")
    );
    assert_eq!(
        log[2].from_name, "cccccccc",
        "an unregistered sender shows its short id"
    );
    assert!(log.iter().all(|m| m.body.is_none()));
    let full = build(
        &w.facts,
        &Options {
            log: Some(10),
            bodies: true,
        },
    )
    .comms
    .unwrap();
    assert_eq!(full[0].status, CommsStatus::Delivered);
    assert_eq!(full[0].via.as_deref(), Some("hook"));
    assert_eq!(full[0].body.as_deref(), Some("body of m1"));
    assert!(w.build().comms.is_none(), "no log unless asked");
}

#[test]
fn json_uses_the_field_names_of_the_original_where_they_fit() {
    let mut w = World::new();
    let e = w.agent(95, Some(A), Some("alpha"), ALIVE);
    e.entry.state = Some(StateCard {
        purpose: Some("fixing".into()),
        updated_at: NOW / 1000 - 30,
    });
    e.activity = marker("idle", 1_000.0);
    w.ask(A, "r1", Some(B), NOW);
    let v = serde_json::to_value(w.build()).unwrap();
    for k in [
        "schema_version",
        "project_root",
        "generated_at",
        "agents",
        "cycles",
        "warnings",
        "trouble",
        "records",
        "waits",
        "unowned_mailboxes",
    ] {
        assert!(v.get(k).is_some(), "snapshot.{k}");
    }
    let a = &v["agents"][0];
    for k in [
        "session_id",
        "short_id",
        "client_type",
        "server_pid",
        "cwd",
        "liveness",
        "liveness_reason",
        "proc_sig",
        "purpose",
        "purpose_age_s",
        "unread",
        "unread_confidence",
        "waiting",
        "tmux_session",
        "tmux_pane",
        "state",
        "last_delivery",
        "last_delivery_state",
        "open_asks",
    ] {
        assert!(a.get(k).is_some(), "agent.{k}: {a}");
    }
    assert_eq!(a["liveness"], "idle");
    assert_eq!(a["proc_sig"], "ok");
    assert_eq!(a["state"]["purpose"], "fixing");
    assert_eq!(a["purpose_age_s"], 30);
    for k in [
        "target_session_id",
        "target_short_id",
        "age_s",
        "orphaned",
        "in_cycle",
        "cycle_all_live",
    ] {
        assert!(a["waiting"].get(k).is_some(), "waiting.{k}");
    }
    assert!(v.get("comms").is_none());
}
