//! Opt-in interoperability checks against the TypeScript original (v0.14.0).
//!
//! Runs only when `OXTAIL_NODE_ORIGINAL` holds the command that starts the
//! built original (e.g. `node /tmp/oxtail-node/dist/server.js`); otherwise
//! each test prints a skip note and passes. Nothing here builds or downloads
//! the original. Every child gets a private HOME and TMUX_TMPDIR.
//!
//! What is proven:
//! - `surface_matches_the_original`: one scripted scenario (handshake, tool
//!   list, every tool with good and bad arguments and every resolution error)
//!   run against each implementation yields the same results once pids, ids,
//!   clocks, paths and human prose are normalised — key order included.
//!   Known differences are listed in `KNOWN_DIFFERENCES`.
//! - `messaging_both_ways`: a Node and a Rust server in one HOME list each
//!   other, message both ways, reply by id through each other's ledger writes,
//!   and `ask_peer` is answered with correlation in both directions (strict
//!   correlation leaves the other side's chatter queued).
//! - `hooks_and_twins_across_implementations`: our installed PreToolUse hook
//!   delivers mail a Node server enqueued (and the Node server's budget
//!   requeue); the Node server's reply auto-wake gate reads the idle marker our
//!   Stop hook writes; one agent backed by a Node and a Rust child gets each
//!   message once, and the Rust child drains a dead Node twin's mailbox.
//! - `the_original_reads_a_followed_entry`: a Rust server that followed its
//!   client to a new id (`/clear`) is listed and messaged there by a Node
//!   peer, which also drains mail carrying our `to_session_id`.
//! - `a_message_the_original_took_reads_unknown_never_pending`: our sender's
//!   `message_status` of mail a Node receiver took says `unknown`
//!   (`receiver_without_receipts`), and mail we took says `delivered`.
//! - `concurrent_senders_no_loss_no_dup`: a Node and a Rust sender pour into
//!   one mailbox (Rust receiver, then Node receiver) while the receiving server
//!   and our bash hook drain it concurrently: every message exactly once.

mod interop_support;

use std::time::{Duration, Instant};

use interop_support::*;
use serde_json::{Value, json};

const UA: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const UB: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const UC: &str = "cccccccc-0000-4000-8000-000000000003";
const UD: &str = "dddddddd-0000-4000-8000-000000000004";
const UE: &str = "eeeeeeee-0000-4000-8000-000000000005";

/// Differences that are accepted, each with its reason; the comparison
/// removes them before diffing.
///
/// - `tools/list` entries lack `execution: {"taskSupport":"forbidden"}`: rmcp
///   3.11's `Tool` has no such field (absent means the same to clients).
/// - `tools/list` entries carry `annotations` (readOnlyHint …), which the
///   original does not send: an added field, every original field is kept.
/// - Tool/parameter descriptions and human-readable messages are our own
///   wording (specs: "wording is ours"); the normaliser keeps only the
///   leading code of prose.
/// - Our registry `client` carries `pid`, `pid_started_at` and (after a
///   `/clear`) `previous_session_ids`, and our mail `to_session_id` (issue
///   11: identity follows `/clear`): added keys after every original key,
///   which the original's readers ignore (`messaging_both_ways` and
///   `hooks_and_twins_across_implementations` run over such entries).
const KNOWN_DIFFERENCES: &[&str] = &[
    "tools/list execution key",
    "tools/list annotations key",
    "descriptions and prose",
    "client process binding keys",
    "to_session_id on mail",
    "message_status tool (new, listed after the 0.14 tools)",
    "delivery_outlook and hint on sends (new fields after the 0.14 keys)",
    "wake_path and pending on sends and asks (new fields after the 0.14 keys)",
];

/// Remove the keys of [`KNOWN_DIFFERENCES`] that only ours writes.
fn strip_added_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(c)) = m.get_mut("client") {
                for k in ["pid", "pid_started_at", "previous_session_ids"] {
                    c.shift_remove(k);
                }
            }
            if m.contains_key("body") {
                m.shift_remove("to_session_id");
            }
            if m.contains_key("ok") {
                for k in ["delivery_outlook", "hint", "wake_path", "pending"] {
                    m.shift_remove(k);
                }
            }
            if let Some(Value::Array(tools)) = m.get_mut("tools") {
                tools.retain(|t| t["name"] != "message_status");
            }
            m.values_mut().for_each(strip_added_keys);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_added_keys),
        _ => {}
    }
}

fn uuid(n: char) -> String {
    format!("{}-2222-3333-4444-555555555555", n.to_string().repeat(8))
}

/// The scenario of `surface_matches_the_original`, run with `cmd` for every
/// server; returns `(label, normalised result)` in order.
fn surface_run(cmd: &[String]) -> Vec<(String, Value)> {
    let sb = Sandbox::new();
    let (proj, other) = (sb.proj(), sb.other());
    let panes = sb.tmux_sessions(&[
        ("alpha", &proj),
        ("beta", &proj),
        ("gamma", &proj),
        ("delta", &proj),
        ("other", &other),
    ]);
    let (u1, u2, u3, u4, u5) = (uuid('1'), uuid('2'), uuid('3'), uuid('4'), uuid('5'));
    let peer = |sid: Option<&str>, sess: &str, cwd: &std::path::Path| {
        Peer::spawn(
            cmd,
            &sb,
            Who {
                sid,
                pane: Some(&panes[sess]),
                cwd,
            },
        )
    };
    let mut s = peer(Some(&u1), "alpha", &proj);
    let mut p = peer(Some(&u2), "beta", &proj);
    let g1 = peer(Some(&u3), "gamma", &proj);
    let g2 = peer(Some(&u4), "gamma", &proj);
    let g3 = peer(None, "gamma", &proj);
    let mut d = peer(None, "delta", &proj);
    let x = peer(Some(&u5), "other", &other);
    let mut n = Normalizer::new(&sb.root);
    for (peer, name) in [
        (&s, "S"),
        (&p, "P"),
        (&g1, "G1"),
        (&g2, "G2"),
        (&g3, "G3"),
        (&d, "D"),
        (&x, "X"),
    ] {
        n.pid(peer.pid(), name);
    }
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut rec = |label: &str, v: Value| out.push((label.to_string(), n.norm(&v)));

    rec("initialize", s.init["result"].clone());
    let mut tools = s.call("tools/list", json!({}))["result"].clone();
    for t in tools["tools"].as_array_mut().unwrap() {
        let t = t.as_object_mut().unwrap();
        t.remove("execution");
        t.remove("annotations");
    }
    rec("tools/list", tools);
    rec("ping", s.call("ping", json!({}))["result"].clone());
    for m in ["resources/list", "prompts/list", "no/such/method"] {
        rec(m, s.call(m, json!({}))["error"].clone());
    }
    rec(
        "unknown tool",
        tool_payload(&s.call("tools/call", json!({"name": "nope", "arguments": {}}))),
    );
    let proj_s = proj.display().to_string();
    let big = "é".repeat(4097);
    #[rustfmt::skip]
    let calls: Vec<(&str, &str, Value)> = vec![
        ("list explicit", "list_project_sessions", json!({"project_root": proj_s})),
        ("list inferred", "list_project_sessions", json!({})),
        ("list compact", "list_project_sessions", json!({"project_root": proj_s, "compact": true})),
        ("list bad type", "list_project_sessions", json!({"compact": "yes"})),
        ("read auto", "read_session", json!({"name": "beta", "project_root": proj_s})),
        ("read uuid", "read_session", json!({"name": u2})),
        ("read ambiguous", "read_session", json!({"name": "gamma"})),
        ("read pane", "read_session", json!({"name": "delta", "mode": "pane", "pane_lines": 5})),
        ("read out of scope", "read_session", json!({"name": "other"})),
        ("read unknown uuid", "read_session", json!({"name": uuid('9')})),
        ("read transcript-less", "read_session", json!({"name": "delta", "mode": "transcript"})),
        ("read missing name", "read_session", json!({})),
        ("read limit float", "read_session", json!({"name": "beta", "limit": 1.5})),
        ("read bad mode", "read_session", json!({"name": "beta", "mode": "x"})),
        ("read unsafe int", "read_session", json!({"name": "beta", "limit": 1e20})),
        ("get_my_session", "get_my_session", json!({})),
        ("state too long", "set_my_state", json!({"purpose": "x".repeat(201)})),
        ("state", "set_my_state", json!({"purpose": "porting"})),
        ("state touch", "set_my_state", json!({})),
        ("register missing", "register_my_session", json!({})),
        ("register empty", "register_my_session", json!({"session_id": ""})),
        ("claim empty", "claim_session", json!({"session_id": ""})),
        ("list with state", "list_project_sessions", json!({"project_root": proj_s, "compact": true})),
        ("send by name", "send_message", json!({"target": "beta", "body": "hello beta"})),
        ("send by uuid", "send_message", json!({"target": u2, "body": "hi", "source_message_id": "abc"})),
        ("send ambiguous", "send_message", json!({"target": "gamma", "body": "x"})),
        ("send not found", "send_message", json!({"target": "zzz", "body": "x"})),
        ("send not found reply", "send_message", json!({"target": "zzz", "body": "x", "reply_to": "r1"})),
        ("send not found auto", "send_message", json!({"target": "zzz", "body": "x", "wake": "auto"})),
        ("send ambiguous reply", "send_message", json!({"target": "gamma", "body": "x", "reply_to": "r1"})),
        ("send self", "send_message", json!({"target": "alpha", "body": "x"})),
        ("send self uuid", "send_message", json!({"target": u1, "body": "x"})),
        ("send cross-project", "send_message", json!({"target": "other", "body": "x"})),
        ("send too large", "send_message", json!({"target": "beta", "body": big})),
        ("send empty body", "send_message", json!({"target": "beta", "body": ""})),
        ("send empty target", "send_message", json!({"target": "", "body": "x"})),
        ("send bad wake", "send_message", json!({"target": "beta", "body": "x", "wake": "on"})),
        ("send missing args", "send_message", json!({})),
        ("send wake auto", "send_message", json!({"target": "beta", "body": "woke?", "wake": "auto"})),
        ("send wake off", "send_message", json!({"target": "beta", "body": "off", "wake": "off", "extra": 1})),
        ("send unclaimed", "send_message", json!({"target": "delta", "body": "to unclaimed"})),
        ("ask no session id", "ask_peer", json!({"target": "delta", "body": "q"})),
        ("ask not found", "ask_peer", json!({"target": "zzz", "body": "q"})),
        ("ask ambiguous", "ask_peer", json!({"target": "gamma", "body": "q"})),
        ("ask timeout 0", "ask_peer", json!({"target": "beta", "body": "q", "timeout_ms": 0})),
        ("ask timeout big", "ask_peer", json!({"target": "beta", "body": "q", "timeout_ms": 300001})),
        ("ask timeout float", "ask_peer", json!({"target": "beta", "body": "q", "timeout_ms": 1.5})),
    ];
    for (label, tool, args) in calls {
        rec(label, s.tool(tool, args));
    }
    rec(
        "anonymous get_my_session",
        d.tool("get_my_session", json!({})),
    );
    let read = p.tool("read_my_messages", json!({}));
    let first = read["messages"][0]["id"].as_str().unwrap().to_string();
    rec("peer read", read);
    rec(
        "reply plain",
        p.tool(
            "reply_to_message",
            json!({"message_id": first, "body": "re"}),
        ),
    );
    rec(
        "reply not found",
        p.tool(
            "reply_to_message",
            json!({"message_id": "ffffffffffffffff", "body": "x"}),
        ),
    );
    rec(
        "reply empty id",
        p.tool("reply_to_message", json!({"message_id": "", "body": "x"})),
    );
    rec(
        "reply without session id",
        d.tool(
            "reply_to_message",
            json!({"message_id": first, "body": "x"}),
        ),
    );
    rec("anonymous read", d.tool("read_my_messages", json!({})));
    rec("read reply", s.tool("read_my_messages", json!({})));
    rec("read empty", s.tool("read_my_messages", json!({})));
    // ask_peer answered by reply_to_message.
    let ask = s.send_tool(
        "ask_peer",
        json!({"target": "beta", "body": "question?", "timeout_ms": 20000}),
    );
    let req = wait_for_mail(&mut p);
    let req_id = req["messages"][0]["id"].as_str().unwrap().to_string();
    rec("peer read ask", req);
    rec(
        "reply to ask",
        p.tool(
            "reply_to_message",
            json!({"message_id": req_id, "body": "answer!"}),
        ),
    );
    rec("ask answered", tool_payload(&s.wait(ask)));
    rec(
        "ask timed out",
        s.tool(
            "ask_peer",
            json!({"target": "beta", "body": "q2", "timeout_ms": 700}),
        ),
    );
    rec("peer drain", p.tool("read_my_messages", json!({})));
    rec(
        "claim same",
        s.tool("claim_session", json!({"session_id": u1})),
    );
    rec(
        "register same",
        s.tool("register_my_session", json!({"session_id": u1})),
    );
    drop((g1, g2, g3, x));
    out
}

/// Poll `read_my_messages` until something arrives (hang-guarded).
fn wait_for_mail(p: &mut Peer) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = p.tool("read_my_messages", json!({}));
        if r["count"].as_u64().unwrap_or(0) > 0 {
            return r;
        }
        assert!(Instant::now() < deadline, "no mail arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn surface_matches_the_original() {
    let Some(node) = node_original("surface_matches_the_original") else {
        return;
    };
    if !have_tmux() {
        eprintln!("skip surface_matches_the_original: tmux not installed");
        return;
    }
    eprintln!("accepted differences: {KNOWN_DIFFERENCES:?}");
    let theirs = surface_run(&node);
    let mut ours = surface_run(&rust_cmd());
    for (_, v) in ours.iter_mut() {
        strip_added_keys(v);
    }
    assert_eq!(theirs.len(), ours.len());
    let mut diffs = Vec::new();
    for ((label, a), (_, b)) in theirs.iter().zip(&ours) {
        // Compare serialised text so that key order counts too.
        let (ta, tb) = (a.to_string(), b.to_string());
        if ta != tb {
            diffs.push(format!("{label}:\n  original: {ta}\n  ours:     {tb}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// The `client_session_id`s of a `list_project_sessions` answer, in order.
fn listed_ids(list: &Value) -> Vec<&str> {
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["client_session_id"].as_str())
        .collect()
}

/// A Node server `A` and a Rust server `B` in one HOME and project.
struct Pair {
    sb: Sandbox,
    a: Peer,
    b: Peer,
}

fn pair(node: &[String], tmux: bool) -> Pair {
    let sb = Sandbox::new();
    let proj = sb.proj();
    let panes = if tmux {
        sb.tmux_sessions(&[("nodeA", &proj), ("rustB", &proj)])
    } else {
        Default::default()
    };
    let who = |sid, sess: &str| Who {
        sid: Some(sid),
        pane: panes.get(sess).map(String::as_str),
        cwd: &proj,
    };
    let a = Peer::spawn(node, &sb, who(UA, "nodeA"));
    let b = Peer::spawn(&rust_cmd(), &sb, who(UB, "rustB"));
    Pair { sb, a, b }
}

#[test]
fn messaging_both_ways() {
    let Some(node) = node_original("messaging_both_ways") else {
        return;
    };
    let tmux = have_tmux();
    let Pair { sb, mut a, mut b } = pair(&node, tmux);

    // Registry: each lists the other, with identical rows.
    if tmux {
        let root = json!({"project_root": sb.proj().display().to_string()});
        let la = a.tool("list_project_sessions", root.clone());
        let lb = b.tool("list_project_sessions", root);
        assert_eq!(la["sessions"], lb["sessions"]);
        assert_eq!(listed_ids(&la), [UA, UB], "{la}");
    } else {
        eprintln!("tmux not installed: list_project_sessions check skipped");
    }

    // A -> B by session id; the Rust server returns the Node-written line as is.
    let body = "node → rust \"quoted\"\n\tsecond line";
    let sent = a.tool("send_message", json!({"target": UB, "body": body}));
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(sent["target_server_pid"], b.pid());
    let line =
        std::fs::read_to_string(sb.oxtail().join(format!("mailboxes/{}.jsonl", b.pid()))).unwrap();
    let read = b.tool("read_my_messages", json!({}));
    assert_eq!(read["count"], 1, "{read}");
    let m = &read["messages"][0];
    assert_eq!(
        m.to_string(),
        line.trim_end().to_string(),
        "the line as written by Node, key order included"
    );
    assert_eq!(m["body"], body);
    assert_eq!(m["from_session_id"], UA);
    assert_eq!(m["id"], sent["message_id"]);
    let from_a = m["id"].as_str().unwrap().to_string();

    // B -> A (by tmux name when tmux is there).
    let target = if tmux { "nodeA" } else { UA };
    let sent = b.tool(
        "send_message",
        json!({"target": target, "body": "rust → node"}),
    );
    assert_eq!(sent["target_server_pid"], a.pid(), "{sent}");
    let read = a.tool("read_my_messages", json!({}));
    assert_eq!(bodies(&read), ["rust → node"]);
    assert_eq!(read["messages"][0]["from_session_id"], UB);
    let from_b = read["messages"][0]["id"].as_str().unwrap().to_string();

    // Replies by message id: each looks up a ledger record the other wrote.
    let r = b.tool(
        "reply_to_message",
        json!({"message_id": from_a, "body": "rust replies"}),
    );
    assert_eq!(
        (r["ok"].clone(), r["correlation"].clone()),
        (json!(true), json!("uncorrelated")),
        "{r}"
    );
    let r = a.tool(
        "reply_to_message",
        json!({"message_id": from_b, "body": "node replies"}),
    );
    assert_eq!(
        (r["ok"].clone(), r["correlation"].clone()),
        (json!(true), json!("uncorrelated")),
        "{r}"
    );
    let ra = a.tool("read_my_messages", json!({}));
    assert_eq!(bodies(&ra), ["rust replies"]);
    assert_eq!(ra["messages"][0]["source_message_id"], from_a);
    let rb = b.tool("read_my_messages", json!({}));
    assert_eq!(bodies(&rb), ["node replies"]);
    assert_eq!(rb["messages"][0]["source_message_id"], from_b);

    // ask_peer both ways, answered by reply_to_message: correlated.
    for (asker_is_node, target) in [(true, UB), (false, UA)] {
        let (asker, answerer) = if asker_is_node {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let ask = asker.send_tool(
            "ask_peer",
            json!({"target": target, "body": "question", "timeout_ms": 30000}),
        );
        let req = wait_for_mail(answerer);
        let q = &req["messages"][0];
        assert!(q["request_id"].is_string(), "{req}");
        let rep = answerer.tool(
            "reply_to_message",
            json!({"message_id": q["id"], "body": "answer"}),
        );
        assert_eq!(rep["correlation"], "correlated", "{rep}");
        let got = tool_payload(&asker.wait(ask));
        assert_eq!(got["correlation"], "correlated", "{got}");
        assert_eq!(got["timed_out"], false);
        assert_eq!(got["reply"]["body"], "answer");
        assert_eq!(got["reply"]["reply_to"], q["request_id"]);
        assert_eq!(got["reply"]["id"], rep["message_id"]);
    }

    // Strict correlation both ways: the answerer chatters first, then answers
    // with send_message + reply_to; the asker's wait skips the chatter, which
    // stays queued for normal delivery.
    for (asker_is_node, asker_sid, target) in [(true, UA, UB), (false, UB, UA)] {
        let (asker, answerer) = if asker_is_node {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let ask = asker.send_tool(
            "ask_peer",
            json!({"target": target, "body": "strict?", "timeout_ms": 30000}),
        );
        let rid = wait_for_mail(answerer)["messages"][0]["request_id"].clone();
        answerer.tool(
            "send_message",
            json!({"target": asker_sid, "body": "chatter"}),
        );
        answerer.tool(
            "send_message",
            json!({"target": asker_sid, "body": "the answer", "reply_to": rid, "wake": "off"}),
        );
        let got = tool_payload(&asker.wait(ask));
        assert_eq!(got["reply"]["body"], "the answer", "{got}");
        assert_eq!(got["correlation"], "correlated");
        assert_eq!(
            bodies(&asker.tool("read_my_messages", json!({}))),
            ["chatter"]
        );
    }
}

#[test]
fn hooks_and_twins_across_implementations() {
    let Some(node) = node_original("hooks_and_twins_across_implementations") else {
        return;
    };
    let Pair { sb, mut a, mut b } = pair(&node, false);
    sb.install_hooks();

    // Our PreToolUse hook delivers what the Node server enqueued, once.
    a.tool(
        "send_message",
        json!({"target": UB, "body": "via hook from node"}),
    );
    let ctx = sb.pretooluse(UB);
    assert_eq!(hook_bodies(&ctx), ["via hook from node"], "{ctx}");
    assert!(ctx.contains(&format!("from_session_id={UA}")), "{ctx}");
    assert_eq!(b.tool("read_my_messages", json!({}))["count"], 0);

    // The Node server defers past its budget (50) and requeues; our hook
    // delivers the rest, in order, nothing lost.
    for i in 0..55 {
        b.tool(
            "send_message",
            json!({"target": UA, "body": format!("bulk-{i}")}),
        );
    }
    let r = a.tool("read_my_messages", json!({}));
    assert_eq!(
        (r["count"].clone(), r["deferred_count"].clone()),
        (json!(50), json!(5))
    );
    let mut all = bodies(&r);
    all.extend(hook_bodies(&sb.pretooluse(UA)));
    let want: Vec<String> = (0..55).map(|i| format!("bulk-{i}")).collect();
    assert_eq!(all, want);

    // Node's strict reply auto-wake gate reads the idle marker our Stop hook
    // writes: without it the wake is skipped_no_fresh_idle, with it the gate
    // passes (and then finds no verified pane outside tmux).
    let reply_default = |a: &mut Peer, b: &mut Peer| {
        let ask = b.send_tool(
            "ask_peer",
            json!({"target": UA, "body": "q", "timeout_ms": 600}),
        );
        let q = wait_for_mail(a);
        tool_payload(&b.wait(ask));
        let r = a.tool(
            "reply_to_message",
            json!({"message_id": q["messages"][0]["id"], "body": "late"}),
        );
        assert_eq!(bodies(&b.tool("read_my_messages", json!({}))), ["late"]);
        r["wake_status"].clone()
    };
    assert_eq!(reply_default(&mut a, &mut b), "skipped_no_fresh_idle");
    let stop = sb.run_hook(
        "stop.sh",
        &json!({"session_id": UB, "hook_event_name": "Stop", "stop_hook_active": false}),
    );
    assert!(
        stop.is_empty(),
        "nothing queued, so the Stop hook only marks idle: {stop}"
    );
    let status = reply_default(&mut a, &mut b);
    assert_ne!(status, "skipped_no_fresh_idle");
    assert!(
        status.as_str().unwrap().starts_with("skipped_") || status == "fired",
        "{status}"
    );

    // One agent (session UC) backed by a Node child and a Rust child.
    let proj = sb.proj();
    let who = |sid| Who {
        sid: Some(sid),
        pane: None,
        cwd: &proj,
    };
    let mut twin_node = Peer::spawn(&node, &sb, who(UC));
    std::thread::sleep(Duration::from_millis(1100)); // a strictly newer started_at
    let mut twin_rust = Peer::spawn(&rust_cmd(), &sb, who(UC));
    let sent = a.tool(
        "send_message",
        json!({"target": UC, "body": "to the twins"}),
    );
    assert_eq!(
        sent["target_server_pid"],
        twin_rust.pid(),
        "newest sibling wins"
    );
    let n1 = twin_node.tool("read_my_messages", json!({}));
    let n2 = twin_rust.tool("read_my_messages", json!({}));
    assert_eq!(
        (n1["count"].as_u64().unwrap() + n2["count"].as_u64().unwrap()),
        1
    );
    // Mail parked in the Node twin's own mailbox survives its death: the Rust
    // twin drains the session union.
    b.tool("send_message", json!({"target": UC, "body": "x"}));
    twin_rust.tool("read_my_messages", json!({}));
    let parked = json!({"schema_version": 1, "id": "0123456789abcdef", "body": "parked", "enqueued_at": 1,
                        "body_bytes": 6, "origin": "peer", "from_session_id": UA});
    let mbox = sb
        .oxtail()
        .join(format!("mailboxes/{}.jsonl", twin_node.pid()));
    twin_node.kill();
    std::fs::write(&mbox, format!("{parked}\n")).unwrap();
    assert_eq!(
        bodies(&twin_rust.tool("read_my_messages", json!({}))),
        ["parked"]
    );
}

/// `sender_a` and `sender_b` each send `n` messages to `target_sid` (all
/// requests pipelined), while `receiver` and our PreToolUse hook drain.
/// Returns every body received.
fn pour(
    sb: &Sandbox,
    senders: [&mut Peer; 2],
    receiver: &mut Peer,
    target_sid: &str,
    n: usize,
) -> Vec<String> {
    let mut pending = Vec::new();
    for (k, s) in senders.into_iter().enumerate() {
        let ids: Vec<u64> = (0..n)
            .map(|i| {
                s.send_tool(
                    "send_message",
                    json!({"target": target_sid, "body": format!("s{k}-{i}")}),
                )
            })
            .collect();
        pending.push((s, ids));
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        seen.extend(bodies(&receiver.tool("read_my_messages", json!({}))));
        seen.extend(hook_bodies(&sb.pretooluse(target_sid)));
        let done = pending
            .iter_mut()
            .all(|(s, ids)| ids.iter().all(|&id| s.ready(id)));
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "senders did not finish");
    }
    for (s, ids) in pending {
        for id in ids {
            let r = tool_payload(&s.wait(id));
            assert_eq!(r["ok"], true, "{r}");
        }
    }
    seen.extend(bodies(&receiver.tool("read_my_messages", json!({}))));
    seen
}

#[test]
fn concurrent_senders_no_loss_no_dup() {
    let Some(node) = node_original("concurrent_senders_no_loss_no_dup") else {
        return;
    };
    let Pair { sb, mut a, mut b } = pair(&node, false);
    sb.install_hooks();
    let proj = sb.proj();
    let n = 60;
    let mut want: Vec<String> = (0..2)
        .flat_map(|k| (0..n).map(move |i| format!("s{k}-{i}")))
        .collect();
    want.sort();
    for (receiver_cmd, sid) in [(rust_cmd(), UD), (node.clone(), UE)] {
        let mut r = Peer::spawn(
            &receiver_cmd,
            &sb,
            Who {
                sid: Some(sid),
                pane: None,
                cwd: &proj,
            },
        );
        let mut seen = pour(&sb, [&mut a, &mut b], &mut r, sid, n);
        seen.sort();
        assert_eq!(
            seen, want,
            "receiver {receiver_cmd:?}: each message exactly once"
        );
    }
}

#[test]
fn received_ledger_shared_by_both_writers() {
    let Some(node) = node_original("received_ledger_shared_by_both_writers") else {
        return;
    };
    // Senders record into the receiver's ledger: here a Node and a Rust
    // sender alternate, with a retention of 10, and both a Rust and a Node
    // server of the receiving agent can reply to exactly the newest 10.
    let sb = Sandbox::new();
    let proj = sb.proj();
    let env = [("OXTAIL_RECEIVED_MAX", "10")];
    let who = |sid| Who {
        sid: Some(sid),
        pane: None,
        cwd: &proj,
    };
    let mut a = Peer::spawn_env(&node, &sb, who(UA), &env);
    let mut c = Peer::spawn_env(&rust_cmd(), &sb, who(UC), &env);
    let mut b = Peer::spawn_env(&rust_cmd(), &sb, who(UB), &env);
    let ids: Vec<Value> = (0..30)
        .map(|i| {
            let s = if (i / 3) % 2 == 0 { &mut a } else { &mut c };
            s.tool(
                "send_message",
                json!({"target": UB, "body": format!("m{i}")}),
            )["message_id"]
                .clone()
        })
        .collect();
    assert_eq!(b.tool("read_my_messages", json!({}))["count"], 30);
    let mut b_node = Peer::spawn_env(&node, &sb, who(UB), &env);
    for replier in [&mut b, &mut b_node] {
        let found: Vec<bool> = ids
            .iter()
            .map(|id| {
                replier.tool("reply_to_message", json!({"message_id": id, "body": "r"}))["ok"]
                    == true
            })
            .collect();
        let want: Vec<bool> = (0..30).map(|i| i >= 20).collect();
        assert_eq!(found, want);
    }
}

/// Issue 11: a Rust server that followed its client to a new id (`/clear`)
/// stays readable by the original: a Node peer lists it under the new id and
/// messages it there, our hook with the new id delivers that mail, and the
/// Node peer drains our replies, `to_session_id` and all. An old id is an
/// alias only for our own resolver: the original answers `target-not-found`
/// for it (a documented divergence; its entries have no aliases to follow).
#[test]
fn the_original_reads_a_followed_entry() {
    let Some(node) = node_original("the_original_reads_a_followed_entry") else {
        return;
    };
    let tmux = have_tmux();
    let Pair { sb, mut a, mut b } = pair(&node, tmux);
    sb.install_hooks();
    // The Rust server B's client process is this test process: write the
    // record its SessionStart hook would write after a /clear to UC.
    let layout = oxtail::store::paths::Layout::at(sb.oxtail());
    oxtail::store::clients::write(&layout, std::process::id(), UC, "clear", "SessionStart")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.tool("get_my_session", json!({}))["entry"]["client"]["session_id"] != UC {
        assert!(Instant::now() < deadline, "B never followed to {UC}");
        std::thread::sleep(Duration::from_millis(100));
    }
    if tmux {
        let root = json!({"project_root": sb.proj().display().to_string()});
        let la = a.tool("list_project_sessions", root);
        assert_eq!(listed_ids(&la), [UA, UC], "{la}");
    }
    let sent = a.tool(
        "send_message",
        json!({"target": UC, "body": "to the new id"}),
    );
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(sent["target_server_pid"], b.pid());
    let old = a.tool(
        "send_message",
        json!({"target": UB, "body": "to the old id"}),
    );
    assert_eq!(old["error"], "target-not-found", "{old}");
    assert_eq!(hook_bodies(&sb.pretooluse(UC)), ["to the new id"]);
    let back = b.tool(
        "send_message",
        json!({"target": UA, "body": "from the new id"}),
    );
    assert_eq!(back["ok"], true, "{back}");
    let read = a.tool("read_my_messages", json!({}));
    assert_eq!(bodies(&read), ["from the new id"], "{read}");
    assert_eq!(read["messages"][0]["from_session_id"], UC);
}

/// Receipts across implementations (issue 12): a message a 0.14 Node server
/// took with its own `read_my_messages` (which writes no receipt) reads
/// `unknown` with cause `receiver_without_receipts` for our sender — never
/// `pending` forever — while one our server took reads `delivered`.
#[test]
fn a_message_the_original_took_reads_unknown_never_pending() {
    let Some(node) = node_original("a_message_the_original_took_reads_unknown_never_pending")
    else {
        return;
    };
    let Pair {
        sb: _sb,
        mut a,
        mut b,
    } = pair(&node, false);
    // b (ours) sends to a (Node 0.14).
    let sent = b.tool("send_message", json!({"target": UA, "body": "to node"}));
    assert_eq!(sent["ok"], true, "{sent}");
    let id = sent["message_id"].as_str().unwrap().to_string();
    let st = b.tool("message_status", json!({"message_id": id}));
    assert_eq!(st["status"], "pending", "{st}");
    let read = a.tool("read_my_messages", json!({}));
    assert_eq!(read["count"], 1, "{read}");
    let st = b.tool("message_status", json!({"message_id": id}));
    assert_eq!(st["status"], "unknown", "{st}");
    assert_eq!(st["cause"], "receiver_without_receipts");
    // a (Node) sends to b (ours): our read writes the receipt, and we see it
    // as its recipient.
    let sent = a.tool("send_message", json!({"target": UB, "body": "to rust"}));
    let back = sent["message_id"].as_str().unwrap().to_string();
    let read = b.tool("read_my_messages", json!({}));
    assert_eq!(read["count"], 1, "{read}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = b.tool("message_status", json!({"message_id": back}));
        if st["status"] == "delivered" {
            assert_eq!(st["via"], "read_my_messages");
            assert_eq!(st["role"], "recipient");
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
