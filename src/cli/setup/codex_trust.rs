//! Codex hook trust. Codex (0.169) runs a non-managed hook only after the
//! user trusted that exact definition; trust lives in `config.toml` as
//! `[hooks.state."<hooks.json path>:<event>:<group>:<handler>"] trusted_hash =
//! "sha256:…"`. We never compute that hash: we ask Codex's own app-server
//! (`codex app-server`, JSON-RPC over stdio) with `hooks/list`, which reports
//! each hook's `key`, `currentHash` and `trustStatus`, and write trust back with
//! `config/batchWrite` — the path Codex's `/hooks` screen takes.
//!
//! Invariants defended:
//! - only oxtail's own hooks are ever trusted: entries from our hooks.json
//!   whose command is exactly one of oxtail's command strings;
//! - success is claimed only after a second `hooks/list` shows them trusted;
//! - the app-server child is always ended, and every wait is bounded.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::cli::hook_assets::command_for;

use super::codex_hooks::managed;

/// Bound on the whole app-server conversation.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One of oxtail's hooks as Codex sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HookTrust {
    pub key: String,
    pub event: String,
    pub current_hash: String,
    /// `trusted`, `untrusted`, `modified`, … as Codex reports it.
    pub status: String,
}

/// The `codex` to ask: `$OXTAIL_CODEX_BIN`, else `codex` on `PATH`.
pub use crate::wake::codex_queue::find_codex;

struct AppServer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    deadline: Instant,
    next_id: u64,
}

impl AppServer {
    fn start(codex: &Path, codex_home: &Path) -> Result<AppServer, String> {
        let mut child = Command::new(codex)
            .arg("app-server")
            .env("CODEX_HOME", codex_home)
            .current_dir(codex_home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start `{} app-server`: {e}", super::display(codex)))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = AppServer {
            child,
            stdin,
            lines,
            deadline: Instant::now() + TIMEOUT,
            next_id: 1,
        };
        server.call(
            "initialize",
            json!({"clientInfo": {"name": "oxtail-setup", "version": env!("CARGO_PKG_VERSION")}}),
        )?;
        server.send(&json!({"jsonrpc": "2.0", "method": "initialized"}))?;
        Ok(server)
    }

    fn send(&mut self, msg: &Value) -> Result<(), String> {
        writeln!(self.stdin, "{msg}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("codex app-server closed its input: {e}"))
    }

    /// Send a request and wait for its response (notifications are skipped).
    fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("codex app-server did not answer {method} in time"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("codex app-server exited before answering {method}"));
                }
            };
            let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if msg.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if let Some(err) = msg.get("error") {
                return Err(format!("codex app-server refused {method}: {err}"));
            }
            return Ok(msg.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    /// oxtail's hooks from `hooks_json`, as `hooks/list` reports them.
    fn oxtail_hooks(&mut self, hooks_json: &Path) -> Result<Vec<HookTrust>, String> {
        let result = self.call("hooks/list", json!({}))?;
        let same_file = |p: &str| {
            Path::new(p) == hooks_json
                || (Path::new(p).canonicalize().ok() == hooks_json.canonicalize().ok()
                    && Path::new(p).exists())
        };
        let ours: Vec<String> = managed().into_iter().map(|(_, s)| command_for(s)).collect();
        let mut out = Vec::new();
        for group in result["data"].as_array().into_iter().flatten() {
            for h in group["hooks"].as_array().into_iter().flatten() {
                let source = h["sourcePath"].as_str().unwrap_or("");
                let command = h["command"].as_str().unwrap_or("");
                if !same_file(source) || !ours.iter().any(|c| c == command) {
                    continue;
                }
                let (Some(key), Some(hash)) = (h["key"].as_str(), h["currentHash"].as_str()) else {
                    continue;
                };
                if out.iter().any(|t: &HookTrust| t.key == key) {
                    continue;
                }
                out.push(HookTrust {
                    key: key.to_string(),
                    event: event_name(h["eventName"].as_str().unwrap_or("")),
                    current_hash: hash.to_string(),
                    status: h["trustStatus"].as_str().unwrap_or("unknown").to_string(),
                });
            }
        }
        Ok(out)
    }
}

/// `preToolUse` → `PreToolUse` (the app-server's spelling → hooks.json's).
fn event_name(camel: &str) -> String {
    let mut c = camel.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How Codex currently sees oxtail's hooks.
pub fn status(
    codex: &Path,
    codex_home: &Path,
    hooks_json: &Path,
) -> Result<Vec<HookTrust>, String> {
    AppServer::start(codex, codex_home)?.oxtail_hooks(hooks_json)
}

/// Trust every oxtail hook Codex does not trust yet; `before_write` runs just
/// before Codex rewrites `config.toml` (setup backs the file up there).
/// Returns the hooks that were newly trusted (empty = all were already).
pub fn trust(
    codex: &Path,
    codex_home: &Path,
    hooks_json: &Path,
    before_write: &dyn Fn() -> Result<(), String>,
) -> Result<Vec<HookTrust>, String> {
    let mut server = AppServer::start(codex, codex_home)?;
    let before = server.oxtail_hooks(hooks_json)?;
    if before.is_empty() {
        return Err(format!(
            "Codex does not list oxtail's hooks from {}",
            super::display(hooks_json)
        ));
    }
    let pending: Vec<HookTrust> = before
        .into_iter()
        .filter(|h| h.status != "trusted")
        .collect();
    if pending.is_empty() {
        return Ok(pending);
    }
    before_write()?;
    let mut state = Map::new();
    for h in &pending {
        state.insert(h.key.clone(), json!({"trusted_hash": h.current_hash}));
    }
    server.call(
        "config/batchWrite",
        json!({"edits": [{"keyPath": "hooks.state", "value": state, "mergeStrategy": "upsert"}]}),
    )?;
    let after = server.oxtail_hooks(hooks_json)?;
    let still: Vec<&str> = after
        .iter()
        .filter(|h| h.status != "trusted")
        .map(|h| h.event.as_str())
        .collect();
    if !still.is_empty() {
        return Err(format!(
            "Codex still does not trust oxtail's {} hook(s) after the write",
            still.join(", ")
        ));
    }
    Ok(pending)
}
