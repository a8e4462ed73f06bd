//! send_message / read_my_messages / reply_to_message between real `oxtail`
//! server processes sharing a private HOME: delivery, ids and provenance,
//! every resolution error, body limits, unicode, budgets.

mod messaging_support;

use serde_json::{Value, json};

use messaging_support::*;

fn two_servers(world: &World) -> (Server, Server) {
    let mut a = world.server(&[]);
    let mut b = world.server(&[]);
    a.claim(SID_A);
    b.claim(SID_B);
    (a, b)
}

fn read(s: &mut Server) -> Value {
    s.tool("read_my_messages", json!({})).json()
}

#[test]
fn send_then_read_with_ids_provenance_and_unicode() {
    let world = World::new();
    let (mut a, mut b) = two_servers(&world);
    let empty = read(&mut b);
    assert_eq!(
        serde_json::to_string(&empty).unwrap(),
        r#"{"schema_version":1,"ok":true,"drained":true,"count":0,"messages":[]}"#
    );

    let body = "héllo \"peer\" \\ back\nslash\u{2028}sep 😀 — 日本語";
    let sent = a
        .tool("send_message", json!({"target": SID_B, "body": body}))
        .json();
    assert_eq!(
        keys_of(&sent),
        [
            "schema_version",
            "ok",
            "message_id",
            "target_session_id",
            "target_server_pid",
            "wake_path",
            "delivery_outlook",
            "hint"
        ],
        "the 0.14 keys in order, then the path and the outlook"
    );
    assert_eq!(sent["delivery_outlook"], "unknown_liveness");
    assert_eq!(sent["target_session_id"], SID_B);
    assert_eq!(sent["target_server_pid"], b.pid);
    let id = sent["message_id"].as_str().unwrap().to_string();
    assert!(id.len() == 16 && id.bytes().all(|c| c.is_ascii_hexdigit()));

    // On disk: the fixed prefix, and the ledger entry exists before delivery.
    let line = world.mailbox(b.pid);
    assert!(
        line.starts_with(&format!(
            "{{\"schema_version\":1,\"id\":\"{id}\",\"body\":\""
        )),
        "{line}"
    );

    let got = read(&mut b);
    assert_eq!(got["count"], 1);
    let m = &got["messages"][0];
    assert_eq!(m["id"], id.as_str());
    assert_eq!(m["body"], body);
    assert_eq!(m["from_session_id"], SID_A);
    assert_eq!(m["body_bytes"], body.len());
    assert_eq!(m["origin"], "peer");
    assert_eq!(read(&mut b)["count"], 0, "a message is delivered once");

    // The receiver can answer it by id: uncorrelated (no request_id).
    let r = b
        .tool(
            "reply_to_message",
            json!({"message_id": id, "body": "ack ✓"}),
        )
        .json();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["in_reply_to_message_id"], id.as_str());
    assert_eq!(r["target_session_id"], SID_A);
    assert_eq!(r["target_server_pid"], a.pid);
    assert_eq!(r["correlation"], "uncorrelated");
    assert!(r.get("wake_status").is_none() && r.get("wake_reason").is_none());
    let back = read(&mut a);
    assert_eq!(back["messages"][0]["body"], "ack ✓");
    assert_eq!(back["messages"][0]["source_message_id"], id.as_str());
    assert!(back["messages"][0].get("reply_to").is_none());

    // Only the receiver's ledger knows the id.
    let other = a
        .tool("reply_to_message", json!({"message_id": id, "body": "x"}))
        .json();
    assert_eq!(other["error"], "message-not-found");
}

#[test]
fn body_limits_are_utf8_bytes() {
    let world = World::new();
    let (mut a, mut b) = two_servers(&world);
    let ok = a
        .tool(
            "send_message",
            json!({"target": SID_B, "body": "a".repeat(8192)}),
        )
        .json();
    assert_eq!(ok["ok"], true);
    let three_byte = "€".repeat(2730); // 8190 bytes
    assert_eq!(
        a.tool("send_message", json!({"target": SID_B, "body": three_byte}))
            .json()["ok"],
        true
    );
    for (tool, args) in [
        (
            "send_message",
            json!({"target": SID_B, "body": "a".repeat(8193)}),
        ),
        (
            "send_message",
            json!({"target": SID_B, "body": "€".repeat(2731)}),
        ),
        (
            "ask_peer",
            json!({"target": SID_B, "body": "a".repeat(8193)}),
        ),
        (
            "reply_to_message",
            json!({"message_id": "0123456789abcdef", "body": "a".repeat(8193)}),
        ),
    ] {
        let err = a.tool(tool, args).error();
        assert!(
            err.contains("8192") && err.contains("exceeds"),
            "{tool}: {err}"
        );
        assert!(err.starts_with(&format!(
            "MCP error -32602: Input validation error: Invalid arguments for tool {tool}"
        )));
    }
    let empty = a
        .tool("send_message", json!({"target": SID_B, "body": ""}))
        .error();
    assert!(empty.contains(">=1"), "{empty}");
    let bad_wake = a
        .tool(
            "send_message",
            json!({"target": SID_B, "body": "x", "wake": "loud"}),
        )
        .error();
    assert!(bad_wake.contains("wake"), "{bad_wake}");
    let bad_timeout = a
        .tool(
            "ask_peer",
            json!({"target": SID_B, "body": "x", "timeout_ms": 300001}),
        )
        .error();
    assert!(bad_timeout.contains("300000"), "{bad_timeout}");
    let frac = a
        .tool(
            "ask_peer",
            json!({"target": SID_B, "body": "x", "timeout_ms": 1.5}),
        )
        .error();
    assert!(frac.contains("timeout_ms"), "{frac}");
    // Nothing rejected was delivered: exactly the two accepted bodies.
    let got = read(&mut b);
    assert_eq!(got["count"], 2);
    assert_eq!(got["messages"][0]["body_bytes"], 8192);
    assert_eq!(got["messages"][1]["body_bytes"], 8190);
}

#[test]
fn resolution_errors() {
    let world = World::new();
    let (mut a, _b) = two_servers(&world);
    let p1 = Sleeper::new();
    let p2 = Sleeper::new();
    let anon = Sleeper::new();
    let far = Sleeper::new();
    // Two agents in one tmux session, one of them unclaimed.
    world.fake_entry(
        p1.pid(),
        entry_json(p1.pid(), Some(SID_C), &world.project, Some("shared"), true),
    );
    world.fake_entry(
        p2.pid(),
        entry_json(p2.pid(), None, &world.project, Some("shared"), true),
    );
    world.fake_entry(
        anon.pid(),
        entry_json(anon.pid(), None, &world.project, Some("anon"), true),
    );
    let elsewhere = world.home.join("elsewhere");
    std::fs::create_dir_all(elsewhere.join(".git")).unwrap();
    let far_sid = "dddddddd-0000-4000-8000-000000000004";
    world.fake_entry(
        far.pid(),
        entry_json(far.pid(), Some(far_sid), &elsewhere, None, true),
    );

    let amb = a
        .tool("send_message", json!({"target": "shared", "body": "x"}))
        .json();
    assert_eq!(amb["ok"], false);
    assert_eq!(amb["error"], "ambiguous-target");
    assert_eq!(amb["candidates"], json!([SID_C]));
    assert!(amb["note"].as_str().unwrap().contains("'shared'"), "{amb}");

    let cross = a
        .tool("send_message", json!({"target": far_sid, "body": "x"}))
        .json();
    assert_eq!(cross["error"], "cross-project");
    assert_eq!(
        a.tool("ask_peer", json!({"target": far_sid, "body": "x"}))
            .json()["error"],
        "cross-project"
    );

    let me = a
        .tool("send_message", json!({"target": SID_A, "body": "x"}))
        .json();
    assert_eq!(me["error"], "self-send");
    assert!(me.get("wake_status").is_none());

    let none = a
        .tool("ask_peer", json!({"target": "anon", "body": "x"}))
        .json();
    assert_eq!(none["error"], "peer-has-no-session-id");
    assert!(none["message"].as_str().unwrap().contains("claim_session"));
    assert_eq!(
        world.mailbox(anon.pid()),
        "",
        "nothing is sent to an unclaimed peer"
    );
    // send_message to an unclaimed peer works (no ledger), target_session_id null.
    let plain = a
        .tool("send_message", json!({"target": "anon", "body": "hi"}))
        .json();
    assert_eq!(plain["ok"], true);
    assert_eq!(plain["target_session_id"], Value::Null);

    // target-not-found: wake_status only when a wake was intended; wake_reason
    // whenever the reply-default path was chosen.
    let ghost = "eeeeeeee-0000-4000-8000-000000000005";
    let nf = a
        .tool("send_message", json!({"target": ghost, "body": "x"}))
        .json();
    assert_eq!(
        serde_json::to_string(&nf).unwrap(),
        r#"{"schema_version":1,"ok":false,"error":"target-not-found"}"#
    );
    let nf_auto = a
        .tool(
            "send_message",
            json!({"target": ghost, "body": "x", "wake": "auto"}),
        )
        .json();
    assert_eq!(nf_auto["wake_status"], "skipped_no_target");
    assert!(nf_auto.get("wake_reason").is_none());
    let nf_reply = a
        .tool(
            "send_message",
            json!({"target": ghost, "body": "x", "reply_to": "r1"}),
        )
        .json();
    assert_eq!(nf_reply["wake_status"], "skipped_no_target");
    assert_eq!(nf_reply["wake_reason"], "reply_to_default");
    let self_reply = a
        .tool(
            "send_message",
            json!({"target": SID_A, "body": "x", "reply_to": "r1"}),
        )
        .json();
    assert_eq!(self_reply["error"], "self-send");
    assert!(self_reply.get("wake_status").is_none());
    assert_eq!(self_reply["wake_reason"], "reply_to_default");
    let nf_ask = a
        .tool("ask_peer", json!({"target": ghost, "body": "x"}))
        .json();
    assert_eq!(
        serde_json::to_string(&nf_ask).unwrap(),
        r#"{"schema_version":1,"ok":false,"error":"target-not-found","wake_status":"skipped_no_target"}"#
    );
    // A dead pid is not a target.
    let dead = "ffffffff-0000-4000-8000-000000000006";
    let mut gone = Sleeper::new();
    let gone_pid = gone.pid();
    world.fake_entry(
        gone_pid,
        entry_json(gone_pid, Some(dead), &world.project, None, true),
    );
    let _ = gone.0.kill();
    let _ = gone.0.wait();
    assert_eq!(
        a.tool("send_message", json!({"target": dead, "body": "x"}))
            .json()["error"],
        "target-not-found"
    );
    drop(gone);
    assert!(
        world.traces("wake_outcome").is_empty(),
        "resolution errors trace no wake_outcome"
    );
}

#[test]
fn reply_errors_and_wake_fields() {
    let world = World::new();
    let mut unclaimed = world.server(&[]);
    let nosid = unclaimed
        .tool(
            "reply_to_message",
            json!({"message_id": "0123456789abcdef", "body": "x"}),
        )
        .json();
    assert_eq!(nosid["error"], "no-session-id");
    let (mut a, mut b) = two_servers(&world);
    let nf = b
        .tool(
            "reply_to_message",
            json!({"message_id": "0123456789abcdef", "body": "x"}),
        )
        .json();
    assert_eq!(nf["error"], "message-not-found");
    assert!(nf["message"].as_str().unwrap().contains("0123456789abcdef"));

    // A message from an unclaimed sender has no reply target.
    let sent = unclaimed
        .tool("send_message", json!({"target": SID_B, "body": "who am i"}))
        .json();
    let r = b
        .tool(
            "reply_to_message",
            json!({"message_id": sent["message_id"], "body": "x"}),
        )
        .json();
    assert_eq!(r["error"], "no-reply-target");

    // wake:"off" → no wake fields; wake:"auto" to a paneless peer → skipped_no_target.
    let s = a
        .tool("send_message", json!({"target": SID_B, "body": "q"}))
        .json();
    read(&mut b);
    let off = b
        .tool(
            "reply_to_message",
            json!({"message_id": s["message_id"], "body": "x", "wake": "off"}),
        )
        .json();
    assert!(
        off.get("wake_status").is_none() && off.get("wake_reason").is_none(),
        "{off}"
    );
    let auto = b
        .tool(
            "reply_to_message",
            json!({"message_id": s["message_id"], "body": "x", "wake": "auto"}),
        )
        .json();
    assert_eq!(auto["wake_status"], "skipped_no_target");
    assert!(auto.get("wake_reason").is_none());
    let outcomes = world.traces("wake_outcome");
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0]["via"], "reply_to_message");
    assert_eq!(outcomes[0]["target_session_id"], SID_A);

    // reply_to with wake unset: strict gate; no marker → skipped_no_fresh_idle.
    let gate = a
        .tool(
            "send_message",
            json!({"target": SID_B, "body": "x", "reply_to": "req-1"}),
        )
        .json();
    assert_eq!(gate["wake_status"], "skipped_no_fresh_idle");
    assert_eq!(gate["wake_reason"], "reply_to_default");
    // Fresh idle marker but no pane: the slot is taken even though nothing fired.
    let layout = world.layout();
    std::fs::create_dir_all(layout.activity_dir()).unwrap();
    std::fs::write(layout.activity_marker(SID_B), "idle").unwrap();
    let first = a
        .tool(
            "send_message",
            json!({"target": SID_B, "body": "x", "reply_to": "req-2"}),
        )
        .json();
    assert_eq!(first["wake_status"], "skipped_no_target");
    let second = a
        .tool(
            "send_message",
            json!({"target": SID_B, "body": "x", "reply_to": "req-2"}),
        )
        .json();
    assert_eq!(second["wake_status"], "skipped_deduped");
    let last = world.traces("wake_outcome").pop().unwrap();
    assert_eq!(last["via"], "reply_default");
    // Busy peer with wake:"auto" → skipped_busy.
    std::fs::write(layout.activity_marker(SID_B), "busy").unwrap();
    let busy = a
        .tool(
            "send_message",
            json!({"target": SID_B, "body": "x", "wake": "auto"}),
        )
        .json();
    assert_eq!(busy["wake_status"], "skipped_busy");
}

#[test]
fn read_budget_keeps_order_and_never_repeats() {
    let world = World::new();
    let mut a = world.server(&[]);
    let mut b = world.server(&[
        ("OXTAIL_READ_MAX_MESSAGES", "2"),
        ("OXTAIL_READ_MAX_BODY_BYTES", "64"),
    ]);
    a.claim(SID_A);
    b.claim(SID_B);
    let mut c = world.server(&[]);
    c.claim(SID_C);
    let mut expected_a = Vec::new();
    for i in 0..5 {
        let body = if i == 1 {
            format!("a{i} {}", "x".repeat(100))
        } else {
            format!("a{i}")
        };
        a.tool("send_message", json!({"target": SID_B, "body": body}))
            .json();
        expected_a.push(body);
        c.tool(
            "send_message",
            json!({"target": SID_B, "body": format!("c{i}")}),
        )
        .json();
    }
    let mut seen_ids = std::collections::HashSet::new();
    let (mut from_a, mut from_c) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let got = read(&mut b);
        for m in got["messages"].as_array().unwrap() {
            assert!(
                seen_ids.insert(m["id"].as_str().unwrap().to_string()),
                "duplicate {m}"
            );
            let body = m["body"].as_str().unwrap().to_string();
            if m["from_session_id"] == SID_A {
                from_a.push(body)
            } else {
                from_c.push(body)
            }
        }
        if got.get("deferred_count").is_none() && got["count"] == 0 {
            break;
        }
        assert!(got["count"].as_u64().unwrap() <= 2);
    }
    assert_eq!(
        from_a, expected_a,
        "each sender's order survives the budget"
    );
    assert_eq!(from_c, (0..5).map(|i| format!("c{i}")).collect::<Vec<_>>());
}
