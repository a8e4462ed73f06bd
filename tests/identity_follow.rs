//! Identity follows `/clear` and `/resume` (issue 11), end to end with real
//! servers and the real bash hooks fed synthetic Claude Code payloads: the
//! SessionStart record moves a running server to the new id and keeps the old
//! one as an alias; every send (old id, new id, tmux name) reaches the agent
//! exactly once through the hooks; subagent payloads, forged and stale records
//! change nothing; a missed SessionStart heals through the other hooks and
//! through the `tool_use` id of the next tool call; a resumed session gets what
//! its dead server left.
//!
//! Each server runs under a shell of its own, which plays its Claude Code
//! process: its hooks run with `CLAUDE_PID` = that shell's pid.

mod hooks_support;
mod server_support;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use hooks_support::{Input, Run, awks, message_ids, run_script};
use oxtail::store::message::NewMessage;
use oxtail::store::paths::Layout;
use serde_json::{Value, json};
use server_support::{Sandbox, Server, dead_pid, entry_json, have_tmux};

const OLD: &str = "0a0a0a0a-1111-4111-8111-000000000001";
const NEW: &str = "0b0b0b0b-2222-4222-8222-000000000002";
const PEER: &str = "0c0c0c0c-3333-4333-8333-000000000003";
const OTHER: &str = "0d0d0d0d-4444-4444-8444-000000000004";
const WAIT: Duration = Duration::from_secs(10);

fn claude_server(sb: &Sandbox, sid: &str, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![("CLAUDECODE", "1"), ("CLAUDE_CODE_SESSION_ID", sid)];
    env.extend_from_slice(extra);
    let mut s = Server::spawn_own_client(sb, &sb.proj(), &env);
    s.initialize("claude-code");
    s
}

/// The `CLAUDE_PID` of `s`'s hooks.
fn cpid(s: &Server) -> String {
    s.client_pid.to_string()
}

fn record_path(sb: &Sandbox, s: &Server) -> PathBuf {
    sb.home()
        .join(format!(".oxtail/clients/{}.json", s.client_pid))
}

/// A dead server's entry for session NEW with OLD as a previous id, and a
/// queue for its mailbox: `(dead pid, layout)`.
fn dead_server_with_alias(sb: &Sandbox) -> (u32, Layout) {
    let dead = dead_pid();
    let mut entry = entry_json(dead, "claude-code", Some(NEW), &sb.proj(), None, None);
    entry["client"]["previous_session_ids"] = json!([OLD]);
    sb.write_entry(dead, &entry);
    (dead, Layout::at(sb.home().join(".oxtail")))
}

/// Queue `body` for `pid`, addressed to `to`, as a peer's send would.
fn queue(layout: &Layout, pid: u32, body: &str, to: Option<&str>) {
    let opts = NewMessage {
        to_session_id: to,
        ..Default::default()
    };
    oxtail::store::mailbox::enqueue(layout, pid, body, Some(PEER), &opts).unwrap();
}

/// Run `assets/<hook>` as Claude Code process `client_pid` would, for `sid`.
fn hook(sb: &Sandbox, name: &str, payload: &str, sid: &str, client_pid: &str) -> Run {
    let env = [
        ("CLAUDECODE", "1"),
        ("CLAUDE_CODE_SESSION_ID", sid),
        ("CLAUDE_PID", client_pid),
    ];
    let r = run_script(
        &hooks_support::asset(name),
        &sb.home(),
        &awks()[0],
        Input::Text(payload),
        &env,
    );
    assert_eq!(r.code, Some(0), "{name}: {}", r.stderr);
    r
}

fn session_start(sb: &Sandbox, of: &Server, sid: &str, source: &str) -> Run {
    let transcript = sb.claude_dir().join(format!("{sid}.jsonl"));
    let payload = json!({
        "session_id": sid,
        "transcript_path": transcript.to_string_lossy(),
        "cwd": sb.proj().to_string_lossy(),
        "hook_event_name": "SessionStart",
        "source": source,
    });
    let r = hook(sb, "sessionstart.sh", &payload.to_string(), sid, &cpid(of));
    assert!(
        r.stdout.is_empty(),
        "SessionStart prints nothing: {:?}",
        r.text()
    );
    r
}

/// The user submits a prompt in session `sid` of `of`'s client.
fn prompt_submit(sb: &Sandbox, of: &Server, sid: &str) -> Run {
    let prompt = json!({"session_id": sid, "hook_event_name": "UserPromptSubmit", "prompt": "go"});
    hook(
        sb,
        "userpromptsubmit.sh",
        &prompt.to_string(),
        sid,
        &cpid(of),
    )
}

fn pre_tool_use(sb: &Sandbox, of: &Server, sid: &str) -> Run {
    hook(
        sb,
        "pretooluse.sh",
        &hooks_support::pre_payload(sid),
        sid,
        &cpid(of),
    )
}

fn entry_of(s: &Server) -> Value {
    serde_json::from_str(&fs::read_to_string(s.entry_path()).unwrap_or_default())
        .unwrap_or(Value::Null)
}

fn wait_for_id(s: &Server, sid: &str) {
    assert!(
        Server::wait_for(WAIT, || entry_of(s)["client"]["session_id"] == sid),
        "server {} never moved to {sid}: {}",
        s.pid,
        entry_of(s)
    );
}

fn send(s: &mut Server, target: &str, body: &str) -> Value {
    s.call_json(
        "send_message",
        json!({"target": target, "body": body, "wake": "off"}),
    )
}

/// The messages of one rendered hook context: (header, body) pairs.
fn rendered(context: &str) -> Vec<(String, String)> {
    context
        .split("\n--- msg ")
        .skip(1)
        .map(|chunk| {
            let (head, body) = chunk.split_once(" ---\n").unwrap();
            (head.to_string(), body.to_string())
        })
        .collect()
}

#[test]
fn clear_moves_the_server_and_every_send_arrives_exactly_once() {
    let sb = Sandbox::new();
    let tmux = have_tmux() && sb.tmux_session("agent-a", &sb.proj());
    let pane = if tmux {
        let out = sb
            .tmux()
            .args(["display-message", "-p", "-t", "agent-a", "#{pane_id}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        String::new()
    };
    let extra: Vec<(&str, &str)> = if tmux {
        vec![("TMUX_PANE", pane.as_str())]
    } else {
        vec![]
    };
    let mut a = claude_server(&sb, OLD, &extra);
    let mut b = claude_server(&sb, PEER, &[]);
    assert_eq!(entry_of(&a)["client"]["pid"], a.client_pid);
    session_start(&sb, &a, OLD, "startup");
    assert_eq!(send(&mut b, OLD, "before-clear")["ok"], true);

    // /clear: SessionEnd (old), SessionStart source=clear with the new id.
    session_start(&sb, &a, NEW, "clear");
    wait_for_id(&a, NEW);
    let e = entry_of(&a);
    assert_eq!(e["client"]["previous_session_ids"], json!([OLD]));
    assert_eq!(e["client"]["session_id_source"], "session-start");
    let transcript = sb.claude_dir().join(format!("{NEW}.jsonl"));
    assert_eq!(
        e["client"]["transcript_path"],
        transcript.to_string_lossy().as_ref()
    );

    let by_old = send(&mut b, OLD, "to-old-id");
    assert_eq!(by_old["ok"], true, "{by_old}");
    assert_eq!(by_old["target_session_id"], NEW);
    assert_eq!(by_old["target_server_pid"], a.pid);
    assert_eq!(send(&mut b, NEW, "to-new-id")["ok"], true);
    if tmux {
        assert_eq!(send(&mut b, "agent-a", "by-tmux-name")["ok"], true);
    }
    let unknown = send(&mut b, OTHER, "nobody");
    assert_eq!(unknown["error"], "target-not-found", "{unknown}");

    // The old id's hooks find nothing; the new id's deliver everything once.
    assert!(pre_tool_use(&sb, &a, OLD).stdout.is_empty());
    let run = pre_tool_use(&sb, &a, NEW);
    let msgs = rendered(&run.context());
    let mut bodies: Vec<&str> = msgs.iter().map(|(_, b)| b.as_str()).collect();
    bodies.sort_unstable();
    let mut want = vec!["before-clear", "to-old-id", "to-new-id"];
    if tmux {
        want.push("by-tmux-name");
    }
    want.sort_unstable();
    assert_eq!(bodies, want);
    for (head, body) in &msgs {
        let labelled = head.contains(&format!("addressed_to={OLD}"));
        let sent_to_old = matches!(body.as_str(), "before-clear" | "to-old-id");
        assert_eq!(labelled, sent_to_old, "{head} / {body}");
    }
    assert!(
        pre_tool_use(&sb, &a, NEW).stdout.is_empty(),
        "delivered once"
    );

    // get_my_session, listings and the reply handle follow the new id.
    let mine = a.call_json("get_my_session", json!({}));
    assert_eq!(mine["entry"]["client"]["session_id"], NEW);
    assert_eq!(
        mine["entry"]["client"]["previous_session_ids"],
        json!([OLD])
    );
    assert_eq!(
        mine["detect_diagnosis"]["winning"]["source"],
        "session-start"
    );
    let list = b.call_json("list_project_sessions", json!({}));
    let ids: Vec<&Value> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["client_session_id"])
        .collect();
    assert!(
        ids.contains(&&json!(NEW)) && !ids.contains(&&json!(OLD)),
        "{list}"
    );
    let first = message_ids(&run.context())[0].clone();
    let reply = a.call_json(
        "reply_to_message",
        json!({"message_id": first, "body": "thanks", "wake": "off"}),
    );
    assert_eq!(reply["ok"], true, "{reply}");
}

#[test]
fn the_activity_marker_follows_the_new_id() {
    let sb = Sandbox::new();
    let a = claude_server(&sb, OLD, &[]);
    let mut b = claude_server(&sb, PEER, &[]);
    // The old id's marker still says idle; the new session is mid-turn.
    let stop = hooks_support::stop_payload(OLD, false);
    hook(&sb, "stop.sh", &stop, OLD, &cpid(&a));
    session_start(&sb, &a, NEW, "clear");
    wait_for_id(&a, NEW);
    prompt_submit(&sb, &a, NEW);
    let sent = b.call_json(
        "send_message",
        json!({"target": OLD, "body": "hi", "wake": "auto"}),
    );
    assert_eq!(sent["wake_status"], "skipped_busy", "{sent}");
}

#[test]
fn a_current_id_wins_over_an_alias_and_dead_aliases_are_not_found() {
    let sb = Sandbox::new();
    let a = claude_server(&sb, OLD, &[]);
    let mut b = claude_server(&sb, PEER, &[]);
    session_start(&sb, &a, NEW, "clear");
    wait_for_id(&a, NEW);
    // `claude --resume OLD` elsewhere: a live server whose current id is OLD.
    let mut c = claude_server(&sb, OLD, &[]);
    assert_eq!(send(&mut b, OLD, "x")["target_server_pid"], c.pid);
    c.close_stdin();
    assert!(c.wait_exit(WAIT).is_some());
    assert_eq!(send(&mut b, OLD, "y")["target_server_pid"], a.pid);
    // An alias of a server that is gone is no target.
    drop(a);
    assert!(Server::wait_for(WAIT, || {
        send(&mut b, OLD, "z")["error"] == "target-not-found"
    }));
}

#[test]
fn subagent_payloads_never_rebind_and_never_drain() {
    let sb = Sandbox::new();
    let mut a = claude_server(&sb, OLD, &[]);
    let mut b = claude_server(&sb, PEER, &[]);
    send(&mut b, OLD, "for the main agent");
    let sub = json!({
        "session_id": NEW, "transcript_path": "/t.jsonl", "cwd": "/p",
        "hook_event_name": "SessionStart", "source": "clear", "agent_id": "a1b2c3",
    });
    hook(&sb, "sessionstart.sh", &sub.to_string(), NEW, &cpid(&a));
    let pre = json!({
        "session_id": NEW, "hook_event_name": "PreToolUse", "tool_name": "Bash",
        "tool_input": {"command": "ls"}, "tool_use_id": "toolu_sub", "agent_id": "a1b2c3",
    });
    assert!(
        hook(&sb, "pretooluse.sh", &pre.to_string(), NEW, &cpid(&a))
            .stdout
            .is_empty()
    );
    assert!(!record_path(&sb, &a).exists());
    // A subagent of the current session (its id, agent_id set) drains nothing.
    let pre_old = json!({
        "session_id": OLD, "hook_event_name": "PreToolUse", "tool_name": "Bash",
        "tool_input": {}, "tool_use_id": "toolu_sub2", "agent_id": "a1b2c3",
    });
    assert!(
        hook(&sb, "pretooluse.sh", &pre_old.to_string(), OLD, &cpid(&a))
            .stdout
            .is_empty()
    );
    let mine = a.call_json("get_my_session", json!({}));
    assert_eq!(mine["entry"]["client"]["session_id"], OLD);
    assert_eq!(a.call_json("read_my_messages", json!({}))["count"], 1);
}

#[test]
fn forged_or_stale_records_are_ignored() {
    let sb = Sandbox::new();
    let mut a = claude_server(&sb, OLD, &[]);
    // A record of another client process.
    oxtail::store::clients::write(
        &Layout::at(sb.home().join(".oxtail")),
        dead_pid(),
        NEW,
        "clear",
        "SessionStart",
    )
    .unwrap();
    // Our client's record, but written before our client started (pid reuse).
    let ours = record_path(&sb, &a);
    fs::write(
        &ours,
        format!(
            "{{\"schema_version\":1,\"client_pid\":{},\"session_id\":\"{NEW}\",\"source\":\"clear\",\"event\":\"SessionStart\"}}\n",
            a.client_pid
        ),
    )
    .unwrap();
    let past = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
    fs::File::open(&ours).unwrap().set_modified(past).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let mine = a.call_json("get_my_session", json!({}));
    assert_eq!(mine["entry"]["client"]["session_id"], OLD);
    // The same record written now applies.
    fs::File::open(&ours)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    let mine = a.call_json("get_my_session", json!({}));
    assert_eq!(mine["entry"]["client"]["session_id"], NEW);
}

#[test]
fn the_other_hooks_heal_a_missed_session_start() {
    let sb = Sandbox::new();
    let a = claude_server(&sb, OLD, &[]);
    let record = record_path(&sb, &a);
    // PreToolUse with nothing queued: the fast path notices the missing record.
    assert!(pre_tool_use(&sb, &a, OLD).stdout.is_empty());
    let text = fs::read_to_string(&record).unwrap();
    assert!(
        text.contains(OLD) && text.contains("hook-fallback"),
        "{text}"
    );
    // After a /clear whose SessionStart did not run, UserPromptSubmit heals it.
    prompt_submit(&sb, &a, NEW);
    wait_for_id(&a, NEW);
    assert_eq!(entry_of(&a)["client"]["session_id_source"], "hook-fallback");
    // A payload whose id is not the env's is never recorded.
    hook(
        &sb,
        "stop.sh",
        &hooks_support::stop_payload(OTHER, false),
        NEW,
        &cpid(&a),
    );
    assert!(fs::read_to_string(&record).unwrap().contains(NEW));
    // Another client's hooks never move this server, and a client without a
    // server of ours (or a wrapper process mistaken for one) gets no record.
    let other = dead_pid();
    for hook_name in ["stop.sh", "pretooluse.sh"] {
        let payload = if hook_name == "stop.sh" {
            hooks_support::stop_payload(OTHER, false)
        } else {
            hooks_support::pre_payload(OTHER)
        };
        hook(&sb, hook_name, &payload, OTHER, &other.to_string());
    }
    let stray = sb.home().join(format!(".oxtail/clients/{other}.json"));
    assert!(!stray.exists());
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(entry_of(&a)["client"]["session_id"], NEW);
}

#[test]
fn a_tool_use_id_heals_a_missed_session_start_and_never_guesses() {
    let sb = Sandbox::new();
    let mut a = claude_server(&sb, OLD, &[]);
    let dir = sb.claude_dir();
    fs::create_dir_all(dir.join(format!("{NEW}/subagents"))).unwrap();
    let line = |id: &str| {
        format!(
            "{{\"type\":\"assistant\",\"message\":{{\"content\":[{{\"type\":\"tool_use\",\"id\":\"{id}\",\"name\":\"mcp__oxtail__get_my_session\"}}]}}}}\n"
        )
    };
    fs::write(dir.join(format!("{OLD}.jsonl")), line("toolu_old")).unwrap();
    fs::write(dir.join(format!("{NEW}.jsonl")), line("toolu_new")).unwrap();
    fs::write(
        dir.join(format!("{NEW}/subagents/agent-1.jsonl")),
        line("toolu_sub"),
    )
    .unwrap();
    fs::write(dir.join(format!("{OTHER}.jsonl")), line("toolu_twin")).unwrap();
    fs::write(dir.join(format!("{PEER}.jsonl")), line("toolu_twin")).unwrap();
    let call = |a: &mut Server, tool_use: &str| -> Value {
        let r = a.call_meta(
            "get_my_session",
            json!({}),
            Some(json!({"claudecode/toolUseId": tool_use, "progressToken": 1})),
        );
        serde_json::from_str(&Server::text(&r)).unwrap()
    };
    for unconfirmed in ["toolu_old", "toolu_nowhere", "toolu_sub", "toolu_twin"] {
        let r = call(&mut a, unconfirmed);
        assert_eq!(r["entry"]["client"]["session_id"], OLD, "{unconfirmed}");
    }
    let r = call(&mut a, "toolu_new");
    assert_eq!(r["entry"]["client"]["session_id"], NEW);
    assert_eq!(r["entry"]["client"]["session_id_source"], "tool-use-id");
    assert_eq!(r["entry"]["client"]["previous_session_ids"], json!([OLD]));
    // A call still in flight from before the move never moves it back.
    let r = call(&mut a, "toolu_old");
    assert_eq!(r["entry"]["client"]["session_id"], NEW);
}

#[test]
fn a_resumed_session_receives_what_its_dead_server_left() {
    let sb = Sandbox::new();
    let (dead, layout) = dead_server_with_alias(&sb);
    queue(&layout, dead, "for-old", Some(OLD));
    queue(&layout, dead, "for-new", Some(NEW));
    queue(&layout, dead, "from-a-0.14-peer", None);
    let bodies = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_string())
            .collect()
    };
    // `claude --resume OLD`: only what was addressed to OLD.
    let mut r_old = claude_server(&sb, OLD, &[]);
    let got = r_old.call_json("read_my_messages", json!({}));
    assert_eq!(bodies(&got), ["for-old"]);
    assert!(
        got["messages"][0]
            .get("addressed_to_previous_session_id")
            .is_none()
    );
    // `claude --resume NEW`: the rest, and the dead entry is gone.
    let mut r_new = claude_server(&sb, NEW, &[]);
    let got = r_new.call_json("read_my_messages", json!({}));
    assert_eq!(bodies(&got), ["for-new", "from-a-0.14-peer"]);
    assert!(!sb.sessions_dir().join(format!("{dead}.json")).exists());
}

#[test]
fn read_my_messages_labels_mail_sent_to_a_previous_id() {
    let sb = Sandbox::new();
    let mut a = claude_server(&sb, OLD, &[]);
    let mut b = claude_server(&sb, PEER, &[]);
    send(&mut b, OLD, "early");
    session_start(&sb, &a, NEW, "clear");
    wait_for_id(&a, NEW);
    send(&mut b, NEW, "late");
    let got = a.call_json("read_my_messages", json!({}));
    let msgs = got["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{got}");
    for m in msgs {
        let label = m.get("addressed_to_previous_session_id");
        match m["body"].as_str().unwrap() {
            "early" => assert_eq!(label, Some(&json!(OLD))),
            _ => assert!(label.is_none(), "{m}"),
        }
    }
}

#[test]
fn doctor_names_the_ids_that_would_take_over_stranded_mail() {
    let sb = Sandbox::new();
    let (dead, layout) = dead_server_with_alias(&sb);
    queue(&layout, dead, "stranded", Some(OLD));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oxtail"))
        .args(["doctor", "--json"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", sb.home())
        .env("CODEX_HOME", sb.home().join(".codex"))
        .env("TMUX_TMPDIR", sb.tmux_tmpdir())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mailboxes")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "warn", "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "pid {dead} (session {NEW}, earlier {OLD}): 1 message(s)"
        )),
        "{detail}"
    );
    assert!(detail.contains("the oldest waiting"), "{detail}");
    assert!(
        check["fix"].as_str().unwrap().contains("claude --resume"),
        "{check}"
    );
}

#[test]
fn a_starting_server_removes_the_records_of_gone_clients() {
    let sb = Sandbox::new();
    let layout = Layout::at(sb.home().join(".oxtail"));
    let gone = dead_pid();
    oxtail::store::clients::write(&layout, gone, NEW, "clear", "SessionStart").unwrap();
    let a = claude_server(&sb, OLD, &[]);
    session_start(&sb, &a, OLD, "startup");
    assert!(Server::wait_for(WAIT, || !layout
        .client_record(gone)
        .exists()));
    assert!(
        record_path(&sb, &a).exists(),
        "a live client's record stays"
    );
}

#[test]
fn every_awk_labels_mail_sent_to_a_previous_id() {
    hooks_support::each_awk(|awk| {
        let h = hooks_support::Home::new();
        h.register(100, NEW);
        let layout = Layout::at(h.path().join(".oxtail"));
        queue(&layout, 100, "sent-to-old", Some(OLD));
        queue(&layout, 100, "sent-to-new", Some(NEW));
        queue(&layout, 100, "from-a-0.14-peer", None);
        let r = run_script(
            &hooks_support::asset("pretooluse.sh"),
            h.path(),
            awk,
            Input::Text(&hooks_support::pre_payload(NEW)),
            &[],
        );
        let msgs = rendered(&r.context());
        assert_eq!(msgs.len(), 3, "{}", awk.name);
        for (head, body) in &msgs {
            let labelled =
                head.ends_with(&format!(" | addressed_to={OLD} (your previous session id)"));
            assert_eq!(labelled, body == "sent-to-old", "{}: {head}", awk.name);
        }
    });
}

#[test]
fn a_late_hook_of_the_previous_session_never_undoes_a_clear() {
    let sb = Sandbox::new();
    let a = claude_server(&sb, OLD, &[]);
    session_start(&sb, &a, OLD, "startup");
    session_start(&sb, &a, NEW, "clear");
    wait_for_id(&a, NEW);
    // Hooks that started before the /clear and finish after it carry the old
    // id in payload and env; SessionStart's record stands.
    hook(
        &sb,
        "stop.sh",
        &hooks_support::stop_payload(OLD, false),
        OLD,
        &cpid(&a),
    );
    assert!(pre_tool_use(&sb, &a, OLD).stdout.is_empty());
    prompt_submit(&sb, &a, OLD);
    let record = fs::read_to_string(record_path(&sb, &a)).unwrap();
    assert!(
        record.contains(NEW) && record.contains("SessionStart"),
        "{record}"
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(entry_of(&a)["client"]["session_id"], NEW);
}
