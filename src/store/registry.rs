//! The session registry: `~/.oxtail/sessions/<server_pid>.json`, one file per
//! MCP server process (server spec §2).
//!
//! Invariants defended:
//! - a file only counts when its name is `<pid>.json` (pid > 0) and its
//!   `server_pid` is a JSON number equal to that pid (forgery guard);
//! - writes are atomic (`<pid>.json.<own pid>.tmp` + rename), pretty-printed with
//!   2-space indentation in the original's key order, directory `0700`, files
//!   `0600`; the own file is published before any sibling is touched;
//! - a dead entry is reaped by readers unless it is claimed and its mailbox still
//!   holds mail (a routing breadcrumb); a dead same-id sibling's mail is migrated
//!   into ours before its file goes;
//! - readers are lenient: unknown keys are ignored, optional keys default, and a
//!   malformed file is skipped (never a crash).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::file;
use super::paths::{FILE_MODE, Layout, ensure_private_dir};

/// The agent's client kind. An unrecognised string from a newer peer reads as
/// `Unknown` rather than failing the whole entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ClientType {
    #[serde(rename = "claude-code")]
    ClaudeCode,
    #[serde(rename = "codex")]
    Codex,
    #[default]
    #[serde(rename = "unknown", other)]
    Unknown,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::ClaudeCode => "claude-code",
            ClientType::Codex => "codex",
            ClientType::Unknown => "unknown",
        }
    }
}

/// `entry.client`: who the agent behind this server is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Client {
    #[serde(rename = "type", default)]
    pub client_type: ClientType,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub transcript_path: Option<String>,
    /// `env`, `birth-time`, `self-register`, `sticky-claim`, `tools-call-meta`,
    /// and (beyond the original) `session-start`, `hook-fallback`, `tool-use-id`
    /// for an id followed across `/clear` or `/resume`.
    #[serde(default)]
    pub session_id_source: Option<String>,
    #[serde(default)]
    pub cwd: String,
    /// Beyond the original: the pid of the client process this server serves
    /// (its parent, the Claude Code or Codex process). A 0.14 reader ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Beyond the original: when that process started (Unix seconds), so a
    /// reused pid is told apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_started_at: Option<i64>,
    /// Beyond the original: ids this same live server answered to before its
    /// client moved to `session_id` (`/clear`, `/resume`), newest first, at
    /// most [`MAX_PREVIOUS_IDS`]. A send to one of them still reaches this
    /// server while it lives; its mail is labelled as addressed to that id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_session_ids: Vec<String>,
}

/// How many previous ids an entry keeps as aliases.
pub const MAX_PREVIOUS_IDS: usize = 8;

impl Client {
    /// The session id when it is set and non-empty (the original treats `""`
    /// as "no id" everywhere except reap-deferral).
    pub fn id(&self) -> Option<&str> {
        self.session_id.as_deref().filter(|s| !s.is_empty())
    }

    /// `id` is one of this server's previous ids (an alias), not the current one.
    pub fn is_alias(&self, id: &str) -> bool {
        self.id() != Some(id) && self.previous_session_ids.iter().any(|p| p == id)
    }

    /// The current id and every alias, current first.
    pub fn all_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.id().into_iter().collect();
        for p in &self.previous_session_ids {
            if !p.is_empty() && !ids.contains(&p.as_str()) {
                ids.push(p);
            }
        }
        ids
    }
}

/// The state card written by `set_my_state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateCard {
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub updated_at: i64,
}

/// One registry entry, in the original's key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub server_pid: u32,
    #[serde(default)]
    pub started_at: i64,
    pub client: Client,
    #[serde(default)]
    pub tmux_pane: Option<String>,
    #[serde(default)]
    pub tmux_session: Option<String>,
    #[serde(default)]
    pub state: Option<StateCard>,
    /// Kept as raw JSON: legacy peers omit it, newer ones may add keys.
    #[serde(default)]
    pub capabilities: Option<Value>,
}

impl Entry {
    /// A fresh entry of this oxtail for `client`: no tmux binding, no state
    /// card, our own capabilities.
    pub fn new(server_pid: u32, started_at: i64, client: Client) -> Entry {
        Entry {
            server_pid,
            started_at,
            client,
            tmux_pane: None,
            tmux_session: None,
            state: None,
            capabilities: Some(own_capabilities()),
        }
    }

    /// `capabilities.mailbox.receipts === true`: its reads write receipts.
    pub fn writes_receipts(&self) -> bool {
        self.mailbox_flag("receipts")
    }

    /// `capabilities.mailbox.reply_to === true` (strict reply correlation).
    pub fn supports_reply_to(&self) -> bool {
        self.mailbox_flag("reply_to")
    }

    fn mailbox_flag(&self, flag: &str) -> bool {
        self.capabilities
            .as_ref()
            .and_then(|c| c.get("mailbox"))
            .and_then(|m| m.get(flag))
            .and_then(Value::as_bool)
            == Some(true)
    }
}

/// The capabilities every entry written by this version advertises (§2.12),
/// plus `mailbox.receipts` (new: this server writes delivery receipts; 0.14
/// readers look only at `reply_to`).
pub fn own_capabilities() -> Value {
    json!({"mailbox": {"reply_to": true, "provenance": true, "push_budget": true, "receipts": true}})
}

/// `^\d+\.json$` with a pid > 0, else `None`.
pub fn filename_pid(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().filter(|&p| p > 0)
}

/// Read and validate `<dir>/<name>`: pid-shaped name, parseable entry, and
/// `server_pid` equal to the filename pid. Anything else is `None`.
pub fn read_entry_file(dir: &Path, name: &str) -> Option<Entry> {
    let pid = filename_pid(name)?;
    let f = fs::File::open(dir.join(name)).ok()?;
    let len = f.metadata().ok()?.len();
    let text = super::file::read_to_vec(&f, len).ok()?;
    let entry: Entry = serde_json::from_slice(&text).ok()?;
    (entry.server_pid == pid).then_some(entry)
}

/// The valid entry file of server `pid`, read now (no liveness check).
pub fn read_pid(layout: &Layout, pid: u32) -> Option<Entry> {
    read_entry_file(&layout.sessions_dir(), &format!("{pid}.json"))
}

/// `kill(pid, 0)` succeeds or fails with `EPERM`.
pub fn is_alive(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // SAFETY: signal 0 only probes for existence; no signal is delivered.
    let rc = unsafe { libc::kill(p, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether `pid`'s mailbox still holds messages. Errors count as "yes" so
/// nothing routable is ever reaped.
fn mailbox_has_mail(layout: &Layout, pid: u32) -> bool {
    super::mailbox::has_messages(layout, pid).unwrap_or(true)
}

/// Best-effort: move `from`'s pending mail into `to`'s mailbox (errors
/// ignored; the sibling file then survives because its mailbox is not empty).
fn migrate_mail(layout: &Layout, from: u32, to: u32) {
    let _ = super::mailbox::migrate(layout, from, to);
}

/// Every raw, valid entry file (no liveness filter, no reaping), in byte-wise
/// file-name order — the order Node's `readdirSync` returns (libuv sorts its
/// scandir), so ties (dedupe, `ambiguous-target` candidates, list rows) break
/// the same way in a Node and a Rust peer sharing one registry.
pub(super) fn scan(layout: &Layout) -> Vec<Entry> {
    let dir = layout.sessions_dir();
    let Ok(rd) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|de| de.file_name().into_string().ok())
        .collect();
    names.sort_unstable();
    names
        .iter()
        .filter_map(|name| read_entry_file(&dir, name))
        .collect()
}

/// `ensureDir`: create `0700`, or re-tighten the directory and every `*.json`.
fn ensure_dir(layout: &Layout) -> io::Result<()> {
    let dir = layout.sessions_dir();
    let existed = dir.is_dir();
    ensure_private_dir(&dir)?;
    if existed && let Ok(rd) = fs::read_dir(&dir) {
        for de in rd.filter_map(Result::ok) {
            if de.file_name().to_string_lossy().ends_with(".json") {
                let _ = fs::set_permissions(de.path(), fs::Permissions::from_mode(FILE_MODE));
            }
        }
    }
    Ok(())
}

/// Serialise an entry the way the original does (pretty, 2 spaces, no newline).
pub fn to_pretty(entry: &Entry) -> String {
    serde_json::to_string_pretty(entry).unwrap_or_default()
}

/// Publish `entry` atomically, then garbage-collect dead same-id siblings.
pub fn register(layout: &Layout, entry: &Entry) -> io::Result<()> {
    ensure_dir(layout)?;
    file::write_pretty_json(&layout.session_entry(entry.server_pid), entry)?;
    gc_dead_siblings(layout, entry);
    Ok(())
}

/// Dead entries holding our session id: migrate their mail to us, then unlink
/// them once their mailbox is empty. Beyond the original: a dead entry that
/// holds our id as a previous id (its client moved on with `/clear`, and we
/// resumed the old session) hands over the mail that was addressed to our id.
fn gc_dead_siblings(layout: &Layout, own: &Entry) {
    let Some(sid) = own.client.id() else {
        return;
    };
    for sib in scan(layout) {
        if sib.server_pid == own.server_pid || is_alive(sib.server_pid) {
            continue;
        }
        if sib.client.session_id.as_deref() == Some(sid) {
            migrate_mail(layout, sib.server_pid, own.server_pid);
        } else if sib.client.is_alias(sid) {
            let _ = super::mailbox::migrate_matching(layout, sib.server_pid, own.server_pid, |m| {
                m.to_session_id() == Some(sid)
            });
        } else {
            continue;
        }
        if !mailbox_has_mail(layout, sib.server_pid) {
            let _ = fs::remove_file(layout.session_entry(sib.server_pid));
        }
    }
}

/// Delete our own entry (cleanup at exit); errors are ignored.
pub fn unregister(layout: &Layout, pid: u32) {
    let _ = fs::remove_file(layout.session_entry(pid));
}

/// The live view: valid entries whose pid is alive, deduplicated by session id.
/// Dead entries are unlinked, except a claimed one whose mailbox holds mail.
pub fn read_all(layout: &Layout) -> Vec<Entry> {
    dedupe_by_session_id(keep_live(layout, scan(layout)))
}

/// The entries whose pid is alive, in input order; dead ones are unlinked,
/// except a claimed one whose mailbox holds mail (the reaping every live
/// view does).
pub fn keep_live(layout: &Layout, entries: Vec<Entry>) -> Vec<Entry> {
    let mut live = Vec::new();
    for entry in entries {
        if is_alive(entry.server_pid) {
            live.push(entry);
            continue;
        }
        let keep = entry.client.session_id.is_some() && mailbox_has_mail(layout, entry.server_pid);
        if !keep {
            let _ = fs::remove_file(layout.session_entry(entry.server_pid));
        }
    }
    live
}

/// Every valid entry, dead ones included, in byte-wise file-name order, with
/// nothing reaped, migrated or rewritten (the original's `readAllPassive`):
/// for read-only views such as `oxtail status`, which must show dead agents
/// and must never change the registry.
pub fn read_all_passive(layout: &Layout) -> Vec<Entry> {
    scan(layout)
}

/// One entry per non-empty session id (greatest `started_at`, first seen wins
/// ties), in first-seen order, followed by every id-less entry in input order.
pub fn dedupe_by_session_id(entries: Vec<Entry>) -> Vec<Entry> {
    let mut winners: Vec<Entry> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut anonymous = Vec::new();
    for e in entries {
        let Some(sid) = e.client.id().map(str::to_string) else {
            anonymous.push(e);
            continue;
        };
        match index.get(&sid) {
            Some(&i) => {
                if e.started_at > winners[i].started_at {
                    winners[i] = e;
                }
            }
            None => {
                index.insert(sid, winners.len());
                winners.push(e);
            }
        }
    }
    winners.extend(anonymous);
    winners
}

/// Live entries bound to tmux session `name` (exact match).
pub fn find_by_tmux_session(layout: &Layout, name: &str) -> Vec<Entry> {
    read_all(layout)
        .into_iter()
        .filter(|e| e.tmux_session.as_deref() == Some(name))
        .collect()
}

/// Pids of every raw entry holding `session_id` (dead ones included, nothing
/// reaped), oldest `started_at` first. Used to find an agent's mailboxes.
pub fn session_pids_for_id(layout: &Layout, session_id: &str) -> Vec<u32> {
    let key = super::registry_index::Key::SessionId(session_id.to_string());
    let mut found = super::registry_index::lookup(layout, &key);
    found.sort_by_key(|e| e.started_at);
    found.into_iter().map(|e| e.server_pid).collect()
}

/// The entry `sessions/<pid>.json` as it is on disk now (validated like
/// every reader: name and `server_pid` agree), alive or not; no reaping.
pub fn read_one(layout: &Layout, pid: u32) -> Option<Entry> {
    read_entry_file(&layout.sessions_dir(), &format!("{pid}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A pid that is certainly dead: a child that already exited and was reaped.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    fn entry(pid: u32, sid: Option<&str>, started_at: i64) -> Entry {
        let client = Client {
            client_type: ClientType::ClaudeCode,
            session_id: sid.map(str::to_string),
            transcript_path: sid.map(|s| format!("/t/{s}.jsonl")),
            session_id_source: sid.map(|_| "env".to_string()),
            cwd: "/p".into(),

            ..Client::default()
        };
        Entry::new(pid, started_at, client)
    }

    fn setup() -> (tempfile::TempDir, Layout) {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::at(tmp.path().join(".oxtail"));
        (tmp, layout)
    }

    fn write_raw(layout: &Layout, name: &str, text: &str) {
        fs::create_dir_all(layout.sessions_dir()).unwrap();
        fs::write(layout.sessions_dir().join(name), text).unwrap();
    }

    #[test]
    fn filename_pids() {
        assert_eq!(filename_pid("12345.json"), Some(12345));
        assert_eq!(filename_pid("1.json"), Some(1));
        for bad in [
            "0.json",
            "12a.json",
            "12345.json.bak",
            "foo.json",
            "12345",
            ".json",
            "-1.json",
        ] {
            assert_eq!(filename_pid(bad), None, "{bad}");
        }
    }

    #[test]
    fn shape_modes_and_round_trip() {
        let (_tmp, layout) = setup();
        let me = std::process::id();
        register(&layout, &entry(me, Some("s"), 10)).unwrap();
        let text = fs::read_to_string(layout.session_entry(me)).unwrap();
        assert!(text.starts_with("{\n  \"server_pid\": "), "{text}");
        assert!(!text.ends_with('\n'));
        let keys = [
            "server_pid",
            "started_at",
            "client",
            "tmux_pane",
            "tmux_session",
            "state",
            "capabilities",
        ];
        let mut last = 0;
        for k in keys {
            let at = text.find(&format!("\"{k}\"")).unwrap();
            assert!(at >= last, "{k} out of order");
            last = at;
        }
        assert!(text.contains("\"session_id\": \"s\""));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&layout.session_entry(me)), 0o600);
        assert_eq!(mode(&layout.sessions_dir()), 0o700);
        fs::set_permissions(layout.sessions_dir(), fs::Permissions::from_mode(0o755)).unwrap();
        register(&layout, &entry(me, Some("s"), 10)).unwrap();
        assert_eq!(mode(&layout.sessions_dir()), 0o700);
        assert_eq!(read_all(&layout), vec![entry(me, Some("s"), 10)]);
        unregister(&layout, me);
        assert!(!layout.session_entry(me).exists());
    }

    #[test]
    fn lenient_reader_and_forgery_guard() {
        let (_tmp, layout) = setup();
        let me = std::process::id();
        let parent = std::os::unix::process::parent_id();
        // Legacy shape: no state, no capabilities, unknown extra keys.
        write_raw(
            &layout,
            &format!("{me}.json"),
            &format!(
                r#"{{"server_pid":{me},"started_at":5,"client":{{"type":"codex","session_id":"legit","cwd":"/p","future":1}},"extra":true}}"#
            ),
        );
        // Forged: named for our parent, claiming to be us.
        write_raw(
            &layout,
            &format!("{parent}.json"),
            &format!(
                r#"{{"server_pid":{me},"started_at":9,"client":{{"type":"codex","session_id":"forged","cwd":"/p"}}}}"#
            ),
        );
        write_raw(&layout, "77.json", "null");
        write_raw(&layout, "78.json", r#"{"server_pid":78,"started_at":1}"#);
        write_raw(&layout, "79.json", r#"{"server_pid":"79","client":{}}"#);
        write_raw(&layout, "80.json", "{not json");
        let all = read_all(&layout);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].client.session_id.as_deref(), Some("legit"));
        assert_eq!(all[0].client.client_type, ClientType::Codex);
        assert!(all[0].state.is_none() && !all[0].supports_reply_to());
        assert!(session_pids_for_id(&layout, "forged").is_empty());
        assert_eq!(session_pids_for_id(&layout, "legit"), vec![me]);
        assert!(session_pids_for_id(&layout, "nope").is_empty());
        // Forged and malformed files are skipped, not deleted.
        assert!(
            layout
                .sessions_dir()
                .join(format!("{parent}.json"))
                .exists()
        );
        assert!(layout.sessions_dir().join("80.json").exists());
    }

    #[test]
    fn dedupe_rules() {
        let a1 = entry(1, Some("a"), 10);
        let a2 = entry(2, Some("a"), 20);
        let b = entry(3, Some("b"), 5);
        let n1 = entry(4, None, 1);
        let n2 = entry(5, None, 1);
        let out = dedupe_by_session_id(vec![
            n1.clone(),
            a1.clone(),
            b.clone(),
            a2.clone(),
            n2.clone(),
        ]);
        assert_eq!(out, vec![a2.clone(), b.clone(), n1.clone(), n2.clone()]);
        let out = dedupe_by_session_id(vec![a2.clone(), a1.clone()]);
        assert_eq!(out, vec![a2.clone()]);
        // Ties keep the first seen.
        let a3 = entry(6, Some("a"), 20);
        assert_eq!(dedupe_by_session_id(vec![a3.clone(), a2.clone()]), vec![a3]);
    }

    #[test]
    fn scan_follows_byte_wise_file_name_order_like_node() {
        let (_tmp, layout) = setup();
        // Same id, same started_at: the stable sort keeps scan order, which must
        // be Node's readdirSync order ("100" < "1234" < "99"), not the
        // filesystem's.
        for pid in [99, 1234, 100] {
            write_raw(
                &layout,
                &format!("{pid}.json"),
                &to_pretty(&entry(pid, Some("s"), 7)),
            );
        }
        assert_eq!(session_pids_for_id(&layout, "s"), vec![100, 1234, 99]);
    }

    #[test]
    fn passive_read_keeps_dead_entries_and_their_files() {
        let (_tmp, layout) = setup();
        let me = std::process::id();
        let dead = dead_pid();
        register(&layout, &entry(me, Some("s"), 20)).unwrap();
        for (pid, sid) in [(dead, Some("gone")), (dead + 1_000_000, None)] {
            write_raw(
                &layout,
                &format!("{pid}.json"),
                &to_pretty(&entry(pid, sid, 1)),
            );
        }
        let pids: Vec<u32> = read_all_passive(&layout)
            .iter()
            .map(|e| e.server_pid)
            .collect();
        assert_eq!(pids.len(), 3, "{pids:?}");
        assert!(pids.contains(&dead) && pids.contains(&me));
        assert!(layout.session_entry(dead).exists(), "nothing reaped");
        assert!(layout.session_entry(dead + 1_000_000).exists());
        // The reaping reader, by contrast, removes them.
        read_all(&layout);
        assert!(!layout.session_entry(dead).exists());
    }

    #[test]
    fn read_all_collapses_twins_and_reaps_dead() {
        let (_tmp, layout) = setup();
        let me = std::process::id();
        let parent = std::os::unix::process::parent_id();
        let dead = dead_pid();
        register(&layout, &entry(parent, Some("s"), 10)).unwrap();
        register(&layout, &entry(me, Some("s"), 20)).unwrap();
        let all = read_all(&layout);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].server_pid, me);
        // A dead entry with a higher started_at is reaped; the live one wins.
        write_raw(
            &layout,
            &format!("{dead}.json"),
            &to_pretty(&entry(dead, Some("s"), 99)),
        );
        let all = read_all(&layout);
        assert_eq!(all[0].server_pid, me);
        assert!(!layout.session_entry(dead).exists());
    }

    #[test]
    fn reap_deferral_keeps_claimed_dead_entries_with_mail() {
        let (_tmp, layout) = setup();
        let dead = dead_pid();
        write_raw(
            &layout,
            &format!("{dead}.json"),
            &to_pretty(&entry(dead, Some("s"), 1)),
        );
        fs::create_dir_all(layout.mailboxes_dir()).unwrap();
        fs::write(layout.mailbox(dead), "{\"id\":\"x\"}\n").unwrap();
        assert!(read_all(&layout).is_empty());
        assert!(layout.session_entry(dead).exists(), "claimed + mail: kept");
        fs::write(layout.mailbox(dead), "").unwrap();
        assert!(read_all(&layout).is_empty());
        assert!(!layout.session_entry(dead).exists(), "drained: reaped");
        // A null-id dead entry is reaped even with mail.
        write_raw(
            &layout,
            &format!("{dead}.json"),
            &to_pretty(&entry(dead, None, 1)),
        );
        fs::write(layout.mailbox(dead), "{\"id\":\"x\"}\n").unwrap();
        read_all(&layout);
        assert!(!layout.session_entry(dead).exists());
    }

    #[test]
    fn register_gcs_dead_same_id_siblings_only() {
        let (_tmp, layout) = setup();
        let me = std::process::id();
        let parent = std::os::unix::process::parent_id();
        let dead = dead_pid();
        write_raw(
            &layout,
            &format!("{dead}.json"),
            &to_pretty(&entry(dead, Some("s"), 1)),
        );
        register(&layout, &entry(parent, Some("s"), 2)).unwrap();
        assert!(
            !layout.session_entry(dead).exists(),
            "dead sibling unlinked"
        );
        register(&layout, &entry(me, Some("s"), 3)).unwrap();
        assert!(layout.session_entry(parent).exists(), "live sibling kept");
        let all = read_all(&layout);
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].server_pid, all[0].started_at), (me, 3));
    }

    #[test]
    fn register_migrates_dead_sibling_mail_before_unlinking() {
        let (_tmp, layout) = setup();
        let me = std::process::id();
        let dead = dead_pid();
        write_raw(
            &layout,
            &format!("{dead}.json"),
            &to_pretty(&entry(dead, Some("s"), 1)),
        );
        fs::create_dir_all(layout.mailboxes_dir()).unwrap();
        let line = "{\"id\":\"0123456789abcdef\",\"from_session_id\":\"p\",\"body\":\"hi\",\"request_id\":\"r1\"}\n";
        fs::write(layout.mailbox(dead), line).unwrap();
        register(&layout, &entry(me, Some("s"), 2)).unwrap();
        assert_eq!(fs::read_to_string(layout.mailbox(me)).unwrap(), line);
        assert!(!layout.session_entry(dead).exists());
        assert!(!mailbox_has_mail(&layout, dead));
    }
}
