//! Shared helpers of the messaging integration tests: a private HOME with a git
//! project, real `oxtail` server processes spoken to over newline-delimited
//! JSON-RPC on stdio, fake registry entries for peers we do not run.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use oxtail::mcp_client::{Answer, McpClient, ToolResult, result_text, tool_result};
use oxtail::store::paths::Layout;

/// Hang guard for one response (generous: a loaded 2-core CI box).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// A private world: `HOME`, a git project inside it, a private `TMUX_TMPDIR`.
pub struct World {
    _dir: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
    pub tmux_tmpdir: PathBuf,
    pub trace: PathBuf,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let home = fs::canonicalize(dir.path()).unwrap();
        let project = home.join("project");
        fs::create_dir_all(project.join(".git")).unwrap();
        let tmux_tmpdir = home.join("tmux");
        fs::create_dir_all(&tmux_tmpdir).unwrap();
        let trace = home.join("trace.ndjson");
        World {
            _dir: dir,
            home,
            project,
            tmux_tmpdir,
            trace,
        }
    }

    pub fn layout(&self) -> Layout {
        Layout::at(self.home.join(".oxtail"))
    }

    /// A server with cwd = the project.
    pub fn server(&self, env: &[(&str, &str)]) -> Server {
        self.server_in(&self.project.clone(), env)
    }

    /// A server with cwd = `cwd`.
    pub fn server_in(&self, cwd: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxtail"));
        cmd.current_dir(cwd)
            .env("HOME", &self.home)
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env("MCP_TRACE_FILE", &self.trace)
            .stderr(Stdio::null());
        for k in [
            "TMUX",
            "TMUX_PANE",
            "CLAUDECODE",
            "CLAUDE_CODE_SESSION_ID",
            "CLAUDE_CODE_ENTRYPOINT",
            "CODEX_THREAD_ID",
            "CODEX_HOME",
            "CODEX_SANDBOX",
            "OXTAIL_ASK_PEER_TIMEOUT_MS",
            "OXTAIL_ASK_PEER_MAX_TIMEOUT_MS",
            "OXTAIL_ASK_PEER_WAKE_STRATEGY",
            "OXTAIL_AUTOWAKE",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::start(cmd)
    }

    /// Trace records named `event` (from every server of this world).
    pub fn traces(&self, event: &str) -> Vec<Value> {
        fixtures::trace_events(&self.trace, event)
    }

    /// Write a registry entry for `pid` (a live process we control) as a peer
    /// that speaks no MCP: used for legacy peers, liars and odd shapes.
    pub fn fake_entry(&self, pid: u32, entry: Value) {
        fixtures::write_entry(&self.layout().sessions_dir(), pid, &entry);
    }

    /// Raw mailbox content of `pid`.
    pub fn mailbox(&self, pid: u32) -> String {
        fs::read_to_string(self.layout().mailbox(pid)).unwrap_or_default()
    }
}

/// A registry entry value for a fake peer (`capable`: with the mailbox
/// capabilities of a current server).
pub fn entry_json(
    pid: u32,
    sid: Option<&str>,
    cwd: &Path,
    tmux_session: Option<&str>,
    capable: bool,
) -> Value {
    let mut e = fixtures::entry_json(pid, "claude-code", sid, cwd, tmux_session, None);
    if !capable {
        e.as_object_mut().unwrap().shift_remove("capabilities");
    }
    e
}

#[path = "../shared/fixtures.rs"]
mod fixtures;
#[path = "../shared/process.rs"]
mod process;
#[allow(unused_imports)]
pub use process::{Sleeper, dead_pid};

/// One `oxtail` server process (a thin layer over the library's
/// [`McpClient`] that panics instead of returning errors).
pub struct Server {
    client: McpClient,
    pub pid: u32,
}

/// A tool result: the parsed JSON payload, or the `isError` text.
#[derive(Debug)]
pub enum ToolOut {
    Json(Value),
    Error(String),
}

impl ToolOut {
    pub fn json(self) -> Value {
        match self {
            ToolOut::Json(v) => v,
            ToolOut::Error(t) => panic!("expected a JSON payload, got isError: {t}"),
        }
    }
    pub fn error(self) -> String {
        match self {
            ToolOut::Error(t) => t,
            ToolOut::Json(v) => panic!("expected isError, got {v}"),
        }
    }
}

impl Server {
    fn start(cmd: Command) -> Server {
        let mut client = McpClient::spawn("oxtail", cmd).expect("spawn oxtail");
        client
            .initialize("claude-code", "2.1.0", RESPONSE_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
        Server {
            pid: client.pid(),
            client,
        }
    }

    pub fn send(&mut self, msg: &Value) {
        self.client.send(msg).unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.client.notify(method, params).unwrap();
    }

    /// Send a request without waiting; returns its id.
    pub fn start_request(&mut self, method: &str, params: Value) -> u64 {
        self.client.start(method, params).unwrap()
    }

    /// Wait for the response to request `id` (other responses are stashed,
    /// server-initiated requests and notifications are ignored).
    pub fn wait(&mut self, id: u64) -> Value {
        self.wait_for(id, RESPONSE_TIMEOUT)
            .unwrap_or_else(|| panic!("no response to request {id} within {RESPONSE_TIMEOUT:?}"))
    }

    /// The response to `id` within `timeout`, `None` when there is none yet.
    /// Panics when the server exited.
    pub fn wait_for(&mut self, id: u64, timeout: Duration) -> Option<Value> {
        match self.client.response(&json!(id), timeout) {
            Answer::Response(v) => Some(v),
            Answer::Timeout => None,
            _ => panic!("server {} exited", self.pid),
        }
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start_request(method, params);
        self.wait(id)
    }

    /// Start a `tools/call`; returns its request id.
    pub fn start_tool(&mut self, name: &str, args: Value) -> u64 {
        self.client.start_tool(name, args).unwrap()
    }

    /// Turn a `tools/call` response into a [`ToolOut`].
    pub fn tool_out(resp: &Value) -> ToolOut {
        assert!(resp.get("result").is_some(), "not a result: {resp}");
        match tool_result(resp).unwrap_or_else(|e| panic!("{e}")) {
            ToolResult::Error(text) => ToolOut::Error(text),
            ToolResult::Payload(v) => {
                let text = result_text(&resp["result"]);
                assert!(!text.contains('\n'), "payloads are compact: {text}");
                ToolOut::Json(v)
            }
        }
    }

    pub fn tool(&mut self, name: &str, args: Value) -> ToolOut {
        let id = self.start_tool(name, args);
        let resp = self.wait(id);
        Server::tool_out(&resp)
    }

    /// `claim_session(sid)`, asserting success.
    pub fn claim(&mut self, sid: &str) {
        let v = self
            .tool("claim_session", json!({"session_id": sid}))
            .json();
        assert_eq!(v["ok"], true, "claim_session: {v}");
    }

    /// Close stdin and wait for the exit (a clean exit, as a client quitting).
    pub fn exit(&mut self) -> Option<std::process::ExitStatus> {
        self.client.shutdown(RESPONSE_TIMEOUT)
    }

    /// Send `sig` and wait for the exit.
    pub fn signal_exit(&mut self, sig: i32) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid as i32, sig) };
        self.client.wait_exit(RESPONSE_TIMEOUT)
    }

    pub fn cancel(&mut self, request_id: u64) {
        self.notify(
            "notifications/cancelled",
            json!({"requestId": request_id, "reason": "test cancelled"}),
        );
    }
}

/// Poll `f` until it holds (hang guard only).
/// The keys of a JSON object, in order (key order is part of the contract).
pub fn keys_of(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < RESPONSE_TIMEOUT,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub const SID_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const SID_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
pub const SID_C: &str = "cccccccc-0000-4000-8000-000000000003";

/// The question `ask_peer` left in `pid`'s mailbox (waits for it).
pub fn question_in(world: &World, pid: u32) -> Value {
    let mut found = None;
    wait_until("the question to land", || {
        found = world
            .mailbox(pid)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|m| m.get("request_id").is_some());
        found.is_some()
    });
    found.unwrap()
}

/// Start the repository's `assets/<script>` under bash in `world` (only
/// `HOME`, `PATH` and `env`), `payload` on its stdin.
pub fn spawn_hook(world: &World, script: &str, payload: &str, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new("bash");
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(script),
    )
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("HOME", &world.home)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(payload.as_bytes())
        .unwrap();
    child
}

/// Run the shipped PreToolUse hook for `sid` in `world`; its stdout.
pub fn pretooluse(world: &World, sid: &str) -> String {
    let payload = format!(
        "{{\"session_id\":\"{sid}\",\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{{}},\"tool_use_id\":\"toolu_1\"}}"
    );
    let out = spawn_hook(world, "pretooluse.sh", &payload, &[])
        .wait_with_output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}
