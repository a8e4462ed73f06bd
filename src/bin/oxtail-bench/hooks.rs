//! Hook figures: wall time of one `pretooluse.sh` run (spawn to exit, payload
//! on a pipe as Claude Code sends it) with nothing queued, with mail queued
//! only for another session, and with 1 / 10 / 200 messages queued for this
//! session; `stop.sh` and `userpromptsubmit.sh` for reference, and a bare
//! `bash -c 'exit 0'` as the floor every hook pays.
//!
//! Ours are installed with the real installer into a private temp HOME, never
//! `~/.oxtail`. With `--other-hooks DIR`, the other implementation's scripts
//! are copied into a second private HOME's `~/.oxtail/hooks` (where its
//! installer puts them) and measured with the same registry, mailboxes and
//! payloads (the mailbox line format is shared).

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

impl Home {
    fn new() -> Home {
        let mut b = [0u8; 6];
        rand::fill(&mut b[..]);
        let p = std::env::temp_dir().join(format!("oxtail-bench-hooks-{}", hex::encode(b)));
        std::fs::create_dir_all(&p).expect("temp home");
        Home(p)
    }
}

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
    Row::micros(name, &samples).of("-")
}

/// Copies `dir/*.sh` into `home/.oxtail/hooks/` (mode 0755), as the other
/// implementation's installer places them.
fn copy_hooks(dir: &Path, home: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dest = home.join(".oxtail/hooks");
    std::fs::create_dir_all(&dest)?;
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "sh") {
            let to = dest.join(path.file_name().unwrap_or_default());
            std::fs::copy(&path, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let payload = format!(
        "{{\"session_id\":\"{SID}\",\"transcript_path\":\"/t.jsonl\",\"cwd\":\"/p\",\"prompt_id\":\"p1\",\"permission_mode\":\"default\",\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{{\"command\":\"ls -la\",\"description\":\"list\"}},\"tool_use_id\":\"toolu_01\"}}"
    );
    let n = ctx.samples.max(5);
    let floor_home = Home::new();
    let h = floor_home.0.as_path();
    let mut rows = vec![
        series(
            "hooks: bash -c 'exit 0' (floor)",
            n,
            || {},
            None,
            h,
            &payload,
        ),
        series(
            "hooks: bash + mkdir + awk + rm (delivery floor)",
            n,
            || {},
            Some(Path::new("floor")),
            h,
            &payload,
        ),
    ];

    let ours = Home::new();
    install_at(&ours.0, SystemTime::now()).expect("install hooks");
    rows.extend(measure("ours", &ours.0, ctx, &payload));
    if let Some(dir) = &ctx.other_hooks {
        let other = Home::new();
        match copy_hooks(dir, &other.0) {
            Ok(()) => rows.extend(measure("other", &other.0, ctx, &payload)),
            Err(e) => eprintln!("hooks: cannot copy {}: {e}", dir.display()),
        }
    }
    rows
}

/// Every hook scenario against the hooks installed under `home`.
fn measure(imp: &'static str, home: &Path, ctx: &Ctx, payload: &str) -> Vec<Row> {
    let layout = Layout::at(home.join(".oxtail"));
    std::fs::create_dir_all(layout.sessions_dir()).expect("sessions dir");
    std::fs::create_dir_all(layout.mailboxes_dir()).expect("mailboxes dir");
    register(&layout, 100, SID);
    register(&layout, 101, SID);
    register(&layout, 200, OTHER);
    std::fs::write(layout.mailbox(100), "").expect("mailbox");

    let pre = layout.hook("pretooluse.sh");
    let stop = layout.hook("stop.sh");
    let ups = layout.hook("userpromptsubmit.sh");
    let stop_payload = format!(
        "{{\"session_id\":\"{SID}\",\"hook_event_name\":\"Stop\",\"stop_hook_active\":false,\"last_assistant_message\":\"done\"}}"
    );
    let n = ctx.samples.max(5);
    let heavy = (ctx.samples / 4).max(5);
    let clear = || {
        let _ = mailbox::drain(&layout, 100);
        let _ = mailbox::drain(&layout, 101);
    };
    let mut rows = Vec::new();
    let mut row = |r: Row| rows.push(r.of(imp));

    row(series(
        "hooks: pretooluse, nothing queued",
        n,
        || {},
        Some(&pre),
        home,
        payload,
    ));
    fill(&layout, 200, 5);
    row(series(
        "hooks: pretooluse, mail only for another session",
        n,
        || {},
        Some(&pre),
        home,
        payload,
    ));
    let _ = mailbox::drain(&layout, 200);
    row(series(
        "hooks: pretooluse, 1 queued",
        n,
        || fill(&layout, 100, 1),
        Some(&pre),
        home,
        payload,
    ));
    clear();
    row(series(
        "hooks: pretooluse, 10 queued",
        n,
        || fill(&layout, 100, 10),
        Some(&pre),
        home,
        payload,
    ));
    clear();
    row(series(
        "hooks: pretooluse, 10 queued in 2 siblings",
        n,
        || {
            fill(&layout, 100, 5);
            fill(&layout, 101, 5);
        },
        Some(&pre),
        home,
        payload,
    ));
    clear();
    // 200 queued: ours delivers the first 50 and rewrites the rest (push
    // budget); the original delivers all 200 in one envelope.
    row(series(
        "hooks: pretooluse, 200 queued",
        heavy,
        || {
            clear();
            fill(&layout, 100, 200);
        },
        Some(&pre),
        home,
        payload,
    ));
    clear();
    row(series(
        "hooks: stop, nothing queued",
        n,
        || {},
        Some(&stop),
        home,
        &stop_payload,
    ));
    row(series(
        "hooks: stop, 10 queued",
        n,
        || fill(&layout, 100, 10),
        Some(&stop),
        home,
        &stop_payload,
    ));
    clear();
    row(series(
        "hooks: userpromptsubmit",
        n,
        || {},
        Some(&ups),
        home,
        payload,
    ));
    rows
}
