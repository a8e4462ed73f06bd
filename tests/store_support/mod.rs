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
