//! The MCP surface of `oxtail` over stdio: handshake, tool list, protocol
//! errors, argument validation, and clean exit (server spec §1).

mod server_support;

use std::time::Duration;

use serde_json::{Value, json};
use server_support::{Sandbox, Server};

const EXIT_GUARD: Duration = Duration::from_secs(10);

#[test]
fn handshake_discover_probe_and_tool_list() {
    let sb = Sandbox::new();
    let mut s = Server::spawn(&sb, &sb.proj(), &[]);
    // Claude Code 2.1.332 probes with server/discover first: JSON-RPC -32601.
    s.send_raw(r#"{"jsonrpc":"2.0","id":"server-discover-probe-1","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"claude-code","version":"2.1.332"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#);
    let r = s.response(&json!("server-discover-probe-1"));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    // A request before initialize gets an error, not a hang or a crash.
    let r = s.request("tools/list", Value::Null);
    assert!(r.get("error").is_some(), "{r}");
    let init = s.initialize("claude-code");
    let res = &init["result"];
    assert_eq!(
        res["serverInfo"],
        json!({"name": "oxtail", "version": "0.14.0"})
    );
    assert_eq!(res["capabilities"], json!({"tools": {"listChanged": true}}));
    assert_eq!(res["protocolVersion"], "2025-06-18");
    assert!(res.get("instructions").is_none());

    let list = s.request("tools/list", Value::Null);
    let tools = list["result"]["tools"].as_array().unwrap().clone();
    assert!(list["result"].get("nextCursor").is_none());
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let ours = [
        "list_project_sessions",
        "read_session",
        "register_my_session",
        "claim_session",
        "get_my_session",
        "set_my_state",
    ];
    assert_eq!(&names[..6], &ours, "{names:?}");
    for t in &tools {
        let schema = &t["inputSchema"];
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
        assert_eq!(schema["type"], "object");
        assert!(schema["properties"].is_object());
        assert!(schema.get("additionalProperties").is_none());
        assert!(t["description"].as_str().is_some_and(|d| d.len() > 20));
    }
    let by_name = |n: &str| tools.iter().find(|t| t["name"] == n).unwrap()["inputSchema"].clone();
    let read = by_name("read_session");
    assert_eq!(read["required"], json!(["name"]));
    assert_eq!(read["properties"]["limit"]["type"], "integer");
    assert_eq!(read["properties"]["limit"]["maximum"], 9007199254740991i64);
    assert_eq!(
        read["properties"]["mode"]["enum"],
        json!(["auto", "transcript", "pane"])
    );
    assert_eq!(
        by_name("claim_session")["properties"]["session_id"]["minLength"],
        1
    );
    assert_eq!(
        by_name("set_my_state")["properties"]["purpose"]["maxLength"],
        200
    );
    assert!(by_name("get_my_session").get("required").is_none());
    assert!(by_name("list_project_sessions").get("required").is_none());

    // ping, unknown methods, unimplemented capabilities.
    assert_eq!(s.request("ping", Value::Null)["result"], json!({}));
    // Worded as the original's SDK words it: "Method not found".
    for (method, params) in [
        ("resources/list", Value::Null),
        ("prompts/list", Value::Null),
        ("resources/templates/list", Value::Null),
        ("no/such/method", json!({})),
    ] {
        assert_eq!(
            s.request(method, params)["error"],
            json!({"code": -32601, "message": "Method not found"}),
            "{method}"
        );
    }
    // Garbage on stdin does not kill the server.
    s.send_raw("this is not json");
    s.send_raw("{\"jsonrpc\":\"2.0\",\"id\":");
    assert_eq!(s.request("ping", Value::Null)["result"], json!({}));
    // An unknown tool is an isError result, not a JSON-RPC error.
    assert_eq!(
        s.call_error("nope", json!({})),
        "MCP error -32602: Tool nope not found"
    );
}

#[test]
fn bad_arguments_are_structured_errors_naming_the_field() {
    let sb = Sandbox::new();
    let mut s = Server::spawn(&sb, &sb.proj(), &[]);
    s.initialize("claude-code");
    let prefix = |tool: &str| {
        format!("MCP error -32602: Input validation error: Invalid arguments for tool {tool}: ")
    };
    let cases = [
        ("claim_session", json!({}), "session_id"),
        (
            "claim_session",
            json!({"session_id": 42}),
            "expected string",
        ),
        ("claim_session", json!({"session_id": ""}), ">=1"),
        (
            "claim_session",
            json!({"session_id": "../../etc/passwd"}),
            "session_id",
        ),
        ("register_my_session", json!({"session_id": "a/b"}), "'/'"),
        (
            "register_my_session",
            json!({"session_id": "a\u{0}b"}),
            "control",
        ),
        (
            "register_my_session",
            json!({"session_id": "x".repeat(5000)}),
            "256",
        ),
        ("read_session", json!({}), "name"),
        ("read_session", json!({"name": "a/../b"}), "name"),
        (
            "read_session",
            json!({"name": "s", "limit": 2.5}),
            "expected int",
        ),
        (
            "read_session",
            json!({"name": "s", "limit": 1e20}),
            "9007199254740991",
        ),
        (
            "read_session",
            json!({"name": "s", "limit": "10"}),
            "expected number",
        ),
        (
            "read_session",
            json!({"name": "s", "mode": "full"}),
            "\\\"auto\\\"",
        ),
        (
            "read_session",
            json!({"name": "s", "tail_scan": "yes"}),
            "boolean",
        ),
        ("list_project_sessions", json!({"compact": 1}), "compact"),
        (
            "list_project_sessions",
            json!({"project_root": null}),
            "project_root",
        ),
        ("set_my_state", json!({"purpose": "p".repeat(201)}), "200"),
        (
            "set_my_state",
            json!({"purpose": "😀".repeat(101)}),
            "too_big",
        ),
    ];
    for (tool, args, needle) in cases {
        let text = s.call_error(tool, args.clone());
        assert!(text.starts_with(&prefix(tool)), "{tool} {args}: {text}");
        assert!(text.contains(needle), "{tool} {args}: {text}");
    }
    // Extra keys are ignored; 100 emoji = 200 UTF-16 units is within the limit.
    let ok = s.call_json(
        "set_my_state",
        json!({"purpose": "😀".repeat(100), "extra": true}),
    );
    assert_eq!(ok["ok"], true);
    // The server is still healthy, and nothing was pinned by the bad calls.
    let me = s.call_json("get_my_session", json!({}));
    assert_eq!(me["entry"]["client"]["session_id"], Value::Null);
}

/// Beyond the original: every tool advertises MCP annotations, so clients
/// can decide on their own to run them without asking; draining the mailbox
/// is not read-only.
#[test]
fn tools_advertise_annotations() {
    let sb = Sandbox::new();
    let mut s = Server::spawn(&sb, &sb.proj(), &[]);
    s.initialize("claude-code");
    let list = s.request("tools/list", Value::Null);
    let tools = list["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 11);
    let hints = |n: &str| tools.iter().find(|t| t["name"] == n).unwrap()["annotations"].clone();
    for n in [
        "list_project_sessions",
        "read_session",
        "get_my_session",
        "message_status",
    ] {
        assert_eq!(
            hints(n),
            json!({"readOnlyHint": true, "openWorldHint": false}),
            "{n}"
        );
    }
    for n in ["register_my_session", "claim_session", "set_my_state"] {
        assert_eq!(
            hints(n),
            json!({"readOnlyHint": false, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}),
            "{n}"
        );
    }
    // Moving messages is not read-only, and not destructive either (nothing
    // is lost): Codex runs non-destructive tools without asking, and would
    // refuse a "destructive" read_my_messages in `codex exec`.
    for n in [
        "send_message",
        "reply_to_message",
        "ask_peer",
        "read_my_messages",
    ] {
        assert_eq!(
            hints(n),
            json!({"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false}),
            "{n}"
        );
    }
    // The original's fields are all still there, in its order.
    for t in tools {
        let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["name", "description", "inputSchema", "annotations"],
            "{t}"
        );
    }
}

#[test]
fn stdin_eof_removes_the_entry_and_exits() {
    let sb = Sandbox::new();
    let mut s = Server::spawn(&sb, &sb.proj(), &[]);
    s.initialize("codex-mcp-client");
    assert!(s.entry_path().exists());
    s.close_stdin();
    let st = s
        .wait_exit(EXIT_GUARD)
        .expect("server must exit after stdin EOF");
    assert!(st.success(), "{st:?}");
    assert!(!s.entry_path().exists(), "registry entry must be removed");
}

#[test]
fn signals_remove_the_entry_and_exit() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let sb = Sandbox::new();
        let mut s = Server::spawn(&sb, &sb.proj(), &[]);
        s.initialize("claude-code");
        let entry = s.entry_path();
        assert!(Server::wait_for(EXIT_GUARD, || entry.exists()));
        s.signal(sig);
        let st = s
            .wait_exit(EXIT_GUARD)
            .unwrap_or_else(|| panic!("no exit on signal {sig}"));
        assert_eq!(st.code(), Some(0), "signal {sig}: {st:?}");
        assert!(
            !entry.exists(),
            "signal {sig}: registry entry must be removed"
        );
    }
}

#[test]
fn signal_before_initialize_still_cleans_up() {
    let sb = Sandbox::new();
    let mut s = Server::spawn(&sb, &sb.proj(), &[]);
    let entry = s.entry_path();
    assert!(
        Server::wait_for(EXIT_GUARD, || entry.exists()),
        "entry is written at startup"
    );
    s.signal(libc::SIGTERM);
    assert!(s.wait_exit(EXIT_GUARD).is_some());
    assert!(!entry.exists());
}

#[test]
fn registry_entry_shape_on_disk() {
    let sb = Sandbox::new();
    let mut s = Server::spawn(
        &sb,
        &sb.proj(),
        &[
            ("CLAUDECODE", "1"),
            (
                "CLAUDE_CODE_SESSION_ID",
                "11111111-2222-3333-4444-555555555555",
            ),
            ("TMUX_PANE", "%7"),
        ],
    );
    s.initialize("claude-code");
    let text = std::fs::read_to_string(s.entry_path()).unwrap();
    assert!(text.starts_with("{\n  \"server_pid\": "), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "server_pid",
            "started_at",
            "client",
            "tmux_pane",
            "tmux_session",
            "state",
            "capabilities"
        ]
    );
    let ckeys: Vec<&String> = v["client"].as_object().unwrap().keys().collect();
    assert_eq!(
        ckeys[..5],
        [
            "type",
            "session_id",
            "transcript_path",
            "session_id_source",
            "cwd"
        ]
    );
    // Beyond the original, after every 0.14 key: the client process binding
    // (its start time lands a moment after the handshake).
    assert_eq!(v["client"]["pid"], std::process::id());
    for k in &ckeys[5..] {
        assert!(["pid", "pid_started_at"].contains(&k.as_str()), "{k}");
    }
    assert_eq!(v["server_pid"], s.pid);
    assert_eq!(v["tmux_pane"], "%7", "a well-formed TMUX_PANE is trusted");
    assert_eq!(v["client"]["session_id_source"], "env");
    assert_eq!(v["client"]["cwd"], sb.proj().to_string_lossy().as_ref());
    assert_eq!(
        v["capabilities"],
        json!({"mailbox": {"reply_to": true, "provenance": true, "push_budget": true, "receipts": true}})
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.entry_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // The hooks' grep pattern finds the session id.
    assert!(text.contains("\"session_id\": \"11111111-2222-3333-4444-555555555555\""));
}
