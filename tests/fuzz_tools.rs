//! Fuzzing every tool's arguments against the real binary over stdio.
//!
//! One server process per test takes many `tools/call`s whose tool name,
//! argument keys (the advertised ones and strangers) and values (every JSON
//! type; path-traversal, shell-metacharacter, control-character, huge and
//! non-BMP strings; ids of real peers and messages) come from `proptest`.
//! A live peer in the same project makes sends really deliver.
//!
//! Proven for every call: an answer arrives (no hang), it is a well-formed
//! JSON-RPC 2.0 response to that id — a `result` whose `content` is text items
//! (a JSON payload starting with `schema_version: 1`, or an `isError` text
//! that is not an internal failure), or an `error` with a code and message —
//! and the server is still alive afterwards (no panic). Nothing is written
//! outside `~/.oxtail`.
//!
//! CI runs `OXTAIL_FUZZ_CASES` (default 200) calls per test.

mod fault_support;

use std::cell::RefCell;
use std::io::Write;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use fault_support::*;

const SID_ME: &str = "f0220000-0000-4000-8000-000000000001";
const SID_PEER: &str = "f0220000-0000-4000-8000-000000000002";
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn cases() -> u32 {
    env_num("OXTAIL_FUZZ_CASES", 200) as u32
}

/// Strings chosen to hit edges: traversal, metacharacters, controls, limits.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,40}",
        2 => ".{0,20}",
        1 => Just(String::new()),
        1 => Just(SID_PEER.to_string()),
        1 => Just(SID_ME.to_string()),
        1 => Just("../../../../etc/passwd".to_string()),
        1 => Just("a/b".to_string()),
        1 => Just("..".to_string()),
        1 => Just("%0; touch /tmp/oxtail-fuzz-pwned".to_string()),
        1 => Just("$(touch /tmp/oxtail-fuzz-pwned)`id`".to_string()),
        1 => Just("\u{0}\u{1}\u{1b}[2J\r\n".to_string()),
        1 => Just("\u{2028}\u{2029}\u{feff}\u{fffd}".to_string()),
        1 => Just("😀".repeat(2100)),
        1 => Just("x".repeat(8192)),
        1 => Just("x".repeat(8193)),
        1 => Just("€".repeat(2731)),
        1 => Just("y".repeat(70_000)),
        1 => "[0-9a-f]{16}",
        1 => prop::sample::select(vec!["auto", "off", "idle", "busy", "AUTO", "codex", "claude-code"])
            .prop_map(str::to_string),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        1 => prop::sample::select(vec![0i64, 1, -1, 50, 100_000, 9_007_199_254_740_991, 9_007_199_254_740_992])
            .prop_map(Value::from),
        1 => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        1 => any::<u64>().prop_map(Value::from),
        5 => nasty_string().prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("\\PC{0,8}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One fuzzed call: tool (index into the advertised list, or a stranger),
/// argument entries (key index into the tool's params, or a stranger),
/// whether `arguments` is replaced by a non-object, and an optional `_meta`.
#[derive(Debug, Clone)]
struct Call {
    tool: usize,
    stranger_tool: String,
    args: Vec<(usize, String, Value)>,
    non_object_args: Option<Value>,
    meta: Option<Value>,
}

fn call_strategy(n_tools: usize) -> impl Strategy<Value = Call> {
    (
        0..n_tools + 1,
        nasty_string(),
        prop::collection::vec((0usize..8, "\\PC{0,12}", value()), 0..6),
        prop::option::weighted(0.08, value()),
        // `_meta` is an object in MCP; a non-object one is covered by
        // `non_object_meta_is_answered_with_its_id`.
        prop::option::weighted(
            0.15,
            prop_oneof![
                prop::collection::vec(("\\PC{0,8}", value()), 0..3)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
                nasty_string().prop_map(|s| json!({"threadId": s})),
                value().prop_map(|v| json!({"threadId": v})),
            ],
        ),
    )
        .prop_map(|(tool, stranger_tool, args, non_object_args, meta)| Call {
            tool,
            stranger_tool,
            args,
            non_object_args,
            meta,
        })
}

/// Advertised tools: (name, parameter names).
fn tool_table(srv: &mut Server) -> Vec<(String, Vec<String>)> {
    let Answer::Response(v) = srv.request("tools/list", json!({})) else {
        panic!("tools/list failed");
    };
    v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let params = t["inputSchema"]["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            (t["name"].as_str().unwrap().to_string(), params)
        })
        .collect()
}

fn build_params(table: &[(String, Vec<String>)], c: &Call) -> Value {
    let name = table
        .get(c.tool)
        .map_or(c.stranger_tool.clone(), |t| t.0.clone());
    let params = table.get(c.tool).map(|t| t.1.as_slice()).unwrap_or(&[]);
    let mut args = Map::new();
    for (k, stranger, v) in &c.args {
        let key = params.get(*k).cloned().unwrap_or_else(|| stranger.clone());
        args.insert(key, v.clone());
    }
    let mut p = json!({"name": name, "arguments": c.non_object_args.clone().unwrap_or(Value::Object(args))});
    if let Some(m) = &c.meta {
        p["_meta"] = m.clone();
    }
    p
}

/// Check one response; `Err` describes what is malformed.
fn check_response(resp: &Value, id: u64) -> Result<&'static str, String> {
    if resp["jsonrpc"] != "2.0" || resp["id"] != json!(id) {
        return Err(format!("not a JSON-RPC 2.0 response to {id}: {resp}"));
    }
    if let Some(err) = resp.get("error") {
        if !err["code"].is_i64() || !err["message"].is_string() {
            return Err(format!("malformed error: {resp}"));
        }
        return Ok("jsonrpc_error");
    }
    let result = resp
        .get("result")
        .ok_or_else(|| format!("neither result nor error: {resp}"))?;
    let content = result["content"]
        .as_array()
        .ok_or_else(|| format!("no content array: {resp}"))?;
    if content.is_empty() {
        return Err(format!("empty content: {resp}"));
    }
    for item in content {
        if item["type"] != "text" || !item["text"].is_string() {
            return Err(format!("content item is not text: {resp}"));
        }
    }
    let text = content[0]["text"].as_str().unwrap();
    match result.get("isError") {
        Some(Value::Bool(true)) => {
            if text.is_empty() || text.contains("internal task failed") || text.contains("panicked")
            {
                return Err(format!("internal failure leaked: {text}"));
            }
            Ok("is_error")
        }
        None | Some(Value::Bool(false)) => {
            let v: Value = serde_json::from_str(text)
                .map_err(|e| format!("payload is not JSON ({e}): {text}"))?;
            let first = v.as_object().and_then(|o| o.iter().next());
            if first != Some((&"schema_version".to_string(), &json!(1))) {
                return Err(format!(
                    "payload does not start with schema_version 1: {text}"
                ));
            }
            Ok("payload")
        }
        Some(other) => Err(format!("isError is not a bool: {other}")),
    }
}

/// `OXTAIL_FUZZ_LOG=<file>`: append every call (to replay a failure).
fn log_call(params: &Value) {
    if let Some(path) = std::env::var_os("OXTAIL_FUZZ_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let _ = writeln!(f, "{params}");
    }
}

/// A failure, printed at once (shrinking may take a while after it).
fn fail(msg: String) -> TestCaseError {
    eprintln!(
        "fuzz failure: {}",
        msg.chars().take(2000).collect::<String>()
    );
    TestCaseError::fail(msg)
}

struct Fuzz {
    world: World,
    srv: Server,
    _peer: Server,
    table: Vec<(String, Vec<String>)>,
}

fn setup() -> Fuzz {
    let world = World::new();
    let env = [
        ("OXTAIL_ASK_PEER_TIMEOUT_MS", "50"),
        ("OXTAIL_ASK_PEER_MAX_TIMEOUT_MS", "200"),
        ("OXTAIL_ASK_PEER_WAKE_STRATEGY", "off"),
    ];
    let mut peer = world.server(&env);
    peer.claim(SID_PEER);
    let mut srv = world.server(&env);
    srv.claim(SID_ME);
    let table = tool_table(&mut srv);
    assert_eq!(table.len(), 11, "the ten 0.14 tools and message_status");
    Fuzz {
        world,
        srv,
        _peer: peer,
        table,
    }
}

#[test]
fn fuzzed_tool_calls_always_get_a_well_formed_answer() {
    let f = RefCell::new(setup());
    let table = f.borrow().table.clone();
    let tally = RefCell::new(std::collections::BTreeMap::<&'static str, u64>::new());
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        // Every shrink step is a real call with a 30 s hang guard.
        max_shrink_iters: 64,
        max_shrink_time: 60_000,
        ..Config::default()
    });
    let result = runner.run(&call_strategy(table.len()), |c| {
        let mut f = f.borrow_mut();
        let params = build_params(&table, &c);
        log_call(&params);
        let id = f
            .srv
            .start_request("tools/call", params.clone())
            .ok_or_else(|| TestCaseError::fail("server stdin closed (server died)"))?;
        let kind = match f.srv.wait(id, CALL_TIMEOUT) {
            Answer::Response(v) => check_response(&v, id).map_err(fail)?,
            Answer::Gone => return Err(fail(format!("server died on {params}"))),
            Answer::Timeout => return Err(fail(format!("server hung on {params}"))),
            Answer::Orphan(e) => {
                return Err(fail(format!(
                    "error without the request id ({e}) for {params}"
                )));
            }
        };
        *tally.borrow_mut().entry(kind).or_default() += 1;
        Ok(())
    });
    let mut f = f.into_inner();
    if let Err(e) = result {
        panic!("fuzzing found a defect: {e}");
    }
    assert!(
        f.srv.garbage().is_empty(),
        "non-JSON-RPC output: {:?}",
        f.srv.garbage()
    );
    assert!(f.srv.alive(), "server died");
    assert!(
        !std::path::Path::new("/tmp/oxtail-fuzz-pwned").exists(),
        "a fuzzed string was executed by a shell"
    );
    let outside = f.world.files_outside_store();
    assert!(outside.is_empty(), "written outside ~/.oxtail: {outside:?}");
    let t = tally.into_inner();
    figure(
        "fuzz_tools",
        &[
            ("calls", u64::from(cases())),
            ("payloads", t.get("payload").copied().unwrap_or(0)),
            ("is_error", t.get("is_error").copied().unwrap_or(0)),
            (
                "jsonrpc_errors",
                t.get("jsonrpc_error").copied().unwrap_or(0),
            ),
        ],
    );
}

/// Raw lines that are not valid requests (garbage, wrong shapes, wrong
/// types) never kill the server: a valid request afterwards still answers.
#[test]
fn fuzzed_raw_lines_never_kill_the_server() {
    let mut f = setup();
    let line = prop_oneof![
        3 => "\\PC{0,60}",
        2 => value().prop_map(|v| v.to_string()),
        2 => (value(), value()).prop_map(|(m, p)| json!({"jsonrpc": "2.0", "id": 7_000_000, "method": m, "params": p}).to_string()),
        2 => (nasty_string(), value()).prop_map(|(m, p)| json!({"jsonrpc": "2.0", "id": 7_000_001, "method": m, "params": p}).to_string()),
        1 => value().prop_map(|p| json!({"jsonrpc": "2.0", "id": p, "method": "tools/list"}).to_string()),
        1 => value().prop_map(|p| json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": p}).to_string()),
    ];
    let cases = cases() / 2;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        // Every shrink step is a real call with a 30 s hang guard.
        max_shrink_iters: 64,
        max_shrink_time: 60_000,
        ..Config::default()
    });
    let srv = RefCell::new(&mut f.srv);
    let result = runner.run(&line, |l| {
        let mut srv = srv.borrow_mut();
        let l = l.replace(['\n', '\r'], " ");
        if !srv.send_line(&l) {
            return Err(TestCaseError::fail(format!("server died after {l:?}")));
        }
        let id = srv
            .start_request("tools/list", json!({}))
            .ok_or_else(|| TestCaseError::fail(format!("server died after {l:?}")))?;
        loop {
            match srv.wait(id, CALL_TIMEOUT) {
                Answer::Response(v) if v["result"]["tools"].is_array() => return Ok(()),
                // The answer to the raw line itself (id-less: see
                // `invalid_requests_are_answered_with_their_id`).
                Answer::Orphan(_) => continue,
                other => {
                    return Err(TestCaseError::fail(format!(
                        "after raw line {l:?} the server answered {other:?}"
                    )));
                }
            }
        }
    });
    if let Err(e) = result {
        panic!("fuzzing found a defect: {e}");
    }
    assert!(f.srv.alive(), "server died");
    figure("fuzz_raw_lines", &[("lines", u64::from(cases))]);
}

/// A request rmcp cannot decode must still be answered with its id (JSON-RPC
/// 2.0: `id` is required in every response, `null` only when it cannot be
/// read). Without it the client waits for that id forever.
#[test]
fn invalid_requests_are_answered_with_their_id() {
    let mut f = setup();
    let cases: [(&str, Value); 4] = [
        (
            "_meta array",
            json!({"jsonrpc": "2.0", "id": 901, "method": "tools/call", "params": {"name": "get_my_session", "arguments": {}, "_meta": [true]}}),
        ),
        (
            "_meta string",
            json!({"jsonrpc": "2.0", "id": 902, "method": "tools/call", "params": {"name": "get_my_session", "arguments": {}, "_meta": "x"}}),
        ),
        (
            "arguments array",
            json!({"jsonrpc": "2.0", "id": 903, "method": "tools/call", "params": {"name": "get_my_session", "arguments": [1]}}),
        ),
        (
            "params string",
            json!({"jsonrpc": "2.0", "id": 904, "method": "tools/call", "params": "x"}),
        ),
    ];
    let mut bad = Vec::new();
    for (what, req) in &cases {
        assert!(f.srv.send_line(&req.to_string()));
        let id = req["id"].as_u64().unwrap();
        match f.srv.wait(id, CALL_TIMEOUT) {
            Answer::Response(v) => {
                if let Err(e) = check_response(&v, id) {
                    bad.push(format!("{what}: {e}"));
                }
            }
            other => bad.push(format!("{what}: {other:?}")),
        }
    }
    assert!(
        bad.is_empty(),
        "requests answered without their id: {bad:#?}"
    );
}
