//! Helpers for `interop_node.rs`: a sandbox (private HOME, private tmux
//! server, a project with `.git`), an MCP stdio peer that can be either the
//! Node original or our binary, our installed hooks, and a normaliser that
//! makes two runs of one scenario comparable.
//!
//! Nothing here builds or downloads the original: the command comes from
//! `OXTAIL_NODE_ORIGINAL` (e.g. `node /tmp/oxtail-node/dist/server.js`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use oxtail::mcp_client::{McpClient, result_text};
use serde_json::{Map, Value, json};

/// Hang guard for one JSON-RPC response.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// The original's command line, or `None` (with a skip note) when unset.
pub fn node_original(test: &str) -> Option<Vec<String>> {
    let raw = std::env::var("OXTAIL_NODE_ORIGINAL").unwrap_or_default();
    let argv: Vec<String> = raw.split_whitespace().map(str::to_string).collect();
    if argv.is_empty() {
        eprintln!(
            "skip {test}: set OXTAIL_NODE_ORIGINAL to the built original's command \
             (e.g. `node /path/to/oxtail/dist/server.js`) to run the Node interop checks"
        );
        return None;
    }
    Some(argv)
}

/// Our binary's command line.
pub fn rust_cmd() -> Vec<String> {
    vec![env!("CARGO_BIN_EXE_oxtail").to_string()]
}

pub fn have_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A private world: `home/`, `tmux/` (TMUX_TMPDIR) and `proj/.git`. Its tmux
/// server, if any was started, is killed on drop.
pub struct Sandbox {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        // Alphanumeric names only, so Claude's transcript-dir mangling (every
        // non-alphanumeric → '-') and the original's ('/' → '-') agree.
        let dir = tempfile::Builder::new()
            .prefix("oxi")
            .rand_bytes(8)
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path().to_path_buf();
        for d in ["home", "tmux", "proj/.git", "other/.git"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join("tmux"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        Sandbox { _dir: dir, root }
    }

    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    pub fn proj(&self) -> PathBuf {
        self.root.join("proj")
    }

    pub fn other(&self) -> PathBuf {
        self.root.join("other")
    }

    pub fn oxtail(&self) -> PathBuf {
        self.home().join(".oxtail")
    }

    /// The base environment every child gets (nothing from the user's).
    pub fn base_env(&self) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), self.home().display().to_string()),
            (
                "TMUX_TMPDIR".into(),
                self.root.join("tmux").display().to_string(),
            ),
        ]
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(args)
            .env_clear()
            .envs(self.base_env())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Start detached tmux sessions `(name, cwd)`; returns name → pane id.
    pub fn tmux_sessions(&self, sessions: &[(&str, &Path)]) -> HashMap<String, String> {
        for (name, cwd) in sessions {
            self.tmux(&[
                "new-session",
                "-d",
                "-s",
                name,
                "-c",
                &cwd.display().to_string(),
            ]);
        }
        self.tmux(&["list-panes", "-a", "-F", "#{session_name}|#{pane_id}"])
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(s, p)| (s.to_string(), p.to_string()))
            .collect()
    }

    /// `oxtail install-hook` into this HOME.
    pub fn install_hooks(&self) {
        let out = Command::new(env!("CARGO_BIN_EXE_oxtail"))
            .arg("install-hook")
            .env_clear()
            .envs(self.base_env())
            .output()
            .unwrap();
        assert!(out.status.success(), "install-hook: {out:?}");
    }

    /// Run an installed hook with a compact (as Claude sends it) payload.
    pub fn run_hook(&self, hook: &str, payload: &Value) -> String {
        let mut child = Command::new("bash")
            .arg(self.oxtail().join("hooks").join(hook))
            .env_clear()
            .envs(self.base_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let text = serde_json::to_string(payload).unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        assert_eq!(out.status.code(), Some(0), "{hook}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// The PreToolUse hook's delivered context for `sid` ("" when nothing).
    pub fn pretooluse(&self, sid: &str) -> String {
        let out = self.run_hook(
            "pretooluse.sh",
            &json!({"session_id": sid, "hook_event_name": "PreToolUse", "tool_name": "Bash"}),
        );
        if out.is_empty() {
            return String::new();
        }
        let v: Value = serde_json::from_str(&out).unwrap();
        v["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self
            .root
            .join("tmux")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
        {
            let _ = Command::new("tmux")
                .arg("kill-server")
                .env_clear()
                .envs(self.base_env())
                .output();
        }
    }
}

/// How a peer identifies itself.
pub struct Who<'a> {
    /// `CLAUDE_CODE_SESSION_ID` (with `CLAUDECODE=1`, so the id is there
    /// from startup, before any handshake); `None`: an anonymous client.
    pub sid: Option<&'a str>,
    /// `TMUX_PANE` to bind to.
    pub pane: Option<&'a str>,
    pub cwd: &'a Path,
}

/// One MCP server over stdio (either implementation), driven through the
/// library's [`McpClient`]; every failure to answer panics.
pub struct Peer {
    client: McpClient,
    pub init: Value,
}

impl Peer {
    pub fn spawn(cmd: &[String], sb: &Sandbox, who: Who<'_>) -> Peer {
        Peer::spawn_env(cmd, sb, who, &[])
    }

    /// [`Peer::spawn`] with extra environment variables.
    pub fn spawn_env(cmd: &[String], sb: &Sandbox, who: Who<'_>, env: &[(&str, &str)]) -> Peer {
        let mut c = Command::new(&cmd[0]);
        c.args(&cmd[1..])
            .current_dir(who.cwd)
            .env_clear()
            .envs(sb.base_env())
            .stderr(Stdio::null())
            .envs(env.iter().copied());
        if let Some(sid) = who.sid {
            c.env("CLAUDECODE", "1").env("CLAUDE_CODE_SESSION_ID", sid);
        }
        if let Some(pane) = who.pane {
            c.env("TMUX_PANE", pane);
        }
        let mut client = McpClient::spawn(&cmd[0], c).unwrap();
        let name = if who.sid.is_some() {
            "claude-code"
        } else {
            "mystery"
        };
        let init = client
            .initialize(name, "1.0", RPC_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut p = Peer { client, init };
        // A round trip after the notification: identity refinement is done.
        p.call("ping", json!({}));
        p
    }

    pub fn pid(&self) -> u32 {
        self.client.pid()
    }

    /// Send a request without waiting; pair with [`Peer::wait`].
    pub fn send(&mut self, method: &str, params: Value) -> u64 {
        self.client.start(method, params).unwrap()
    }

    pub fn wait(&mut self, id: u64) -> Value {
        self.client
            .wait(id, RPC_TIMEOUT)
            .unwrap_or_else(|e| panic!("no response to request {id}: {e}"))
    }

    /// Whether the response to `id` has arrived (non-blocking).
    pub fn ready(&mut self, id: u64) -> bool {
        self.client.ready(id)
    }

    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        self.wait(id)
    }

    pub fn send_tool(&mut self, name: &str, args: Value) -> u64 {
        self.client.start_tool(name, args).unwrap()
    }

    /// A tool's payload: the parsed JSON text, or `{"isError": text}`.
    pub fn tool(&mut self, name: &str, args: Value) -> Value {
        let id = self.send_tool(name, args);
        let r = self.wait(id);
        tool_payload(&r)
    }

    pub fn kill(&mut self) {
        self.client.kill();
    }
}

/// Decode a `tools/call` response into its payload.
pub fn tool_payload(r: &Value) -> Value {
    let Some(res) = r.get("result") else {
        return json!({"rpcError": r["error"]});
    };
    let text = result_text(res);
    if res.get("isError") == Some(&Value::Bool(true)) {
        return json!({"isError": text});
    }
    serde_json::from_str(&text).unwrap_or_else(|_| json!({"unparsed": text}))
}

/// Makes one scenario's transcript comparable across implementations and
/// sandboxes: pids → names, 16-hex ids → `<idN>` in order of appearance,
/// clock fields → 0, the sandbox root → `<ROOT>`, and human-readable text
/// (`message`, `note`, `description`, prose `error` strings) → `<text>`,
/// keeping only an error's leading `code:`. Object key order is kept (it is part of the contract).
pub struct Normalizer {
    pub root: String,
    pub pids: Vec<(u32, String)>,
    ids: HashMap<String, String>,
}

impl Normalizer {
    pub fn new(root: &Path) -> Normalizer {
        Normalizer {
            root: root.display().to_string(),
            pids: Vec::new(),
            ids: HashMap::new(),
        }
    }

    pub fn pid(&mut self, pid: u32, name: &str) {
        self.pids.push((pid, name.to_string()));
    }

    pub fn norm(&mut self, v: &Value) -> Value {
        self.norm_at(None, v)
    }

    fn norm_at(&mut self, key: Option<&str>, v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, x) in m {
                    out.insert(k.clone(), self.norm_at(Some(k), x));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.norm_at(key, x)).collect()),
            Value::Number(n) => {
                if let Some(name) = n
                    .as_u64()
                    .and_then(|p| self.pids.iter().find(|(q, _)| u64::from(*q) == p))
                {
                    return json!(name.1);
                }
                match key {
                    Some("created_at" | "updated_at" | "started_at" | "enqueued_at") => json!(0),
                    _ => v.clone(),
                }
            }
            Value::String(s) => {
                let prose = matches!(key, Some("message" | "note" | "description"))
                    || (key == Some("error") && s.contains(' '));
                if prose {
                    // Keep a leading `code:` (e.g. `ambiguous-target:`), drop the words.
                    return match s.split_once(':') {
                        Some((code, _)) if key == Some("error") && !code.contains(' ') => {
                            json!(format!("<text {code}>"))
                        }
                        _ => json!("<text>"),
                    };
                }
                json!(self.norm_str(s))
            }
            _ => v.clone(),
        }
    }

    pub fn norm_str(&mut self, s: &str) -> String {
        let mut s = s.replace(&self.root, "<ROOT>");
        s = s.replace(&self.root.replace('/', "-"), "<MROOT>");
        for (pid, name) in &self.pids {
            s = replace_word(&s, &pid.to_string(), name);
        }
        // 16-hex ids (message ids, request ids).
        let mut out = String::new();
        let bytes: Vec<char> = s.chars().collect();
        let mut i = 0;
        while i < bytes.len() {
            let run = bytes[i..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || ('a'..='f').contains(c))
                .count();
            let bounded = (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
                && bytes
                    .get(i + run)
                    .is_none_or(|c| !c.is_ascii_alphanumeric());
            if run == 16 && bounded {
                let id: String = bytes[i..i + 16].iter().collect();
                let n = self.ids.len();
                out.push_str(self.ids.entry(id).or_insert_with(|| format!("<id{n}>")));
                i += 16;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }
}

fn replace_word(s: &str, word: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(word) {
        let before_ok = !rest[..at].ends_with(|c: char| c.is_ascii_alphanumeric());
        let after = &rest[at + word.len()..];
        let after_ok = !after.starts_with(|c: char| c.is_ascii_alphanumeric());
        out.push_str(&rest[..at]);
        out.push_str(if before_ok && after_ok { with } else { word });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The bodies in a PreToolUse context (each follows its `--- msg N ... ---` header).
pub fn hook_bodies(ctx: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = ctx.lines().peekable();
    while let Some(l) = lines.next() {
        if l.starts_with("--- msg ")
            && let Some(body) = lines.next()
        {
            out.push(body.to_string());
        }
    }
    out
}

/// The `body` of every message in a `read_my_messages` payload.
pub fn bodies(read: &Value) -> Vec<String> {
    read["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("not a read_my_messages payload: {read}"))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}
