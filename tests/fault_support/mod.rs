//! Harness of the fault, fuzz and adversarial suites: a private world (HOME,
//! git project, TMUX_TMPDIR, trace file), real `oxtail` server processes that
//! may be killed or stopped at any moment (every call reports `Gone` instead
//! of panicking), the real `assets/*.sh` hooks under bash, and parsers for
//! what a hook prints.
//!
//! Invariant defended: nothing here touches the user's `~/.oxtail`, `~/.claude`
//! or tmux server — every child gets a cleared environment with private `HOME`
//! and `TMUX_TMPDIR`.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub use oxtail::mcp_client::Answer;
use oxtail::mcp_client::{McpClient, PROTOCOL_VERSION};

use oxtail::store::paths::Layout;

/// Hang guard for one answer (generous: a loaded 2-core CI box, and a peer
/// may be stopped for a while by the chaos thread).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// `name` parsed from the environment, or `default` (long-run knobs).
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A private world: `HOME` (holding `.oxtail`), a git project, `TMUX_TMPDIR`.
pub struct World {
    _dir: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
    pub tmux_tmpdir: PathBuf,
    pub trace: PathBuf,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("oxf")
            .tempdir_in("/tmp")
            .unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        World::at(dir, root.join("home"))
    }

    /// A world whose HOME is `home` (e.g. a tiny tmpfs), kept alive by `dir`.
    pub fn at(dir: tempfile::TempDir, home: PathBuf) -> World {
        let root = fs::canonicalize(dir.path()).unwrap();
        let project = root.join("project");
        fs::create_dir_all(project.join(".git")).unwrap();
        fs::create_dir_all(&home).unwrap();
        let tmux_tmpdir = root.join("tmux");
        fs::create_dir_all(&tmux_tmpdir).unwrap();
        World {
            trace: root.join("trace.ndjson"),
            _dir: dir,
            home,
            project,
            tmux_tmpdir,
        }
    }

    /// The directory every world path lives in.
    pub fn root(&self) -> PathBuf {
        self.project.parent().unwrap().to_path_buf()
    }

    pub fn layout(&self) -> Layout {
        Layout::at(self.home.join(".oxtail"))
    }

    /// A server with cwd = the project and `env` on top of the private base.
    pub fn server(&self, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxtail"));
        self.base_env(&mut cmd);
        cmd.current_dir(&self.project).stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::start(cmd)
    }

    /// Clear the environment and set only PATH, HOME, TMUX_TMPDIR and the
    /// trace file.
    pub fn base_env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env("MCP_TRACE_FILE", &self.trace);
    }

    /// Trace records named `event`, from every process of this world.
    pub fn traces(&self, event: &str) -> Vec<Value> {
        fixtures::trace_events(&self.trace, event)
    }

    /// Start a hook (`assets/<hook>`) under bash with `payload` on stdin.
    pub fn spawn_hook(&self, hook: &str, payload: &str) -> Child {
        let mut cmd = Command::new("bash");
        cmd.arg(asset(hook));
        self.base_env(&mut cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn bash hook");
        let mut stdin = child.stdin.take().unwrap();
        // A hook may exit without reading stdin: ignore EPIPE.
        let _ = stdin.write_all(payload.as_bytes());
        drop(stdin);
        child
    }

    /// Run a hook to completion; (exit code, stdout, stderr).
    pub fn run_hook(&self, hook: &str, payload: &str) -> (Option<i32>, String, String) {
        let child = self.spawn_hook(hook, payload);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Write a registry entry file `sessions/<file_pid>.json` verbatim.
    pub fn write_entry(&self, file_pid: u32, entry: &Value) {
        fixtures::write_entry(&self.layout().sessions_dir(), file_pid, entry);
    }

    /// Every regular file under the world's root that is NOT under HOME's
    /// `.oxtail`, with its length (to prove nothing was written elsewhere).
    pub fn files_outside_store(&self) -> Vec<(PathBuf, u64)> {
        let store = self.layout().root().to_path_buf();
        let mut out = Vec::new();
        walk(&self.root(), &mut |p, len| {
            if !p.starts_with(&store) && !p.starts_with(&self.tmux_tmpdir) && p != self.trace {
                out.push((p.to_path_buf(), len));
            }
        });
        out.sort();
        out
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, u64)) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for de in rd.filter_map(Result::ok) {
        let p = de.path();
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(&p, f);
        } else {
            f(&p, meta.len());
        }
    }
}

/// `assets/<name>` of this checkout.
pub fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

/// A registry entry value in the original's shape.
pub fn entry_json(pid: u32, sid: Option<&str>, cwd: &Path) -> Value {
    fixtures::entry_json(pid, "claude-code", sid, cwd, None, None)
}

#[path = "../shared/fixtures.rs"]
mod fixtures;

/// A PreToolUse payload for `sid` (session_id first, as Claude Code sends).
pub fn pre_payload(sid: &str) -> String {
    format!(
        "{{\"session_id\":\"{sid}\",\"transcript_path\":\"/t.jsonl\",\"cwd\":\"/p\",\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{{\"command\":\"ls\"}},\"tool_use_id\":\"toolu_1\"}}"
    )
}

/// The (message id, body) pairs of a PreToolUse hook's stdout. Empty stdout
/// is no delivery; anything else must be the JSON envelope.
pub fn hook_messages(stdout: &str) -> Result<Vec<(String, String)>, String> {
    if stdout.is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(stdout).map_err(|e| format!("{e}: {stdout:?}"))?;
    let ctx = v["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .ok_or_else(|| format!("no additionalContext: {stdout}"))?;
    let mut out = Vec::new();
    for part in ctx.split("\n--- msg ").skip(1) {
        let (head, body) = part
            .split_once(" ---\n")
            .ok_or_else(|| format!("bad message header: {part:?}"))?;
        let id = head
            .split(" | ")
            .find_map(|f| f.strip_prefix("message_id="))
            .unwrap_or_default()
            .to_string();
        let body = body.split("\n[oxtail] ").next().unwrap_or_default();
        out.push((id, body.to_string()));
    }
    Ok(out)
}

/// Send `sig` to `pid` (a child we have not reaped yet).
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: plain kill(2) on a pid we own and have not waited for.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// One `oxtail` server process speaking newline-delimited JSON-RPC through
/// the library's [`McpClient`]: every call reports what became of it
/// ([`Answer`]) instead of panicking when the server is gone.
pub struct Server {
    client: McpClient,
    pub pid: u32,
}

impl Server {
    fn start(cmd: Command) -> Server {
        let mut client = McpClient::spawn("oxtail", cmd).expect("spawn oxtail");
        let init = client.request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "claude-code", "version": "2.1.0"},
            }),
            ANSWER_TIMEOUT,
        );
        assert!(
            matches!(&init, Ok(v) if v.get("result").is_some()),
            "initialize failed: {init:?}"
        );
        let mut s = Server {
            pid: client.pid(),
            client,
        };
        s.send_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        s
    }

    /// Write one raw line (a `\n` is added). False when stdin is closed.
    pub fn send_line(&mut self, line: &str) -> bool {
        self.client.send_line(line).is_ok()
    }

    /// Write one raw line of any bytes (a `\n` is added).
    pub fn send_bytes(&mut self, line: &[u8]) -> bool {
        self.client.send_bytes(line).is_ok()
    }

    /// Send a request without waiting; its id.
    pub fn start_request(&mut self, method: &str, params: Value) -> Option<u64> {
        self.client.start(method, params).ok()
    }

    /// Wait for the response to `id` (notifications and server requests are
    /// skipped, other responses stashed; an id-less error is an orphan).
    pub fn wait(&mut self, id: u64, timeout: Duration) -> Answer {
        self.client.answer(&json!(id), timeout)
    }

    /// [`Server::wait`] for any JSON-RPC id (a string, a negative number).
    pub fn wait_for(&mut self, id: &Value, timeout: Duration) -> Answer {
        self.client.answer(id, timeout)
    }

    pub fn request(&mut self, method: &str, params: Value) -> Answer {
        match self.start_request(method, params) {
            Some(id) => self.wait(id, ANSWER_TIMEOUT),
            None => Answer::Gone,
        }
    }

    /// `tools/call`: the raw answer.
    pub fn call(&mut self, tool: &str, args: Value) -> Answer {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
    }

    /// `tools/call` that must answer: `Ok(payload)` for a JSON result,
    /// `Err(text)` for an `isError` result. Panics when the server is gone.
    pub fn tool(&mut self, tool: &str, args: Value) -> Result<Value, String> {
        match self.call(tool, args) {
            Answer::Response(v) => tool_outcome(&v),
            other => panic!("{tool}: no answer from server {}: {other:?}", self.pid),
        }
    }

    /// `claim_session(sid)`, asserting success.
    pub fn claim(&mut self, sid: &str) {
        let v = self
            .tool("claim_session", json!({"session_id": sid}))
            .unwrap_or_else(|e| panic!("claim_session failed: {e}"));
        assert_eq!(v["ok"], true, "claim_session: {v}");
    }

    /// Responses nobody waited for (e.g. a second answer to one request).
    pub fn unclaimed(&mut self) -> Vec<Value> {
        self.client.unclaimed()
    }

    /// Lines that were not JSON, or JSON that is no JSON-RPC message.
    pub fn garbage(&self) -> &[String] {
        self.client.garbage()
    }

    /// The server process (e.g. to `try_wait` it).
    pub fn child(&mut self) -> &mut Child {
        self.client.child()
    }

    pub fn close_stdin(&mut self) {
        self.client.close_stdin();
    }

    /// Exit status within `timeout`, `None` when still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.client.wait_exit(timeout)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.client.child().try_wait(), Ok(None))
    }
}

/// A `tools/call` response → `Ok(payload)` or `Err(isError text)`; a JSON-RPC
/// error or a malformed result is a test failure.
pub fn tool_outcome(resp: &Value) -> Result<Value, String> {
    let result = resp
        .get("result")
        .unwrap_or_else(|| panic!("tools/call gave no result: {resp}"));
    let text = result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content: {resp}"))
        .to_string();
    if result.get("isError") == Some(&Value::Bool(true)) {
        return Err(text);
    }
    Ok(serde_json::from_str(&text).unwrap_or_else(|e| panic!("payload is not JSON ({e}): {text}")))
}

/// Read a child's whole stdout on a thread (so a full pipe never blocks it).
pub fn collect_stdout(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

#[path = "../shared/process.rs"]
mod process;
#[allow(unused_imports)]
pub use process::Sleeper;

/// Print one figure line of a suite (collected for the README figures).
pub fn figure(suite: &str, pairs: &[(&str, u64)]) {
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("FIGURES {suite}: {}", body.join(" "));
}
