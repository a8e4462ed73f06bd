//! Shared helpers of the store integration tests: temp layouts, one trace file
//! per test binary, back-dating mtimes, running the bash lock library.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use oxtail::store::paths::Layout;

/// The trace file of this test binary. Call before anything can emit a trace:
/// the sink reads `MCP_TRACE_FILE` once per process.
pub fn trace_file() -> &'static Path {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    TRACE.get_or_init(|| {
        // A child process spawned by a test inherits its parent's file.
        if let Some(p) = std::env::var_os("MCP_TRACE_FILE").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let dir = tempfile::tempdir().unwrap().keep();
        let p = dir.join("trace.ndjson");
        // SAFETY: set once, before this binary emits its first trace event;
        // every test calls this first.
        unsafe { std::env::set_var("MCP_TRACE_FILE", &p) };
        p
    })
}

/// Trace records with event `name` whose JSON mentions `needle`.
pub fn traces(name: &str, needle: &str) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(trace_file()).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == name && v.to_string().contains(needle))
        .collect()
}

/// A fresh temp dir (kept alive by the returned guard) and a layout in it.
pub fn layout() -> (tempfile::TempDir, Layout) {
    trace_file();
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::at(tmp.path().join(".oxtail"));
    (tmp, layout)
}

/// Set `path`'s mtime `secs` seconds into the past (works for directories).
pub fn backdate(path: &Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    let f = fs::File::open(path).unwrap();
    f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

/// `assets/oxtail-lock.sh` of this checkout.
pub fn bash_lib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/oxtail-lock.sh")
}

/// Run `script` in bash after sourcing the lock library, with `HOME` pointed
/// at `home` and extra env vars.
pub fn bash(home: &Path, script: &str, env: &[(&str, &str)]) -> Output {
    let full = format!(". '{}'\n{}", bash_lib().display(), script);
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(full).env("HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("bash runs")
}

/// `oxtail_lock_acquire l` in bash: (acquired, token). The lock is left held.
pub fn bash_acquire(home: &Path, l: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = bash(
        home,
        &format!(
            "oxtail_lock_acquire '{}'; rc=$?; printf '%s %s' \"$rc\" \"$OXTAIL_LOCK_TOKEN\"",
            l.display()
        ),
        env,
    );
    let s = stdout(&out);
    let (rc, tok) = s.split_once(' ').unwrap_or((&s, ""));
    (rc == "0", tok.to_string())
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `<path><suffix>` (lock sidecars: `.owner`, `.steal`).
pub fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn owner_of(lock: &Path) -> Option<String> {
    fs::read_to_string(side(lock, ".owner")).ok()
}

/// Re-execute this test binary running only `test_name`, with `role_env` set
/// (the child test reads it and acts as a helper process). `HOME` points at
/// `home` so nothing touches the real `~/.oxtail`.
pub fn spawn_role(
    test_name: &str,
    home: &Path,
    role_env: &[(&str, String)],
) -> std::process::Child {
    trace_file();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        test_name,
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env("HOME", home)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::inherit());
    for (k, v) in role_env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("re-exec test binary")
}

#[path = "../shared/process.rs"]
mod process;
#[allow(unused_imports)]
pub use process::dead_pid;

/// What a [`Holder`] holds until it is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The lock itself (acquired normally, owner token written).
    Lock,
    /// Only the lock's steal marker, as a clearer mid-clear holds it.
    Steal,
}

/// The env var naming the role of a re-executed lock-holder test binary.
pub const HOLDER_ROLE: &str = "OXTAIL_LOCK_TEST_HOLD";

/// A separate process holding a lock or its steal marker until it is killed
/// (dropping the holder kills and reaps it too).
pub struct Holder {
    child: std::process::Child,
    /// The token it wrote beside what it holds.
    pub token: String,
}

impl Holder {
    /// bash holding `what` of `lock` through the lock library; `HOME` is `home`.
    pub fn bash(home: &Path, lock: &Path, what: Hold) -> Holder {
        let script = format!(
            r#". '{lib}'
L='{l}'
case {what} in
  lock) oxtail_lock_acquire "$L" || exit 1; tok=$OXTAIL_LOCK_TOKEN ;;
  steal) printf -v tok '%s.%04x%04x%04x' "$$" 1 2 3
    _oxtail_lock_stale_s; _oxtail_lock_take_steal "$L" "$tok" || exit 1 ;;
esac
printf '%s\n' "$tok"
read -r _"#,
            lib = bash_lib().display(),
            l = lock.display(),
            what = if what == Hold::Lock { "lock" } else { "steal" },
        );
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("HOME", home)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bash runs");
        let mut line = String::new();
        let out = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        let token = line.trim().to_string();
        assert!(!token.is_empty(), "the bash holder could not take {what:?}");
        Holder { child, token }
    }

    /// This test binary re-executed (its `test_name` test must call
    /// [`holder_role`]) holding `what` of `lock` with the Rust lock.
    pub fn rust(test_name: &str, home: &Path, lock: &Path, what: Hold) -> Holder {
        let out = home.join(format!("holder-{}", rand_suffix()));
        let role = if what == Hold::Lock { "lock" } else { "steal" };
        let child = spawn_role(
            test_name,
            home,
            &[
                (HOLDER_ROLE, role.to_string()),
                ("OXTAIL_LOCK_TEST_LOCK", lock.display().to_string()),
                ("OXTAIL_LOCK_TEST_OUT", out.display().to_string()),
            ],
        );
        let t = std::time::Instant::now();
        let token = loop {
            if let Ok(t) = fs::read_to_string(&out) {
                break t;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "hang guard: no holder"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        Holder { child, token }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL it and reap it (until reaped, a zombie's pid still exists).
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stop();
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Body of the role test [`Holder::rust`] re-executes: a no-op in a normal
/// run; as a holder, takes what it was told, reports its token, then sleeps
/// until killed.
pub fn holder_role() {
    use oxtail::store::lock::{self, LockKind, LockOptions};
    let Ok(role) = std::env::var(HOLDER_ROLE) else {
        return;
    };
    let l = PathBuf::from(std::env::var("OXTAIL_LOCK_TEST_LOCK").unwrap());
    let out = PathBuf::from(std::env::var("OXTAIL_LOCK_TEST_OUT").unwrap());
    let token = match role.as_str() {
        "lock" => {
            let g = lock::acquire(&l, &LockKind::Other, &LockOptions::default()).unwrap();
            let t = g.token().to_string();
            std::mem::forget(g);
            t
        }
        "steal" => {
            let m = lock::take_steal_marker(&l).expect("steal marker free");
            std::mem::forget(m);
            fs::read_to_string(side(&l, ".steal.owner")).unwrap()
        }
        other => panic!("unknown role {other}"),
    };
    let tmp = side(&out, ".tmp");
    fs::write(&tmp, &token).unwrap();
    fs::rename(&tmp, &out).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}
