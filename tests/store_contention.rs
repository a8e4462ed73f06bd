//! Multi-process behaviour of the mailbox: concurrent writer processes and a
//! draining reader lose nothing, duplicate nothing and keep each writer's
//! order; a stale lock does not stop a crowd; a writer killed with SIGKILL
//! never costs a neighbouring record.
//!
//! Helper processes are this test binary re-executed with
//! `OXTAIL_STORE_TEST_ROLE` set, running only the `child_role` test.

mod store_support;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oxtail::store::lock;
use oxtail::store::mailbox;
use oxtail::store::message::{Message, NewMessage};
use oxtail::store::paths::Layout;
use store_support::{backdate, layout, side, spawn_role, traces};

const ROLE: &str = "OXTAIL_STORE_TEST_ROLE";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// Enqueue, retrying on lock timeout (a timeout writes nothing). Returns the
/// number of retries.
fn enqueue_retrying(l: &Layout, pid: u32, body: &str, from: &str) -> u32 {
    let mut retries = 0;
    loop {
        match mailbox::enqueue(l, pid, body, Some(from), &NewMessage::default()) {
            Ok(_) => return retries,
            Err(e) if e.is_lock_timeout() => retries += 1,
            Err(e) => panic!("enqueue failed: {e}"),
        }
    }
}

/// Helper-process entry point; a no-op in a normal test run.
#[test]
fn child_role() {
    let role = env(ROLE);
    if role.is_empty() {
        return;
    }
    let l = Layout::at(env("OXTAIL_STORE_TEST_ROOT"));
    let pid: u32 = env("OXTAIL_STORE_TEST_PID").parse().unwrap();
    let writer = env("OXTAIL_STORE_TEST_WRITER");
    let from = format!("writer-{writer}");
    match role.as_str() {
        "writer" => {
            let count: usize = env("OXTAIL_STORE_TEST_COUNT").parse().unwrap();
            let mut retries = 0;
            for seq in 0..count {
                retries += enqueue_retrying(&l, pid, &format!("{writer}:{seq}"), &from);
            }
            let out =
                PathBuf::from(env("OXTAIL_STORE_TEST_ROOT")).join(format!("retries-{writer}"));
            fs::write(out, retries.to_string()).unwrap();
        }
        "spin" => {
            let pad = "p".repeat(8000);
            for seq in 0.. {
                enqueue_retrying(&l, pid, &format!("{writer}:{seq}:{pad}"), &from);
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn role_env(
    l: &Layout,
    role: &str,
    pid: u32,
    writer: usize,
    count: usize,
) -> Vec<(&'static str, String)> {
    vec![
        (ROLE, role.to_string()),
        ("OXTAIL_STORE_TEST_ROOT", l.root().display().to_string()),
        ("OXTAIL_STORE_TEST_PID", pid.to_string()),
        ("OXTAIL_STORE_TEST_WRITER", writer.to_string()),
        ("OXTAIL_STORE_TEST_COUNT", count.to_string()),
    ]
}

/// Parse `<writer>:<seq>[:pad]` bodies; assert per-writer order and no
/// duplicates; return per-writer counts.
fn check_order(msgs: &[Message]) -> HashMap<String, usize> {
    let mut next: HashMap<String, usize> = HashMap::new();
    let mut ids = HashSet::new();
    for m in msgs {
        assert!(ids.insert(m.id().unwrap().to_string()), "duplicate id");
        let body = m.body().unwrap();
        let mut parts = body.splitn(3, ':');
        let w = parts.next().unwrap().to_string();
        let seq: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(m.from_session_id(), Some(format!("writer-{w}").as_str()));
        let want = next.entry(w.clone()).or_insert(0);
        assert_eq!(seq, *want, "writer {w} out of order or lost a message");
        *want += 1;
    }
    next
}

#[test]
fn four_writer_processes_and_a_reader_lose_and_duplicate_nothing() {
    let (home, l) = layout();
    const WRITERS: usize = 4;
    const PER: usize = 500;
    let pid = 300;
    let mut children: Vec<_> = (0..WRITERS)
        .map(|w| {
            spawn_role(
                "child_role",
                home.path(),
                &role_env(&l, "writer", pid, w, PER),
            )
        })
        .collect();
    let mut got = Vec::new();
    let mut drain_errors = 0;
    let mut running = WRITERS;
    while running > 0 {
        match mailbox::drain(&l, pid) {
            Ok(msgs) => got.extend(msgs),
            Err(e) if e.is_lock_timeout() => drain_errors += 1,
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
        running = children
            .iter_mut()
            .map(|c| c.try_wait().unwrap().is_none())
            .filter(|alive| *alive)
            .count();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success(), "writer process failed");
    }
    got.extend(mailbox::drain(&l, pid).unwrap());
    let counts = check_order(&got);
    assert_eq!(got.len(), WRITERS * PER);
    for w in 0..WRITERS {
        assert_eq!(counts[&w.to_string()], PER);
    }
    let retries: u32 = (0..WRITERS)
        .map(|w| {
            fs::read_to_string(l.root().join(format!("retries-{w}")))
                .unwrap()
                .parse::<u32>()
                .unwrap()
        })
        .sum();
    eprintln!(
        "contention: {} messages, {retries} writer lock timeouts, {drain_errors} reader lock timeouts",
        got.len()
    );
    assert!(traces("mailbox_drain_skip_invalid", "\"pid\":300").is_empty());
}

/// Start `writers` writer processes of `per` messages each, all at once, and
/// wait for every one to succeed.
fn run_writers(home: &Path, l: &Layout, pid: u32, writers: usize, per: usize) {
    let children: Vec<_> = (0..writers)
        .map(|w| spawn_role("child_role", home, &role_env(l, "writer", pid, w, per)))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "writer process failed");
    }
}

#[test]
fn fifty_processes_enqueueing_concurrently_lose_nothing() {
    let (home, l) = layout();
    let pid = 301;
    run_writers(home.path(), &l, pid, 50, 1);
    let got = mailbox::drain(&l, pid).unwrap();
    let bodies: HashSet<_> = got.iter().map(|m| m.body().unwrap().to_string()).collect();
    assert_eq!(bodies.len(), 50);
    assert_eq!(got.len(), 50);
}

#[test]
fn twenty_processes_against_a_stale_lock_all_get_through() {
    let (home, l) = layout();
    let pid = 302;
    fs::create_dir_all(l.mailboxes_dir()).unwrap();
    let lk = lock::lock_path_for(&l.mailbox(pid));
    fs::create_dir(&lk).unwrap();
    backdate(&lk, 60);
    run_writers(home.path(), &l, pid, 20, 1);
    assert_eq!(mailbox::drain(&l, pid).unwrap().len(), 20);
    assert!(!lk.exists());
    assert!(!side(&lk, ".steal").exists());
}

#[test]
fn a_writer_killed_mid_append_never_costs_a_neighbour() {
    let (home, l) = layout();
    let pid = 303;
    let lk = lock::lock_path_for(&l.mailbox(pid));
    const ROUNDS: usize = 6;
    for round in 0..ROUNDS {
        let mut child = spawn_role(
            "child_role",
            home.path(),
            &role_env(&l, "spin", pid, round, 0),
        );
        std::thread::sleep(Duration::from_millis(40 + 15 * round as u64));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if round % 2 == 1 {
            // What a write cut short looks like: a record without its newline.
            fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(l.mailbox(pid))
                .unwrap()
                .write_all(b"{\"schema_version\":1,\"id\":\"00000000000000aa\",\"body\":\"cut")
                .unwrap();
        }
        if lk.exists() {
            // Killed while holding the lock: let the stale window pass.
            backdate(&lk, 60);
        }
        enqueue_retrying(&l, pid, &format!("n:{round}"), "writer-n");
    }
    let got = mailbox::drain(&l, pid).unwrap();
    let counts = check_order(&got);
    assert_eq!(counts["n"], ROUNDS, "a neighbour record was lost");
    let invalid = traces("mailbox_drain_skip_invalid", "\"pid\":303").len();
    eprintln!(
        "kill test: {} records survived, {invalid} torn records dropped",
        got.len()
    );
    assert!(
        invalid <= ROUNDS,
        "{invalid} records lost for {ROUNDS} kills"
    );
    for m in &got {
        let b = m.body().unwrap();
        assert!(
            b.starts_with("n:") || b.ends_with(&"p".repeat(8000)),
            "damaged body"
        );
    }
}
