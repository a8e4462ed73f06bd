//! Test harness for the `oxtail` MCP server: spawn the built binary with a
//! private HOME, TMUX_TMPDIR and cwd and a cleared environment, and speak
//! newline-delimited JSON-RPC with it. Every wait has a generous hang guard.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

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

    /// Write a registry entry file for `pid` (raw JSON value).
    pub fn write_entry(&self, pid: u32, entry: &Value) {
        std::fs::create_dir_all(self.sessions_dir()).unwrap();
        let text = serde_json::to_string_pretty(entry).unwrap();
        std::fs::write(self.sessions_dir().join(format!("{pid}.json")), text).unwrap();
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

/// A registry entry value in the original's shape.
pub fn entry_json(
    pid: u32,
    client_type: &str,
    sid: Option<&str>,
    cwd: &Path,
    tmux_session: Option<&str>,
    transcript: Option<&Path>,
) -> Value {
    json!({
        "server_pid": pid,
        "started_at": 1_700_000_000,
        "client": {
            "type": client_type,
            "session_id": sid,
            "transcript_path": transcript.map(|t| t.to_string_lossy().into_owned()),
            "session_id_source": sid.map(|_| "self-register"),
            "cwd": cwd.to_string_lossy(),
        },
        "tmux_pane": null,
        "tmux_session": tmux_session,
        "state": null,
        "capabilities": {"mailbox": {"reply_to": true, "provenance": true, "push_budget": true}},
    })
}

/// A long-lived helper process: an alive pid for registry fixtures.
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

/// A pid that is certainly dead (an exited, reaped child).
pub fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// A running `oxtail` server.
pub struct Server {
    pub child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    next_id: i64,
    pub pid: u32,
    pub home: PathBuf,
}

impl Server {
    /// Spawn in `cwd` with only PATH, HOME, TMUX_TMPDIR and `env` set.
    pub fn spawn(sb: &Sandbox, cwd: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxtail"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", sb.home())
            .env("TMUX_TMPDIR", sb.tmux_tmpdir())
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn oxtail");
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
        Server {
            stdin: child.stdin.take(),
            child,
            rx,
            next_id: 100,
            pid,
            home: sb.home(),
        }
    }

    /// Send one raw line.
    pub fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Wait for the response with `id`, skipping notifications.
    pub fn response(&mut self, id: &Value) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) if v.get("id") == Some(id) => return v,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no response to id {id} within {TIMEOUT:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("server closed stdout before answering id {id}")
                }
            }
        }
    }

    /// Send a request and return the whole response object.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = json!(self.next_id);
        let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if !params.is_null() {
            msg["params"] = params;
        }
        self.send_raw(&msg.to_string());
        self.response(&id)
    }

    pub fn notify(&mut self, method: &str) {
        self.send_raw(&json!({"jsonrpc": "2.0", "method": method}).to_string());
    }

    /// `initialize` as `client_name` + `notifications/initialized`.
    pub fn initialize(&mut self, client_name: &str) -> Value {
        let r = self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": client_name, "version": "1.0"}}),
        );
        self.notify("notifications/initialized");
        r
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
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
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
        self.stdin.take();
    }

    /// Wait for exit within `timeout`; `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe {
            libc::kill(self.pid as i32, sig);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
