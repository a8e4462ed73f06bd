//! Issue 13 between real `oxtail` servers: a timed-out `ask_peer` stays
//! pending (`pending: true`, a durable record), the late reply consumes it
//! (`wake_reason: "late_reply_to_pending"`, marked as the answer with the
//! question's id in the requester's hook and `read_my_messages`), a cancelled
//! ask leaves no record, a replier that knows nothing of pending asks (a 0.14
//! Node peer) still completes it; a receiver whose idle watcher is armed
//! (the real `assets/idlewatch.sh`) gets no keystrokes, its mail wakes it, and
//! the wake is `fired` only once the receipt exists.

mod messaging_support;

use std::process::Child;

use serde_json::{Value, json};

use oxtail::delivery;
use oxtail::store::message::NewMessage;
use oxtail::store::pending_ask::{self, AskState};
use oxtail::store::receipts;

use messaging_support::*;

fn two_servers(world: &World) -> (Server, Server) {
    let mut a = world.server(&[("OXTAIL_WAKE_CONFIRM_MS", "1")]);
    let mut b = world.server(&[("OXTAIL_WAKE_CONFIRM_MS", "1")]);
    a.claim(SID_A);
    b.claim(SID_B);
    (a, b)
}

/// A server claimed as A, and C: a live process registered as a current
/// peer that speaks no MCP (its mail is only read by the test).
fn asker_and_fake_peer() -> (World, Server, Sleeper) {
    let world = World::new();
    let mut a = world.server(&[]);
    a.claim(SID_A);
    let c = Sleeper::new();
    let entry = entry_json(c.pid(), Some(SID_C), &world.project, None, true);
    world.fake_entry(c.pid(), entry);
    (world, a, c)
}

fn ask(a: &mut Server, target: &str, timeout_ms: u64) -> Value {
    a.tool(
        "ask_peer",
        json!({"target": target, "body": "what is 6*7?", "timeout_ms": timeout_ms}),
    )
    .json()
}

#[test]
fn a_timed_out_ask_stays_pending_and_the_late_reply_answers_it() {
    let world = World::new();
    let (mut a, mut b) = two_servers(&world);
    let out = ask(&mut a, SID_B, 300);
    assert_eq!(out["timed_out"], true, "{out}");
    assert_eq!(out["pending"], true, "{out}");
    let rid = out["request_id"].as_str().unwrap().to_string();
    let qid = out["message_id"].as_str().unwrap().to_string();
    let rec = pending_ask::read(&world.layout(), SID_A, &rid).expect("durable record");
    assert_eq!(rec.state, AskState::Pending);
    assert_eq!(rec.target.as_deref(), Some(SID_B), "who the asker waits on");
    assert_eq!(rec.message_id.as_deref(), Some(qid.as_str()));
    assert_eq!(rec.requester_server_pid, Some(a.pid));

    // B answers much later, by id.
    let q = question_in(&world, b.pid);
    let r = b
        .tool(
            "reply_to_message",
            json!({"message_id": q["id"], "body": "42, late"}),
        )
        .json();
    assert_eq!(r["wake_reason"], "late_reply_to_pending", "{r}");
    assert_eq!(r["answers_message_id"], qid.as_str(), "{r}");
    assert_eq!(r["correlation"], "correlated");
    assert!(
        r.get("wake_status").is_some(),
        "the requester was woken: {r}"
    );
    assert!(
        pending_ask::read(&world.layout(), SID_A, &rid).is_none(),
        "consumed"
    );

    // The requester's hook shows it as the answer to that question.
    let out: Value = serde_json::from_str(&pretooluse(&world, SID_A)).expect("hook JSON");
    let ctx = out["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(ctx.contains("42, late"), "{ctx}");
    assert!(
        ctx.contains(&format!(
            "| reply_to={rid} | late answer to your ask_peer {qid} (it had timed out)"
        )),
        "{ctx}"
    );

    // A second reply to the same ask is an ordinary reply (one winner).
    let again = b
        .tool(
            "send_message",
            json!({"target": SID_A, "body": "dup", "reply_to": rid}),
        )
        .json();
    assert_eq!(again["wake_reason"], "reply_to_default", "{again}");
    assert!(again.get("answers_message_id").is_none());
}

#[test]
fn read_my_messages_shows_the_answer_and_wake_off_suppresses_the_wake() {
    let world = World::new();
    let (mut a, mut b) = two_servers(&world);
    let out = ask(&mut a, SID_B, 200);
    let rid = out["request_id"].as_str().unwrap().to_string();
    let r = b
        .tool(
            "send_message",
            json!({"target": SID_A, "body": "late and quiet", "reply_to": rid, "wake": "off"}),
        )
        .json();
    assert_eq!(r["wake_reason"], "late_reply_to_pending_suppressed", "{r}");
    assert!(r.get("wake_status").is_none(), "{r}");
    let read = a.tool("read_my_messages", json!({})).json();
    let m = &read["messages"][0];
    assert_eq!(m["body"], "late and quiet");
    assert_eq!(m["reply_to"], rid.as_str());
    assert_eq!(m["answers_message_id"], out["message_id"]);
}

#[test]
fn a_waiting_ask_is_visible_and_a_cancelled_one_leaves_no_record() {
    let world = World::new();
    let (mut a, b) = two_servers(&world);
    let call = a.start_tool(
        "ask_peer",
        json!({"target": SID_B, "body": "long", "timeout_ms": 30000}),
    );
    let _ = question_in(&world, b.pid);
    let mut seen = Vec::new();
    wait_until("the waiting record", || {
        seen = pending_ask::list(&world.layout());
        !seen.is_empty()
    });
    assert_eq!(seen[0].state, AskState::Waiting);
    assert_eq!(seen[0].session_id, SID_A);
    assert_eq!(seen[0].target.as_deref(), Some(SID_B));
    // MCP: a cancelled request gets no response.
    a.cancel(call);
    wait_until("the record to go", || {
        pending_ask::list(&world.layout()).is_empty()
    });
}

#[test]
fn a_reply_in_time_leaves_no_record() {
    let world = World::new();
    let (mut a, mut b) = two_servers(&world);
    let call = a.start_tool(
        "ask_peer",
        json!({"target": SID_B, "body": "quick", "timeout_ms": 30000}),
    );
    let q = question_in(&world, b.pid);
    let r = b
        .tool(
            "reply_to_message",
            json!({"message_id": q["id"], "body": "ok"}),
        )
        .json();
    assert_eq!(
        r["wake_reason"], "reply_to_default",
        "a waiting ask is not late: {r}"
    );
    let out = Server::tool_out(&a.wait(call)).json();
    assert_eq!(out["timed_out"], false);
    assert!(out.get("pending").is_none());
    assert!(pending_ask::list(&world.layout()).is_empty());
}

#[test]
fn a_replier_that_knows_nothing_of_pending_asks_still_completes_it() {
    // C: a 0.14-like peer (reply_to capable, no pending-ask logic).
    let (world, mut a, _c) = asker_and_fake_peer();
    let out = ask(&mut a, SID_C, 200);
    assert_eq!(out["pending"], true, "{out}");
    let rid = out["request_id"].as_str().unwrap().to_string();
    // Its reply, written the way a 0.14 server delivers (ledger, then mailbox).
    delivery::deliver(
        &world.layout(),
        Some(SID_A),
        a.pid,
        "late from node",
        Some(SID_C),
        &NewMessage {
            reply_to: Some(&rid),
            ..NewMessage::default()
        },
    )
    .unwrap();
    wait_until("the asker to notice its late reply", || {
        pending_ask::read(&world.layout(), SID_A, &rid).is_none()
    });
    wait_until("the self-wake outcome", || {
        world
            .traces("wake_outcome")
            .iter()
            .any(|t| t["via"] == "late_reply_self")
    });
    let consumed = world.traces("pending_ask_consumed");
    assert!(
        consumed
            .iter()
            .any(|t| t["by"] == "asker" && t["request_id"] == rid.as_str())
    );
    assert!(
        world.mailbox(a.pid).contains("late from node"),
        "still queued for A"
    );
}

/// The real idle watcher for `sid`, armed (marker idle), with `client` as its
/// Claude Code process.
fn watcher(world: &World, sid: &str, client: u32) -> Child {
    let layout = world.layout();
    std::fs::create_dir_all(layout.activity_dir()).unwrap();
    std::fs::write(layout.activity_marker(sid), "idle").unwrap();
    let client = client.to_string();
    let env = [
        ("CLAUDE_CODE_ENTRYPOINT", "cli"),
        ("CLAUDE_PID", client.as_str()),
        ("OXTAIL_BIN", env!("CARGO_BIN_EXE_oxtail")),
    ];
    let payload = format!("{{\"session_id\":\"{sid}\",\"hook_event_name\":\"Stop\"}}");
    let child = spawn_hook(world, "idlewatch.sh", &payload, &env);
    wait_until("the watcher to arm", || {
        oxtail::store::idle_watch::armed(&layout, sid, oxtail::clock::now_ms()).is_some()
    });
    child
}

#[test]
fn an_armed_watcher_is_preferred_over_keystrokes_and_confirms_the_wake() {
    let (world, mut a, c) = asker_and_fake_peer();

    // No watcher: the tmux path is tried (and finds no pane).
    let plain = a
        .tool(
            "send_message",
            json!({"target": SID_C, "body": "x", "wake": "auto"}),
        )
        .json();
    assert_eq!(plain["wake_status"], "skipped_no_target", "{plain}");
    assert_eq!(plain["wake_path"], "none");
    assert!(world.mailbox(c.pid()).contains("\"x\""));
    std::fs::write(world.layout().mailbox(c.pid()), "").unwrap();

    // A plain send to an armed receiver: the outlook says its watcher has it.
    let w = watcher(&world, SID_C, c.pid());
    let sent = a
        .tool(
            "send_message",
            json!({"target": SID_C, "body": "fyi while idle"}),
        )
        .json();
    assert_eq!(sent["delivery_outlook"], "watcher_armed", "{sent}");
    assert_eq!(sent["wake_path"], "watcher");
    let out = w.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fyi while idle"));
    let id = sent["message_id"].as_str().unwrap();
    assert_eq!(
        receipts::read(&world.layout(), id)
            .unwrap()
            .hook_event
            .as_deref(),
        Some("IdleWatch")
    );

    // wake:"auto" to an armed receiver: no keystrokes, confirmed by the receipt.
    let skipped_before = world.traces("ask_peer_wake_skipped").len();
    let w = watcher(&world, SID_C, c.pid());
    let woke = a
        .tool(
            "send_message",
            json!({"target": SID_C, "body": "act now", "wake": "auto"}),
        )
        .json();
    assert_eq!(woke["wake_status"], "fired", "{woke}");
    assert_eq!(woke["wake_path"], "watcher");
    assert!(woke.get("delivery_outlook").is_none());
    assert_eq!(w.wait_with_output().unwrap().status.code(), Some(2));
    assert_eq!(
        world.traces("ask_peer_wake_skipped").len(),
        skipped_before,
        "the keystroke path was never taken"
    );

    // ask_peer to an armed receiver: the question wakes it; fired by its receipt.
    let w = watcher(&world, SID_C, c.pid());
    let out = ask(&mut a, SID_C, 1200);
    assert_eq!(out["timed_out"], true);
    assert_eq!(out["wake_path"], "watcher", "{out}");
    assert_eq!(out["wake_status"], "fired", "{out}");
    assert_eq!(out["pending"], true);
    assert_eq!(
        w.wait_with_output().unwrap().status.code(),
        Some(2),
        "the watcher delivered the question"
    );
}

/// `oxtail status` reads the records: the asker shows its open ask, whom it
/// waits on and that it is pending.
#[test]
fn oxtail_status_shows_who_waits_on_whom() {
    let world = World::new();
    let (mut a, b) = two_servers(&world);
    let out = ask(&mut a, SID_B, 200);
    assert_eq!(out["pending"], true, "{out}");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_oxtail"))
        .args(["status", "--json"])
        .current_dir(&world.project)
        .env("HOME", &world.home)
        .env("TMUX_TMPDIR", &world.tmux_tmpdir)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    let me = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["session_id"] == SID_A)
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(me["open_asks"], 1, "{me}");
    assert_eq!(me["waiting"]["target_session_id"], SID_B);
    assert_eq!(me["waiting"]["state"], "pending");
    assert_eq!(me["waiting"]["request_id"], out["request_id"]);
    drop(b);
}
