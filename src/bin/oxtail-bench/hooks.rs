//! Hook figures: wall time of one `pretooluse.sh` run (spawn to exit, payload
//! on a pipe as Claude Code sends it) with nothing queued, with mail queued
//! only for another session, and with 10 / 200 messages queued for this
//! session; `stop.sh` and `userpromptsubmit.sh` for reference, and a bare
//! `bash -c 'exit 0'` as the floor every hook pays.
//!
//! The hooks are installed with the real installer into a private temp HOME,
//! never `~/.oxtail`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use oxtail::cli::install_hook::install_at;
use oxtail::store::mailbox;
use oxtail::store::message::NewMessage;
use oxtail::store::paths::Layout;
use oxtail::store::registry::{self, Client, ClientType, Entry};

use super::{Ctx, Row};

const SID: &str = "11111111-1111-1111-1111-111111111111";
const OTHER: &str = "33333333-3333-3333-3333-333333333333";
const PEER: &str = "22222222-2222-2222-2222-222222222222";

struct Home(PathBuf);

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn register(layout: &Layout, pid: u32, sid: &str) {
    let entry = Entry {
        server_pid: pid,
        started_at: 0,
        client: Client {
            client_type: ClientType::ClaudeCode,
            session_id: Some(sid.into()),
            transcript_path: None,
            session_id_source: Some("env".into()),
            cwd: "/p".into(),
        },
        tmux_pane: None,
        tmux_session: None,
        state: None,
        capabilities: Some(registry::own_capabilities()),
    };
    std::fs::write(layout.session_entry(pid), registry::to_pretty(&entry)).expect("registry");
}

fn fill(layout: &Layout, pid: u32, n: usize) {
    for i in 0..n {
        let body = format!("benchmark message {i}: please look at src/x.rs — \"quoted\"\nthanks");
        mailbox::enqueue(layout, pid, &body, Some(PEER), &NewMessage::default()).expect("enqueue");
    }
}

/// The floor of a delivering run: bash plus the three processes the slow
/// path spawns (lock mkdir, awk, lock release).
const SPAWN_FLOOR: &str =
    "d=$HOME/.floor.$$; mkdir \"$d\"; awk 'BEGIN{}' </dev/null; rm -f -d -- \"$d\"";

/// One run of `script` (or `bash -c 'exit 0'`, or [`SPAWN_FLOOR`] when the
/// path is `floor`) with `payload`.
fn run_once(script: Option<&Path>, home: &Path, payload: &str) -> (Duration, usize) {
    let mut cmd = Command::new("bash");
    match script {
        Some(s) if s == Path::new("floor") => cmd.args(["-c", SPAWN_FLOOR]),
        Some(s) => cmd.arg(s),
        None => cmd.args(["-c", "exit 0"]),
    };
    cmd.env_clear()
        .env("HOME", home)
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let t = Instant::now();
    let mut child = cmd.spawn().expect("spawn bash");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(payload.as_bytes());
    }
    let out = child.wait_with_output().expect("wait");
    (t.elapsed(), out.stdout.len())
}

fn series(
    name: &str,
    n: usize,
    mut before: impl FnMut(),
    script: Option<&Path>,
    home: &Path,
    payload: &str,
) -> Row {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        before();
        samples.push(run_once(script, home, payload).0);
    }
    Row::micros(name, &samples)
}

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let mut b = [0u8; 6];
    rand::fill(&mut b[..]);
    let home = Home(std::env::temp_dir().join(format!("oxtail-bench-hooks-{}", hex::encode(b))));
    std::fs::create_dir_all(&home.0).expect("temp home");
    install_at(&home.0, SystemTime::now()).expect("install hooks");
    let layout = Layout::at(home.0.join(".oxtail"));
    std::fs::create_dir_all(layout.sessions_dir()).expect("sessions dir");
    std::fs::create_dir_all(layout.mailboxes_dir()).expect("mailboxes dir");
    register(&layout, 100, SID);
    register(&layout, 101, SID);
    register(&layout, 200, OTHER);
    std::fs::write(layout.mailbox(100), "").expect("mailbox");

    let pre = layout.hook("pretooluse.sh");
    let stop = layout.hook("stop.sh");
    let ups = layout.hook("userpromptsubmit.sh");
    let payload = format!(
        "{{\"session_id\":\"{SID}\",\"transcript_path\":\"/t.jsonl\",\"cwd\":\"/p\",\"prompt_id\":\"p1\",\"permission_mode\":\"default\",\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{{\"command\":\"ls -la\",\"description\":\"list\"}},\"tool_use_id\":\"toolu_01\"}}"
    );
    let stop_payload = format!(
        "{{\"session_id\":\"{SID}\",\"hook_event_name\":\"Stop\",\"stop_hook_active\":false,\"last_assistant_message\":\"done\"}}"
    );
    let n = ctx.samples.max(5);
    let heavy = (ctx.samples / 4).max(5);
    let h = home.0.as_path();
    let mut rows = Vec::new();

    rows.push(series(
        "hooks bash -c 'exit 0' (floor)",
        n,
        || {},
        None,
        h,
        &payload,
    ));
    rows.push(series(
        "hooks pretooluse, nothing queued",
        n,
        || {},
        Some(&pre),
        h,
        &payload,
    ));

    fill(&layout, 200, 5);
    rows.push(series(
        "hooks pretooluse, mail only for another session",
        n,
        || {},
        Some(&pre),
        h,
        &payload,
    ));
    let _ = mailbox::drain(&layout, 200);

    rows.push(series(
        "hooks bash + mkdir + awk + rm (delivery floor)",
        n,
        || {},
        Some(Path::new("floor")),
        h,
        &payload,
    ));
    rows.push(series(
        "hooks pretooluse, 1 queued",
        n,
        || fill(&layout, 100, 1),
        Some(&pre),
        h,
        &payload,
    ));
    rows.push(series(
        "hooks pretooluse, 10 queued",
        n,
        || fill(&layout, 100, 10),
        Some(&pre),
        h,
        &payload,
    ));
    rows.push(series(
        "hooks pretooluse, 10 queued in 2 siblings",
        n,
        || {
            fill(&layout, 100, 5);
            fill(&layout, 101, 5);
        },
        Some(&pre),
        h,
        &payload,
    ));
    // 200 queued: one run delivers the first 50 and rewrites the rest.
    rows.push(series(
        "hooks pretooluse, 200 queued (delivers 50)",
        heavy,
        || {
            let _ = mailbox::drain(&layout, 100);
            fill(&layout, 100, 200);
        },
        Some(&pre),
        h,
        &payload,
    ));
    let _ = mailbox::drain(&layout, 100);

    rows.push(series(
        "hooks stop, nothing queued",
        n,
        || {},
        Some(&stop),
        h,
        &stop_payload,
    ));
    rows.push(series(
        "hooks stop, 10 queued",
        n,
        || fill(&layout, 100, 10),
        Some(&stop),
        h,
        &stop_payload,
    ));
    rows.push(series(
        "hooks userpromptsubmit",
        n,
        || {},
        Some(&ups),
        h,
        &payload,
    ));
    rows
}
