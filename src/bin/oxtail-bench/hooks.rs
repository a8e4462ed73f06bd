//! Hook figures: wall time of one `pretooluse.sh` run (spawn to exit, payload
//! on a pipe as Claude Code sends it) with nothing queued (bare, and with
//! each Claude Code version's env, which adds the client record check), with mail queued
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
use oxtail::store::message::NewMessage;
use oxtail::store::paths::Layout;
use oxtail::store::registry::{self, Client, ClientType, Entry};
use oxtail::store::{clients, mailbox};

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
    let client = Client {
        client_type: ClientType::ClaudeCode,
        session_id: Some(sid.into()),
        session_id_source: Some("env".into()),
        cwd: "/p".into(),
        ..Client::default()
    };
    let entry = Entry::new(pid, 0, client);
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
fn run_once(
    script: Option<&Path>,
    home: &Path,
    payload: &str,
    env: &[(&str, String)],
) -> (Duration, usize) {
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
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
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

/// Copies `dir/*.sh` (and `*.awk`) into `home/.oxtail/hooks/` (mode 0755), as the other
/// implementation's installer places them.
fn copy_hooks(dir: &Path, home: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dest = home.join(".oxtail/hooks");
    std::fs::create_dir_all(&dest)?;
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "sh" || x == "awk") {
            let to = dest.join(path.file_name().unwrap_or_default());
            std::fs::copy(&path, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// Which program a scenario runs.
#[derive(Clone, Copy)]
enum Script {
    /// `bash -c 'exit 0'`: the floor of every hook.
    Exit0,
    /// [`SPAWN_FLOOR`]: the floor of a delivering run.
    Floor,
    /// An installed hook, by file name.
    Hook(&'static str),
}

/// Which payload a scenario pipes in.
#[derive(Clone, Copy)]
enum Payload {
    PreToolUse,
    Stop,
}

/// The environment a scenario's hook gets beyond HOME and PATH.
#[derive(Clone, Copy)]
enum Env {
    /// Nothing (Codex, or a client without session env).
    Bare,
    /// Claude Code 2.1.3xx: `CLAUDE_CODE_SESSION_ID` and `CLAUDE_PID` (the
    /// client record check reads one file).
    Claude332,
    /// Claude Code 2.1.197: `CLAUDE_CODE_SESSION_ID` only (the check reads
    /// `/proc/$PPID/stat` too).
    Claude197,
}

impl Env {
    fn vars(self) -> Vec<(&'static str, String)> {
        let sid = ("CLAUDE_CODE_SESSION_ID", SID.to_string());
        match self {
            Env::Bare => Vec::new(),
            Env::Claude332 => vec![sid, ("CLAUDE_PID", std::process::id().to_string())],
            Env::Claude197 => vec![sid],
        }
    }
}

/// One measured scenario: a name, what runs, how many samples, and what to
/// queue before each run.
struct Scenario {
    name: &'static str,
    script: Script,
    payload: Payload,
    env: Env,
    heavy: bool,
    before: fn(&Layout),
}

fn clear(l: &Layout) {
    let _ = mailbox::drain(l, 100);
    let _ = mailbox::drain(l, 101);
    let _ = mailbox::drain(l, 200);
}

const SCENARIOS: &[Scenario] = &[
    sc("hooks: bash -c 'exit 0' (floor)", Script::Exit0, |_| {}),
    sc(
        "hooks: bash + mkdir + awk + rm (delivery floor)",
        Script::Floor,
        |_| {},
    ),
    sc(
        "hooks: pretooluse, nothing queued",
        Script::Hook("pretooluse.sh"),
        clear,
    ),
    // Beyond the original: with Claude Code's env the fast path also checks
    // the client record (identity follows /clear); the other implementation
    // ignores the env, so these rows are a before/after.
    Scenario {
        env: Env::Claude332,
        ..sc(
            "hooks: pretooluse, nothing queued, Claude 2.1.332 env",
            Script::Hook("pretooluse.sh"),
            clear,
        )
    },
    Scenario {
        env: Env::Claude197,
        ..sc(
            "hooks: pretooluse, nothing queued, Claude 2.1.197 env",
            Script::Hook("pretooluse.sh"),
            clear,
        )
    },
    sc(
        "hooks: pretooluse, mail only for another session",
        Script::Hook("pretooluse.sh"),
        |l| {
            clear(l);
            fill(l, 200, 5);
        },
    ),
    sc(
        "hooks: pretooluse, 1 queued",
        Script::Hook("pretooluse.sh"),
        |l| {
            clear(l);
            fill(l, 100, 1);
        },
    ),
    sc(
        "hooks: pretooluse, 10 queued",
        Script::Hook("pretooluse.sh"),
        |l| {
            clear(l);
            fill(l, 100, 10);
        },
    ),
    sc(
        "hooks: pretooluse, 10 queued in 2 siblings",
        Script::Hook("pretooluse.sh"),
        |l| {
            clear(l);
            fill(l, 100, 5);
            fill(l, 101, 5);
        },
    ),
    // 200 queued: ours delivers the first 50 and rewrites the rest (push
    // budget); the original delivers all 200 in one envelope.
    Scenario {
        heavy: true,
        ..sc(
            "hooks: pretooluse, 200 queued",
            Script::Hook("pretooluse.sh"),
            |l| {
                clear(l);
                fill(l, 100, 200);
            },
        )
    },
    Scenario {
        payload: Payload::Stop,
        ..sc(
            "hooks: stop, nothing queued",
            Script::Hook("stop.sh"),
            clear,
        )
    },
    Scenario {
        payload: Payload::Stop,
        ..sc("hooks: stop, 10 queued", Script::Hook("stop.sh"), |l| {
            clear(l);
            fill(l, 100, 10);
        })
    },
    sc(
        "hooks: userpromptsubmit",
        Script::Hook("userpromptsubmit.sh"),
        clear,
    ),
];

const fn sc(name: &'static str, script: Script, before: fn(&Layout)) -> Scenario {
    Scenario {
        name,
        script,
        payload: Payload::PreToolUse,
        env: Env::Bare,
        heavy: false,
        before,
    }
}

/// One implementation's hooks under a private HOME.
struct Install {
    imp: &'static str,
    home: Home,
    layout: Layout,
}

impl Install {
    fn new(
        imp: &'static str,
        populate: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Option<Install> {
        let home = Home::new();
        if let Err(e) = populate(&home.0) {
            eprintln!("hooks: cannot install {imp} hooks: {e}");
            return None;
        }
        let layout = Layout::at(home.0.join(".oxtail"));
        std::fs::create_dir_all(layout.sessions_dir()).expect("sessions dir");
        std::fs::create_dir_all(layout.mailboxes_dir()).expect("mailboxes dir");
        register(&layout, 100, SID);
        register(&layout, 101, SID);
        register(&layout, 200, OTHER);
        std::fs::write(layout.mailbox(100), "").expect("mailbox");
        // What sessionstart.sh leaves for this (client) process: the record
        // the Claude-env scenarios find current. The bench is the hooks'
        // parent, hence their client process.
        clients::write(&layout, std::process::id(), SID, "startup", "SessionStart")
            .expect("client record");
        Some(Install { imp, home, layout })
    }
}

/// Every scenario, sample by sample in alternation across implementations
/// (so load drifts hit both alike); floors run once per sample, as `-`.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    let pre_payload = format!(
        "{{\"session_id\":\"{SID}\",\"transcript_path\":\"/t.jsonl\",\"cwd\":\"/p\",\"prompt_id\":\"p1\",\"permission_mode\":\"default\",\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{{\"command\":\"ls -la\",\"description\":\"list\"}},\"tool_use_id\":\"toolu_01\"}}"
    );
    let stop_payload = format!(
        "{{\"session_id\":\"{SID}\",\"hook_event_name\":\"Stop\",\"stop_hook_active\":false,\"last_assistant_message\":\"done\"}}"
    );
    let mut installs = Vec::new();
    installs.extend(Install::new("ours", |h| {
        install_at(h, SystemTime::now()).map(|_| ())
    }));
    if let Some(dir) = &ctx.other_hooks {
        installs.extend(Install::new("other", |h| {
            copy_hooks(dir, h).map_err(|e| format!("{}: {e}", dir.display()))
        }));
    }
    let mut rows = Vec::new();
    for s in SCENARIOS {
        let n = if s.heavy {
            (ctx.samples / 4).max(5)
        } else {
            ctx.samples.max(5)
        };
        let payload = match s.payload {
            Payload::PreToolUse => &pre_payload,
            Payload::Stop => &stop_payload,
        };
        let targets: &[Install] = match s.script {
            Script::Hook(_) => &installs,
            _ => &installs[..installs.len().min(1)],
        };
        let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); targets.len()];
        for _ in 0..n {
            for (inst, out) in targets.iter().zip(samples.iter_mut()) {
                (s.before)(&inst.layout);
                let script = match s.script {
                    Script::Exit0 => None,
                    Script::Floor => Some(Path::new("floor").to_path_buf()),
                    Script::Hook(f) => Some(inst.layout.hook(f)),
                };
                out.push(run_once(script.as_deref(), &inst.home.0, payload, &s.env.vars()).0);
            }
        }
        for (inst, v) in targets.iter().zip(samples) {
            let imp = if matches!(s.script, Script::Hook(_)) {
                inst.imp
            } else {
                "-"
            };
            rows.push(Row::micros(s.name, &v).of(imp));
        }
    }
    rows
}
