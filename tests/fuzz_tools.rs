//! Fuzzing every tool's arguments against the real binary over stdio.
//!
//! One server process per test takes many `tools/call`s whose tool name,
//! argument keys (the advertised ones and strangers) and values (every JSON
//! type; path-traversal, shell-metacharacter, control-character, huge and
//! non-BMP strings, lone UTF-16 surrogate escapes; ids of real peers and
//! messages) come from `proptest`. A live peer in the same project makes
//! sends really deliver. Raw lines add every other JSON value (non-object
//! requests, batches, ids of every type) and lone surrogates anywhere.
//!
//! Proven for every call: an answer arrives (no hang), it is a well-formed
//! JSON-RPC 2.0 response to that id — a `result` whose `content` is text items
//! (a JSON payload starting with `schema_version: 1`, or an `isError` text
//! that is not an internal failure), or an `error` with a code and message —
//! and the server is still alive afterwards (no panic). Nothing is written
//! outside `~/.oxtail`. Every request with a usable id is answered exactly
//! once under it; everything else valid JSON gets exactly one `"id": null`
//! error per message, and nothing gets a second answer.
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

/// Stand-ins for lone UTF-16 surrogates, which a Rust string cannot hold:
/// a line is written with each replaced by the escape a JavaScript client
/// writes for half a surrogate pair ([`with_lone_surrogates`]).
const LONE: [(char, &str); 3] = [
    ('\u{10FFF0}', "\\ud800"),
    ('\u{10FFF1}', "\\udc00"),
    ('\u{10FFF2}', "\\udbff"),
];

/// `text` (compact JSON) with the [`LONE`] stand-ins as escapes.
fn with_lone_surrogates(text: &str) -> String {
    if !text.chars().any(|c| LONE.iter().any(|l| l.0 == c)) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match LONE.iter().find(|l| l.0 == c) {
            Some(l) => out.push_str(l.1),
            None => out.push(c),
        }
    }
    out
}

/// Whether a value holds a [`LONE`] stand-in anywhere.
fn has_lone(v: &Value) -> bool {
    v.to_string().chars().any(|c| LONE.iter().any(|l| l.0 == c))
}

/// A JSON-RPC line with lone surrogates in place of the stand-ins.
fn request_line(id: &Value, method: &Value, params: &Value) -> String {
    with_lone_surrogates(
        &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
    )
}

/// Strings chosen to hit edges: traversal, metacharacters, controls, limits,
/// lone surrogates (a lone high, a lone low, a high before a valid pair, one
/// after an escaped backslash).
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("a\u{10FFF0}b".to_string()),
        1 => Just("\u{10FFF1}".to_string()),
        1 => Just("\u{10FFF2}\u{10FFF2}\u{10FFF1}\\\u{10FFF0}😀".to_string()),
        1 => "\\PC{0,10}".prop_map(|s| format!("{s}\u{10FFF0}{s}")),
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

/// `OXTAIL_FUZZ_LOG=<file>`: append every line sent (to replay a failure).
fn log_call(line: &str) {
    if let Some(path) = std::env::var_os("OXTAIL_FUZZ_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let _ = writeln!(f, "{line}");
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
    peer: Server,
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
        peer,
        table,
    }
}

#[test]
fn fuzzed_tool_calls_always_get_a_well_formed_answer() {
    let f = RefCell::new(setup());
    let table = f.borrow().table.clone();
    let tally = RefCell::new(std::collections::BTreeMap::<&'static str, u64>::new());
    // Ids of our own lines, far from the client's own counter.
    let next_id = std::cell::Cell::new(1_000_000u64);
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
        let id = next_id.replace(next_id.get() + 1);
        let line = request_line(&json!(id), &json!("tools/call"), &params);
        log_call(&line);
        let params = &line;
        if !f.srv.send_line(&line) {
            return Err(TestCaseError::fail("server stdin closed (server died)"));
        }
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
    let extra = f.srv.unclaimed();
    assert!(extra.is_empty(), "answers nobody asked for: {extra:?}");
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

/// One raw line of [`fuzzed_raw_lines_are_answered_exactly_once`].
#[derive(Debug, Clone)]
enum Raw {
    /// Any text (mostly not JSON).
    Text(String),
    /// Any JSON value: scalars, arrays (batches), objects that are no message.
    Value(Value),
    /// A request with our id and any method and params.
    Request(Value, Value),
    /// `tools/list` under any id value.
    AnyId(Value),
    /// A notification with any params.
    Notify(Value),
    /// A batch of pings under our ids and other values.
    Batch(Vec<Option<Value>>),
}

fn raw_strategy() -> impl Strategy<Value = Raw> {
    prop_oneof![
        3 => "\\PC{0,60}".prop_map(Raw::Text),
        2 => value().prop_map(Raw::Value),
        2 => (value(), value()).prop_map(|(m, p)| Raw::Request(m, p)),
        2 => (nasty_string(), value()).prop_map(|(m, p)| Raw::Request(Value::from(m), p)),
        1 => value().prop_map(Raw::AnyId),
        1 => nasty_string().prop_map(|s| Raw::AnyId(Value::from(s))),
        1 => value().prop_map(Raw::Notify),
        1 => prop::collection::vec(prop::option::of(value()), 1..5).prop_map(Raw::Batch),
    ]
}

/// What one raw line must be answered with: responses under these ids, and
/// exactly this many id-null errors.
struct Expect {
    ids: Vec<Value>,
    orphans: std::ops::RangeInclusive<usize>,
}

/// Id-null errors a JSON value that is no message gets: one per element of
/// a batch, else one.
fn orphans_for(v: &Value) -> usize {
    match v {
        Value::Array(a) if !a.is_empty() => a.len(),
        _ => 1,
    }
}

/// The line for `raw` (its ids start at `base`) and its expected answers.
fn raw_line(raw: &Raw, base: u64) -> (String, Expect) {
    let exact = |n| n..=n;
    match raw {
        Raw::Text(t) => {
            let line = t.replace(['\n', '\r'], " ");
            // Not JSON: no answer, except that rmcp refuses text that starts
            // with a JSON value of the wrong type ("0º") before it sees the rest.
            let orphans = match serde_json::from_str::<Value>(&line) {
                Ok(v) => exact(orphans_for(&v)),
                Err(_) => 0..=1,
            };
            (
                line,
                Expect {
                    ids: vec![],
                    orphans,
                },
            )
        }
        Raw::Value(v) => {
            let orphans = exact(orphans_for(v));
            (
                with_lone_surrogates(&v.to_string()),
                Expect {
                    ids: vec![],
                    orphans,
                },
            )
        }
        Raw::Request(m, p) => {
            let ids = vec![json!(base)];
            (
                request_line(&json!(base), m, p),
                Expect {
                    ids,
                    orphans: exact(0),
                },
            )
        }
        Raw::AnyId(id) => {
            let line = request_line(id, &json!("tools/list"), &json!({}));
            // A string or an integer is answered under it; a lone surrogate
            // in the string would come back as U+FFFD, so that id is not used.
            // An integer in float form (`5.0`, `-0.0`, below 2^53) is answered
            // as the integer, the number a JavaScript client compares with.
            let integral = id
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0)
                .map(|f| json!(f as i64));
            let answer = match id {
                Value::String(_) if !has_lone(id) => Some(id.clone()),
                _ if id.is_i64() => Some(id.clone()),
                _ if id.is_u64() => None,
                _ => integral,
            };
            let expect = match answer {
                Some(a) => Expect {
                    ids: vec![a],
                    orphans: exact(0),
                },
                None => Expect {
                    ids: vec![],
                    orphans: exact(1),
                },
            };
            (line, expect)
        }
        Raw::Notify(p) => {
            let line = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": p});
            // rmcp refuses params it cannot decode with an id-null error.
            let line = with_lone_surrogates(&line.to_string());
            (
                line,
                Expect {
                    ids: vec![],
                    orphans: 0..=1,
                },
            )
        }
        Raw::Batch(items) => {
            let mut ids = Vec::new();
            let mut elements = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Some(v) => elements.push(v.clone()),
                    None => {
                        let id = json!(base + i as u64);
                        elements.push(json!({"jsonrpc": "2.0", "id": id, "method": "ping"}));
                        ids.push(id);
                    }
                }
            }
            let orphans = exact(items.len() - ids.len());
            let line = with_lone_surrogates(&Value::Array(elements).to_string());
            (line, Expect { ids, orphans })
        }
    }
}

/// Whether an id-null error really carries `"id": null` (JSON-RPC 2.0 §5),
/// rather than no `id` member at all.
fn has_null_id(e: &Value) -> bool {
    e.as_object().and_then(|o| o.get("id")) == Some(&Value::Null)
}

/// Raw lines of every shape (garbage, every JSON value, batches, requests
/// with any method, params or id, lone surrogates anywhere): each request
/// with a usable id is answered once under it, each other message that is
/// valid JSON gets exactly one `"id": null` error, garbage gets nothing, a
/// valid request afterwards still answers, and no answer comes twice.
#[test]
fn fuzzed_raw_lines_are_answered_exactly_once() {
    let mut f = setup();
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
    let base = std::cell::Cell::new(7_000_000u64);
    // Answers under an id, id-null errors, lines with lone surrogates.
    let tally = RefCell::new([0u64; 3]);
    let result = runner.run(&raw_strategy(), |raw| {
        let mut srv = srv.borrow_mut();
        let (line, expect) = raw_line(&raw, base.replace(base.get() + 10));
        log_call(&line);
        if !srv.send_line(&line) {
            return Err(fail(format!("server died after {line:?}")));
        }
        let mut orphans = 0;
        let mut orphan = |e: &Value| {
            orphans += 1;
            if has_null_id(e) {
                Ok(())
            } else {
                Err(fail(format!(
                    "after {line:?}: an error without \"id\": null: {e}"
                )))
            }
        };
        for id in &expect.ids {
            loop {
                match srv.wait_for(id, CALL_TIMEOUT) {
                    Answer::Response(_) => break,
                    Answer::Orphan(e) => orphan(&e)?,
                    other => {
                        return Err(fail(format!("{line:?}: no answer under {id}: {other:?}")));
                    }
                }
            }
        }
        let barrier = srv
            .start_request("tools/list", json!({}))
            .ok_or_else(|| fail(format!("server died after {line:?}")))?;
        loop {
            match srv.wait(barrier, CALL_TIMEOUT) {
                Answer::Response(v) if v["result"]["tools"].is_array() => break,
                Answer::Orphan(e) => orphan(&e)?,
                other => {
                    return Err(fail(format!(
                        "after {line:?} the server answered {other:?}"
                    )));
                }
            }
        }
        if !expect.orphans.contains(&orphans) {
            return Err(fail(format!(
                "{line:?}: {orphans} id-null errors, expected {:?}",
                expect.orphans
            )));
        }
        let extra = srv.unclaimed();
        if !extra.is_empty() {
            return Err(fail(format!(
                "{line:?}: answers nobody asked for: {extra:?}"
            )));
        }
        let mut t = tally.borrow_mut();
        t[0] += expect.ids.len() as u64;
        t[1] += orphans as u64;
        t[2] += u64::from(
            ["\\ud800", "\\udc00", "\\udbff"]
                .iter()
                .any(|e| line.contains(e)),
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("fuzzing found a defect: {e}");
    }
    assert!(f.srv.alive(), "server died");
    assert!(
        f.srv.garbage().is_empty(),
        "non-JSON-RPC output: {:?}",
        f.srv.garbage()
    );
    let t = tally.into_inner();
    figure(
        "fuzz_raw_lines",
        &[
            ("lines", u64::from(cases)),
            ("answers_under_id", t[0]),
            ("id_null_errors", t[1]),
            ("with_lone_surrogates", t[2]),
        ],
    );
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

/// A string argument with lone surrogate escapes (what a JavaScript client
/// writes for a broken surrogate pair) is valid JSON: the call is answered
/// and handled, each lone surrogate reaching the tool as U+FFFD, as in the
/// original (Node stores it as U+FFFD too). Valid pairs and escaped
/// backslashes stay what they are; the stored line is valid UTF-8.
#[test]
fn lone_surrogate_arguments_are_answered_and_reach_the_tool_as_replacement_chars() {
    let mut f = setup();
    let body = r#"a\ud800b\udc00c \ud83d\ude00 \\ud800 \uDBFF"#;
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":"s1","method":"tools/call","params":{{"name":"send_message","arguments":{{"target":"{SID_PEER}","body":"{body}"}}}}}}"#
    );
    assert!(f.srv.send_line(&line));
    let sent = match f.srv.wait_for(&json!("s1"), CALL_TIMEOUT) {
        Answer::Response(v) => tool_outcome(&v).expect("send_message result"),
        other => panic!("a call with lone surrogates got {other:?}"),
    };
    assert_eq!(sent["ok"], true, "{sent}");
    let want = "a\u{fffd}b\u{fffd}c 😀 \\ud800 \u{fffd}";
    let mailbox = fs_read(&f.world.layout().mailbox(f.peer.pid));
    let stored = std::str::from_utf8(&mailbox).expect("the stored line is valid UTF-8");
    assert!(
        stored.contains(&format!("\"body\":\"{}\"", want.replace('\\', "\\\\"))),
        "{stored}"
    );
    let got = f.peer.tool("read_my_messages", json!({})).unwrap();
    assert_eq!(got["messages"][0]["body"], want, "{got}");
    // Invalid UTF-8 in a string argument is read as U+FFFD, as Node reads it.
    let raw = format!(
        r#"{{"jsonrpc":"2.0","id":"s2","method":"tools/call","params":{{"name":"send_message","arguments":{{"target":"{SID_PEER}","body":"x@@y"}}}}}}"#
    )
    .replace("@@", "\u{1}");
    let raw = raw
        .as_bytes()
        .iter()
        .map(|&b| if b == 1 { 0xff } else { b })
        .collect::<Vec<u8>>();
    assert!(f.srv.send_bytes(&raw));
    match f.srv.wait_for(&json!("s2"), CALL_TIMEOUT) {
        Answer::Response(v) => assert_eq!(tool_outcome(&v).unwrap()["ok"], true, "{v}"),
        other => panic!("a call with invalid UTF-8 got {other:?}"),
    }
    let got = f.peer.tool("read_my_messages", json!({})).unwrap();
    assert_eq!(got["messages"][0]["body"], "x\u{fffd}y", "{got}");
    // A ping after them is answered, and nothing was answered twice.
    assert!(
        matches!(f.srv.request("ping", json!({})), Answer::Response(v) if v["result"] == json!({}))
    );
    assert!(f.srv.unclaimed().is_empty());
}

fn fs_read(p: &std::path::Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// JSON-RPC 2.0 §5: an error for a request whose id cannot be read carries
/// `"id": null`; the member is never left out. One answer each, nothing for
/// a line that is not JSON.
#[test]
fn requests_whose_id_cannot_be_read_are_answered_with_id_null() {
    let mut f = setup();
    let lines = [
        "{}",
        "42",
        "[]",
        "null",
        "\"x\"",
        "true",
        r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":"\udc00","method":"ping"}"#,
        "not json",
    ];
    let mut bad = Vec::new();
    for line in lines {
        assert!(f.srv.send_line(line));
        let barrier = f.srv.start_request("ping", json!({})).unwrap();
        let mut errors = Vec::new();
        loop {
            match f.srv.wait(barrier, CALL_TIMEOUT) {
                Answer::Response(_) => break,
                Answer::Orphan(e) => errors.push(e),
                other => panic!("{line}: {other:?}"),
            }
        }
        let want = usize::from(line != "not json");
        if errors.len() != want || !errors.iter().all(has_null_id) {
            bad.push(format!("{line}: {errors:?}"));
        }
    }
    assert!(bad.is_empty(), "wrong answers: {bad:#?}");
    assert!(f.srv.unclaimed().is_empty());
}

/// A batch is split into its requests (beyond the original, whose SDK
/// drops it unanswered): each request in it is answered once under its id,
/// each element that is no message gets one id-null error.
#[test]
fn batches_are_answered_once_per_element() {
    let mut f = setup();
    let line = r#"[{"jsonrpc":"2.0","id":"b1","method":"ping"}, 7, {"jsonrpc":"2.0","id":"b2","method":"tools/call","params":{"name":"get_my_session","arguments":{"x":"\ud800"}}}, {"jsonrpc":"2.0","method":"notifications/initialized"}, {"jsonrpc":"2.0","id":"b3","method":"tools/call","params":"x"}]"#;
    assert!(f.srv.send_line(line));
    let mut orphans = 0;
    for id in ["b1", "b2", "b3"] {
        loop {
            match f.srv.wait_for(&json!(id), CALL_TIMEOUT) {
                Answer::Response(v) => {
                    assert_eq!(v["id"], id);
                    break;
                }
                Answer::Orphan(e) => {
                    assert!(has_null_id(&e), "{e}");
                    orphans += 1;
                }
                other => panic!("{id}: {other:?}"),
            }
        }
    }
    assert!(matches!(
        f.srv.request("ping", json!({})),
        Answer::Response(_)
    ));
    assert_eq!(orphans, 1, "one id-null error for the 7");
    assert!(f.srv.unclaimed().is_empty());
}
