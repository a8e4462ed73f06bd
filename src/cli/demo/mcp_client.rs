//! A tiny MCP client over stdio for `oxtail demo`: spawn a server process,
//! speak newline-delimited JSON-RPC 2.0 to it (`initialize`, `tools/call`),
//! and let several requests be in flight at once (an `ask_peer` that blocks
//! while other calls go on).
//!
//! Invariants defended: every wait is bounded (a hung or dead server becomes an
//! error naming the request, never a hang); a response is matched by its
//! JSON-RPC id, so responses that arrive out of order are stashed, not lost;
//! the child is killed and reaped when the client is dropped, on every path.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Protocol version sent in `initialize` (the one Claude Code sends).
const PROTOCOL_VERSION: &str = "2025-06-18";

/// A running MCP stdio server and the client end of its pipes.
pub struct McpClient {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Value>,
    stash: HashMap<u64, Value>,
    next_id: u64,
}

/// The outcome of one `tools/call`: its JSON payload, or an `isError` text.
#[derive(Debug, Clone)]
pub enum ToolResult {
    Payload(Value),
    Error(String),
}

impl McpClient {
    /// Spawn `cmd` (stdin/stdout piped; the caller sets env, cwd and stderr)
    /// and read its stdout on a thread. `name` labels errors.
    pub fn spawn(name: &str, mut cmd: Command) -> Result<McpClient, String> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{name}: cannot start the server: {e}"))?;
        let stdout = child.stdout.take().ok_or("stdout not piped")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Non-JSON lines are not protocol; ignore them.
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Ok(McpClient {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines: rx,
            stash: HashMap::new(),
            next_id: 1,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, msg: &Value) -> Result<(), String> {
        let name = &self.name;
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{name}: stdin already closed"))?;
        let mut line = msg.to_string();
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("{name}: the server stopped reading its stdin: {e}"))
    }

    /// Send a request without waiting; returns its id.
    pub fn start(&mut self, method: &str, params: Value) -> Result<u64, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        Ok(id)
    }

    pub fn notify(&mut self, method: &str, params: Value) -> Result<(), String> {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
    }

    /// Wait up to `timeout` for the response to request `id` (other responses
    /// are stashed; notifications and server requests are skipped).
    pub fn wait(&mut self, id: u64, timeout: Duration) -> Result<Value, String> {
        if let Some(v) = self.stash.remove(&id) {
            return Ok(v);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v.get("method").is_some() => continue,
                Ok(v) => match v.get("id").and_then(Value::as_u64) {
                    Some(got) if got == id => return Ok(v),
                    Some(other) => {
                        self.stash.insert(other, v);
                    }
                    None => {}
                },
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no answer to request {id} within {timeout:?}",
                        self.name
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "{}: the server closed its stdout before answering request {id}",
                        self.name
                    ));
                }
            }
        }
    }

    /// `initialize` as client `client_name`, then `notifications/initialized`.
    /// Returns the `result` object.
    pub fn initialize(&mut self, client_name: &str, timeout: Duration) -> Result<Value, String> {
        let id = self.start(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": client_name, "version": env!("CARGO_PKG_VERSION")},
            }),
        )?;
        let resp = self.wait(id, timeout)?;
        let result = resp
            .get("result")
            .cloned()
            .ok_or_else(|| format!("{}: initialize failed: {resp}", self.name))?;
        self.notify("notifications/initialized", json!({}))?;
        Ok(result)
    }

    /// Start a `tools/call`; returns its request id.
    pub fn start_tool(&mut self, tool: &str, args: Value) -> Result<u64, String> {
        self.start("tools/call", json!({"name": tool, "arguments": args}))
    }

    /// Wait for a `tools/call` started with [`McpClient::start_tool`].
    pub fn finish_tool(&mut self, id: u64, timeout: Duration) -> Result<ToolResult, String> {
        let resp = self.wait(id, timeout)?;
        tool_result(&self.name, &resp)
    }

    /// Call a tool and wait for its result.
    pub fn call(
        &mut self,
        tool: &str,
        args: Value,
        timeout: Duration,
    ) -> Result<ToolResult, String> {
        let id = self.start_tool(tool, args)?;
        self.finish_tool(id, timeout)
    }

    /// Close stdin (the server's cue to exit) and wait up to `timeout`.
    pub fn shutdown(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.stdin.take();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Turn a `tools/call` response into a [`ToolResult`]. A JSON-RPC error or a
/// payload that is not JSON is an `Err`.
fn tool_result(name: &str, resp: &Value) -> Result<ToolResult, String> {
    let Some(result) = resp.get("result") else {
        return Err(format!("{name}: tools/call failed: {resp}"));
    };
    let text = result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if result.get("isError") == Some(&Value::Bool(true)) {
        return Ok(ToolResult::Error(text));
    }
    serde_json::from_str(&text)
        .map(ToolResult::Payload)
        .map_err(|e| format!("{name}: tool answer is not JSON ({e}): {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_result_shapes() {
        let ok = json!({"result": {"content": [{"type": "text", "text": "{\"ok\":true}"}]}});
        assert!(matches!(tool_result("a", &ok), Ok(ToolResult::Payload(v)) if v["ok"] == true));
        let err =
            json!({"result": {"content": [{"type": "text", "text": "boom"}], "isError": true}});
        assert!(matches!(tool_result("a", &err), Ok(ToolResult::Error(t)) if t == "boom"));
        let rpc = json!({"error": {"code": -32601, "message": "nope"}});
        assert!(tool_result("a", &rpc).unwrap_err().contains("nope"));
        let junk = json!({"result": {"content": [{"type": "text", "text": "not json"}]}});
        assert!(tool_result("a", &junk).is_err());
    }
}
