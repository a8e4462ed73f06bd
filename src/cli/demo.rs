//! `oxtail demo`: two real oxtail servers, "alice" and "bob", in a throwaway
//! HOME and project, play a scripted exchange through the real MCP tools and
//! the real bash hooks, and print a timed transcript.
//!
//! The script: install the hooks (the `install-hook` code path) into the
//! temporary HOME; start two servers (this binary, no argument); both claim a
//! session id; alice lists the project's sessions; alice sends bob a message
//! that bob's PreToolUse hook delivers into his context; alice `ask_peer`s bob
//! and blocks while bob reads the question and answers it with
//! `reply_to_message`; bob's note reaches alice through her Stop hook; both
//! mailboxes end empty; both servers exit on stdin EOF.
//!
//! Invariants defended: every step checks what it shows (a wrong answer fails
//! the demo with a non-zero exit and says which step); nothing outside the
//! temporary directory is touched (private HOME, TMUX_TMPDIR, cleared env, wake
//! switched off); the servers and the directory are gone when `run` returns,
//! whatever happened.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::store::paths::Layout;

pub mod sandbox;

use crate::mcp_client::{McpClient, ToolResult};
use sandbox::Sandbox;

/// The two agents' session ids (fixed, so the transcript is stable).
pub const ALICE_SID: &str = "a11ce000-0000-4000-8000-00000000a11c";
pub const BOB_SID: &str = "b0b00000-0000-4000-8000-000000000b0b";

/// Hang guard for one server answer (a loaded machine may be slow).
const ANSWER: Duration = Duration::from_secs(20);
/// Hang guard for one hook run.
const HOOK: Duration = Duration::from_secs(20);

#[derive(clap::Args, Debug, Default)]
pub struct DemoArgs {}

pub fn run(_args: DemoArgs) -> ExitCode {
    let t = Transcript::new();
    let sandbox = match Sandbox::create() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("oxtail demo: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    let root = sandbox.root().display().to_string();
    println!("oxtail demo — two agents, alice and bob, talking through oxtail");
    println!("(everything happens in {root}; your HOME and tmux are not touched)\n");
    let mut demo = Demo {
        t,
        sb: sandbox,
        alice: None,
        bob: None,
        step: "start",
    };
    let outcome = demo.script();
    let elapsed = demo.t.start.elapsed();
    if let Err(e) = &outcome {
        eprintln!("\noxtail demo: FAILED at step \"{}\": {e}", demo.step);
        demo.print_server_logs();
    }
    // Servers first (they hold files in the sandbox), then the directory.
    drop(demo.alice.take());
    drop(demo.bob.take());
    drop(demo);
    match outcome {
        Ok(()) => {
            println!(
                "\ndemo passed in {:.2} s; removed {root}",
                elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(_) => ExitCode::FAILURE,
    }
}

/// Prints `[  12.3 ms] who   text` lines, timed from the start.
struct Transcript {
    start: Instant,
}

impl Transcript {
    fn new() -> Transcript {
        Transcript {
            start: Instant::now(),
        }
    }

    fn line(&self, who: &str, text: &str) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        println!("[{ms:>7.1} ms] {who:<13} {text}");
    }

    /// A block of text shown indented under the previous line.
    fn block(&self, text: &str) {
        for l in text.lines() {
            println!("{:>27}{l}", "");
        }
    }
}

/// One agent: its server and its session id.
struct Agent {
    name: &'static str,
    sid: &'static str,
    client: McpClient,
}

impl Agent {
    /// Call a tool; an `isError` result or an `ok:false` payload is an error.
    fn call(&mut self, tool: &str, args: Value) -> Result<Value, String> {
        let r = self.client.call(tool, args, ANSWER)?;
        ok_payload(self.name, tool, r)
    }
}

fn ok_payload(who: &str, tool: &str, r: ToolResult) -> Result<Value, String> {
    match r {
        // Domain failures are `ok:false` payloads; list tools carry no `ok`.
        ToolResult::Payload(v) if v["ok"] != false => Ok(v),
        ToolResult::Payload(v) => Err(format!("{who}: {tool} answered {v}")),
        ToolResult::Error(e) => Err(format!("{who}: {tool} failed: {e}")),
    }
}

struct Demo {
    t: Transcript,
    sb: Sandbox,
    alice: Option<Agent>,
    bob: Option<Agent>,
    step: &'static str,
}

impl Demo {
    fn alice(&mut self) -> &mut Agent {
        self.alice.as_mut().expect("alice started")
    }

    fn bob(&mut self) -> &mut Agent {
        self.bob.as_mut().expect("bob started")
    }

    fn layout(&self) -> Layout {
        Layout::at(self.sb.home().join(".oxtail"))
    }

    fn script(&mut self) -> Result<(), String> {
        self.step = "install the hooks";
        self.install_hooks()?;
        self.step = "start the servers";
        self.start_servers()?;
        self.step = "claim_session";
        for first in [true, false] {
            let agent = if first { self.alice() } else { self.bob() };
            let (name, sid) = (agent.name, agent.sid);
            let v = agent.call("claim_session", json!({"session_id": sid}))?;
            expect(v["session_id"] == sid, || {
                format!("claimed {}", v["session_id"])
            })?;
            self.t.line(name, &format!("claim_session(\"{sid}\") → ok"));
        }
        self.step = "list_project_sessions";
        self.list_sessions()?;
        self.step = "send_message + PreToolUse hook";
        self.send_and_pretooluse()?;
        self.step = "ask_peer + reply_to_message";
        self.ask_and_reply()?;
        self.step = "Stop hook delivery";
        self.stop_hook()?;
        self.step = "mailboxes drained";
        self.nothing_left()?;
        self.step = "shutdown";
        self.shutdown()
    }

    fn install_hooks(&mut self) -> Result<(), String> {
        let home = self.sb.home();
        crate::cli::install_hook::install_at(&home, SystemTime::now())
            .map_err(|e| format!("install-hook: {e}"))?;
        let n = crate::cli::hook_assets::HOOK_FILES.len();
        self.t.line(
            "setup",
            &format!(
                "install-hook → {n} scripts in $HOME/.oxtail/hooks, registered in $HOME/.claude/settings.json"
            ),
        );
        Ok(())
    }

    fn start_servers(&mut self) -> Result<(), String> {
        let panes = match self.sb.start_tmux(&["alice", "bob"]) {
            Ok(p) => {
                self.t.line(
                    "setup",
                    &format!(
                        "private tmux server: session alice (pane {}), session bob (pane {})",
                        p[0], p[1]
                    ),
                );
                p.into_iter().map(Some).collect()
            }
            Err(e) => {
                self.t.line(
                    "setup",
                    &format!("no tmux ({e}): list_project_sessions will show no rows"),
                );
                vec![None, None]
            }
        };
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        for (i, (name, sid)) in [("alice", ALICE_SID), ("bob", BOB_SID)]
            .into_iter()
            .enumerate()
        {
            let mut cmd = self.sb.command(&exe);
            // Wake types into terminals; the demo's agents have none.
            cmd.env("OXTAIL_ASK_PEER_WAKE_STRATEGY", "off")
                .env("OXTAIL_AUTOWAKE", "off");
            if let Some(pane) = &panes[i] {
                cmd.env("TMUX_PANE", pane);
            }
            let log = std::fs::File::create(self.log_path(name))
                .map_err(|e| format!("cannot create the {name} log: {e}"))?;
            cmd.stderr(Stdio::from(log));
            let mut client = McpClient::spawn(name, cmd)?;
            let init = client.initialize("claude-code", env!("CARGO_PKG_VERSION"), ANSWER)?;
            let init = &init["result"];
            let server = &init["serverInfo"];
            self.t.line(
                name,
                &format!(
                    "started `oxtail` (pid {}), initialize → {} {}, protocol {}",
                    client.pid(),
                    server["name"].as_str().unwrap_or("?"),
                    server["version"].as_str().unwrap_or("?"),
                    init["protocolVersion"].as_str().unwrap_or("?")
                ),
            );
            let agent = Agent { name, sid, client };
            if name == "alice" {
                self.alice = Some(agent);
            } else {
                self.bob = Some(agent);
            }
        }
        Ok(())
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.sb.root().join(format!("{name}.stderr"))
    }

    fn list_sessions(&mut self) -> Result<(), String> {
        let root = self.sb.project().display().to_string();
        let v = self
            .alice()
            .call("list_project_sessions", json!({"project_root": root}))?;
        let rows = v["sessions"].as_array().cloned().unwrap_or_default();
        let shown: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{} ({}, {})",
                    r["name"].as_str().unwrap_or("?"),
                    r["client_type"].as_str().unwrap_or("-"),
                    r["client_session_id"].as_str().unwrap_or("-")
                )
            })
            .collect();
        let text = if shown.is_empty() {
            format!(
                "list_project_sessions → no rows (tmux: {})",
                v["error"].as_str().unwrap_or("no sessions")
            )
        } else {
            format!("list_project_sessions → {}", shown.join(", "))
        };
        self.t.line("alice", &text);
        if self.sb_has_tmux(&v) {
            for sid in [ALICE_SID, BOB_SID] {
                expect(rows.iter().any(|r| r["client_session_id"] == sid), || {
                    format!("{sid} missing from {v}")
                })?;
            }
        }
        Ok(())
    }

    fn sb_has_tmux(&self, v: &Value) -> bool {
        v["error"].is_null() && v["sessions"].as_array().is_some_and(|a| !a.is_empty())
    }

    fn send_and_pretooluse(&mut self) -> Result<(), String> {
        let body = "Heads-up: I'm refactoring src/store/lock.rs for the next 10 minutes; please keep out of it.";
        let v = self
            .alice()
            .call("send_message", json!({"target": BOB_SID, "body": body}))?;
        let id = v["message_id"].as_str().unwrap_or("?").to_string();
        self.t.line(
            "alice → bob",
            &format!("send_message(\"{}\") → ok message_id={id}", short(body)),
        );

        // Bob is about to run a tool: Claude Code runs his PreToolUse hook.
        let input = json!({
            "session_id": BOB_SID,
            "transcript_path": self.sb.home().join(".claude/projects/demo/bob.jsonl"),
            "cwd": self.sb.project(),
            "permission_mode": "default",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "cargo build"},
            "tool_use_id": "toolu_demo_1",
        });
        let (out, took) = self.hook("pretooluse.sh", &input)?;
        let parsed: Value = serde_json::from_str(&out)
            .map_err(|e| format!("PreToolUse printed no JSON ({e}): {out:?}"))?;
        let ctx = parsed["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        expect(
            parsed["hookSpecificOutput"]["hookEventName"] == "PreToolUse",
            || format!("hookEventName in {out}"),
        )?;
        expect(ctx.contains(body) && ctx.contains(&id), || {
            format!("the message is not in additionalContext: {ctx}")
        })?;
        self.t.line(
            "bob",
            &format!(
                "PreToolUse hook before Bash → delivered 1 message via additionalContext ({}):",
                ms(took)
            ),
        );
        self.t.block(&ctx);

        // Once delivered it is gone: the next tool call's hook is silent.
        let (out, took) = self.hook("pretooluse.sh", &input)?;
        expect(out.is_empty(), || {
            format!("second PreToolUse printed {out}")
        })?;
        self.t.line(
            "bob",
            &format!(
                "PreToolUse hook again → nothing queued, no output ({})",
                ms(took)
            ),
        );
        Ok(())
    }

    fn ask_and_reply(&mut self) -> Result<(), String> {
        let question = "Which port does the dev server listen on?";
        let asked = Instant::now();
        let ask = self.alice().client.start_tool(
            "ask_peer",
            json!({"target": BOB_SID, "body": question, "timeout_ms": 30000}),
        )?;
        self.t.line(
            "alice → bob",
            &format!("ask_peer(\"{question}\") … in flight, alice blocks"),
        );

        // Bob reads his inbox (as his agent would when the question arrives).
        let deadline = Instant::now() + ANSWER;
        let q = loop {
            let v = self.bob().call("read_my_messages", json!({}))?;
            if let Some(m) = v["messages"].as_array().and_then(|a| a.first()) {
                break m.clone();
            }
            if Instant::now() > deadline {
                return Err("the question never reached bob's mailbox".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        expect(
            q["body"] == question && q["from_session_id"] == ALICE_SID,
            || format!("bob read {q}"),
        )?;
        let qid = q["id"].as_str().unwrap_or("?").to_string();
        self.t.line(
            "bob",
            &format!(
                "read_my_messages → 1 message id={qid} request_id={}",
                q["request_id"].as_str().unwrap_or("-")
            ),
        );

        let answer = "8080 (see .env.example)";
        let r = self.bob().call(
            "reply_to_message",
            json!({"message_id": qid, "body": answer}),
        )?;
        expect(r["correlation"] == "correlated", || format!("reply: {r}"))?;
        self.t.line(
            "bob → alice",
            &format!("reply_to_message({qid}, \"{answer}\") → ok correlation=correlated"),
        );

        let res = self.alice().client.finish_tool(ask, ANSWER)?;
        let v = ok_payload("alice", "ask_peer", res)?;
        let took = asked.elapsed();
        let reply = &v["reply"];
        expect(
            v["correlation"] == "correlated"
                && reply["body"] == answer
                && reply["reply_to"] == q["request_id"]
                && v["timed_out"] == false,
            || format!("ask_peer answered {v}"),
        )?;
        self.t.line(
            "alice",
            &format!(
                "ask_peer returned after {} → reply \"{answer}\" (correlated by request_id)",
                ms(took)
            ),
        );
        Ok(())
    }

    fn stop_hook(&mut self) -> Result<(), String> {
        let body = "Reviewed your lock.rs change: two nits, otherwise good to merge.";
        let v = self
            .bob()
            .call("send_message", json!({"target": ALICE_SID, "body": body}))?;
        let id = v["message_id"].as_str().unwrap_or("?").to_string();
        self.t.line(
            "bob → alice",
            &format!("send_message(\"{}\") → ok message_id={id}", short(body)),
        );

        // Alice finishes her turn: Claude Code runs her Stop hook.
        let input = json!({
            "session_id": ALICE_SID,
            "transcript_path": self.sb.home().join(".claude/projects/demo/alice.jsonl"),
            "cwd": self.sb.project(),
            "permission_mode": "default",
            "hook_event_name": "Stop",
            "stop_hook_active": false,
            "last_assistant_message": "Refactor done.",
        });
        let (out, took) = self.hook("stop.sh", &input)?;
        let parsed: Value = serde_json::from_str(&out)
            .map_err(|e| format!("Stop printed no JSON ({e}): {out:?}"))?;
        let reason = parsed["reason"].as_str().unwrap_or_default().to_string();
        expect(
            parsed["decision"] == "block" && reason.contains(body),
            || format!("Stop hook printed {out}"),
        )?;
        self.t.line(
            "alice",
            &format!(
                "Stop hook → {{\"decision\":\"block\"}}: the turn goes on with 1 message ({}):",
                ms(took)
            ),
        );
        self.t.block(&reason);

        let (out, took) = self.hook("stop.sh", &input)?;
        expect(out.is_empty(), || format!("second Stop hook printed {out}"))?;
        let marker =
            std::fs::read_to_string(self.layout().activity_marker(ALICE_SID)).unwrap_or_default();
        expect(marker.trim() == "idle", || {
            format!("activity marker after the stop: {marker:?}")
        })?;
        self.t.line(
            "alice",
            &format!(
                "Stop hook again → nothing queued: stop allowed, alice marked idle ({})",
                ms(took)
            ),
        );
        Ok(())
    }

    fn nothing_left(&mut self) -> Result<(), String> {
        let a = self.alice().call("read_my_messages", json!({}))?;
        let b = self.bob().call("read_my_messages", json!({}))?;
        expect(a["count"] == 0 && b["count"] == 0, || {
            format!("left over: alice {a}, bob {b}")
        })?;
        self.t.line(
            "both",
            "read_my_messages → 0 and 0: every message was delivered exactly once",
        );
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), String> {
        let layout = self.layout();
        for agent in [self.alice.as_mut(), self.bob.as_mut()]
            .into_iter()
            .flatten()
        {
            let pid = agent.client.pid();
            let status = agent.client.shutdown(Duration::from_secs(10));
            expect(status.is_some(), || {
                format!("{} did not exit after stdin EOF", agent.name)
            })?;
            expect(!layout.session_entry(pid).exists(), || {
                format!("{} left its registry entry behind", agent.name)
            })?;
        }
        self.t.line(
            "both",
            "stdin closed → both servers exited and removed their registry entries",
        );
        Ok(())
    }

    /// Run an installed hook with `input` on stdin; its stdout and duration.
    fn hook(&self, script: &str, input: &Value) -> Result<(String, Duration), String> {
        let path = self.layout().hook(script);
        let started = Instant::now();
        let out = self.sb.run_hook(&path, &input.to_string(), HOOK)?;
        let took = started.elapsed();
        if !out.status.success() {
            return Err(format!(
                "{script} exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok((String::from_utf8_lossy(&out.stdout).into_owned(), took))
    }

    /// After a failure: the servers' stderr, which usually says why.
    fn print_server_logs(&self) {
        for name in ["alice", "bob"] {
            let text = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                continue;
            }
            eprintln!("--- last lines of {name}'s server stderr:");
            for l in &lines[lines.len().saturating_sub(15)..] {
                eprintln!("    {l}");
            }
        }
    }
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The first 40 characters of `s`, with "…" when cut.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
