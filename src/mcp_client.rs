//! A minimal MCP stdio client: the demo, the benchmarks and the tests drive
//! real servers with it. It spawns a server process the caller configured,
//! speaks newline-delimited JSON-RPC 2.0 to it (`initialize`, `tools/call`,
//! raw lines), and lets several requests be in flight at once (an `ask_peer`
//! that blocks while other calls go on).
//!
//! Invariants defended: every wait is bounded (a hung server is `Timeout`, a
//! dead one `Gone`, never a hang); a response is matched by its JSON-RPC id,
//! so responses that arrive out of order are stashed, not lost; every line
//! that is no JSON-RPC message is kept in [`McpClient::garbage`], so a caller
//! can prove the server's stdout stayed clean; the child is killed and reaped
//! when the client is dropped, on every path.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Protocol version sent in `initialize` (the one Claude Code sends).
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// One line the server printed: JSON, or the raw text when it was not JSON.
type Line = Result<Value, String>;

/// What became of one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The JSON-RPC response object.
    Response(Value),
    /// The process closed its stdout (exited) first.
    Gone,
    /// No answer within the timeout.
    Timeout,
    /// A JSON-RPC error with no `id` arrived while waiting (only from
    /// [`McpClient::answer`]; [`McpClient::response`] skips these).
    Orphan(Value),
}

/// The outcome of one `tools/call`: its JSON payload, or an `isError` text.
#[derive(Debug, Clone)]
pub enum ToolResult {
    Payload(Value),
    Error(String),
}

/// A running MCP stdio server and the client end of its pipes.
pub struct McpClient {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    stash: HashMap<String, Value>,
    next_id: u64,
    garbage: Vec<String>,
}

impl McpClient {
    /// Spawn `cmd` with stdin/stdout piped (the caller sets args, env, cwd and
    /// stderr) and read its stdout on a thread. `name` labels errors.
    pub fn spawn(name: &str, mut cmd: Command) -> Result<McpClient, String> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{name}: cannot start the server: {e}"))?;
        let stdout = child.stdout.take().ok_or("stdout not piped")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&buf);
                let line = serde_json::from_str::<Value>(text.trim_end_matches('\n'))
                    .map_err(|_| text.into_owned());
                if tx.send(line).is_err() {
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
            garbage: Vec::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server process (e.g. to `try_wait` it).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The id the next request gets (ids then count up); lets a caller keep
    /// its own raw-line ids apart from the client's.
    pub fn set_next_id(&mut self, id: u64) {
        self.next_id = id;
    }

    /// Lines that were not JSON, or JSON that is no JSON-RPC message, seen so far.
    pub fn garbage(&self) -> &[String] {
        &self.garbage
    }

    /// Write one raw line (a `\n` is added).
    pub fn send_line(&mut self, line: &str) -> Result<(), String> {
        self.send_bytes(line.as_bytes())
    }

    /// Write one raw line of any bytes, valid UTF-8 or not (a `\n` is added).
    pub fn send_bytes(&mut self, line: &[u8]) -> Result<(), String> {
        let name = &self.name;
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{name}: stdin already closed"))?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        stdin
            .write_all(&bytes)
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("{name}: the server stopped reading its stdin: {e}"))
    }

    /// Write one JSON message as a line.
    pub fn send(&mut self, msg: &Value) -> Result<(), String> {
        self.send_line(&msg.to_string())
    }

    /// Send a request without waiting; returns its id. `params` is left out
    /// when it is `null`.
    pub fn start(&mut self, method: &str, params: Value) -> Result<u64, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&message(Some(id), method, params))?;
        Ok(id)
    }

    /// Send a notification (`params` left out when `null`).
    pub fn notify(&mut self, method: &str, params: Value) -> Result<(), String> {
        self.send(&message(None, method, params))
    }

    /// Wait up to `timeout` for the response to request `id`: other responses
    /// are stashed, notifications and server requests skipped; an id-less
    /// error ends the wait as [`Answer::Orphan`].
    pub fn answer(&mut self, id: &Value, timeout: Duration) -> Answer {
        if let Some(v) = self.stash.remove(&id.to_string()) {
            return Answer::Response(v);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = self.absorb(line, Some(id)) {
                        return a;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Answer::Timeout,
                Err(RecvTimeoutError::Disconnected) => return Answer::Gone,
            }
        }
    }

    /// [`McpClient::answer`] that skips id-less errors (e.g. the answer to a
    /// raw garbage line): never [`Answer::Orphan`].
    pub fn response(&mut self, id: &Value, timeout: Duration) -> Answer {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answer(id, left) {
                Answer::Orphan(_) => continue,
                other => return other,
            }
        }
    }

    /// The response to request `id` within `timeout`, or an error naming it.
    pub fn wait(&mut self, id: u64, timeout: Duration) -> Result<Value, String> {
        let answer = self.response(&json!(id), timeout);
        let name = &self.name;
        match answer {
            Answer::Response(v) => Ok(v),
            Answer::Timeout => Err(format!(
                "{name}: no answer to request {id} within {timeout:?}"
            )),
            _ => Err(format!(
                "{name}: the server closed its stdout before answering request {id}"
            )),
        }
    }

    /// Whether the response to `id` has arrived (never blocks).
    pub fn ready(&mut self, id: u64) -> bool {
        while let Ok(line) = self.lines.try_recv() {
            self.absorb(line, None);
        }
        self.stash.contains_key(&id.to_string())
    }

    /// Responses that arrived and were never waited for (say a second answer
    /// to one request), once everything printed so far is read. Never blocks.
    pub fn unclaimed(&mut self) -> Vec<Value> {
        while let Ok(line) = self.lines.try_recv() {
            self.absorb(line, None);
        }
        self.stash.values().cloned().collect()
    }

    /// Sort one line: the response to `want` (or an orphan error) is
    /// returned, other responses stashed, non-protocol lines kept as garbage.
    fn absorb(&mut self, line: Line, want: Option<&Value>) -> Option<Answer> {
        let v = match line {
            Ok(v) if v.get("jsonrpc") == Some(&json!("2.0")) => v,
            Ok(v) => {
                self.garbage.push(v.to_string());
                return None;
            }
            Err(raw) => {
                self.garbage.push(raw);
                return None;
            }
        };
        if v.get("method").is_some() {
            return None;
        }
        let id = v.get("id").unwrap_or(&Value::Null);
        if want == Some(id) {
            return Some(Answer::Response(v));
        }
        if !id.is_null() {
            self.stash.insert(id.to_string(), v);
        } else if v.get("error").is_some() {
            return want.map(|_| Answer::Orphan(v));
        } else {
            self.garbage.push(v.to_string());
        }
        None
    }

    /// Send a request and wait for its response.
    pub fn request(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let id = self.start(method, params)?;
        self.wait(id, timeout)
    }

    /// `initialize` as `client_name`/`client_version`, then
    /// `notifications/initialized`. Returns the whole response, which must
    /// carry a `result`.
    pub fn initialize(
        &mut self,
        client_name: &str,
        client_version: &str,
        timeout: Duration,
    ) -> Result<Value, String> {
        let resp = self.request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": client_name, "version": client_version},
            }),
            timeout,
        )?;
        if resp.get("result").is_none() {
            return Err(format!("{}: initialize failed: {resp}", self.name));
        }
        self.notify("notifications/initialized", Value::Null)?;
        Ok(resp)
    }

    /// Start a `tools/call`; returns its request id.
    pub fn start_tool(&mut self, tool: &str, args: Value) -> Result<u64, String> {
        self.start("tools/call", json!({"name": tool, "arguments": args}))
    }

    /// Wait for a `tools/call` started with [`McpClient::start_tool`].
    pub fn finish_tool(&mut self, id: u64, timeout: Duration) -> Result<ToolResult, String> {
        let resp = self.wait(id, timeout)?;
        tool_result(&resp).map_err(|e| format!("{}: {e}", self.name))
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

    /// Close stdin (the server's cue to exit).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// The exit status within `timeout`; `None` while still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Close stdin and wait up to `timeout` for the exit.
    pub fn shutdown(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.close_stdin();
        self.wait_exit(timeout)
    }

    /// Kill and reap the server now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A JSON-RPC request (`id` given) or notification; `params` left out when null.
fn message(id: Option<u64>, method: &str, params: Value) -> Value {
    let mut msg = json!({"jsonrpc": "2.0"});
    if let Some(id) = id {
        msg["id"] = json!(id);
    }
    msg["method"] = json!(method);
    if !params.is_null() {
        msg["params"] = params;
    }
    msg
}

/// The text of a tool result's first content item ("" when there is none).
pub fn result_text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Turn a `tools/call` response into a [`ToolResult`]. A JSON-RPC error or a
/// payload that is not JSON is an `Err`.
pub fn tool_result(resp: &Value) -> Result<ToolResult, String> {
    let Some(result) = resp.get("result") else {
        return Err(format!("tools/call failed: {resp}"));
    };
    let text = result_text(result);
    if result.get("isError") == Some(&Value::Bool(true)) {
        return Ok(ToolResult::Error(text));
    }
    serde_json::from_str(&text)
        .map(ToolResult::Payload)
        .map_err(|e| format!("tool answer is not JSON ({e}): {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_result_shapes() {
        let ok = json!({"result": {"content": [{"type": "text", "text": "{\"ok\":true}"}]}});
        assert!(matches!(tool_result(&ok), Ok(ToolResult::Payload(v)) if v["ok"] == true));
        let err =
            json!({"result": {"content": [{"type": "text", "text": "boom"}], "isError": true}});
        assert!(matches!(tool_result(&err), Ok(ToolResult::Error(t)) if t == "boom"));
        let rpc = json!({"error": {"code": -32601, "message": "nope"}});
        assert!(tool_result(&rpc).unwrap_err().contains("nope"));
        let junk = json!({"result": {"content": [{"type": "text", "text": "not json"}]}});
        assert!(tool_result(&junk).is_err());
    }

    /// A scripted "server": reads one line, then prints junk, an id-less
    /// error, the answer to request 2, the answer to request 1, and exits.
    #[test]
    fn answers_are_matched_by_id_and_everything_else_is_accounted_for() {
        let script = r#"read l; echo junk; echo '{"id":7}';
            echo '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}';
            echo '{"jsonrpc":"2.0","method":"notifications/message","params":{}}';
            echo '{"jsonrpc":"2.0","id":2,"result":{"n":2}}';
            echo '{"jsonrpc":"2.0","id":1,"result":{"n":1}}'"#;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        let mut c = McpClient::spawn("fake", cmd).unwrap();
        let t = Duration::from_secs(30);
        assert_eq!(c.start("ping", Value::Null).unwrap(), 1);
        assert!(
            matches!(c.answer(&json!(1), t), Answer::Orphan(e) if e["error"]["code"] == -32700)
        );
        assert!(matches!(c.answer(&json!(1), t), Answer::Response(v) if v["result"]["n"] == 1));
        assert!(c.ready(2), "the early answer to 2 was stashed");
        assert_eq!(c.unclaimed().len(), 1);
        assert_eq!(c.wait(2, t).unwrap()["result"]["n"], 2);
        assert!(c.unclaimed().is_empty());
        assert_eq!(c.garbage(), ["junk\n", r#"{"id":7}"#]);
        assert!(matches!(c.response(&json!(3), t), Answer::Gone));
        assert!(c.wait(3, t).unwrap_err().contains("closed its stdout"));
        assert!(c.wait_exit(t).is_some_and(|st| st.success()));
    }

    #[test]
    fn messages_leave_out_null_params() {
        assert_eq!(
            message(Some(3), "ping", Value::Null).to_string(),
            r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#
        );
        assert_eq!(
            message(None, "n", json!({})).to_string(),
            r#"{"jsonrpc":"2.0","method":"n","params":{}}"#
        );
    }
}
