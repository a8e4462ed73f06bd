//! Delivery receipts, `message_status` and `delivery_outlook` (issue 12)
//! between real `oxtail` servers (and the real PreToolUse hook) in a private
//! HOME: pending → delivered via each path; privacy; a 0.14 receiver ends
//! `unknown` (never pending forever); an answer that never reached stdout
//! leaves no receipt and puts the mail back.

mod messaging_support;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use messaging_support::*;
use oxtail::store::{mailbox, message::NewMessage, receipts};

fn status(s: &mut Server, id: &str) -> Value {
    s.tool("message_status", json!({"message_id": id})).json()
}

fn send(s: &mut Server, target: &str, body: &str) -> Value {
    s.tool("send_message", json!({"target": target, "body": body}))
        .json()
}

fn marker(world: &World, sid: &str, word: &str) {
    let l = world.layout();
    fs::create_dir_all(l.activity_dir()).unwrap();
    fs::write(l.activity_marker(sid), word).unwrap();
}

#[test]
fn message_status_is_listed_after_the_0_14_tools() {
    let world = World::new();
    let mut a = world.server(&[]);
    let list = a.request("tools/list", Value::Null);
    let tools = list["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 11);
    assert_eq!(tools[9]["name"], "ask_peer");
    assert_eq!(tools[10]["name"], "message_status");
    let schema = &tools[10]["inputSchema"];
    assert_eq!(schema["required"], json!(["message_id"]));
    assert_eq!(
        schema["properties"]["message_id"]["pattern"],
        "^[0-9a-f]{16}$"
    );
    let bad = a
        .tool("message_status", json!({"message_id": "../etc"}))
        .error();
    assert!(
        bad.contains("16-hex") && bad.contains("message_id"),
        "{bad}"
    );
}

#[test]
fn pending_then_delivered_via_read_my_messages_and_private_to_others() {
    let world = World::new();
    let (mut a, mut b, mut c) = (world.server(&[]), world.server(&[]), world.server(&[]));
    a.claim(SID_A);
    b.claim(SID_B);
    c.claim(SID_C);
    let sent = send(&mut a, SID_B, "status?");
    let id = sent["message_id"].as_str().unwrap().to_string();
    assert_eq!(sent["delivery_outlook"], "unknown_liveness", "{sent}");
    assert!(sent["hint"].as_str().unwrap().contains("liveness"));

    let st = status(&mut a, &id);
    assert_eq!(st["status"], "pending", "{st}");
    assert_eq!(st["target_session_id"], SID_B);
    assert_eq!(st["target_server_pid"], b.pid);
    assert_eq!(
        status(&mut b, &id)["status"],
        "pending",
        "the recipient too"
    );

    let got = b.tool("read_my_messages", json!({})).json();
    assert_eq!(got["messages"][0]["id"], id.as_str());
    // The receipt follows the answer onto stdout.
    wait_until("the receipt", || {
        receipts::read(&world.layout(), &id).is_some()
    });
    let st = status(&mut a, &id);
    assert_eq!(st["status"], "delivered", "{st}");
    assert_eq!(st["via"], "read_my_messages");
    assert_eq!(st["recipient_session_id"], SID_B);
    assert_eq!(st["role"], "sender");
    assert!(st["delivered_at_ms"].as_i64().unwrap() / 1000 == st["delivered_at"].as_i64().unwrap());
    let st_b = status(&mut b, &id);
    assert_eq!(st_b["status"], "delivered");
    assert_eq!(st_b["role"], "recipient");

    let other = status(&mut c, &id);
    assert_eq!(other["status"], "unknown");
    assert_eq!(other["cause"], "not_yours");
    assert!(other.get("via").is_none() && other.get("target_session_id").is_none());

    let none = status(&mut a, "0123456789abcdef");
    assert_eq!(none["status"], "unknown");
    assert_eq!(none["cause"], "unknown_id");
}

#[test]
fn a_pretooluse_delivery_reads_delivered_via_the_hook() {
    let world = World::new();
    let (mut a, mut b) = (world.server(&[]), world.server(&[]));
    a.claim(SID_A);
    b.claim(SID_B);
    marker(&world, SID_B, "busy");
    let sent = send(&mut a, SID_B, "mid-turn news");
    assert_eq!(sent["delivery_outlook"], "hooks_mid_turn", "{sent}");
    let id = sent["message_id"].as_str().unwrap().to_string();
    let printed = pretooluse(&world, SID_B);
    assert!(printed.contains(&id), "{printed}");
    let st = status(&mut a, &id);
    assert_eq!(st["status"], "delivered", "{st}");
    assert_eq!(st["via"], "hook");
    assert_eq!(st["hook_event"], "PreToolUse");
    assert_eq!(st["recipient_session_id"], SID_B);
}

#[test]
fn idle_receivers_are_reported_stranded() {
    let world = World::new();
    let (mut a, mut b) = (world.server(&[]), world.server(&[]));
    a.claim(SID_A);
    b.claim(SID_B);
    marker(&world, SID_B, "idle");
    let sent = send(&mut a, SID_B, "fyi");
    assert_eq!(sent["delivery_outlook"], "stranded_until_read", "{sent}");
    // A wake that could not fire does not say where the mail stands: the
    // outlook does.
    let woke = a
        .tool(
            "send_message",
            json!({"target": SID_B, "body": "now", "wake": "auto"}),
        )
        .json();
    assert_eq!(woke["wake_status"], "skipped_no_target");
    assert_eq!(woke["delivery_outlook"], "stranded_until_read");
}

#[test]
fn a_0_14_receiver_ends_unknown_never_pending_forever() {
    let world = World::new();
    let mut a = world.server(&[]);
    a.claim(SID_A);
    let node = Sleeper::new();
    world.fake_entry(
        node.pid(),
        entry_json(node.pid(), Some(SID_C), &world.project, None, true),
    );
    // A 0.14 entry: the capabilities it advertised then, without receipts.
    let mut e = entry_json(node.pid(), Some(SID_C), &world.project, None, true);
    e["capabilities"] =
        json!({"mailbox": {"reply_to": true, "provenance": true, "push_budget": true}});
    world.fake_entry(node.pid(), e);
    let sent = send(&mut a, SID_C, "to node");
    let id = sent["message_id"].as_str().unwrap().to_string();
    assert_eq!(status(&mut a, &id)["status"], "pending");
    // The Node server drains its mailbox without writing a receipt.
    let drained = mailbox::drain(&world.layout(), node.pid()).unwrap();
    assert_eq!(drained.len(), 1);
    let st = status(&mut a, &id);
    assert_eq!(st["status"], "unknown", "{st}");
    assert_eq!(st["cause"], "receiver_without_receipts");
    assert!(st["note"].as_str().unwrap().contains("0.14"));
}

#[test]
fn ask_peer_timeout_says_what_happens_to_the_question() {
    let world = World::new();
    let (mut a, mut b) = (world.server(&[]), world.server(&[]));
    a.claim(SID_A);
    b.claim(SID_B);
    let asked = a
        .tool(
            "ask_peer",
            json!({"target": SID_B, "body": "q", "timeout_ms": 50}),
        )
        .json();
    assert_eq!(asked["timed_out"], true);
    assert_eq!(asked["delivery_outlook"], "unknown_liveness", "{asked}");
}

#[test]
fn ask_peer_reply_gets_a_receipt() {
    let world = World::new();
    let (mut a, mut b) = (world.server(&[]), world.server(&[]));
    a.claim(SID_A);
    b.claim(SID_B);
    let ask = a.start_tool(
        "ask_peer",
        json!({"target": SID_B, "body": "2+2?", "timeout_ms": 20000}),
    );
    let mut question = Value::Null;
    wait_until("the question", || {
        let got = b.tool("read_my_messages", json!({})).json();
        if got["count"] == 1 {
            question = got["messages"][0].clone();
        }
        question.is_object()
    });
    let reply = b
        .tool(
            "reply_to_message",
            json!({"message_id": question["id"], "body": "4"}),
        )
        .json();
    let out = Server::tool_out(&a.wait(ask)).json();
    assert_eq!(out["reply"]["body"], "4");
    let reply_id = reply["message_id"].as_str().unwrap().to_string();
    wait_until("the reply's receipt", || {
        receipts::read(&world.layout(), &reply_id).is_some()
    });
    let st = status(&mut b, &reply_id);
    assert_eq!(st["via"], "ask_peer_reply", "{st}");
    assert_eq!(st["recipient_session_id"], SID_A);
    // And the question itself was delivered by read_my_messages.
    let q = status(&mut a, question["id"].as_str().unwrap());
    assert_eq!(q["status"], "delivered");
    assert_eq!(q["via"], "read_my_messages");
}

/// An answer that can never reach the client (it closed its end of stdout
/// after the handshake): no receipt is written and the drained mail goes back
/// to the mailbox.
#[test]
fn an_answer_that_never_left_leaves_no_receipt_and_keeps_the_mail() {
    use std::io::BufRead;
    let world = World::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxtail"))
        .current_dir(&world.project)
        .env("HOME", &world.home)
        .env("TMUX_TMPDIR", &world.tmux_tmpdir)
        .env("MCP_TRACE_FILE", &world.trace)
        .env_remove("CLAUDE_CODE_SESSION_ID")
        .env_remove("TMUX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let layout = world.layout();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    writeln!(stdin, "{init}").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("\"id\":1"), "{line}");
    drop(stdout);
    let msg =
        mailbox::enqueue(&layout, pid, "keep me", Some(SID_A), &NewMessage::default()).unwrap();
    let id = msg.id().unwrap().to_string();
    for req in [
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_my_messages","arguments":{}}}),
    ] {
        writeln!(stdin, "{req}").unwrap();
    }
    stdin.flush().unwrap();
    wait_until("the failed answer", || {
        !world.traces("handoff_requeued").is_empty()
    });
    drop(stdin);
    let _ = child.wait();
    let requeued = world.traces("handoff_requeued");
    assert_eq!(requeued[0]["message_ids"], json!([id]));
    assert!(receipts::read(&layout, &id).is_none(), "never delivered");
    assert!(
        fs::read_to_string(layout.mailbox(pid))
            .unwrap()
            .contains(&id),
        "the drained message went back"
    );
}

/// Crash test: a receiving server SIGKILLed at random moments around a
/// `read_my_messages` never leaves a receipt for a message whose answer the
/// client did not get; what it did not hand over is still queued.
#[test]
fn killed_readers_never_leave_a_receipt_for_an_answer_not_received() {
    use oxtail::mcp_client::{Answer, McpClient};
    let rounds: u64 = std::env::var("OXTAIL_READER_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let world = World::new();
    let layout = world.layout();
    let (mut answered, mut lost_answers, mut lost_with_process) = (0, 0, 0);
    for round in 0..rounds {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxtail"));
        cmd.current_dir(&world.project)
            .env("HOME", &world.home)
            .env("TMUX_TMPDIR", &world.tmux_tmpdir)
            .env_remove("CLAUDE_CODE_SESSION_ID")
            .env_remove("TMUX")
            .stderr(Stdio::null());
        let mut c = McpClient::spawn("reader", cmd).unwrap();
        c.initialize("claude-code", "2.1.0", RESPONSE_TIMEOUT)
            .unwrap();
        let pid = c.pid();
        let ids: Vec<String> = (0..5)
            .map(|i| {
                let m = mailbox::enqueue(
                    &layout,
                    pid,
                    &format!("r{round}m{i}"),
                    Some(SID_A),
                    &NewMessage::default(),
                )
                .unwrap();
                m.id().unwrap().to_string()
            })
            .collect();
        let req = c.start_tool("read_my_messages", json!({})).unwrap();
        std::thread::sleep(std::time::Duration::from_micros(
            (round * 2654435761) % 8000,
        ));
        c.kill();
        let shown: Vec<String> =
            match c.response(&json!(req), std::time::Duration::from_millis(200)) {
                Answer::Response(v) => {
                    answered += 1;
                    let text = v.to_string();
                    ids.iter()
                        .filter(|id| text.contains(id.as_str()))
                        .cloned()
                        .collect()
                }
                _ => {
                    lost_answers += 1;
                    Vec::new()
                }
            };
        let queued = fs::read_to_string(layout.mailbox(pid)).unwrap_or_default();
        for id in &ids {
            let receipt = receipts::read(&layout, id).is_some();
            assert!(
                !receipt || shown.contains(id),
                "round {round}: a receipt for {id}, whose answer the client never got"
            );
            if !shown.contains(id) && !queued.contains(id.as_str()) {
                // Drained, and the answer died with the process: the
                // documented residue of a kill (AGENTS.md threat model).
                lost_with_process += 1;
            }
        }
    }
    eprintln!(
        "FIGURES reader_kill: rounds={rounds} answered={answered} killed_before_answer={lost_answers} drained_then_killed={lost_with_process}"
    );
}
