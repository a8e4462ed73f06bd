//! Shared helpers of the setup and doctor integration tests: a fixture HOME
//! (with `CODEX_HOME` inside it), spawning the built binary there with a PATH
//! that has no `codex`, and snapshots of every file under HOME.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub struct Home {
    _tmp: tempfile::TempDir,
    pub home: PathBuf,
}

impl Home {
    pub fn new() -> Home {
        Home::new_in(std::env::temp_dir())
    }

    /// A fixture HOME below `dir`.
    pub fn new_in(dir: impl AsRef<Path>) -> Home {
        fs::create_dir_all(dir.as_ref()).unwrap();
        let tmp = tempfile::tempdir_in(dir).unwrap();
        let home = tmp.path().join("home");
        fs::create_dir_all(&home).unwrap();
        Home { _tmp: tmp, home }
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.home.join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.p(rel)).unwrap()
    }

    pub fn oxtail(&self, args: &[&str]) -> Output {
        self.oxtail_env(args, &[])
    }

    pub fn oxtail_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_oxtail"))
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &self.home)
            .env("CODEX_HOME", self.p(".codex"))
            .env("TMUX_TMPDIR", self._tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Every file under HOME: relative path → (content, inode, mtime ns).
    pub fn snapshot(&self) -> BTreeMap<String, (Vec<u8>, u64, i64)> {
        let mut out = BTreeMap::new();
        walk(&self.home, &self.home, &mut out);
        out
    }

    pub fn backups(&self) -> Vec<String> {
        self.snapshot()
            .into_keys()
            .filter(|k| k.contains(".oxtail-backup."))
            .collect()
    }

    /// The backups of the file `rel` (relative to HOME).
    pub fn backups_of(&self, rel: &str) -> Vec<String> {
        let prefix = format!("{rel}.oxtail-backup.");
        self.backups()
            .into_iter()
            .filter(|b| b.starts_with(&prefix))
            .collect()
    }

    /// The `oxtail doctor --json` check named `name`.
    pub fn doctor_check(&self, name: &str) -> Value {
        let out = self.oxtail(&["doctor", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check: {v:#}"))
    }
}

pub fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, u64, i64)>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for de in rd.flatten() {
        let p = de.path();
        // A file a client process (Codex) removes while we walk is skipped.
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let content = if meta.file_type().is_symlink() {
                match fs::read_link(&p) {
                    Ok(t) => t.display().to_string().into_bytes(),
                    Err(_) => continue,
                }
            } else {
                match fs::read(&p) {
                    Ok(b) => b,
                    Err(_) => continue,
                }
            };
            out.insert(
                rel,
                (
                    content,
                    meta.ino(),
                    meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
                ),
            );
        }
    }
}

pub fn binary() -> String {
    fs::canonicalize(env!("CARGO_BIN_EXE_oxtail"))
        .unwrap()
        .display()
        .to_string()
}

pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn json_file(h: &Home, rel: &str) -> Value {
    serde_json::from_str(&h.read(rel)).unwrap()
}

/// The real Codex 0.169 of `../shared/realclients` (installed under
/// `~/.cache/oxtail-realclients`, or `$REALCLIENTS_DIR`), if present.
pub fn real_codex() -> Option<PathBuf> {
    let base = std::env::var_os("REALCLIENTS_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache/oxtail-realclients")))?;
    let bin = base.join("node_modules/.bin/codex");
    bin.exists().then_some(bin)
}

/// The note a test prints when it skips for want of [`real_codex`].
pub const NO_REAL_CODEX: &str =
    "skipped: no Codex in ~/.cache/oxtail-realclients (run ../shared/realclients/install.sh)";
