//! Adversarial files under `~/.oxtail` and hostile identities, against the
//! real binary and the real hooks.
//!
//! - Registry entries that lie (file pid ≠ `server_pid`, a pane id with shell
//!   metacharacters, a pane the pid does not run in, a huge file, a symlink to
//!   a file elsewhere): no keystroke reaches a pane that the process tree does
//!   not confirm, nothing is executed, nothing outside `~/.oxtail` changes,
//!   nothing crashes.
//! - Mailbox and ledger lines with invalid UTF-8, raw NUL bytes, a 10 MB line
//!   and wrongly typed fields: the valid messages around them are delivered
//!   (by `read_my_messages` and by the hook), replies still resolve, the
//!   server keeps answering.
//! - A mailbox that is a symlink out of `~/.oxtail`: no send, drain or hook
//!   writes or truncates the file it points to; the next send replaces the
//!   link with a regular mailbox.
//! - A received-ledger that is a symlink: `reply_to_message` answers
//!   `message-not-found` with a reason (never a bare OS error), and the next
//!   delivery replaces the link, so replies work again.
//! - A FIFO as a ledger or mailbox: no tool hangs on it.
//! - Session ids with `/` or `..` (from the environment, from tool arguments,
//!   from hook payloads): nothing is written outside `~/.oxtail`.

mod fault_support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use fault_support::*;

const SID_R: &str = "ad000000-0000-4000-8000-0000000000aa";
const SID_S: &str = "ad000000-0000-4000-8000-0000000000bb";
const WAKE_MARK: &str = "oxtail msg";

// ------------------------------------------------------------------ tmux ----

fn tmux(world: &World) -> Command {
    let mut c = Command::new("tmux");
    c.env("TMUX_TMPDIR", &world.tmux_tmpdir)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn tmux_out(world: &World, args: &[&str]) -> String {
    let o = tmux(world).args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A private tmux server with session `victim` running a shell; its pane id
/// and pane pid. `None` (note printed) without tmux.
fn victim_pane(world: &World) -> Option<(String, u32)> {
    let ok = tmux(world)
        .args(["new-session", "-d", "-s", "victim", "-x", "150", "-y", "40"])
        .arg("sh")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("note: tmux not available; skipping the pane part of this test");
        return None;
    }
    let line = tmux_out(
        world,
        &["list-panes", "-t", "victim", "-F", "#{pane_id} #{pane_pid}"],
    );
    let (id, pid) = line.trim().split_once(' ')?;
    Some((id.to_string(), pid.parse().ok()?))
}

fn capture(world: &World) -> String {
    tmux_out(world, &["capture-pane", "-p", "-t", "victim"])
}

struct KillTmux<'a>(&'a World);
impl Drop for KillTmux<'_> {
    fn drop(&mut self) {
        let _ = tmux(self.0).arg("kill-server").output();
    }
}

fn entry_with_pane(pid: u32, sid: &str, cwd: &Path, pane: &str, session: &str) -> Value {
    let mut e = entry_json(pid, Some(sid), cwd);
    e["tmux_pane"] = json!(pane);
    e["tmux_session"] = json!(session);
    e
}

// ------------------------------------------------------------- registry ----

#[test]
fn lying_registry_entries_never_get_keystrokes_or_commands() {
    let world = World::new();
    let Some((pane, pane_pid)) = victim_pane(&world) else {
        return;
    };
    let _guard = KillTmux(&world);
    let mut s = world.server(&[]);
    s.claim(SID_S);
    let sleeper = Sleeper::new();
    let pwned = world.root().join("pwned");
    let p = pwned.display();

    // Each liar is a live process that is NOT in the victim's pane.
    let liars: Vec<(&str, Value)> = vec![
        // Claims the victim's real pane id and tmux session.
        (
            "11111111-0000-4000-8000-000000000001",
            entry_with_pane(
                sleeper.pid(),
                "11111111-0000-4000-8000-000000000001",
                &world.project,
                &pane,
                "victim",
            ),
        ),
        // Pane ids carrying shell metacharacters.
        (
            "11111111-0000-4000-8000-000000000002",
            entry_with_pane(
                sleeper.pid(),
                "11111111-0000-4000-8000-000000000002",
                &world.project,
                &format!("{pane}; touch {p}"),
                "victim",
            ),
        ),
        (
            "11111111-0000-4000-8000-000000000003",
            entry_with_pane(
                sleeper.pid(),
                "11111111-0000-4000-8000-000000000003",
                &world.project,
                &format!("$(touch {p})"),
                "victim;touch",
            ),
        ),
        (
            "11111111-0000-4000-8000-000000000004",
            entry_with_pane(
                sleeper.pid(),
                "11111111-0000-4000-8000-000000000004",
                &world.project,
                &format!("`touch {p}`"),
                "v",
            ),
        ),
    ];
    for (sid, entry) in &liars {
        // The liars take turns in the sleeper's registry file.
        world.write_entry(sleeper.pid(), entry);
        let before = capture(&world);
        let v = s
            .tool(
                "send_message",
                json!({"target": sid, "body": "hi", "wake": "auto"}),
            )
            .unwrap_or_else(|e| panic!("send to {sid} failed: {e}"));
        // The liar is addressable (so the wake path really ran)...
        assert_eq!(v["ok"], true, "{sid}: {v}");
        // ...but its pane is not confirmed by the process tree.
        let status = v["wake_status"].as_str().unwrap_or_default();
        assert!(!status.starts_with("fired"), "{sid}: {v}");
        assert_ne!(v["wake_path"], "tmux", "{sid}: {v}");
        // Give a (wrong) keystroke time to land before looking.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            capture(&world),
            before,
            "{sid}: keystrokes reached the victim pane"
        );
        assert!(!pwned.exists(), "{sid}: a pane id was run by a shell");
    }

    // A forged entry: file named after the sleeper, server_pid = the pane's
    // shell. The forgery guard must drop it: target not found, no keystrokes.
    let mut forged = entry_with_pane(
        pane_pid,
        "11111111-0000-4000-8000-000000000005",
        &world.project,
        &pane,
        "victim",
    );
    forged["server_pid"] = json!(pane_pid);
    fs::remove_file(world.layout().session_entry(sleeper.pid())).unwrap();
    world.write_entry(sleeper.pid(), &forged);
    let before = capture(&world);
    let v = s
        .tool(
            "send_message",
            json!({"target": "11111111-0000-4000-8000-000000000005", "body": "hi", "wake": "auto"}),
        )
        .unwrap();
    assert_eq!(
        v["error"], "target-not-found",
        "forged entry was trusted: {v}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(capture(&world), before, "forged entry got keystrokes");

    // Positive control: an entry whose server_pid really is the pane's
    // process IS verified (this is what the checks above would have seen).
    fs::remove_file(world.layout().session_entry(sleeper.pid())).unwrap();
    world.write_entry(
        pane_pid,
        &entry_with_pane(
            pane_pid,
            "11111111-0000-4000-8000-000000000006",
            &world.project,
            &pane,
            "victim",
        ),
    );
    let v = s
        .tool(
            "send_message",
            json!({"target": "11111111-0000-4000-8000-000000000006", "body": "hi", "wake": "auto"}),
        )
        .unwrap();
    // Typed, but nothing in the pane writes a receipt: never "fired".
    assert_eq!(v["wake_status"], "fired_unconfirmed", "control: {v}");
    assert_eq!(v["wake_path"], "tmux", "control: {v}");
    let start = Instant::now();
    while !capture(&world).contains(WAKE_MARK) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "control wake never typed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pwned.exists());
    figure(
        "adversarial_registry",
        &[("lying_entries", liars.len() as u64 + 1)],
    );
}

#[test]
fn huge_and_symlinked_registry_files_do_not_crash_or_leak_writes() {
    let world = World::new();
    let mut s = world.server(&[]);
    s.claim(SID_S);
    let sessions = world.layout().sessions_dir();
    // A 20 MB entry (a valid object with a huge string) and 20 MB of garbage.
    let sleeper_a = Sleeper::new();
    let sleeper_b = Sleeper::new();
    let mut huge = entry_json(sleeper_a.pid(), Some("huge"), &world.project);
    huge["state"] = json!("s".repeat(20 << 20));
    world.write_entry(sleeper_a.pid(), &huge);
    fs::write(
        sessions.join(format!("{}.json", sleeper_b.pid())),
        vec![b'{'; 20 << 20],
    )
    .unwrap();
    // A symlinked entry pointing at a file outside ~/.oxtail (a valid entry
    // for a live pid), and one pointing at a directory.
    let sleeper_c = Sleeper::new();
    let outside = world.root().join("outside-entry.json");
    let outside_text =
        serde_json::to_string_pretty(&entry_json(sleeper_c.pid(), Some("linked"), &world.project))
            .unwrap();
    fs::write(&outside, &outside_text).unwrap();
    symlink(&outside, sessions.join(format!("{}.json", sleeper_c.pid()))).unwrap();
    symlink(world.root(), sessions.join("4242.json")).unwrap();

    let start = Instant::now();
    let v = s.tool("list_project_sessions", json!({})).expect("list");
    eprintln!(
        "list_project_sessions with a 20 MB entry took {:?}",
        start.elapsed()
    );
    assert!(v["sessions"].is_array(), "{v}");
    let _ = s.tool("send_message", json!({"target": "linked", "body": "x"}));
    let _ = s.tool("send_message", json!({"target": "huge", "body": "x"}));
    // A second server registering (gc of dead siblings, reaping) must not
    // follow the links either.
    let mut s2 = world.server(&[]);
    s2.claim(SID_R);
    drop(sleeper_c);
    let _ = s2.tool("list_project_sessions", json!({}));
    assert_eq!(
        fs::read_to_string(&outside).unwrap(),
        outside_text,
        "outside file changed"
    );
    assert!(world.root().is_dir());
    assert!(s.alive() && s2.alive());
}

// ------------------------------------------------------- mailbox / ledger ----

/// Append raw bytes to a file (no lock: a hostile writer does not lock).
fn append(path: &Path, bytes: &[u8]) {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn garbage_lines() -> Vec<Vec<u8>> {
    let mut big = b"{\"schema_version\":1,\"id\":\"0123456789abcdef\",\"body\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'B', 10 << 20));
    big.extend_from_slice(b"\"}\n");
    vec![
        b"\xff\xfe{\"schema_version\":1,\"id\":\"\xc3\x28\",\"body\":\"\xed\xa0\x80\"}\n".to_vec(),
        b"{\"schema_version\":1,\"id\":\"00000000000000aa\",\"body\":\"nul\x00inside\"}\n".to_vec(),
        b"\x00\x00\x00\x00\n".to_vec(),
        b"{\"schema_version\":1,\"id\":123,\"body\":{\"x\":1},\"enqueued_at\":\"soon\"}\n".to_vec(),
        b"{\"schema_version\":\"1\",\"id\":null,\"body\":[]}\n".to_vec(),
        b"[1,2,3]\n\"str\"\nnull\n".to_vec(),
        vec![b'G'; 10 << 20],
        b"\n".to_vec(),
        big,
        b"{\"schema_version\":1,\"id\":\"torn".to_vec(),
    ]
}

/// Two servers in `world`: a receiver claimed as `SID_R`, a sender as `SID_S`.
fn receiver_and_sender(world: &World) -> (Server, Server) {
    let mut r = world.server(&[]);
    let mut s = world.server(&[]);
    r.claim(SID_R);
    s.claim(SID_S);
    (r, s)
}

#[test]
fn hostile_mailbox_lines_never_cost_valid_messages() {
    let world = World::new();
    let (mut r, mut s) = receiver_and_sender(&world);
    let mailbox = world.layout().mailbox(r.pid);
    let mut sent = Vec::new();
    for (i, g) in garbage_lines().iter().enumerate() {
        let v = s
            .tool(
                "send_message",
                json!({"target": SID_R, "body": format!("valid {i} \u{0} é")}),
            )
            .unwrap();
        let id = v["message_id"].as_str();
        sent.push(id.unwrap_or_else(|| panic!("send {i}: {v}")).to_string());
        append(&mailbox, g);
    }
    let v = s
        .tool(
            "send_message",
            json!({"target": SID_R, "body": "valid last"}),
        )
        .unwrap();
    sent.push(v["message_id"].as_str().unwrap().to_string());

    // The hook first: it must print valid JSON with only real messages and
    // must not lose what it does not print.
    let (code, out, err) = world.run_hook("pretooluse.sh", &pre_payload(SID_R));
    assert_eq!(code, Some(0), "hook: {err}");
    let mut got: Vec<String> = hook_messages(&out)
        .unwrap_or_else(|e| panic!("hook printed invalid output: {e}"))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    // Then the server drains whatever is left.
    loop {
        let v = r.tool("read_my_messages", json!({})).expect("read");
        let msgs = v["messages"].as_array().unwrap();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            let id = m["id"].as_str().unwrap_or_default().to_string();
            if sent.contains(&id) {
                got.push(id);
            }
        }
    }
    // A line with a raw NUL inside a string is not JSON; the server skips it,
    // while bash drops the NUL and the hook shows the rest (reported to the
    // hooks owner). Either way it must not cost or duplicate a real message.
    let foreign: Vec<&String> = got.iter().filter(|id| !sent.contains(id)).collect();
    if !foreign.is_empty() {
        eprintln!("note: the hook delivered unparseable lines as messages: {foreign:?}");
    }
    assert!(
        foreign.len() <= 1,
        "a foreign line was delivered twice: {foreign:?}"
    );
    got.retain(|id| sent.contains(id));
    assert_eq!(
        got, sent,
        "valid messages lost, duplicated or reordered around garbage"
    );
    assert!(r.alive() && s.alive());

    // Replies resolve even when the ledger is full of the same garbage.
    let ledger = world.layout().ledger(SID_R);
    for g in garbage_lines() {
        append(&ledger, &g);
    }
    let v = r
        .tool(
            "reply_to_message",
            json!({"message_id": sent[0], "body": "ack"}),
        )
        .expect("reply");
    assert_eq!(v["ok"], true, "{v}");
    // The 10 MB line is a valid (sender-less) record: it resolves, and the
    // answer is the structured "no reply target", not a crash.
    let v = r
        .tool(
            "reply_to_message",
            json!({"message_id": "0123456789abcdef", "body": "x"}),
        )
        .expect("reply");
    assert_eq!(v["error"], "no-reply-target", "{v}");
    // The NUL line's id is not a record: not found.
    let v = r
        .tool(
            "reply_to_message",
            json!({"message_id": "00000000000000aa", "body": "x"}),
        )
        .expect("reply");
    assert_eq!(
        v["error"], "message-not-found",
        "a garbage line resolved: {v}"
    );
    figure(
        "adversarial_lines",
        &[("hostile_lines", garbage_lines().len() as u64 * 2)],
    );
}

#[test]
fn a_symlinked_mailbox_never_writes_outside_the_store() {
    let world = World::new();
    let (mut r, mut s) = receiver_and_sender(&world);
    let outside: PathBuf = world.root().join("victim.jsonl");
    // The outside file holds a valid-looking record, so a reader that follows
    // the link would "deliver" it and then truncate it.
    let victim = b"{\"schema_version\":1,\"id\":\"00000000000000ff\",\"body\":\"precious\",\"enqueued_at\":1}\n";
    let mailbox = world.layout().mailbox(r.pid);
    fs::create_dir_all(mailbox.parent().unwrap()).unwrap();
    let relink = || {
        fs::write(&outside, victim).unwrap();
        let _ = fs::remove_file(&mailbox);
        symlink(&outside, &mailbox).unwrap();
    };
    let mut violations = Vec::new();
    let check = |what: &str, shown: &str, violations: &mut Vec<String>| {
        if fs::read(&outside).unwrap() != victim {
            violations.push(format!("{what} wrote through the symlinked mailbox"));
        }
        if shown.contains("precious") {
            violations.push(format!("{what} delivered a file outside the store"));
        }
    };

    relink();
    // A send replaces the link with a regular mailbox holding the message.
    let sent = s.tool(
        "send_message",
        json!({"target": SID_R, "body": "through the link?"}),
    );
    check("send_message", "", &mut violations);
    if !sent.as_ref().is_ok_and(|v| v["ok"] == true) {
        violations.push(format!("send_message to a symlinked mailbox: {sent:?}"));
    }
    if !fs::symlink_metadata(&mailbox).is_ok_and(|m| m.is_file())
        || !fs::read_to_string(&mailbox).is_ok_and(|t| t.contains("through the link?"))
    {
        violations.push("the send did not replace the mailbox link".into());
    }
    relink();
    let (code, out, _) = world.run_hook("pretooluse.sh", &pre_payload(SID_R));
    assert_eq!(code, Some(0));
    check("the PreToolUse hook", &out, &mut violations);
    relink();
    let read = r.tool("read_my_messages", json!({}));
    check("read_my_messages", &format!("{read:?}"), &mut violations);
    if !read.as_ref().is_ok_and(|v| v["ok"] == true) {
        violations.push(format!("read_my_messages on a symlinked mailbox: {read:?}"));
    }
    relink();
    let (_, out, _) = world.run_hook(
        "stop.sh",
        &json!({"session_id": SID_R, "hook_event_name": "Stop", "stop_hook_active": false})
            .to_string(),
    );
    check("the Stop hook", &out, &mut violations);
    let _ = fs::remove_file(&mailbox);
    assert!(r.alive() && s.alive());
    assert!(
        violations.is_empty(),
        "{violations:#?} (send answered {sent:?})"
    );
}

/// A received-ledger that is a symlink (to a file outside `~/.oxtail` that
/// holds a valid record, or dangling) is never read or written through:
/// `reply_to_message` answers `message-not-found` with a reason, never a bare
/// OS error, and the next delivery replaces the link with a regular file, so
/// replies work again.
#[test]
fn a_symlinked_ledger_answers_with_a_reason_and_is_replaced_by_the_next_delivery() {
    let world = World::new();
    let (mut r, mut s) = receiver_and_sender(&world);
    let first = s
        .tool("send_message", json!({"target": SID_R, "body": "first"}))
        .unwrap();
    let first_id = first["message_id"].as_str().unwrap().to_string();
    let ledger = world.layout().ledger(SID_R);
    let outside = world.root().join("victim-ledger.jsonl");
    // The outside file holds the very record, so a reader that follows the
    // link would resolve it.
    let victim = fs::read(&ledger).unwrap();
    fs::write(&outside, &victim).unwrap();
    for target in [outside.clone(), world.root().join("dangling")] {
        fs::remove_file(&ledger).unwrap();
        symlink(&target, &ledger).unwrap();
        let v = r
            .tool(
                "reply_to_message",
                json!({"message_id": first_id, "body": "through the link?"}),
            )
            .unwrap_or_else(|e| panic!("bare error for a symlinked ledger: {e}"));
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["error"], "message-not-found", "{v}");
        assert_eq!(v["reason"], "ledger-is-symlink", "{v}");
        let message = v["message"].as_str().unwrap();
        assert!(!message.contains("os error"), "{message}");
        assert!(message.contains("send_message"), "{message}");
    }
    // The next delivery replaces the link, never touching its target.
    fs::remove_file(&ledger).unwrap();
    symlink(&outside, &ledger).unwrap();
    let second = s
        .tool("send_message", json!({"target": SID_R, "body": "second"}))
        .unwrap();
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(
        fs::read(&outside).unwrap(),
        victim,
        "written through the link"
    );
    let meta = fs::symlink_metadata(&ledger).unwrap();
    assert!(meta.is_file(), "the ledger is still a link");
    let v = r
        .tool(
            "reply_to_message",
            json!({"message_id": second["message_id"], "body": "ack"}),
        )
        .unwrap();
    assert_eq!(v["ok"], true, "{v}");
    // The record that only the link's target held is not resolved.
    let v = r
        .tool(
            "reply_to_message",
            json!({"message_id": first_id, "body": "x"}),
        )
        .unwrap();
    assert_eq!(v["error"], "message-not-found", "{v}");
    assert!(v.get("reason").is_none(), "{v}");
    assert!(
        world.traces("received_ledger_write_failed").is_empty(),
        "the delivery to the symlinked ledger failed to record"
    );
    assert!(r.alive() && s.alive());
}

/// A FIFO planted as a ledger or a mailbox never hangs a tool: the lookup
/// answers with a reason, a send fails with the path and its kind.
#[test]
fn fifo_store_files_never_hang_a_tool() {
    let world = World::new();
    let (mut r, mut s) = receiver_and_sender(&world);
    let sent = s
        .tool("send_message", json!({"target": SID_R, "body": "one"}))
        .unwrap();
    let ledger = world.layout().ledger(SID_R);
    fs::remove_file(&ledger).unwrap();
    mkfifo(&ledger);
    let v = r
        .tool(
            "reply_to_message",
            json!({"message_id": sent["message_id"], "body": "x"}),
        )
        .unwrap();
    assert_eq!(
        (v["error"].as_str(), v["reason"].as_str()),
        (Some("message-not-found"), Some("ledger-unreadable")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("FIFO"), "{v}");
    let mailbox = world.layout().mailbox(r.pid);
    let _ = fs::remove_file(&mailbox);
    mkfifo(&mailbox);
    let err = s
        .tool("send_message", json!({"target": SID_R, "body": "two"}))
        .expect_err("a send into a FIFO mailbox must fail");
    assert!(err.contains(&format!("{}.jsonl is a FIFO", r.pid)), "{err}");
    let read = r.tool("read_my_messages", json!({})).unwrap();
    assert_eq!(read["mailboxes_skipped"], 1, "{read}");
    assert!(r.alive() && s.alive());
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

// ----------------------------------------------------------- session ids ----

#[test]
fn traversal_session_ids_write_nothing_outside_the_store() {
    let world = World::new();
    let evil = [
        "../../../../escape",
        "../escape",
        "a/../../escape",
        "..",
        "/abs/escape",
        "x/y",
    ];
    let before = world.files_outside_store();
    for id in evil {
        for var in [
            "CLAUDE_CODE_SESSION_ID",
            "CODEX_THREAD_ID",
            "CODEX_SESSION_ID",
        ] {
            let mut srv = world.server(&[(var, id), ("CLAUDECODE", "1")]);
            let _ = srv.tool("get_my_session", json!({}));
            let _ = srv.tool("set_my_state", json!({"state": "busy"}));
            let _ = srv.tool("read_my_messages", json!({}));
            let _ = srv.tool("send_message", json!({"target": id, "body": "x"}));
            let err = srv.tool("claim_session", json!({"session_id": id}));
            assert!(err.is_err(), "claim_session accepted {id:?}: {err:?}");
            let _ = srv.call(
                "tools/call",
                json!({"name": "get_my_session", "arguments": {}, "_meta": {"threadId": id}}),
            );
            assert!(srv.alive(), "server died with {var}={id}");
        }
        for hook in ["pretooluse.sh", "stop.sh", "userpromptsubmit.sh"] {
            let payload =
                json!({"session_id": id, "hook_event_name": "x", "prompt": "p"}).to_string();
            let (code, _, err) = world.run_hook(hook, &payload);
            assert_eq!(code, Some(0), "{hook} with {id:?}: {err}");
        }
    }
    assert_eq!(
        world.files_outside_store(),
        before,
        "something was written outside ~/.oxtail"
    );
    for p in ["escape", "abs"] {
        assert!(!world.root().join(p).exists() && !world.home.join(p).exists());
    }
}
