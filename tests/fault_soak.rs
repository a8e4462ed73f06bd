//! Soak under faults: several real `oxtail` sender servers, one receiver
//! server draining with `read_my_messages` (small read budget, so overflow is
//! requeued) and the real `assets/pretooluse.sh` under bash draining the same
//! mailbox, all concurrently; meanwhile a chaos thread SIGKILLs senders (often
//! the one holding a lock) and SIGSTOPs lock holders — senders, the receiver,
//! hook runs — for less than the 30 s stale window, then resumes them.
//!
//! Proven at the end, from what the receiver was actually shown:
//! - every send that returned `ok` was delivered exactly once (nothing lost,
//!   nothing twice), with its body byte-identical (nothing corrupted);
//! - a send that returned an error was never delivered (no phantom);
//! - a send whose sender was killed mid-call was delivered at most once;
//! - each sender's order is kept, within one drain and across drains that did
//!   not overlap in time;
//! - every delivered id resolves in the receiver's ledger, or the ledger
//!   failure was traced (delivery beats the reply handle, by design);
//! - no process exited unless we killed it; no hook exited non-zero.
//!
//! A lock orphaned by a SIGKILL is back-dated past the stale window (standing
//! in for the 30 s wait), so the stale-clear path runs too.
//!
//! CI runs a few seconds. Long runs: `OXTAIL_SOAK_SECS=600` (chaos time),
//! `OXTAIL_SOAK_SENDERS`, `OXTAIL_SOAK_MAX_STOP_MS` (keep it < 30000),
//! `OXTAIL_SOAK_SEED` (to replay a run's random choices).

mod fault_support;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use fault_support::*;

const SID_R: &str = "f0000000-0000-4000-8000-0000000000aa";

fn sender_sid(i: usize) -> String {
    format!("f0000000-0000-4000-8000-00000000000{i}")
}

/// Small deterministic PRNG (xorshift64*), seeded per run and printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// (sender, seq, attempt): orders one sender's sends.
type Tag = (usize, u64, u32);

const PAD: [&str; 6] = [
    "plain ",
    "\"quoted\" ",
    "back\\slash ",
    "é日本 ",
    "😀 ",
    "line\nbreak\t",
];

fn body_for((sender, seq, attempt): Tag) -> String {
    let mut b = format!("S{sender}#{seq:06}.{attempt}|");
    let n = (seq as usize * 7 + sender * 3) % 40;
    for k in 0..n {
        b.push_str(PAD[(k + seq as usize) % PAD.len()]);
    }
    if seq % 17 == 0 {
        b.push_str(&"x".repeat(3000));
    }
    b.push_str("|end");
    b
}

fn parse_tag(body: &str) -> Option<Tag> {
    let rest = body.strip_prefix('S')?;
    let (sender, rest) = rest.split_once('#')?;
    let (seq, rest) = rest.split_once('.')?;
    let (attempt, _) = rest.split_once('|')?;
    Some((
        sender.parse().ok()?,
        seq.parse().ok()?,
        attempt.parse().ok()?,
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Sender,
    Receiver,
    Hook,
}

/// One drain as the receiver saw it.
struct Batch {
    start: Instant,
    end: Instant,
    via: &'static str,
    /// The hook's pid (0 for `read_my_messages`).
    pid: u32,
    msgs: Vec<(String, String)>,
}

/// One chaos action, for diagnosing a failure.
struct Fault {
    at: Instant,
    until: Instant,
    pid: u32,
    what: &'static str,
}

#[derive(Default)]
struct Log {
    acked: Vec<(String, Tag)>,
    failed: Vec<(Tag, String)>,
    unknown: Vec<Tag>,
    batches: Vec<Batch>,
    unexpected_exits: Vec<String>,
    faults: Vec<Fault>,
    hook_failures: Vec<String>,
}

#[derive(Default)]
struct Counters {
    attempts: AtomicU64,
    kills: AtomicU64,
    kills_of_lock_holders: AtomicU64,
    orphaned_locks_backdated: AtomicU64,
    stops: AtomicU64,
    stops_of_lock_holders: AtomicU64,
    hook_runs: AtomicU64,
    reads: AtomicU64,
    respawns: AtomicU64,
}

struct Soak {
    world: World,
    procs: Mutex<Vec<(u32, Role)>>,
    killed: Mutex<HashSet<u32>>,
    chaos_over: AtomicBool,
    senders_done: AtomicBool,
    log: Mutex<Log>,
    n: Counters,
}

impl Soak {
    fn add(&self, pid: u32, role: Role) {
        self.procs.lock().unwrap().push((pid, role));
    }
    fn remove(&self, pid: u32) {
        self.procs.lock().unwrap().retain(|(p, _)| *p != pid);
    }
    fn receiver_mailbox_empty(&self, pid: u32) -> bool {
        fs::metadata(self.world.layout().mailbox(pid)).map_or(true, |m| m.len() == 0)
    }
}

/// Every lock directory of the store with its owner pid (from the token).
fn lock_owners(world: &World) -> Vec<(std::path::PathBuf, Option<u32>)> {
    let l = world.layout();
    let mut out = Vec::new();
    for dir in [l.mailboxes_dir(), l.received_dir()] {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for de in rd.filter_map(Result::ok) {
            let name = de.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".lock") {
                continue;
            }
            let owner = fs::read_to_string(dir.join(format!("{name}.owner")))
                .ok()
                .and_then(|t| t.split('.').next()?.parse().ok());
            out.push((de.path(), owner));
        }
    }
    out
}

fn backdate(path: &Path, secs: u64) -> bool {
    let t = SystemTime::now() - Duration::from_secs(secs);
    fs::File::open(path)
        .and_then(|f| f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t)))
        .is_ok()
}

fn sender_loop(s: &Soak, i: usize) {
    let sid = sender_sid(i);
    let mut seq = 0u64;
    let mut attempt = 0u32;
    let env = [("OXTAIL_RECEIVED_MAX", "1000000")];
    'incarnation: while !s.chaos_over.load(Ordering::SeqCst) {
        let mut srv = s.world.server(&env);
        s.add(srv.pid, Role::Sender);
        match srv.call("claim_session", json!({"session_id": sid})) {
            Answer::Response(v) => {
                let ok = tool_outcome(&v).is_ok_and(|p| p["ok"] == true);
                assert!(ok, "claim_session failed: {v}");
            }
            Answer::Gone => {
                finish_incarnation(s, srv);
                continue 'incarnation;
            }
            other => panic!("claim_session on server {}: {other:?}", srv.pid),
        }
        while !s.chaos_over.load(Ordering::SeqCst) {
            let tag = (i, seq, attempt);
            s.n.attempts.fetch_add(1, Ordering::Relaxed);
            let ans = srv.call(
                "send_message",
                json!({"target": SID_R, "body": body_for(tag)}),
            );
            match ans {
                Answer::Response(v) => match tool_outcome(&v) {
                    Ok(p) if p["ok"] == true => {
                        let id = p["message_id"].as_str().unwrap_or_default().to_string();
                        s.log.lock().unwrap().acked.push((id, tag));
                        seq += 1;
                        attempt = 0;
                    }
                    Ok(p) => {
                        s.log.lock().unwrap().failed.push((tag, p.to_string()));
                        attempt += 1;
                    }
                    Err(text) => {
                        s.log.lock().unwrap().failed.push((tag, text));
                        attempt += 1;
                        thread::sleep(Duration::from_millis(5));
                    }
                },
                Answer::Gone => {
                    s.log.lock().unwrap().unknown.push(tag);
                    attempt += 1;
                    finish_incarnation(s, srv);
                    s.n.respawns.fetch_add(1, Ordering::Relaxed);
                    continue 'incarnation;
                }
                other => panic!("send_message on server {}: {other:?}", srv.pid),
            }
        }
        finish_incarnation(s, srv);
        break;
    }
}

/// Forget a sender process; note it when it died without being killed.
fn finish_incarnation(s: &Soak, mut srv: Server) {
    s.remove(srv.pid);
    if let Ok(Some(st)) = srv.child().try_wait()
        && !s.killed.lock().unwrap().contains(&srv.pid)
    {
        s.log
            .lock()
            .unwrap()
            .unexpected_exits
            .push(format!("sender {} exited by itself: {st}", srv.pid));
    }
    drop(srv);
}

fn hook_loop(s: &Soak, receiver_pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if s.senders_done.load(Ordering::SeqCst) && s.receiver_mailbox_empty(receiver_pid) {
            return;
        }
        assert!(Instant::now() < deadline, "hooks did not drain in time");
        let start = Instant::now();
        let mut child = s.world.spawn_hook("pretooluse.sh", &pre_payload(SID_R));
        let pid = child.id();
        s.add(pid, Role::Hook);
        let out = collect_stdout(&mut child);
        let status = loop {
            {
                // Reap under the procs lock: the chaos thread only signals
                // pids that are listed, so never a recycled one.
                let mut procs = s.procs.lock().unwrap();
                if let Ok(Some(st)) = child.try_wait() {
                    procs.retain(|(p, _)| *p != pid);
                    break st;
                }
            }
            thread::sleep(Duration::from_millis(2));
        };
        let stdout = out.join().unwrap();
        let end = Instant::now();
        s.n.hook_runs.fetch_add(1, Ordering::Relaxed);
        let mut log = s.log.lock().unwrap();
        if status.code() != Some(0) {
            log.hook_failures.push(format!("exit {status}"));
        }
        match hook_messages(&stdout) {
            Ok(msgs) if msgs.is_empty() => {}
            Ok(msgs) => log.batches.push(Batch {
                start,
                end,
                via: "hook",
                pid,
                msgs,
            }),
            Err(e) => log.hook_failures.push(e),
        }
        drop(log);
        thread::sleep(Duration::from_millis(3));
    }
}

fn reader_loop(s: &Soak, srv: &Mutex<Server>, receiver_pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(Instant::now() < deadline, "reader did not drain in time");
        let start = Instant::now();
        let ans = srv.lock().unwrap().call("read_my_messages", json!({}));
        let end = Instant::now();
        s.n.reads.fetch_add(1, Ordering::Relaxed);
        let v = match ans {
            Answer::Response(v) => tool_outcome(&v).expect("read_my_messages isError"),
            other => panic!("receiver stopped answering: {other:?}"),
        };
        let msgs: Vec<(String, String)> = v["messages"]
            .as_array()
            .expect("messages array")
            .iter()
            .map(|m| {
                (
                    m["id"].as_str().unwrap_or_default().to_string(),
                    m["body"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let count = msgs.len();
        if !msgs.is_empty() {
            s.log.lock().unwrap().batches.push(Batch {
                start,
                end,
                via: "read_my_messages",
                pid: 0,
                msgs,
            });
        }
        if count == 0
            && s.senders_done.load(Ordering::SeqCst)
            && s.receiver_mailbox_empty(receiver_pid)
        {
            return;
        }
        thread::sleep(Duration::from_millis(if count == 0 { 20 } else { 2 }));
    }
}

fn chaos_loop(s: &Soak, rng: &mut Rng, until: Instant, max_stop_ms: u64) {
    let mut actions = 0u64;
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(40 + rng.below(160)));
        let holders: Vec<u32> = lock_owners(&s.world)
            .into_iter()
            .filter_map(|(_, o)| o)
            .collect();
        let procs = s.procs.lock().unwrap().clone();
        // Every third action is a kill, so even a short run has some.
        actions += 1;
        let roll = if actions.is_multiple_of(3) {
            0
        } else {
            rng.below(100)
        };
        if roll < 35 {
            // SIGKILL a sender, preferring one that holds a lock right now.
            let senders: Vec<u32> = procs
                .iter()
                .filter(|(_, r)| *r == Role::Sender)
                .map(|(p, _)| *p)
                .collect();
            let prefer_holder = rng.below(2) == 0;
            let Some((victim, _)) = pick(rng, &senders, &holders, prefer_holder) else {
                continue;
            };
            let killed = signal_listed(s, victim, libc::SIGKILL, || {
                s.killed.lock().unwrap().insert(victim);
            });
            if !killed {
                continue;
            }
            s.n.kills.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            s.log.lock().unwrap().faults.push(Fault {
                at: now,
                until: now,
                pid: victim,
                what: "SIGKILL",
            });
            // Wait for the kernel to finish it, then age any lock it left.
            thread::sleep(Duration::from_millis(30));
            let mut orphaned = false;
            for (lock, owner) in lock_owners(&s.world) {
                if owner == Some(victim) && backdate(&lock, 120) {
                    orphaned = true;
                    s.n.orphaned_locks_backdated.fetch_add(1, Ordering::Relaxed);
                }
            }
            if orphaned {
                s.n.kills_of_lock_holders.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            // SIGSTOP a lock holder if one of ours holds a lock, else anyone.
            let ours: Vec<u32> = procs.iter().map(|(p, _)| *p).collect();
            let Some((victim, holder)) = pick(rng, &ours, &holders, true) else {
                continue;
            };
            if !signal_listed(s, victim, libc::SIGSTOP, || {}) {
                continue;
            }
            s.n.stops.fetch_add(1, Ordering::Relaxed);
            if holder {
                s.n.stops_of_lock_holders.fetch_add(1, Ordering::Relaxed);
            }
            let at = Instant::now();
            thread::sleep(Duration::from_millis(10 + rng.below(max_stop_ms)));
            s.log.lock().unwrap().faults.push(Fault {
                at,
                until: Instant::now(),
                pid: victim,
                what: if holder {
                    "SIGSTOP(lock holder)"
                } else {
                    "SIGSTOP"
                },
            });
            // A stopped process cannot exit, so it is still listed unless a
            // sender thread has just killed it on purpose.
            signal_listed(s, victim, libc::SIGCONT, || {});
        }
    }
}

/// A random victim among `pool`; among those holding a lock (per
/// `holders`) when `prefer_holder` and there are any. Also says whether the
/// victim holds a lock.
fn pick(rng: &mut Rng, pool: &[u32], holders: &[u32], prefer_holder: bool) -> Option<(u32, bool)> {
    let holding: Vec<u32> = pool
        .iter()
        .copied()
        .filter(|p| holders.contains(p))
        .collect();
    let from = if prefer_holder && !holding.is_empty() {
        &holding
    } else {
        pool
    };
    if from.is_empty() {
        return None;
    }
    let victim = from[rng.below(from.len() as u64) as usize];
    Some((victim, holding.contains(&victim)))
}

/// Signal `pid` only while it is still listed (so never a reaped, recycled
/// pid); `before` runs under the same lock. False when it was not listed.
fn signal_listed(s: &Soak, pid: u32, sig: i32, before: impl FnOnce()) -> bool {
    let procs = s.procs.lock().unwrap();
    if !procs.iter().any(|(p, _)| *p == pid) {
        return false;
    }
    before();
    signal(pid, sig);
    true
}

#[test]
fn soak_with_kills_and_stalls_loses_duplicates_and_reorders_nothing() {
    let secs = env_num("OXTAIL_SOAK_SECS", 4);
    let n_senders = env_num("OXTAIL_SOAK_SENDERS", 3) as usize;
    let max_stop_ms = env_num("OXTAIL_SOAK_MAX_STOP_MS", 800).clamp(1, 25_000);
    let seed = env_num(
        "OXTAIL_SOAK_SEED",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    eprintln!(
        "soak: {secs}s, {n_senders} senders, stops <= {max_stop_ms} ms, OXTAIL_SOAK_SEED={seed}"
    );

    let soak = Arc::new(Soak {
        world: World::new(),
        procs: Mutex::new(Vec::new()),
        killed: Mutex::new(HashSet::new()),
        chaos_over: AtomicBool::new(false),
        senders_done: AtomicBool::new(false),
        log: Mutex::new(Log::default()),
        n: Counters::default(),
    });
    // The receiver: a small read budget so overflow is requeued to the front.
    let mut receiver = soak.world.server(&[("OXTAIL_READ_MAX_MESSAGES", "7")]);
    receiver.claim(SID_R);
    let receiver_pid = receiver.pid;
    soak.add(receiver_pid, Role::Receiver);
    let receiver = Arc::new(Mutex::new(receiver));

    let senders: Vec<_> = (0..n_senders)
        .map(|i| {
            let s = Arc::clone(&soak);
            thread::spawn(move || sender_loop(&s, i))
        })
        .collect();
    let hooks: Vec<_> = (0..2)
        .map(|_| {
            let s = Arc::clone(&soak);
            thread::spawn(move || hook_loop(&s, receiver_pid))
        })
        .collect();
    let reader = {
        let s = Arc::clone(&soak);
        let r = Arc::clone(&receiver);
        thread::spawn(move || reader_loop(&s, &r, receiver_pid))
    };

    let mut rng = Rng(seed);
    chaos_loop(
        &soak,
        &mut rng,
        Instant::now() + Duration::from_secs(secs),
        max_stop_ms,
    );
    soak.chaos_over.store(true, Ordering::SeqCst);
    for h in senders {
        h.join().unwrap();
    }
    soak.senders_done.store(true, Ordering::SeqCst);
    for h in hooks {
        h.join().unwrap();
    }
    reader.join().unwrap();
    assert!(
        receiver.lock().unwrap().alive(),
        "the receiver server died during the soak"
    );

    verify(&soak, receiver_pid);
}

/// Print every drain that showed one of `ids`, and the faults around it.
fn explain_duplicates(log: &Log, ids: Vec<&str>) {
    let t0 = log.batches.iter().map(|b| b.start).min().unwrap();
    let ms = |t: Instant| t.saturating_duration_since(t0).as_millis();
    for id in ids {
        eprintln!("duplicate {id}:");
        for b in log
            .batches
            .iter()
            .filter(|b| b.msgs.iter().any(|(i, _)| i == id))
        {
            eprintln!(
                "  {} pid {} from {} ms to {} ms ({} messages)",
                b.via,
                b.pid,
                ms(b.start),
                ms(b.end),
                b.msgs.len()
            );
            for f in &log.faults {
                if f.until + Duration::from_secs(5) >= b.start
                    && f.at <= b.end + Duration::from_secs(1)
                {
                    eprintln!(
                        "    {} pid {} {} ms .. {} ms",
                        f.what,
                        f.pid,
                        ms(f.at),
                        ms(f.until)
                    );
                }
            }
        }
    }
}

fn verify(s: &Soak, receiver_pid: u32) {
    let log = s.log.lock().unwrap();
    assert!(
        log.unexpected_exits.is_empty(),
        "{:?}",
        log.unexpected_exits
    );
    assert!(log.hook_failures.is_empty(), "{:?}", log.hook_failures);

    let acked: HashMap<&str, Tag> = log.acked.iter().map(|(id, t)| (id.as_str(), *t)).collect();
    assert_eq!(acked.len(), log.acked.len(), "one id was acked twice");
    let failed: HashSet<Tag> = log.failed.iter().map(|(t, _)| *t).collect();
    let unknown: HashSet<Tag> = log.unknown.iter().copied().collect();

    let mut seen_ids: HashMap<&str, usize> = HashMap::new();
    let mut seen_tags: HashMap<Tag, usize> = HashMap::new();
    let mut delivered_unknown = 0u64;
    for b in &log.batches {
        for (id, body) in &b.msgs {
            *seen_ids.entry(id.as_str()).or_default() += 1;
            let tag =
                parse_tag(body).unwrap_or_else(|| panic!("corrupted body via {}: {body:?}", b.via));
            assert_eq!(body, &body_for(tag), "corrupted body via {}", b.via);
            *seen_tags.entry(tag).or_default() += 1;
            if let Some(t) = acked.get(id.as_str()) {
                assert_eq!(*t, tag, "id {id} delivered with another message's body");
            } else {
                assert!(
                    !failed.contains(&tag),
                    "phantom: send {tag:?} returned an error but was delivered ({id})"
                );
                assert!(
                    unknown.contains(&tag),
                    "delivered {tag:?} ({id}) was never sent"
                );
                delivered_unknown += 1;
            }
        }
    }
    let twice: Vec<_> = seen_ids.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        explain_duplicates(&log, twice.iter().map(|(id, _)| **id).collect());
    }
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let twice_tags: Vec<_> = seen_tags.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice_tags.is_empty(),
        "one send delivered twice: {twice_tags:?}"
    );
    let lost: Vec<_> = log
        .acked
        .iter()
        .filter(|(id, _)| !seen_ids.contains_key(id.as_str()))
        .collect();
    assert!(lost.is_empty(), "acked but never delivered: {lost:?}");

    // Order: within a drain, and across drains that did not overlap.
    let mut order_checks = 0u64;
    for b in &log.batches {
        let mut last: HashMap<usize, Tag> = HashMap::new();
        for (_, body) in &b.msgs {
            let t = parse_tag(body).unwrap();
            if let Some(prev) = last.insert(t.0, t) {
                assert!(
                    prev < t,
                    "order broken inside one {} drain: {prev:?} then {t:?}",
                    b.via
                );
            }
        }
    }
    for a in &log.batches {
        for b in &log.batches {
            if a.end >= b.start {
                continue;
            }
            for (_, x) in &a.msgs {
                let tx = parse_tag(x).unwrap();
                for (_, y) in &b.msgs {
                    let ty = parse_tag(y).unwrap();
                    if tx.0 == ty.0 {
                        order_checks += 1;
                        assert!(
                            tx < ty,
                            "order broken across drains: {tx:?} ({}) delivered before {ty:?} ({})",
                            a.via,
                            b.via
                        );
                    }
                }
            }
        }
    }

    // Every delivered id resolves in the receiver's ledger, or its ledger
    // write failure was traced.
    let ledger = fs::read(s.world.layout().ledger(SID_R)).unwrap_or_default();
    let ledger_ids: HashSet<String> = ledger
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    let ledger_failed: HashSet<String> = s
        .world
        .traces("received_ledger_write_failed")
        .iter()
        .filter_map(|v| v["message_id"].as_str().map(str::to_string))
        .collect();
    let mut ledger_misses = 0u64;
    for id in seen_ids.keys() {
        if !ledger_ids.contains(*id) {
            ledger_misses += 1;
            assert!(
                ledger_failed.contains(*id),
                "delivered {id} is not in the receiver's ledger and no failure was traced"
            );
        }
    }
    assert!(s.receiver_mailbox_empty(receiver_pid));

    let delivered: u64 = seen_ids.len() as u64;
    let torn = s.world.traces("mailbox_drain_skip_invalid").len() as u64;
    let stale_clears = s.world.traces("mailbox_lock_stale_clear").len() as u64
        + s.world.traces("received_lock_stale_clear").len() as u64;
    let n = &s.n;
    figure(
        "fault_soak",
        &[
            ("send_attempts", n.attempts.load(Ordering::Relaxed)),
            ("sent_ok", log.acked.len() as u64),
            ("send_errors", log.failed.len() as u64),
            ("in_flight_at_kill", log.unknown.len() as u64),
            ("delivered", delivered),
            ("delivered_of_in_flight", delivered_unknown),
            ("lost", 0),
            ("duplicates", 0),
            ("sigkills", n.kills.load(Ordering::Relaxed)),
            (
                "sigkills_of_lock_holders",
                n.kills_of_lock_holders.load(Ordering::Relaxed),
            ),
            (
                "orphaned_locks",
                n.orphaned_locks_backdated.load(Ordering::Relaxed),
            ),
            ("stale_clears_traced", stale_clears),
            ("sigstops", n.stops.load(Ordering::Relaxed)),
            (
                "sigstops_of_lock_holders",
                n.stops_of_lock_holders.load(Ordering::Relaxed),
            ),
            ("hook_runs", n.hook_runs.load(Ordering::Relaxed)),
            ("reads", n.reads.load(Ordering::Relaxed)),
            ("drains_with_mail", log.batches.len() as u64),
            ("torn_lines_skipped", torn),
            ("ledger_misses_traced", ledger_misses),
            ("cross_drain_order_checks", order_checks),
        ],
    );
    assert!(!log.acked.is_empty(), "the soak sent nothing");
}
