//! `oxtail status` figures on a fleet of 20 agents (live `sleep` processes
//! with registry entries, state cards, activity markers, mailboxes holding
//! 0–4 messages and 200-record ledgers, every ledgered message with a
//! delivery receipt): the one-shot table and `--json`
//! as processes, the snapshot in-process, and — when tmux is installed —
//! how long `--watch` takes to show a new message (polled with
//! `capture-pane` in a private tmux server) and its CPU use while idle.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oxtail::status::{self, Options, Scope};
use oxtail::store::message::NewMessage;
use oxtail::store::paths::Layout;
use oxtail::store::registry::{self, Client, ClientType, Entry, StateCard};
use oxtail::store::{ledger, mailbox, message::Message, receipts};

use super::mcp::{Sandbox, session_id};
use super::{Ctx, Row};

const AGENTS: usize = 20;
const LEDGER_RECORDS: usize = 200;

/// Live pids for the fleet's entries; killed on drop.
struct Fleet {
    sleepers: Vec<Child>,
    sids: Vec<String>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.sleepers {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn populate(layout: &Layout, project: &Path) -> Fleet {
    let now = oxtail::clock::now_s();
    let mut fleet = Fleet {
        sleepers: Vec::new(),
        sids: Vec::new(),
    };
    for i in 0..AGENTS {
        let child = Command::new("sleep")
            .arg("3600")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep");
        let sid = session_id(0x57a7, i);
        let client = Client {
            client_type: if i % 3 == 0 {
                ClientType::Codex
            } else {
                ClientType::ClaudeCode
            },
            session_id: Some(sid.clone()),
            transcript_path: None,
            session_id_source: Some("env".into()),
            cwd: project.to_string_lossy().into_owned(),
            ..Client::default()
        };
        let mut e = Entry::new(child.id(), now, client);
        e.tmux_session = Some(format!("agent-{i:02}"));
        e.state = Some(StateCard {
            purpose: Some(format!("working on task {i}")),
            updated_at: now - 60,
        });
        registry::register(layout, &e).expect("register");
        let dir = layout.activity_dir();
        std::fs::create_dir_all(&dir).expect("activity dir");
        std::fs::write(
            layout.activity_marker(&sid),
            if i % 2 == 0 { "busy" } else { "idle" },
        )
        .expect("marker");
        fleet.sleepers.push(child);
        fleet.sids.push(sid);
    }
    let body = "a realistic message of a couple of hundred bytes ".repeat(4);
    for (i, sid) in fleet.sids.iter().enumerate() {
        let from = &fleet.sids[(i + 1) % AGENTS];
        for k in 0..LEDGER_RECORDS {
            let req = format!("req-{k}");
            let opts = NewMessage {
                request_id: (k % 5 == 0).then_some(req.as_str()),
                ..NewMessage::default()
            };
            let m = Message::build(&body, Some(from), &opts);
            ledger::record(layout, sid, &m).expect("ledger");
            // Delivered (a receipt), as our readers record them.
            let r = receipts::Receipt {
                message_id: m.id().unwrap_or_default().to_string(),
                delivered_at_ms: oxtail::clock::now_ms(),
                via: receipts::VIA_HOOK.into(),
                recipient_session_id: Some(sid.clone()),
                recipient_server_pid: None,
                hook_event: Some("PreToolUse".into()),
            };
            receipts::record(layout, &r).expect("receipt");
        }
        for _ in 0..(i % 5) {
            let pid = fleet.sleepers[i].id();
            mailbox::enqueue(layout, pid, &body, Some(from), &NewMessage::default())
                .expect("enqueue");
        }
    }
    fleet
}

/// CPU time (user + system) used so far by this process's waited-for children.
fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// One `oxtail status ARGS` run: (wall-clock time, CPU time).
fn run_status(exe: &Path, sb: &Sandbox, args: &[&str]) -> (Duration, Duration) {
    let cpu0 = children_cpu();
    let t0 = Instant::now();
    let out = Command::new(exe)
        .arg("status")
        .args(args)
        .current_dir(sb.project())
        .env("HOME", sb.home())
        .stdin(Stdio::null())
        .output()
        .expect("oxtail status");
    let dt = t0.elapsed();
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dt, children_cpu() - cpu0)
}

fn millis(name: &str, samples: &[Duration]) -> Row {
    Row::new(
        name,
        "ms",
        samples.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
    )
}

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let n = ctx.samples.clamp(5, 100);
    let sb = Sandbox::new("status");
    let layout = Layout::at(sb.home().join(".oxtail"));
    let fleet = populate(&layout, &sb.project());
    let exe = ctx.exe.with_file_name("oxtail");
    // Sanity: every agent listed.
    let scope = Scope::project_of(&sb.project().to_string_lossy());
    let snap = status::snapshot(&layout, &scope, &Options::default());
    assert_eq!(
        snap.agents.len(),
        AGENTS,
        "fleet not listed: {:?}",
        snap.warnings
    );

    let mut rows = Vec::new();
    for (label, args) in [
        ("one-shot table", &[][..]),
        ("--json --log", &["--json", "--log"][..]),
    ] {
        let runs: Vec<(Duration, Duration)> = (0..n).map(|_| run_status(&exe, &sb, args)).collect();
        let wall: Vec<Duration> = runs.iter().map(|r| r.0).collect();
        let cpu: Vec<Duration> = runs.iter().map(|r| r.1).collect();
        rows.push(millis(
            &format!("status: {label}, 20 agents (process)"),
            &wall,
        ));
        rows.push(millis(
            &format!("status: {label}, 20 agents, CPU time"),
            &cpu,
        ));
    }
    let inproc: Vec<Duration> = (0..n)
        .map(|_| {
            let t0 = Instant::now();
            let s = status::snapshot(
                &layout,
                &scope,
                &Options {
                    log: Some(20),
                    bodies: false,
                },
            );
            assert_eq!(s.agents.len(), AGENTS);
            t0.elapsed()
        })
        .collect();
    rows.push(Row::micros(
        "status: snapshot, 20 agents (in-process)",
        &inproc,
    ));
    rows.extend(watch(&exe, &sb, &layout, &fleet, n.min(30)));
    rows
}

/// A tmux command on the sandbox's private server.
fn tmux(sb: &Sandbox, args: &[&str]) -> Option<String> {
    let out = Command::new("tmux")
        .args(args)
        .env("TMUX_TMPDIR", sb.root().join("tmux"))
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The UNREAD cell of row `name`, read at the header's column offset.
fn unread_cell(screen: &str, name: &str) -> Option<String> {
    let at = screen
        .lines()
        .find_map(|l| l.find("UNREAD").map(|b| l[..b].chars().count()))?;
    let row: Vec<char> = screen.lines().find(|l| l.contains(name))?.chars().collect();
    Some(row.get(at..)?.iter().take_while(|c| **c != ' ').collect())
}

fn watch(exe: &Path, sb: &Sandbox, layout: &Layout, fleet: &Fleet, n: usize) -> Vec<Row> {
    if tmux(sb, &["-V"]).is_none() {
        eprintln!("note: tmux not installed; the --watch figures are skipped");
        return Vec::new();
    }
    let cmd = format!("exec '{}' status --watch", exe.display());
    let started = tmux(
        sb,
        &[
            "new-session",
            "-d",
            "-s",
            "w",
            "-x",
            "200",
            "-y",
            "50",
            "-c",
            &sb.project().to_string_lossy(),
            "-e",
            &format!("HOME={}", sb.home().display()),
            &cmd,
        ],
    );
    if started.is_none() {
        eprintln!("note: tmux new-session failed; the --watch figures are skipped");
        return Vec::new();
    }
    let screen = || tmux(sb, &["capture-pane", "-p", "-t", "w"]).unwrap_or_default();
    let wait_for = |want: &str| {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if unread_cell(&screen(), "agent-00").as_deref() == Some(want) {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    };
    let mut rows = Vec::new();
    let pid = fleet.sleepers[0].id();
    let mut count = 0usize; // agent-00 starts with an empty mailbox
    if wait_for("0").is_some() {
        let mut reflect = Vec::new();
        for i in 0..n {
            // A random phase against the view's poll period.
            std::thread::sleep(Duration::from_millis(37 + (i as u64 * 29) % 100));
            let t0 = Instant::now();
            mailbox::enqueue(
                layout,
                pid,
                "ping",
                Some(&fleet.sids[1]),
                &NewMessage::default(),
            )
            .expect("enqueue");
            count += 1;
            if wait_for(&count.to_string()).is_none() {
                break;
            }
            reflect.push(t0.elapsed());
        }
        rows.push(millis(
            "status --watch: new message → on screen (capture-pane poll)",
            &reflect,
        ));
        if let Some(cpu) = idle_cpu(sb) {
            rows.push(Row::new(
                "status --watch: CPU while idle, 20 agents",
                "%",
                cpu,
            ));
        }
    } else {
        eprintln!("note: the --watch screen never showed the fleet; figures skipped");
    }
    let _ = tmux(sb, &["kill-server"]);
    rows
}

/// CPU share of the watch process over five 2-second windows (Linux `/proc`).
fn idle_cpu(sb: &Sandbox) -> Option<Vec<f64>> {
    let pid = tmux(sb, &["display-message", "-p", "-t", "w", "#{pane_pid}"])?
        .trim()
        .to_string();
    let ticks = || -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = after.split_whitespace().collect();
        Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut out = Vec::new();
    for _ in 0..5 {
        let (c0, t0) = (ticks()?, Instant::now());
        std::thread::sleep(Duration::from_secs(2));
        let (c1, dt) = (ticks()?, t0.elapsed().as_secs_f64());
        out.push((c1 - c0) / hz / dt * 100.0);
    }
    Some(out)
}
