//! Test harness for the `oxtail` MCP server: spawn the built binary with a
//! private HOME, TMUX_TMPDIR and cwd and a cleared environment, and speak
//! newline-delimited JSON-RPC with it. Every wait has a generous hang guard.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oxtail::mcp_client::{Answer, McpClient, result_text};
use serde_json::{Value, json};

/// Hang guard for one response.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A private sandbox: HOME, TMUX_TMPDIR and a project directory with `.git`.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("oxs")
            .tempdir_in("/tmp")
            .unwrap();
        for d in ["home", "tmux", "proj/.git"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Sandbox { dir }
    }

    /// The canonical sandbox root (macOS /tmp is a symlink).
    pub fn root(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap()
    }

    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    pub fn tmux_tmpdir(&self) -> PathBuf {
        self.root().join("tmux")
    }

    pub fn proj(&self) -> PathBuf {
        self.root().join("proj")
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.home().join(".oxtail/sessions")
    }

    /// `~/.claude/projects/<encoded project dir>`: where Claude Code keeps the
    /// transcripts of sessions started in `proj`.
    pub fn claude_dir(&self) -> PathBuf {
        let enc: String = self
            .proj()
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        self.home().join(".claude/projects").join(enc)
    }

    /// Write a registry entry file for `pid` (raw JSON value).
    pub fn write_entry(&self, pid: u32, entry: &Value) {
        fixtures::write_entry(&self.sessions_dir(), pid, entry);
    }

    /// A `tmux` command aimed at this sandbox's private server.
    pub fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.env("TMUX_TMPDIR", self.tmux_tmpdir())
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Start a detached tmux session `name` in `dir`; false when tmux is missing.
    pub fn tmux_session(&self, name: &str, dir: &Path) -> bool {
        match self
            .tmux()
            .args(["new-session", "-d", "-s", name, "-c"])
            .arg(dir)
            .args(["-x", "120", "-y", "30"])
            .output()
        {
            Ok(o) => o.status.success(),
            Err(_) => false,
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

#[path = "../shared/fixtures.rs"]
mod fixtures;
#[allow(unused_imports)]
pub use fixtures::entry_json;
#[path = "../shared/process.rs"]
mod process;
#[allow(unused_imports)]
pub use process::{Sleeper, dead_pid};

/// A running `oxtail` server (a thin layer over the library's [`McpClient`]
/// that panics instead of returning errors).
pub struct Server {
    client: McpClient,
    pub pid: u32,
    /// The server's parent (its "client process"): this test process, or the
    /// shell of [`Server::spawn_own_client`].
    pub client_pid: u32,
    pub home: PathBuf,
}

impl Server {
    /// Spawn in `cwd` with only PATH, HOME, TMUX_TMPDIR and `env` set.
    pub fn spawn(sb: &Sandbox, cwd: &Path, env: &[(&str, &str)]) -> Server {
        Server::spawn_cmd(sb, cwd, env, Command::new(env!("CARGO_BIN_EXE_oxtail")))
    }

    /// Like [`Server::spawn`], but under a shell of its own (`sh -c 'oxtail;
    /// :'`), so the server's parent — the client process it follows across
    /// `/clear` — is that shell (`client_pid`), not this test process.
    pub fn spawn_own_client(sb: &Sandbox, cwd: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "\"$0\"; :", env!("CARGO_BIN_EXE_oxtail")]);
        let mut s = Server::spawn_cmd(sb, cwd, env, cmd);
        let shell = s.client_pid;
        let dir = sb.sessions_dir();
        let found = Server::wait_for(TIMEOUT, || {
            std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|de| {
                    let v: Value = std::fs::read(de.path())
                        .ok()
                        .and_then(|t| serde_json::from_slice(&t).ok())
                        .unwrap_or(Value::Null);
                    if v["client"]["pid"] == shell {
                        s.pid = v["server_pid"].as_u64().unwrap_or(0) as u32;
                        true
                    } else {
                        false
                    }
                })
        });
        assert!(
            found,
            "no registry entry for the server under shell {shell}"
        );
        s
    }

    fn spawn_cmd(sb: &Sandbox, cwd: &Path, env: &[(&str, &str)], mut cmd: Command) -> Server {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", sb.home())
            .env("TMUX_TMPDIR", sb.tmux_tmpdir())
            .current_dir(cwd)
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut client = McpClient::spawn("oxtail", cmd).expect("spawn oxtail");
        // Ids from 101: tests' raw lines use small ids of their own.
        client.set_next_id(101);
        Server {
            pid: client.pid(),
            client_pid: client.pid(),
            client,
            home: sb.home(),
        }
    }

    /// Send one raw line.
    pub fn send_raw(&mut self, line: &str) {
        self.client.send_line(line).unwrap();
    }

    /// Wait for the response with `id`, skipping notifications.
    pub fn response(&mut self, id: &Value) -> Value {
        match self.client.response(id, TIMEOUT) {
            Answer::Response(v) => v,
            Answer::Timeout => panic!("no response to id {id} within {TIMEOUT:?}"),
            _ => panic!("server closed stdout before answering id {id}"),
        }
    }

    /// Send a request and return the whole response object.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.client.start(method, params).unwrap();
        self.response(&json!(id))
    }

    pub fn notify(&mut self, method: &str) {
        self.client.notify(method, Value::Null).unwrap();
    }

    /// `initialize` as `client_name` + `notifications/initialized`.
    pub fn initialize(&mut self, client_name: &str) -> Value {
        self.client
            .initialize(client_name, "1.0", TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `tools/call`; returns the `result` object (content, isError).
    pub fn call(&mut self, tool: &str, args: Value) -> Value {
        self.call_meta(tool, args, None)
    }

    /// `tools/call` with a `_meta` object.
    pub fn call_meta(&mut self, tool: &str, args: Value, meta: Option<Value>) -> Value {
        let mut params = json!({"name": tool, "arguments": args});
        if let Some(m) = meta {
            params["_meta"] = m;
        }
        let r = self.request("tools/call", params);
        r.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("tools/call {tool} failed: {r}"))
    }

    /// The text of the single content item.
    pub fn text(result: &Value) -> String {
        result_text(result)
    }

    /// `tools/call` whose result must be a JSON payload (not `isError`).
    pub fn call_json(&mut self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args);
        assert!(r.get("isError").is_none(), "{tool} returned isError: {r}");
        let text = Server::text(&r);
        assert!(!text.contains('\n'), "payload must be minified: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{tool}: bad JSON {e}: {text}"))
    }

    /// `tools/call` that must be an `isError` result; returns its text.
    pub fn call_error(&mut self, tool: &str, args: Value) -> String {
        let r = self.call(tool, args);
        assert_eq!(r["isError"], json!(true), "{tool} should fail: {r}");
        Server::text(&r)
    }

    pub fn entry_path(&self) -> PathBuf {
        self.home
            .join(format!(".oxtail/sessions/{}.json", self.pid))
    }

    /// Wait until `cond` holds (polling), up to `timeout`.
    pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        cond()
    }

    pub fn close_stdin(&mut self) {
        self.client.close_stdin();
    }

    /// Wait for exit within `timeout`; `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.client.wait_exit(timeout)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe {
            libc::kill(self.pid as i32, sig);
        }
    }
}

/// True when a `tmux` binary is available; prints a note otherwise.
pub fn have_tmux() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("note: tmux not installed; skipping the tmux part of this test");
    }
    ok
}
