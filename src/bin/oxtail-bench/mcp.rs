//! A minimal MCP stdio client that drives real server processes — ours and
//! the `--other-cmd` one — the same way: spawned in a private sandbox (temp
//! HOME, private TMUX_TMPDIR, no inherited tmux or session env, wakes off),
//! JSON-RPC lines on stdin/stdout, tool results parsed from their text
//! content. Nothing here ever touches the real `~/.oxtail` or tmux server.
//!
//! Deliberately not `oxtail::mcp_client`: that client reads stdout on a
//! helper thread and hands lines over a channel, which adds a thread wakeup
//! to every call this module times (the stdio `ping` floor is ~50 µs here).
//! This one reads the pipe on the calling thread, with `poll(2)` as the hang
//! guard.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Ctx;
use super::scratch::TempRoot;

/// How long a reply may take before the bench gives up on a server (a hang
/// guard, not a measurement).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// One implementation under test: a label for the table and how to start it.
pub struct Impl {
    pub label: &'static str,
    argv: Vec<String>,
}

impl Impl {
    /// A fresh command starting this implementation's server.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..]);
        c
    }
}

/// Ours (the `oxtail` binary next to this executable), then `--other-cmd`
/// when given. A command without shell metacharacters is split on
/// whitespace and run directly; otherwise it runs as `sh -c 'exec CMD'`.
pub fn impls(ctx: &Ctx) -> Vec<Impl> {
    let mut v = vec![Impl {
        label: "ours",
        argv: vec![ctx.exe.with_file_name("oxtail").to_string_lossy().into()],
    }];
    if let Some(cmd) = &ctx.other_cmd {
        let argv = if cmd.contains(|c: char| "'\"$`\\|&;<>(){}*?~".contains(c)) {
            vec!["sh".into(), "-c".into(), format!("exec {cmd}")]
        } else {
            cmd.split_whitespace().map(String::from).collect()
        };
        if !argv.is_empty() {
            v.push(Impl {
                label: "other",
                argv,
            });
        }
    }
    v
}

/// A private world under the pass's scratch directory: `home/`, `tmux/`,
/// `project/.git`; removed on drop.
pub struct Sandbox(TempRoot);

impl Sandbox {
    pub fn new(tag: &str) -> Sandbox {
        let root = TempRoot::new(tag);
        for d in ["home", "tmux", "project/.git"] {
            std::fs::create_dir_all(root.path().join(d)).expect("sandbox dir");
        }
        Sandbox(root)
    }
    pub fn root(&self) -> &Path {
        self.0.path()
    }
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }
    pub fn project(&self) -> PathBuf {
        self.root().join("project")
    }
    /// The sandbox's store, as every implementation under test sees it.
    pub fn layout(&self) -> oxtail::store::paths::Layout {
        oxtail::store::paths::Layout::at(self.home().join(".oxtail"))
    }
}

/// A session UUID (lowercase, 36 chars) unique to `(tag, index)`.
pub fn session_id(tag: u32, index: usize) -> String {
    format!("{tag:08x}-0000-4000-8000-{index:012x}")
}

/// A running server and its pipes.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
    next_id: i64,
}

impl Server {
    /// Starts `imp` in `sb` with cwd `cwd`: HOME and TMUX_TMPDIR private, no
    /// tmux/session env inherited, wakes off, `CLAUDECODE=1` when `claude`.
    pub fn spawn(imp: &Impl, sb: &Sandbox, cwd: &Path, claude: bool) -> Server {
        let mut cmd = imp.command();
        cmd.current_dir(cwd)
            .env("HOME", sb.home())
            .env("TMUX_TMPDIR", sb.root().join("tmux"))
            .env("OXTAIL_ASK_PEER_WAKE_STRATEGY", "off")
            .env("OXTAIL_AUTOWAKE", "off");
        for k in [
            "TMUX",
            "TMUX_PANE",
            "CLAUDECODE",
            "CLAUDE_CODE_SESSION_ID",
            "CLAUDE_CODE_ENTRYPOINT",
            "CODEX_THREAD_ID",
            "CODEX_SANDBOX",
            "MCP_TRACE_FILE",
        ] {
            cmd.env_remove(k);
        }
        if claude {
            cmd.env("CLAUDECODE", "1");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", imp.argv.join(" ")));
        let stdin = child.stdin.take().expect("stdin");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Server {
            child,
            stdin: Some(stdin),
            out,
            next_id: 10,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, v: &Value) {
        let mut line = v.to_string();
        line.push('\n');
        let stdin = self.stdin.as_mut().expect("server stdin open");
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to server");
    }

    /// Waits (at most [`REPLY_TIMEOUT`]) until the pipe has data or EOF.
    fn readable(&mut self) -> bool {
        if !self.out.buffer().is_empty() {
            return true;
        }
        let mut p = libc::pollfd {
            fd: self.out.get_ref().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = REPLY_TIMEOUT.as_millis() as libc::c_int;
        // SAFETY: one valid pollfd, count 1.
        unsafe { libc::poll(&mut p, 1, ms) > 0 }
    }

    fn wait_id(&mut self, id: i64) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(self.readable(), "server {} silent for 60 s", self.pid());
            if self.out.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("server {} closed stdout", self.pid());
            }
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v.get("id") == Some(&json!(id))
            {
                return v;
            }
        }
    }

    /// One request; returns the whole response object.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}));
        self.wait_id(id)
    }

    /// initialize → notifications/initialized → tools/list, as `client`.
    pub fn handshake(&mut self, client: &str) {
        let init = self.request(
            "initialize",
            json!({"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":client,"version":"0"}}),
        );
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        self.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        let tools = self.request("tools/list", json!({}));
        assert!(tools["result"]["tools"].is_array(), "tools/list: {tools}");
    }

    /// Calls a tool and parses its JSON text result; an `isError` result or a
    /// non-JSON text comes back as `{"isError": true, "text": ...}`.
    pub fn call(&mut self, tool: &str, args: Value) -> Value {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        let text = r["result"]["content"][0]["text"].as_str().unwrap_or("");
        match serde_json::from_str::<Value>(text) {
            Ok(v) if r["result"]["isError"] != true => v,
            _ => json!({"isError": true, "text": text, "response": r}),
        }
    }

    /// Handshake as Claude Code, then `claim_session(sid)`.
    pub fn start_claimed(imp: &Impl, sb: &Sandbox, sid: &str) -> Server {
        let mut s = Server::spawn(imp, sb, &sb.project(), true);
        s.handshake("claude-code");
        let r = s.call("claim_session", json!({"session_id": sid}));
        assert_eq!(r["ok"], true, "{} claim_session: {r}", imp.label);
        s
    }

    /// Closes stdin and waits (5 s) for a clean exit, then kills.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident set size of `pid` in KiB (`/proc`, else `ps`).
pub fn rss_kib(pid: u32) -> Option<f64> {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
        return line.split_whitespace().nth(1)?.parse().ok();
    }
    let out = Command::new("ps")
        .args(["-o", "rss=", "-p", &pid.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// CPU time `pid` has used so far, in nanoseconds: the sum over its live
/// threads of `/proc/<pid>/task/*/schedstat` (Linux; `None` elsewhere). A
/// figure that load on the machine inflates far less than wall time.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for t in tasks.flatten() {
        let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        total += s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

/// Wait (at most 10 s) until the servers `pids` are idle: less than 1 ms of
/// CPU among them over 300 ms. A server's start-up work (tmux and process
/// tree look-ups, which grow with the processes on the machine) would
/// otherwise run under the first figure taken.
pub fn settle(pids: &[u32]) {
    let total = || pids.iter().filter_map(|&p| cpu_ns(p)).sum::<u64>();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = total();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        let now = total();
        if now.saturating_sub(last) < 1_000_000 {
            return;
        }
        last = now;
    }
}
