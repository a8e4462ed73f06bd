//! Server figures: cold start to a completed `initialize` + `tools/list`, idle
//! RSS after `initialize`, and `read_session` with `tail_scan` on a 100 MB
//! transcript (in-process and end to end over stdio).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use oxtail::transcripts::{Budget, Format, read};
use serde_json::{Value, json};

use super::{Ctx, Row};

const PEER: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let p = std::env::temp_dir().join(format!("oxtail-bench-server-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("home")).unwrap();
        std::fs::create_dir_all(p.join("tmux")).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn oxtail_exe(ctx: &Ctx) -> PathBuf {
    ctx.exe.with_file_name("oxtail")
}

struct Session {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Session {
    fn spawn(cmd: &mut Command, home: &Path, tmux: &Path) -> Session {
        cmd.env("HOME", home)
            .env("TMUX_TMPDIR", tmux)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .env_remove("CLAUDECODE")
            .env_remove("CLAUDE_CODE_SESSION_ID")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn server");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Session { child, stdin, out }
    }

    fn send(&mut self, v: Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn wait_id(&mut self, id: i64) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            if self.out.read_line(&mut line).unwrap_or(0) == 0 {
                return Value::Null;
            }
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v.get("id") == Some(&json!(id))
            {
                return v;
            }
        }
    }

    fn handshake(&mut self) {
        self.send(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"codex-mcp-client","version":"0"}}}));
        self.wait_id(1);
        self.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        self.send(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}));
        self.wait_id(2);
    }

    fn close(mut self) {
        drop(self.stdin);
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

fn rss_kib(pid: u32) -> Option<f64> {
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

fn cold_start(name: &str, mk: &dyn Fn() -> Command, s: &Scratch, n: usize) -> Vec<Row> {
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let mut sess = Session::spawn(&mut mk(), &s.0.join("home"), &s.0.join("tmux"));
        sess.handshake();
        times.push(t0.elapsed());
        std::thread::sleep(Duration::from_millis(20));
        if let Some(k) = rss_kib(sess.child.id()) {
            rss.push(k / 1024.0);
        }
        sess.close();
    }
    vec![
        Row::micros(
            format!("{name}: cold start → initialize + tools/list"),
            &times,
        ),
        Row::new(format!("{name}: idle RSS after initialize"), "MiB", rss),
    ]
}

fn write_big_transcript(path: &Path) -> usize {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let filler = "x".repeat(1000);
    let (mut written, mut i) = (0usize, 0usize);
    while written < 100 * 1024 * 1024 {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        let line = format!(
            "{{\"type\":\"{role}\",\"message\":{{\"role\":\"{role}\",\"content\":[{{\"type\":\"text\",\"text\":\"msg {i} {filler}\"}}]}},\"timestamp\":\"2026-01-01T00:00:00Z\"}}\n"
        );
        f.write_all(line.as_bytes()).unwrap();
        written += line.len();
        i += 1;
    }
    f.flush().unwrap();
    written
}

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let s = Scratch::new();
    let n = ctx.samples.clamp(5, 50);
    let exe = oxtail_exe(ctx);
    let mut rows = cold_start("oxtail", &|| Command::new(&exe), &s, n);
    if let Some(other) = &ctx.other_cmd {
        let other = other.clone();
        rows.extend(cold_start(
            "other",
            &move || {
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!("exec {other}"));
                c
            },
            &s,
            n.min(20),
        ));
    }

    let big = s.0.join("big.jsonl");
    write_big_transcript(&big);
    let b = Budget {
        limit: 20,
        max_bytes: 24_000,
        include_timestamps: false,
    };
    let mut inproc = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let r = read(&big, Format::Claude, b, true);
        inproc.push(t0.elapsed());
        assert_eq!(r.messages.len(), 20);
    }
    rows.push(Row::micros(
        "tail_scan 100 MB transcript, limit 20 (in-process)",
        &inproc,
    ));
    let mut full = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let _ = read(&big, Format::Claude, b, false);
        full.push(t0.elapsed());
    }
    rows.push(Row::micros(
        "full scan 100 MB transcript, limit 20 (in-process)",
        &full,
    ));

    // End to end: a registry entry for a live pid (ours) pointing at the file.
    let sessions = s.0.join("home/.oxtail/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let me = std::process::id();
    let entry = json!({"server_pid": me, "started_at": 1, "client": {"type": "claude-code", "session_id": PEER,
        "transcript_path": big.to_string_lossy(), "session_id_source": "self-register", "cwd": s.0.to_string_lossy()},
        "tmux_pane": null, "tmux_session": null, "state": null, "capabilities": null});
    std::fs::write(sessions.join(format!("{me}.json")), entry.to_string()).unwrap();
    let mut cmd = Command::new(&exe);
    cmd.current_dir(&s.0);
    let mut sess = Session::spawn(&mut cmd, &s.0.join("home"), &s.0.join("tmux"));
    sess.handshake();
    let mut e2e = Vec::new();
    for i in 0..n {
        let id = 100 + i as i64;
        let t0 = Instant::now();
        sess.send(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"read_session","arguments":{"name": PEER, "tail_scan": true, "project_root": s.0.to_string_lossy()}}}));
        let r = sess.wait_id(id);
        e2e.push(t0.elapsed());
        assert!(
            r["result"]["content"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("\"mode\":\"transcript\"")),
            "{r}"
        );
    }
    sess.close();
    rows.push(Row::micros(
        "read_session tail_scan 100 MB over stdio",
        &e2e,
    ));
    rows
}
