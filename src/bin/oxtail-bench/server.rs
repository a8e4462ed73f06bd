//! Server figures: cold start to a completed `initialize` + `tools/list`, idle
//! RSS after `initialize`, and `read_session` with `tail_scan` on a 100 MB
//! transcript (in-process, and end to end over stdio). The process-driving
//! figures run for ours and for `--other-cmd` the same way.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use oxtail::transcripts::{Budget, Format, read};
use serde_json::json;

use super::mcp::{Impl, Sandbox, Server, impls, rss_kib};
use super::{Ctx, Row};

const PEER: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

/// Spawn → `initialize` + `tools/list` answered (as Claude Code, cwd a git
/// project), then the RSS once the server has sat idle for 100 ms.
fn cold_start(imp: &Impl, n: usize) -> Vec<Row> {
    let sb = Sandbox::new("server");
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let mut sess = Server::spawn(imp, &sb, &sb.project(), true);
        sess.handshake("claude-code");
        times.push(t0.elapsed());
        std::thread::sleep(Duration::from_millis(100));
        if let Some(k) = rss_kib(sess.pid()) {
            rss.push(k / 1024.0);
        }
        sess.close();
    }
    vec![
        Row::micros("server: cold start → initialize + tools/list", &times).of(imp.label),
        Row::new("server: idle RSS after initialize", "MiB", rss).of(imp.label),
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
    let n = ctx.samples.clamp(5, 50);
    let all = impls(ctx);
    let mut rows = Vec::new();
    for imp in &all {
        rows.extend(cold_start(imp, n));
    }

    let sb = Sandbox::new("tailscan");
    let big = sb.root().join("big.jsonl");
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
        "server: tail_scan 100 MB, limit 20 (in-process)",
        &inproc,
    ));
    let mut full = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let _ = read(&big, Format::Claude, b, false);
        full.push(t0.elapsed());
    }
    rows.push(Row::micros(
        "server: full scan 100 MB, limit 20 (in-process)",
        &full,
    ));

    // End to end: a registry entry for a live pid (this process) pointing at
    // the file, read by each implementation over stdio.
    let sessions = sb.home().join(".oxtail/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let me = std::process::id();
    let project = sb.project();
    let entry = json!({"server_pid": me, "started_at": 1, "client": {"type": "claude-code", "session_id": PEER,
        "transcript_path": big.to_string_lossy(), "session_id_source": "self-register", "cwd": project.to_string_lossy()},
        "tmux_pane": null, "tmux_session": null, "state": null, "capabilities": null});
    std::fs::write(
        sessions.join(format!("{me}.json")),
        serde_json::to_string_pretty(&entry).unwrap(),
    )
    .unwrap();
    for imp in &all {
        rows.push(tail_scan_stdio(imp, &sb, &project, n));
    }
    rows
}

fn tail_scan_stdio(imp: &Impl, sb: &Sandbox, project: &Path, n: usize) -> Row {
    let mut sess = Server::spawn(imp, sb, project, false);
    sess.handshake("codex-mcp-client");
    let args = json!({"name": PEER, "tail_scan": true, "project_root": project.to_string_lossy()});
    let mut e2e = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let r = sess.call("read_session", args.clone());
        e2e.push(t0.elapsed());
        assert!(
            r["mode"] == "transcript" && r["messages"].as_array().is_some_and(|m| m.len() == 20),
            "{}: read_session: {r}",
            imp.label
        );
    }
    Row::micros("server: read_session tail_scan 100 MB over stdio", &e2e).of(imp.label)
}
