//! The hook files shipped inside the binary (`include_str!` of `assets/`), their
//! content hashes, the `_oxtailHook` marker version, the settings command
//! strings, and the freshness assessment the server prints at start-up.
//!
//! Invariants defended:
//! - what is installed, what is hashed into the marker and what the freshness
//!   check compares are the same bytes (the embedded text);
//! - an oxtail command is recognised exactly (`"$HOME/.oxtail/hooks/<file>"`
//!   and its spelled-out variants), never by a loose substring, so a
//!   third-party path that merely contains `oxtail/hooks/` is never claimed;
//! - assessing freshness never fails and never writes.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::paths::Layout;

/// Marker version. Bump it whenever any file in [`HOOK_FILES`] changes
/// (the original stopped at 6; 7 = the Rust rewrite's first hooks; 8 = lock
/// owner-write and stale re-check fixes, symlinked mailboxes skipped; 9 = the
/// 10,000-byte output cap; 10 = delivery receipts; 11 = lock reclaim of dead
/// holders and clearers, sidecars never through a symlink; 12 = SessionStart
/// and the client records that let a server follow /clear and /resume, mail
/// labelled with the id it was sent to; 13 = the idle watcher and the
/// renderer's text mode; 14 = mawk preferred when installed, `OXTAIL_HOOK_AWK`).
pub const HOOK_MARKER_VERSION: u64 = 15;

/// The idle watcher: a second Stop command, registered only for a Claude Code
/// that supports `asyncRewake` (never for Codex).
pub const IDLE_WATCH_FILE: &str = "idlewatch.sh";
/// The event the idle watcher is registered on.
pub const IDLE_WATCH_EVENT: &str = "Stop";
/// Claude Code's hook `timeout` for the watcher, in seconds; the watcher
/// gives up before it (3300 s, `OXTAIL_IDLE_WATCH_MAX_S`, at most 3500 s).
pub const IDLE_WATCH_TIMEOUT_S: u64 = 3600;
/// The file beside the hooks naming the oxtail binary the watcher runs
/// (`oxtail wait-mail`); written by install-hook, not hashed.
pub const OXTAIL_BIN_FILE: &str = "oxtail-bin.path";

/// Root key of `~/.claude/settings.json` that records our installation.
pub const MARKER_KEY: &str = "_oxtailHook";

/// One file installed into `~/.oxtail/hooks/`.
#[derive(Debug, Clone, Copy)]
pub struct HookFile {
    /// Id used in the marker's `hashes`.
    pub id: &'static str,
    /// File name under `~/.oxtail/hooks/`.
    pub file: &'static str,
    /// The Claude Code event it is registered on as a plain command (`None` =
    /// a sourced library or the idle watcher, registered on its own terms).
    pub event: Option<&'static str>,
    /// Run directly by the client (so it must be executable).
    pub runs: bool,
    /// Also registered in Codex's `hooks.json` (SessionStart is not: Codex
    /// starts one MCP server per thread, so a client record would mislead).
    pub codex: bool,
    /// The exact bytes shipped.
    pub text: &'static str,
}

/// A [`HookFile`] whose text is `assets/<file>`, so the installed name and the
/// shipped bytes cannot drift apart.
macro_rules! hook_file {
    ($id:literal, $file:literal, $event:expr) => {
        hook_file!($id, $file, $event, true)
    };
    ($id:literal, $file:literal, $event:expr, $codex:expr) => {
        hook_file!($id, $file, $event, $codex, Option::<&str>::is_some(&$event))
    };
    ($id:literal, $file:literal, $event:expr, $codex:expr, $runs:expr) => {
        HookFile {
            id: $id,
            file: $file,
            event: $event,
            codex: $codex,
            runs: $runs,
            text: include_str!(concat!("../../assets/", $file)),
        }
    };
}

/// Every installed file: the hooks first (in registration order), the idle
/// watcher, then the libraries they source.
pub const HOOK_FILES: [HookFile; 9] = [
    hook_file!("pretooluse", "pretooluse.sh", Some("PreToolUse")),
    hook_file!("stop", "stop.sh", Some("Stop")),
    hook_file!(
        "userpromptsubmit",
        "userpromptsubmit.sh",
        Some("UserPromptSubmit")
    ),
    hook_file!(
        "sessionstart",
        "sessionstart.sh",
        Some("SessionStart"),
        false
    ),
    hook_file!("idlewatch", "idlewatch.sh", None, false, true),
    hook_file!("common", "oxtail-hook-common.sh", None),
    hook_file!("deliver", "oxtail-hook-deliver.sh", None),
    hook_file!("awk", "oxtail-hook.awk", None),
    hook_file!("lock", "oxtail-lock.sh", None),
];

/// The hooks registered in settings as plain commands (files with an event;
/// Codex gets those marked `codex`).
pub fn managed_hooks() -> impl Iterator<Item = (&'static HookFile, &'static str)> {
    HOOK_FILES
        .iter()
        .filter_map(|h| h.event.map(|event| (h, event)))
}

/// The managed events as messages name them ("PreToolUse, Stop, …"), in
/// registration order, so adding a row to [`HOOK_FILES`] updates every line
/// setup, install-hook and doctor print.
pub fn event_list() -> String {
    managed_hooks()
        .map(|(_, event)| event)
        .collect::<Vec<_>>()
        .join(", ")
}

/// First 16 lowercase hex characters of sha256(text).
pub fn hash16(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// The marker's `hashes` object for the shipped files.
pub fn shipped_hashes() -> serde_json::Map<String, Value> {
    HOOK_FILES
        .iter()
        .map(|h| (h.id.to_string(), Value::String(hash16(h.text))))
        .collect()
}

/// The command string registered in settings: `"$HOME/.oxtail/hooks/<file>"`
/// (double quotes and an unexpanded `$HOME` included; the shell expands it).
pub fn command_for(file: &str) -> String {
    format!("\"$HOME/.oxtail/hooks/{file}\"")
}

/// Whether `cmd` runs oxtail's installed `file`: the path
/// `<home>/.oxtail/hooks/<file>` with the home spelled `$HOME`, `${HOME}`,
/// `~` or literally, optionally quoted and optionally run via `bash`/`sh`.
pub fn is_oxtail_command(cmd: &str, file: &str, home: &Path) -> bool {
    let mut c = cmd.trim();
    for runner in ["bash ", "sh ", "exec "] {
        if let Some(rest) = c.strip_prefix(runner) {
            c = rest.trim_start();
            break;
        }
    }
    for q in ['"', '\''] {
        if c.len() >= 2 && c.starts_with(q) && c.ends_with(q) {
            c = &c[1..c.len() - 1];
            break;
        }
    }
    let tail = format!("/.oxtail/hooks/{file}");
    match c.strip_suffix(tail.as_str()) {
        Some("$HOME" | "${HOME}" | "~") => true,
        Some(prefix) => !prefix.is_empty() && Path::new(prefix) == home,
        None => false,
    }
}

/// `~/.claude/settings.json` under `home`.
pub fn settings_path(home: &Path) -> PathBuf {
    home.join(".claude").join("settings.json")
}

/// The watcher's command object as registered in `settings.json`.
pub fn idle_watch_command() -> Value {
    serde_json::json!({
        "type": "command",
        "command": command_for(IDLE_WATCH_FILE),
        "asyncRewake": true,
        "timeout": IDLE_WATCH_TIMEOUT_S,
    })
}

/// Result of comparing the installation with the shipped files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// No usable marker (missing or unreadable settings, no marker object).
    Absent,
    /// The settings text could not be judged (not JSON at all).
    Unknown,
    /// Marker hashes and installed files match what this binary ships.
    Ok { version_mismatch: bool },
    /// These ids differ from what this binary ships (marker hash or file).
    Stale {
        drifted: Vec<&'static str>,
        version_mismatch: bool,
    },
}

/// Assess the hooks installed under `home` (settings marker and the files in
/// `~/.oxtail/hooks/`). Never fails.
pub fn assess(home: &Path) -> Freshness {
    let Ok(text) = fs::read_to_string(settings_path(home)) else {
        return Freshness::Absent;
    };
    if !text.contains(MARKER_KEY) {
        return Freshness::Absent;
    }
    let Ok(root) = serde_json::from_str::<Value>(&text) else {
        return Freshness::Unknown;
    };
    let Some(marker) = root.get(MARKER_KEY).and_then(Value::as_object) else {
        return Freshness::Absent;
    };
    let version_mismatch =
        marker.get("version").and_then(Value::as_u64) != Some(HOOK_MARKER_VERSION);
    let hashes = marker.get("hashes").and_then(Value::as_object);
    let hooks_dir = Layout::at(home.join(".oxtail"));
    let drifted: Vec<&'static str> = HOOK_FILES
        .iter()
        .filter(|h| {
            let want = hash16(h.text);
            let in_marker =
                hashes.and_then(|m| m.get(h.id)).and_then(Value::as_str) == Some(want.as_str());
            let on_disk = fs::read(hooks_dir.hook(h.file)).is_ok_and(|b| b == h.text.as_bytes());
            !(in_marker && on_disk)
        })
        .map(|h| h.id)
        .collect();
    if drifted.is_empty() {
        Freshness::Ok { version_mismatch }
    } else {
        Freshness::Stale {
            drifted,
            version_mismatch,
        }
    }
}

/// The one-line stderr hint the server prints at start-up (Claude Code
/// sessions only), or `None` when the hooks are current (or cannot be judged).
/// `layout` is the `~/.oxtail` layout; the home is its parent.
pub fn freshness_hint(layout: &Layout) -> Option<String> {
    let home = layout.root().parent()?;
    match assess(home) {
        Freshness::Absent => Some(
            "oxtail: the Claude Code hooks are not installed, so peer messages reach this \
             session only through read_my_messages; run `oxtail install-hook` to enable \
             mid-turn and turn-end delivery."
                .to_string(),
        ),
        Freshness::Stale { drifted, .. } => Some(format!(
            "oxtail: the installed Claude Code hooks are out of date ({}); re-run \
             `oxtail install-hook` (a stale PreToolUse hook can hide request_id from the receiver).",
            drifted.join(", ")
        )),
        Freshness::Ok { .. } | Freshness::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_exact_oxtail_commands() {
        let home = Path::new("/home/u");
        let f = "pretooluse.sh";
        for yes in [
            "\"$HOME/.oxtail/hooks/pretooluse.sh\"",
            "$HOME/.oxtail/hooks/pretooluse.sh",
            "~/.oxtail/hooks/pretooluse.sh",
            "bash \"${HOME}/.oxtail/hooks/pretooluse.sh\"",
            "'/home/u/.oxtail/hooks/pretooluse.sh'",
        ] {
            assert!(is_oxtail_command(yes, f, home), "{yes}");
        }
        for no in [
            "/opt/not-oxtail/hooks/pretooluse.sh",
            "\"$HOME/.oxtail/hooks/stop.sh\"",
            "/home/other/.oxtail/hooks/pretooluse.sh",
            "$HOME/.oxtail/hooks/pretooluse.sh --flag",
            "/.oxtail/hooks/pretooluse.sh",
        ] {
            assert!(!is_oxtail_command(no, f, home), "{no}");
        }
    }

    #[test]
    fn hashes_are_16_hex_and_cover_every_file() {
        let h = shipped_hashes();
        assert_eq!(h.len(), HOOK_FILES.len());
        for v in h.values() {
            let s = v.as_str().unwrap();
            assert_eq!(s.len(), 16);
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
        assert_eq!(managed_hooks().count(), 4);
        let codex: Vec<&str> = managed_hooks()
            .filter(|(h, _)| h.codex)
            .map(|(_, e)| e)
            .collect();
        assert_eq!(codex, ["PreToolUse", "Stop", "UserPromptSubmit"]);
        assert_eq!(command_for("stop.sh"), "\"$HOME/.oxtail/hooks/stop.sh\"");
    }
}
