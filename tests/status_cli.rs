//! `oxtail status` against real servers in a private HOME: the JSON lists
//! every agent with its state card and the right unread count, `--check`
//! fails on stranded mail and passes once it is read, legacy (0.14-shaped)
//! entries show with unknowns, and the command changes nothing on disk.

mod messaging_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use messaging_support::*;
use oxtail::store::lock::{self, LockKind, LockOptions};
use oxtail::store::mailbox;
use oxtail::store::message::NewMessage;

/// Run `oxtail status ARGS` in the world's project; (exit code, stdout).
fn status(world: &World, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oxtail"))
        .arg("status")
        .args(args)
        .current_dir(&world.project)
        .env("HOME", &world.home)
        .env("TMUX_TMPDIR", &world.tmux_tmpdir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "status wrote to stderr: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn status_json(world: &World, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (code, out) = status(world, &a);
    (
        code,
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")),
    )
}

fn agent<'a>(v: &'a Value, sid: &str) -> &'a Value {
    v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["session_id"] == sid)
        .unwrap_or_else(|| panic!("no agent {sid} in {v}"))
}

fn send(from: &mut Server, to: &str, body: &str) {
    let r = from
        .tool("send_message", json!({"target": to, "body": body}))
        .json();
    assert_eq!(r["ok"], true, "{r}");
}

/// The store tree once two looks 300 ms apart agree.
fn settled_tree(root: &Path) -> BTreeMap<String, FileState> {
    let mut last = tree(root);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = tree(root);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[test]
fn json_lists_every_agent_with_its_state_card_and_unread_count() {
    let world = World::new();
    let mut a = world.server(&[]);
    let mut b = world.server(&[]);
    let mut c = world.server(&[]);
    a.claim(SID_A);
    b.claim(SID_B);
    c.claim(SID_C);
    let r = a
        .tool("set_my_state", json!({"purpose": "porting the parser"}))
        .json();
    assert_eq!(r["ok"], true, "{r}");
    send(&mut a, SID_B, "one");
    send(&mut a, SID_B, "two");
    send(&mut c, SID_B, "three");
    send(&mut b, SID_C, "four");
    // An agent of another project is not listed (but is with --all).
    let elsewhere = world.home.join("other");
    fs::create_dir_all(elsewhere.join(".git")).unwrap();
    let mut d = world.server_in(&elsewhere, &[]);
    d.claim("dddddddd-0000-4000-8000-000000000004");

    let (code, v) = status_json(&world, &[]);
    assert_eq!(code, 0);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["project_root"], world.project.to_string_lossy().as_ref());
    assert_eq!(v["agents"].as_array().unwrap().len(), 3, "{v}");
    let (va, vb, vc) = (agent(&v, SID_A), agent(&v, SID_B), agent(&v, SID_C));
    assert_eq!(va["state"]["purpose"], "porting the parser");
    assert_eq!(va["purpose"], "porting the parser");
    assert!(vb["state"].is_null());
    assert_eq!(
        (
            va["unread"].as_u64(),
            vb["unread"].as_u64(),
            vc["unread"].as_u64()
        ),
        (Some(0), Some(3), Some(1))
    );
    for x in [va, vb, vc] {
        assert_eq!(x["unread_confidence"], "high");
        assert_eq!(x["client_type"], "claude-code");
        assert_eq!(x["proc_sig"], "ok", "{x}");
        assert_ne!(x["liveness"], "dead", "{x}");
        assert_eq!(x["short_id"], x["session_id"].as_str().unwrap()[..8]);
    }
    assert_eq!(vb["server_pid"], b.pid);
    assert_eq!(v["trouble"]["needs_attention"], false);
    // Reading drains B's mail: the count follows.
    let (_, v) = status_json(&world, &[]);
    assert_eq!(
        agent(&v, SID_B)["last_delivery_state"],
        "none",
        "nothing taken yet"
    );
    let read = b.tool("read_my_messages", json!({})).json();
    let (_, v) = status_json(&world, &["--log"]);
    assert_eq!(agent(&v, SID_B)["unread"], 0);
    // Taken; with no receipt (a receiver without receipts), when and how is
    // unknown ... The server writes its receipt once the answer is out; take
    // it away to see the unknown case, then put it back.
    let newest = read["messages"][2]["id"].as_str().unwrap().to_string();
    let ids: Vec<String> = read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    wait_until("the read's receipts", || {
        ids.iter()
            .all(|id| oxtail::store::receipts::read(&world.layout(), id).is_some())
    });
    let dir = world.layout().receipts_dir();
    let aside = dir.with_extension("aside");
    fs::rename(&dir, &aside).unwrap();
    let (_, v) = status_json(&world, &["--log"]);
    assert_eq!(agent(&v, SID_B)["last_delivery_state"], "unknown");
    fs::rename(&aside, &dir).unwrap();
    // ... and a receipt says it.
    let (_, v) = status_json(&world, &["--log"]);
    let vb = agent(&v, SID_B);
    assert_eq!(vb["last_delivery_state"], "delivered", "{vb}");
    assert_eq!(vb["last_delivery"]["message_id"], newest.as_str());
    assert_eq!(vb["last_delivery"]["via"], "read_my_messages");
    assert_eq!(v["records"]["receipts"], true);
    let logged = v["comms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == newest.as_str())
        .unwrap();
    assert_eq!(logged["status"], "delivered");
    let log = v["comms"].as_array().unwrap();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(
        log.iter().all(|m| m.get("body").is_none()),
        "bodies hidden by default"
    );
    let (_, v) = status_json(&world, &["--bodies"]);
    let to_b: Vec<&str> = v["comms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["to_session_id"] == SID_B)
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        to_b,
        ["one", "two", "three"],
        "each receiver's arrival order"
    );
    assert_eq!(v["comms"].as_array().unwrap().len(), 4);
    let (_, v) = status_json(&world, &["--all"]);
    assert_eq!(v["agents"].as_array().unwrap().len(), 4);
    assert!(v["project_root"].is_null());
    // The table shows the same agents.
    let (code, text) = status(&world, &[]);
    assert_eq!(code, 0);
    assert!(text.contains("porting the parser"), "{text}");
    assert!(text.contains(&SID_C[..8]), "{text}");
    assert!(text.contains("OK: nothing needs you"), "{text}");
}

#[test]
fn check_fails_on_mail_stranded_with_a_dead_agent_and_passes_once_it_is_read() {
    let world = World::new();
    let mut a = world.server(&[]);
    let mut b = world.server(&[]);
    a.claim(SID_A);
    b.claim(SID_B);
    send(&mut a, SID_B, "are you there?");
    send(&mut a, SID_B, "hello?");
    let b_pid = b.pid;
    drop(b); // SIGKILL: its entry and its mail stay behind
    let (code, v) = status_json(&world, &["--check"]);
    assert_eq!(code, 2, "{v}");
    let vb = agent(&v, SID_B);
    assert_eq!(vb["liveness"], "dead");
    assert_eq!(vb["liveness_reason"], "exited");
    assert_eq!(
        (vb["unread"].as_u64(), vb["stranded"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(v["trouble"]["stranded_mail"], 2);
    assert_eq!(v["trouble"]["stranded_mail_owners"], json!([&SID_B[..8]]));
    let (code, text) = status(&world, &["--check"]);
    assert_eq!(code, 2);
    assert!(text.contains("NEEDS YOU: 2 messages stranded"), "{text}");
    assert!(
        world.layout().session_entry(b_pid).exists(),
        "status reaps nothing"
    );
    // The session comes back and reads its mail.
    let mut b2 = world.server(&[]);
    b2.claim(SID_B);
    let got = b2.tool("read_my_messages", json!({})).json();
    assert_eq!(got["count"], 2, "{got}");
    let (code, v) = status_json(&world, &["--check"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(agent(&v, SID_B)["unread"], 0);
    assert_eq!(v["trouble"]["needs_attention"], false);
}

#[test]
fn check_fails_on_a_mailbox_without_entry_or_owner_until_it_is_gone() {
    let world = World::new();
    let mut a = world.server(&[]);
    a.claim(SID_A);
    let dead = messaging_support::dead_pid();
    let layout = world.layout();
    mailbox::enqueue(&layout, dead, "lost", Some(SID_A), &NewMessage::default()).unwrap();
    let (code, v) = status_json(&world, &["--check"]);
    assert_eq!(code, 2, "{v}");
    let m = &v["unowned_mailboxes"][0];
    assert_eq!(
        (m["server_pid"].as_u64(), m["unread"].as_u64()),
        (Some(dead as u64), Some(1))
    );
    assert_eq!(
        (m["stranded"].as_bool(), m["pid_alive"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(m["senders"], json!([SID_A]));
    let (_, text) = status(&world, &[]);
    assert!(
        text.contains(&format!(
            "mailbox of pid {dead}: 1 message queued, owner dead: STRANDED"
        )),
        "{text}"
    );
    mailbox::drain(&layout, dead).unwrap();
    assert_eq!(status_json(&world, &["--check"]).0, 0);
}

#[test]
fn a_legacy_peer_shows_with_unknowns() {
    let world = World::new();
    let sleeper = Sleeper::new();
    // The 0.14 shape: no capabilities, no state key, no activity marker.
    let now = oxtail::clock::now_s();
    world.fake_entry(
        sleeper.pid(),
        json!({"server_pid": sleeper.pid(), "started_at": now, "client": {"type": "codex",
            "session_id": SID_C, "transcript_path": null, "session_id_source": "env",
            "cwd": world.project.to_string_lossy()}, "tmux_pane": null, "tmux_session": "legacy"}),
    );
    let (code, v) = status_json(&world, &["--check"]);
    assert_eq!(code, 0, "{v}");
    let c = agent(&v, SID_C);
    assert_eq!(c["name"], "legacy");
    assert_eq!(c["client_type"], "codex");
    assert_eq!(
        (c["liveness"].as_str(), c["liveness_reason"].as_str()),
        (Some("unknown"), Some("no_marker"))
    );
    assert!(c["state"].is_null() && c["waiting"].is_null());
    assert_eq!(c["last_delivery_state"], "none");
    // Beyond kill(pid, 0): an entry "written" before its pid's process
    // started belongs to a process that is gone (pid reused).
    world.fake_entry(
        sleeper.pid(),
        json!({"server_pid": sleeper.pid(), "started_at": 1_000_000_000, "client": {"type": "codex",
            "session_id": SID_C, "cwd": world.project.to_string_lossy()}}),
    );
    let (_, v) = status_json(&world, &[]);
    let c = agent(&v, SID_C);
    assert_eq!(
        (c["liveness"].as_str(), c["proc_sig"].as_str()),
        (Some("dead"), Some("reused"))
    );
}

/// What is compared of one file: is-directory, size, mode, mtime (s, ns), content.
type FileState = (bool, u64, u32, i64, i64, Vec<u8>);

/// Every file under `root`.
fn tree(root: &Path) -> BTreeMap<String, FileState> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for de in rd.flatten() {
            let p = de.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.insert(
                p.to_string_lossy().into_owned(),
                (
                    m.is_dir(),
                    m.len(),
                    m.permissions().mode(),
                    m.mtime(),
                    m.mtime_nsec(),
                    content,
                ),
            );
        }
    }
    out
}

#[test]
fn status_changes_nothing_and_does_not_wait_for_a_held_lock() {
    let world = World::new();
    let root = world.home.join(".oxtail");
    // No store yet: still none afterwards.
    assert_eq!(status(&world, &["--check"]).0, 0);
    assert!(!root.exists(), "status created {}", root.display());

    let mut a = world.server(&[]);
    let mut b = world.server(&[]);
    a.claim(SID_A);
    b.claim(SID_B);
    send(&mut a, SID_B, "x");
    let dead = messaging_support::dead_pid();
    mailbox::enqueue(
        &world.layout(),
        dead,
        "orphan",
        Some(SID_A),
        &NewMessage::default(),
    )
    .unwrap();
    drop(a); // a dead entry (nothing queued for it: readers may reap it)
    let layout = world.layout();
    // Every mailbox lock and B's ledger lock held for the whole run.
    let _held: Vec<_> = [b.pid, dead]
        .iter()
        .map(|&p| {
            lock::acquire(
                &lock::lock_path_for(&layout.mailbox(p)),
                &LockKind::Mailbox(p),
                &LockOptions::default(),
            )
            .unwrap()
        })
        .collect();
    let _ledger = lock::acquire(
        &lock::lock_path_for(&layout.ledger(SID_B)),
        &LockKind::Ledger(SID_B.to_string()),
        &LockOptions::default(),
    )
    .unwrap();
    // The live servers finish their own start-up writes first (registry
    // refresh, store directories): only status must leave the tree alone.
    let before = settled_tree(&root);
    let t0 = Instant::now();
    for args in [
        &[][..],
        &["--json"],
        &["--check"],
        &["--all", "--log", "--bodies"],
    ] {
        status(&world, args);
    }
    let elapsed = t0.elapsed();
    assert_eq!(tree(&root), before, "status changed the store");
    // Hang guard only (a lock wait would take the lock budget per mailbox).
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    let (_, v) = status_json(&world, &[]);
    assert_eq!(agent(&v, SID_B)["unread"], 1, "read through the held locks");
    assert_eq!(agent(&v, SID_A)["liveness"], "dead");
}

#[test]
fn a_fifo_in_place_of_a_ledger_or_mailbox_does_not_hang_status() {
    let world = World::new();
    let mut a = world.server(&[]);
    a.claim(SID_A);
    let layout = world.layout();
    fs::create_dir_all(layout.received_dir()).unwrap();
    fs::create_dir_all(layout.mailboxes_dir()).unwrap();
    for p in [layout.ledger(SID_A), layout.mailbox(a.pid)] {
        let c = std::ffi::CString::new(p.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: a plain mkfifo(3) on a path we own.
        assert_eq!(
            unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
            0,
            "{}",
            p.display()
        );
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxtail"))
        .args(["status", "--json", "--log"])
        .current_dir(&world.project)
        .env("HOME", &world.home)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("oxtail status hung on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The FIFO "mailbox" holds nothing; the ledger is named in a warning.
    assert_eq!(agent(&v, SID_A)["unread"], 0);
    assert!(
        v["warnings"].as_array().unwrap().iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains("received-ledger") && w.contains("FIFO")
        }),
        "{v}"
    );
}

/// Issue 14's check, end to end: two live agents whose `ask_peer` calls wait
/// on each other are a deadlock — `--check` fails — and once one ask ends the
/// cycle is gone.
#[test]
fn a_deadlock_between_two_live_agents_is_flagged() {
    let world = World::new();
    let mut a = world.server(&[("OXTAIL_ASK_PEER_WAKE_STRATEGY", "off")]);
    let mut b = world.server(&[("OXTAIL_ASK_PEER_WAKE_STRATEGY", "off")]);
    a.claim(SID_A);
    b.claim(SID_B);
    let ask_a = a.start_tool(
        "ask_peer",
        json!({"target": SID_B, "body": "A waits on B", "timeout_ms": 60000}),
    );
    let ask_b = b.start_tool(
        "ask_peer",
        json!({"target": SID_A, "body": "B waits on A", "timeout_ms": 60000}),
    );
    let mut v = Value::Null;
    wait_until("both waits in the view", || {
        v = status_json(&world, &[]).1;
        v["cycles"].as_array().is_some_and(|c| !c.is_empty())
    });
    let cycle = &v["cycles"][0];
    assert_eq!(cycle["all_live"], true, "{v}");
    assert_eq!(cycle["members"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["trouble"]["deadlocks"], 1, "{v}");
    assert_eq!(agent(&v, SID_A)["waiting"]["target_session_id"], SID_B);
    assert_eq!(agent(&v, SID_B)["waiting"]["target_session_id"], SID_A);
    let (code, text) = status(&world, &["--check"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.to_lowercase().contains("deadlock"), "{text}");
    // A answers through B's question: B's wait ends, the cycle is gone.
    // (A cancelled call gets no answer: MCP leaves it unanswered.)
    a.cancel(ask_a);
    let q = a.tool("read_my_messages", json!({})).json();
    let question = q["messages"][0]["id"].as_str().unwrap().to_string();
    a.tool(
        "reply_to_message",
        json!({"message_id": question, "body": "done"}),
    )
    .json();
    let answered = Server::tool_out(&b.wait(ask_b)).json();
    assert_eq!(answered["reply"]["body"], "done", "{answered}");
    let (_, v) = status_json(&world, &[]);
    assert_eq!(v["trouble"]["deadlocks"], 0, "{v}");
    assert_eq!(status(&world, &["--check"]).0, 0);
}
