//! Shared helpers of the messaging integration tests: a private HOME with a git
//! project, real `oxtail` server processes spoken to over newline-delimited
//! JSON-RPC on stdio, fake registry entries for peers we do not run.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
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
        fs::read_to_string(&self.trace)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }

    /// Write a registry entry for `pid` (a live process we control) as a peer
    /// that speaks no MCP: used for legacy peers, liars and odd shapes.
    pub fn fake_entry(&self, pid: u32, entry: Value) {
        let dir = self.layout().sessions_dir();
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("{pid}.json")),
            serde_json::to_string_pretty(&entry).unwrap(),
        )
        .unwrap();
    }

    /// Raw mailbox content of `pid`.
    pub fn mailbox(&self, pid: u32) -> String {
        fs::read_to_string(self.layout().mailbox(pid)).unwrap_or_default()
    }
}

/// A registry entry value for a fake peer.
pub fn entry_json(
    pid: u32,
    sid: Option<&str>,
    cwd: &Path,
    tmux_session: Option<&str>,
    capable: bool,
) -> Value {
    let mut e = json!({
        "server_pid": pid,
        "started_at": 1_700_000_000,
        "client": {
            "type": "claude-code",
            "session_id": sid,
            "transcript_path": null,
            "session_id_source": sid.map(|_| "self-register"),
            "cwd": cwd.to_string_lossy(),
        },
        "tmux_pane": null,
        "tmux_session": tmux_session,
        "state": null,
    });
    if capable {
        e["capabilities"] =
            json!({"mailbox": {"reply_to": true, "provenance": true, "push_budget": true}});
    }
    e
}

/// A live process with a pid we can put in fake registry entries.
pub struct Sleeper(pub Child);

impl Sleeper {
    pub fn new() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("300")
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `oxtail` server process.
pub struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    stash: HashMap<u64, Value>,
    next_id: u64,
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
    fn start(mut cmd: Command) -> Server {
        let mut child = cmd.spawn().expect("spawn oxtail");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let pid = child.id();
        let mut s = Server {
            child,
            stdin,
            lines: rx,
            stash: HashMap::new(),
            next_id: 1,
            pid,
        };
        s.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "claude-code", "version": "2.1.0"},
            }),
        );
        s.notify("notifications/initialized", json!({}));
        s
    }

    pub fn send(&mut self, msg: &Value) {
        let mut line = serde_json::to_string(msg).unwrap();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Send a request without waiting; returns its id.
    pub fn start_request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Wait for the response to request `id` (other responses are stashed,
    /// server-initiated requests and notifications are ignored).
    pub fn wait(&mut self, id: u64) -> Value {
        self.wait_for(id, RESPONSE_TIMEOUT)
            .unwrap_or_else(|| panic!("no response to request {id} within {RESPONSE_TIMEOUT:?}"))
    }

    pub fn wait_for(&mut self, id: u64, timeout: Duration) -> Option<Value> {
        if let Some(v) = self.stash.remove(&id) {
            return Some(v);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    if v.get("method").is_some() {
                        continue;
                    }
                    match v.get("id").and_then(Value::as_u64) {
                        Some(got) if got == id => return Some(v),
                        Some(other) => {
                            self.stash.insert(other, v);
                        }
                        None => {}
                    }
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!("server {} exited", self.pid),
            }
        }
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start_request(method, params);
        self.wait(id)
    }

    /// Start a `tools/call`; returns its request id.
    pub fn start_tool(&mut self, name: &str, args: Value) -> u64 {
        self.start_request("tools/call", json!({"name": name, "arguments": args}))
    }

    /// Turn a `tools/call` response into a [`ToolOut`].
    pub fn tool_out(resp: &Value) -> ToolOut {
        let result = resp
            .get("result")
            .unwrap_or_else(|| panic!("not a result: {resp}"));
        let text = result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if result.get("isError") == Some(&Value::Bool(true)) {
            return ToolOut::Error(text);
        }
        assert!(!text.contains('\n'), "payloads are compact: {text}");
        ToolOut::Json(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
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

    pub fn cancel(&mut self, request_id: u64) {
        self.notify(
            "notifications/cancelled",
            json!({"requestId": request_id, "reason": "test cancelled"}),
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `f` until it holds (hang guard only).
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
