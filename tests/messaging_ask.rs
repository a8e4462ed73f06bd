//! ask_peer between real `oxtail` server processes: correlated replies, replies
//! that land in a sibling server's mailbox, legacy peers, timeouts, the clamp,
//! and cancellation after the reply was already taken from the mailbox.

mod messaging_support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use oxtail::delivery;
use oxtail::store::message::{Message, NewMessage};

use messaging_support::*;

/// Put a message from `from` into `to_pid`'s mailbox the way a peer's server
/// would (ledger of `to_sid` first).
fn deliver_from(
    world: &World,
    from: &str,
    to_sid: &str,
    to_pid: u32,
    body: &str,
    reply_to: Option<&str>,
) -> Message {
    delivery::deliver(
        &world.layout(),
        Some(to_sid),
        to_pid,
        body,
        Some(from),
        &NewMessage {
            reply_to,
            ..NewMessage::default()
        },
    )
    .unwrap()
}

#[test]
fn ask_and_reply_correlated_ignoring_chatter() {
    let world = World::new();
    let mut a = world.server(&[]);
    let mut b = world.server(&[]);
    a.claim(SID_A);
    b.claim(SID_B);
    // Older chatter from B and a message from a third party: strict correlation
    // must leave both in A's mailbox.
    deliver_from(&world, SID_B, SID_A, a.pid, "old chatter", None);
    deliver_from(&world, SID_C, SID_A, a.pid, "unrelated", None);

    let ask = a.start_tool(
        "ask_peer",
        json!({"target": SID_B, "body": "what is 6*7?", "timeout_ms": 30000}),
    );
    let q = question_in(&world, b.pid);
    assert_eq!(q["from_session_id"], SID_A);
    let request_id = q["request_id"].as_str().unwrap().to_string();
    // The question is already in B's ledger: B answers it by id.
    let r = b
        .tool(
            "reply_to_message",
            json!({"message_id": q["id"], "body": "42"}),
        )
        .json();
    assert_eq!(r["correlation"], "correlated");
    assert_eq!(r["wake_reason"], "reply_to_default");

    let out = Server::tool_out(&a.wait(ask)).json();
    assert_eq!(out["ok"], true);
    assert_eq!(out["timed_out"], false);
    assert_eq!(out["correlation"], "correlated");
    assert_eq!(out["request_id"], request_id.as_str());
    assert_eq!(out["message_id"], q["id"]);
    assert_eq!(out["timeout_ms"], 30000);
    assert!(out.get("timeout_clamped_from_ms").is_none());
    let reply = &out["reply"];
    assert_eq!(reply["body"], "42");
    assert_eq!(reply["id"], r["message_id"]);
    assert_eq!(reply["from_session_id"], SID_B);
    assert_eq!(reply["reply_to"], request_id.as_str());
    assert_eq!(reply["correlation"], "correlated");
    assert_eq!(
        keys_of(&out),
        [
            "schema_version",
            "ok",
            "message_id",
            "request_id",
            "wake_status",
            "wake_path",
            "reply",
            "correlation",
            "timeout_ms",
            "timed_out"
        ]
    );
    // The reply was consumed; the chatter was not.
    let left = a.tool("read_my_messages", json!({})).json();
    let bodies: Vec<&str> = left["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["old chatter", "unrelated"]);
    // The consumed reply is still in A's ledger, so A can reply to it.
    let again = a
        .tool(
            "reply_to_message",
            json!({"message_id": reply["id"], "body": "thanks"}),
        )
        .json();
    assert_eq!(again["ok"], true, "{again}");
    let start = &world.traces("ask_peer_start")[0];
    assert_eq!(start["require_reply_to"], true);
    let end = &world.traces("ask_peer_end")[0];
    assert_eq!(end["correlation"], "correlated");
}

#[test]
fn reply_landing_in_a_sibling_servers_mailbox_ends_the_wait() {
    let world = World::new();
    let mut a = world.server(&[]);
    let mut b = world.server(&[]);
    a.claim(SID_A);
    b.claim(SID_B);
    // A second server of the same agent, registered later: replies addressed to
    // SID_A now go to it, not to the asking server.
    std::thread::sleep(Duration::from_millis(1100));
    let mut sibling = world.server(&[]);
    sibling.claim(SID_A);

    let ask = a.start_tool(
        "ask_peer",
        json!({"target": SID_B, "body": "ping", "timeout_ms": 30000}),
    );
    let q = question_in(&world, b.pid);
    let r = b
        .tool(
            "send_message",
            json!({"target": SID_A, "body": "pong", "reply_to": q["request_id"], "wake": "off"}),
        )
        .json();
    assert_eq!(
        r["target_server_pid"], sibling.pid,
        "the reply is routed to the newest sibling"
    );
    let out = Server::tool_out(&a.wait(ask)).json();
    assert_eq!(out["timed_out"], false, "{out}");
    assert_eq!(out["reply"]["body"], "pong");
    assert_eq!(
        world.mailbox(sibling.pid),
        "",
        "taken from the sibling's mailbox"
    );
}

#[test]
fn legacy_peer_is_uncorrelated_and_a_waiting_message_answers_at_once() {
    let world = World::new();
    let mut a = world.server(&[]);
    a.claim(SID_A);
    let legacy = Sleeper::new();
    world.fake_entry(
        legacy.pid(),
        entry_json(legacy.pid(), Some(SID_C), &world.project, None, false),
    );
    deliver_from(&world, SID_C, SID_A, a.pid, "already here", None);
    let started = Instant::now();
    let out = a
        .tool(
            "ask_peer",
            json!({"target": SID_C, "body": "q", "timeout_ms": 20000}),
        )
        .json();
    assert_eq!(out["timed_out"], false);
    assert_eq!(out["correlation"], "uncorrelated");
    assert_eq!(out["reply"]["correlation"], "uncorrelated");
    assert_eq!(out["reply"]["reply_to"], Value::Null);
    assert_eq!(out["reply"]["body"], "already here");
    assert_eq!(
        out["wake_status"], "fired",
        "answered inside the grace window"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(world.traces("ask_peer_start")[0]["require_reply_to"], false);
    // The question reached the legacy peer's mailbox with a request_id.
    assert!(world.mailbox(legacy.pid()).contains("\"request_id\":\""));
}

#[test]
fn timeout_clamp_and_strategy_off() {
    let world = World::new();
    let mut a = world.server(&[("OXTAIL_ASK_PEER_MAX_TIMEOUT_MS", "700.5")]);
    let mut b = world.server(&[]);
    a.claim(SID_A);
    b.claim(SID_B);
    // A reply that forgets reply_to does not end a strict wait.
    deliver_from(&world, SID_B, SID_A, a.pid, "no reply_to", None);
    let started = Instant::now();
    let id = a.start_tool(
        "ask_peer",
        json!({"target": SID_B, "body": "q", "timeout_ms": 250000}),
    );
    let resp = a.wait(id);
    let elapsed = started.elapsed();
    let text = resp["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("\"timeout_ms\":700.5,\"timeout_clamped_from_ms\":250000,"),
        "{text}"
    );
    let out = Server::tool_out(&resp).json();
    assert_eq!(out["timed_out"], true);
    assert_eq!(out["reply"], Value::Null);
    assert_eq!(out["correlation"], "none");
    assert_eq!(
        out["wake_status"], "skipped_no_target",
        "B has no tmux pane"
    );
    assert!(elapsed >= Duration::from_millis(650), "{elapsed:?}");
    assert!(
        world.mailbox(a.pid).contains("no reply_to"),
        "the non-matching answer stays queued"
    );
    let outcome = world.traces("wake_outcome");
    assert_eq!(outcome.len(), 1);
    assert_eq!(outcome[0]["via"], "ask_peer");

    // The default timeout comes from the env; strategy off → disabled.
    let mut c = world.server(&[
        ("OXTAIL_ASK_PEER_TIMEOUT_MS", "1200"),
        ("OXTAIL_ASK_PEER_WAKE_STRATEGY", "OFF"),
    ]);
    c.claim(SID_C);
    let started = Instant::now();
    let out = c
        .tool("ask_peer", json!({"target": SID_B, "body": "q"}))
        .json();
    assert!(started.elapsed() >= Duration::from_millis(1100));
    assert_eq!(out["timeout_ms"], 1200);
    assert_eq!(out["timed_out"], true);
    assert_eq!(out["wake_status"], "disabled");
}

/// A stand-in `tmux` on the asking server's PATH: it reports one pane whose
/// process is the fake peer, and `send-keys` blocks until the test releases it,
/// so the wake is provably still in flight when the reply is drained.
fn fake_tmux(world: &World, peer_pid: u32) -> std::path::PathBuf {
    let bin = world.home.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let gate = world.home.join("gate");
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in\n  *list-panes*) echo '{peer_pid}|%7' ;;\n  *send-keys*) touch '{g}.started'; i=0; while [ ! -e '{g}.release' ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done ;;\n  *) exit 1 ;;\nesac\n",
        g = gate.display()
    );
    let path = bin.join("tmux");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn cancel_after_the_reply_was_drained_redelivers_it() {
    let world = World::new();
    let peer = Sleeper::new();
    let mut entry = entry_json(peer.pid(), Some(SID_C), &world.project, None, true);
    entry["tmux_pane"] = json!("%7");
    world.fake_entry(peer.pid(), entry);
    let bin = fake_tmux(&world, peer.pid());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut a = world.server(&[("PATH", path.as_str())]);
    a.claim(SID_A);

    let ask = a.start_tool(
        "ask_peer",
        json!({"target": SID_C, "body": "q", "timeout_ms": 60000}),
    );
    let q = question_in(&world, peer.pid());
    let gate = world.home.join("gate");
    wait_until("the wake to start", || {
        gate.with_extension("started").exists()
    });
    // The wake is blocked; the reply lands and is drained into memory.
    let reply = deliver_from(
        &world,
        SID_C,
        SID_A,
        a.pid,
        "late answer",
        q["request_id"].as_str(),
    );
    let reply_id = reply.id().unwrap().to_string();
    wait_until("ask_peer to drain the reply", || {
        world.mailbox(a.pid).is_empty()
    });
    a.cancel(ask);
    // The call ends without an answer (MCP: no response to a cancelled request);
    // its end shows in the trace.
    wait_until("the abort re-delivery", || {
        !world.traces("ask_peer_abort_reenqueue").is_empty()
    });
    std::fs::write(gate.with_extension("release"), "").unwrap();
    assert!(a.wait_for(ask, Duration::from_millis(200)).is_none());

    // The reply is back in the caller's mailbox with its id, and its ledger
    // entry still resolves.
    let got = a.tool("read_my_messages", json!({})).json();
    assert_eq!(got["count"], 1, "{got}");
    assert_eq!(got["messages"][0]["id"], reply_id.as_str());
    assert_eq!(got["messages"][0]["reply_to"], q["request_id"]);
    let again = a
        .tool(
            "reply_to_message",
            json!({"message_id": reply_id, "body": "got it", "wake": "off"}),
        )
        .json();
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(again["correlation"], "uncorrelated");
    let traced = world.traces("ask_peer_abort_reenqueue");
    assert_eq!(traced.len(), 1);
    assert_eq!(traced[0]["message_id"], reply_id.as_str());

    // Cancelling a wait that has no reply ends it promptly, losing nothing.
    let ask = a.start_tool(
        "ask_peer",
        json!({"target": SID_C, "body": "q2", "timeout_ms": 60000}),
    );
    question_in(&world, peer.pid());
    let started = Instant::now();
    a.cancel(ask);
    wait_until("the cancelled ask to end", || {
        world.traces("ask_peer_end").len() == 2
    });
    assert!(started.elapsed() < Duration::from_secs(30));
    let end = world.traces("ask_peer_end").pop().unwrap();
    assert_eq!(end["timed_out"], true);
    assert_eq!(a.tool("read_my_messages", json!({})).json()["count"], 0);
}
