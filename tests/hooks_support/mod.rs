//! Shared helpers of the hook tests: a fixture HOME with registry files and
//! mailboxes written by the crate's own store, and running a hook script under
//! bash with a chosen awk (mawk, then gawk) first on PATH.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use oxtail::store::mailbox;
use oxtail::store::message::{Message, NewMessage};
use oxtail::store::paths::Layout;
use oxtail::store::registry::{self, Client, ClientType, Entry};

pub const SID: &str = "11111111-1111-1111-1111-111111111111";
pub const PEER: &str = "22222222-2222-2222-2222-222222222222";
/// The most bytes one hook run may print (issue 10.2: what both clients show uncut).
pub const HOOK_OUTPUT_CAP: usize = 10_000;

/// `assets/<name>` of this crate.
pub fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

/// One awk variant: its name and a directory holding an `awk` link to it.
#[derive(Debug, Clone)]
pub struct Awk {
    pub name: &'static str,
    pub dir: PathBuf,
}

/// The awks to run every hook test under: mawk, gawk and the BWK "one true
/// awk" (`original-awk`, what macOS ships as `awk`). A missing one is skipped
/// with a printed note.
pub fn awks() -> &'static [Awk] {
    static AWKS: OnceLock<Vec<Awk>> = OnceLock::new();
    AWKS.get_or_init(|| {
        let base = tempfile::tempdir().unwrap().keep();
        let mut out = Vec::new();
        for name in ["mawk", "gawk", "original-awk"] {
            let found = ["/usr/bin", "/bin", "/usr/local/bin", "/opt/homebrew/bin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.exists());
            match found {
                Some(p) => {
                    let dir = base.join(name);
                    fs::create_dir_all(&dir).unwrap();
                    symlink(&p, dir.join("awk")).unwrap();
                    out.push(Awk { name, dir });
                }
                None => eprintln!("note: {name} not installed; its hook test variant is skipped"),
            }
        }
        assert!(!out.is_empty(), "neither mawk nor gawk is installed");
        out
    })
}

/// Run `f` once per available awk.
pub fn each_awk(f: impl Fn(&Awk)) {
    for awk in awks() {
        eprintln!("-- awk = {}", awk.name);
        f(awk);
    }
}

/// A fixture HOME.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub layout: Layout,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::at(dir.path().join(".oxtail"));
        Home { dir, layout }
    }

    /// A HOME where session `SID` (server 100) has one message from `PEER`.
    pub fn with_mail(body: &str) -> Home {
        let h = Home::new();
        h.register(100, SID);
        h.send(100, body, Some(PEER), None);
        h
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Create `sessions/` and `mailboxes/`.
    pub fn dirs(&self) {
        fs::create_dir_all(self.layout.sessions_dir()).unwrap();
        fs::create_dir_all(self.layout.mailboxes_dir()).unwrap();
    }

    /// A registry file for `pid` naming `sid` (pretty-printed, as the server
    /// writes it).
    pub fn register(&self, pid: u32, sid: &str) {
        self.dirs();
        let client = Client {
            client_type: ClientType::ClaudeCode,
            session_id: Some(sid.into()),
            session_id_source: Some("env".into()),
            cwd: "/p".into(),
            ..Client::default()
        };
        let entry = Entry::new(pid, 1_767_225_600, client);
        fs::write(self.layout.session_entry(pid), registry::to_pretty(&entry)).unwrap();
    }

    /// Enqueue through the store (lock + real serializer).
    pub fn send(
        &self,
        pid: u32,
        body: &str,
        from: Option<&str>,
        request_id: Option<&str>,
    ) -> String {
        self.dirs();
        let opts = NewMessage {
            request_id,
            ..Default::default()
        };
        mailbox::enqueue(&self.layout, pid, body, from, &opts)
            .unwrap()
            .id()
            .unwrap()
            .to_string()
    }

    /// Enqueue a message with an explicit `enqueued_at`.
    pub fn send_at(&self, pid: u32, body: &str, at: u64) -> String {
        self.dirs();
        let msg = Message::build_with(
            oxtail::store::message::new_hex_id(),
            at,
            body,
            Some(PEER),
            &NewMessage::default(),
        );
        mailbox::requeue(&self.layout, pid, &msg).unwrap();
        msg.id().unwrap().to_string()
    }

    /// Append raw bytes to a mailbox (torn or foreign lines).
    pub fn append_raw(&self, pid: u32, bytes: &[u8]) {
        self.dirs();
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.layout.mailbox(pid))
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    pub fn mailbox_text(&self, pid: u32) -> String {
        fs::read_to_string(self.layout.mailbox(pid)).unwrap_or_default()
    }

    pub fn lock_dir(&self, pid: u32) -> PathBuf {
        let mut p = self.layout.mailbox(pid).into_os_string();
        p.push(".lock");
        PathBuf::from(p)
    }

    /// The activity marker content for `sid`, if any.
    pub fn activity(&self, sid: &str) -> Option<String> {
        fs::read_to_string(self.layout.activity_dir().join(sid))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

/// What one hook run produced.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("hook stdout is UTF-8")
    }

    /// Parse stdout as JSON (panics with the raw output when invalid).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "hook output is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.stdout)
            )
        })
    }

    /// PreToolUse `additionalContext` (asserts the envelope).
    pub fn context(&self) -> String {
        let v = self.json();
        assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PreToolUse");
        v["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .expect("additionalContext is a string")
            .to_string()
    }

    /// Stop `reason` (asserts `decision == "block"`).
    pub fn reason(&self) -> String {
        let v = self.json();
        assert_eq!(v["decision"], "block");
        v["reason"]
            .as_str()
            .expect("reason is a string")
            .to_string()
    }
}

/// How stdin is given to the hook.
pub enum Input<'a> {
    Text(&'a str),
    DevNull,
}

/// Run `script` (a path) under bash with only PATH (awk dir first) and HOME,
/// plus `env`.
pub fn run_script(
    script: &Path,
    home: &Path,
    awk: &Awk,
    input: Input<'_>,
    env: &[(&str, &str)],
) -> Run {
    run_with_stdout(script, home, awk, input, env, Stdio::piped())
}

pub fn run_with_stdout(
    script: &Path,
    home: &Path,
    awk: &Awk,
    input: Input<'_>,
    env: &[(&str, &str)],
    stdout: Stdio,
) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", awk.dir.display()))
        // The variant under test, not the mawk the hooks prefer.
        .env("OXTAIL_HOOK_AWK", "awk")
        .env("HOME", home)
        .stdout(stdout)
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = match input {
        Input::DevNull => cmd.stdin(Stdio::null()).output().unwrap(),
        Input::Text(t) => {
            cmd.stdin(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let t = t.to_string();
            // A hook may exit without reading all of stdin: ignore EPIPE.
            let writer = std::thread::spawn(move || {
                let _ = stdin.write_all(t.as_bytes());
            });
            let out = child.wait_with_output().unwrap();
            let _ = writer.join();
            out
        }
    };
    Run {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// Run the repository's `assets/<hook>`.
pub fn run_hook(hook: &str, home: &Home, awk: &Awk, input: Input<'_>, env: &[(&str, &str)]) -> Run {
    let r = run_script(&asset(hook), home.path(), awk, input, env);
    assert_eq!(r.code, Some(0), "{hook} exit status; stderr: {}", r.stderr);
    r
}

/// A compact PreToolUse payload for `sid` (session_id first, as Claude sends).
pub fn pre_payload(sid: &str) -> String {
    format!(
        "{{\"session_id\":\"{sid}\",\"transcript_path\":\"/t.jsonl\",\"cwd\":\"/p\",\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{{\"command\":\"ls\"}},\"tool_use_id\":\"toolu_1\"}}"
    )
}

/// A compact Stop payload.
pub fn stop_payload(sid: &str, active: bool) -> String {
    format!(
        "{{\"session_id\":\"{sid}\",\"transcript_path\":\"/t.jsonl\",\"cwd\":\"/p\",\"hook_event_name\":\"Stop\",\"stop_hook_active\":{active},\"last_assistant_message\":\"done \\\"stop_hook_active\\\":true\"}}"
    )
}

/// Set a directory's mtime `secs` seconds into the past.
pub fn age(path: &Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    let f = fs::File::open(path).unwrap();
    f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

/// All `message_id=` values in a rendered context, in order.
pub fn message_ids(text: &str) -> Vec<String> {
    text.split("message_id=")
        .skip(1)
        .map(|s| s.chars().take_while(char::is_ascii_hexdigit).collect())
        .collect()
}

/// Today's receipt day log of `layout` (`store::daylog`).
pub fn receipt_log(layout: &Layout) -> PathBuf {
    let day = oxtail::store::daylog::day_of_ms(oxtail::clock::now_ms());
    oxtail::store::paths::day_log(&layout.receipts_dir(), day)
}

/// Every receipt line of `id` in today's day log, as written.
pub fn receipt_lines(layout: &Layout, id: &str) -> Vec<serde_json::Value> {
    fs::read_to_string(receipt_log(layout))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message_id"] == id)
        .collect()
}
