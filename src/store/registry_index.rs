//! A per-process index of `~/.oxtail/sessions/`: which entry files hold a
//! session id or a tmux session name, so that resolving a target reads the
//! one or two files that can match instead of every entry of every session
//! that ever ran on the machine.
//!
//! The registry files stay the truth; the index only says which of them to
//! read:
//! - it is trusted only while the directory's identity and change times
//!   (`dev`, `ino`, `mtime`, `ctime`) are what they were when it was built.
//!   Every registry write — ours, a 0.14 peer's, a reaper's unlink — is a
//!   create, rename or unlink in that directory and changes them, so a peer
//!   that registers is seen by the very next lookup;
//! - an index built less than [`RACY_MARGIN`] after the directory last
//!   changed serves only the lookup that built it; the next one scans again
//!   (a change in the same file-system clock tick as the scan leaves the
//!   times as they were and could otherwise go unseen);
//! - every file it points to is read again at lookup time and validated like
//!   every reader validates (name = `<server_pid>.json`, parseable, the key
//!   still there): an entry that changed or vanished since is never
//!   returned, and such a mismatch drops the index for a full rescan, so it
//!   can never route to a stale or forged entry;
//! - a key with no file in the index is answered from a full scan, so "no
//!   such entry" never rests on the index. What it cannot see until the
//!   directory next changes is a file rewritten *in place* (no rename — no
//!   oxtail or 0.14 writer does that, a person with an editor might) that
//!   now also holds a key another file already holds.
//!
//! What an entry can be found by is said in one place, [`keys_of`].

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::paths::Layout;
use super::registry::{self, Entry};

/// How long after a directory change an index built from it is not trusted
/// for a second lookup: well beyond the timestamp granularity of local file
/// systems (a kernel tick, ≤ 10 ms).
pub const RACY_MARGIN: Duration = Duration::from_millis(100);

/// What an entry can be found by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `client.session_id` (the empty string included, as a raw match).
    SessionId(String),
    /// `tmux_session`.
    Tmux(String),
    /// A previous session id (`client.previous_session_ids`) that is not the
    /// current one ([`registry::Client::is_alias`]).
    Alias(String),
}

/// Every key `entry` can be found by: the one predicate of what a target
/// matches (a lookup by key `k` returns exactly the entries whose keys
/// contain `k`).
pub fn keys_of(entry: &Entry) -> Vec<Key> {
    let mut keys = Vec::with_capacity(2 + entry.client.previous_session_ids.len());
    if let Some(sid) = &entry.client.session_id {
        keys.push(Key::SessionId(sid.clone()));
    }
    if let Some(t) = &entry.tmux_session {
        keys.push(Key::Tmux(t.clone()));
    }
    for p in &entry.client.previous_session_ids {
        let alias = Key::Alias(p.clone());
        if entry.client.is_alias(p) && !keys.contains(&alias) {
            keys.push(alias);
        }
    }
    keys
}

/// The directory's identity and change times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(dir: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(dir).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// Whether the directory's entries changed at or after `t` (seconds,
    /// nanoseconds). Every entry change sets mtime and ctime alike; ctime
    /// alone also moves with attribute changes, which change no entry.
    fn changed_since(&self, t: (i64, i64)) -> bool {
        self.mtime >= t
    }
}

/// One directory's index.
struct Index {
    stamp: Stamp,
    /// Built long enough after the directory's last change to be reused.
    trusted: bool,
    /// File names per key, byte-wise name order (the registry's scan order).
    names: HashMap<Key, Vec<String>>,
}

static INDEXES: Mutex<Option<HashMap<PathBuf, Index>>> = Mutex::new(None);

fn with_indexes<T>(f: impl FnOnce(&mut HashMap<PathBuf, Index>) -> T) -> T {
    let mut g = INDEXES.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

fn file_name(e: &Entry) -> String {
    format!("{}.json", e.server_pid)
}

/// Every valid entry holding `key`, read from its file now (dead ones
/// included, nothing reaped), in byte-wise file-name order — what filtering
/// a full registry scan by [`keys_of`] would give.
pub fn lookup(layout: &Layout, key: &Key) -> Vec<Entry> {
    let dir = layout.sessions_dir();
    let Some(stamp) = Stamp::of(&dir) else {
        return Vec::new();
    };
    let cached = with_indexes(|m| match m.get(&dir) {
        Some(ix) if ix.trusted && ix.stamp == stamp => {
            Some(ix.names.get(key).cloned().unwrap_or_default())
        }
        _ => None,
    });
    // Nothing indexed under the key: answer from a full scan, so "no such
    // entry" never rests on the index (a file rewritten in place, which no
    // oxtail writes but a person or a test may, is found this way).
    if let Some(names) = cached.filter(|n| !n.is_empty()) {
        let mut out = Vec::with_capacity(names.len());
        for name in &names {
            match registry::read_entry_file(&dir, name) {
                Some(e) if keys_of(&e).contains(key) => out.push(e),
                // Changed or gone without the directory saying so: rebuild.
                _ => return rescan(layout, &dir, key),
            }
        }
        return out;
    }
    rescan(layout, &dir, key)
}

/// Scan the whole directory, keep the index, return the entries for `key`.
fn rescan(layout: &Layout, dir: &Path, key: &Key) -> Vec<Entry> {
    let started = SystemTime::now()
        .checked_sub(RACY_MARGIN)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or((0, 0), |d| {
            (d.as_secs() as i64, i64::from(d.subsec_nanos()))
        });
    let before = Stamp::of(dir);
    let entries = registry::scan(layout);
    let after = Stamp::of(dir);
    let mut names: HashMap<Key, Vec<String>> = HashMap::new();
    let mut out = Vec::new();
    for e in entries {
        let keys = keys_of(&e);
        for k in &keys {
            names.entry(k.clone()).or_default().push(file_name(&e));
        }
        if keys.contains(key) {
            out.push(e);
        }
    }
    with_indexes(|m| match after {
        Some(stamp) if before == after => {
            let trusted = !stamp.changed_since(started);
            m.insert(
                dir.to_path_buf(),
                Index {
                    stamp,
                    trusted,
                    names,
                },
            );
        }
        _ => {
            m.remove(dir);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::registry::{Client, ClientType};
    use std::fs;

    fn entry(pid: u32, sid: &str, tmux: Option<&str>) -> Entry {
        let client = Client {
            client_type: ClientType::ClaudeCode,
            session_id: Some(sid.into()),
            cwd: "/p".into(),
            ..Client::default()
        };
        let mut e = Entry::new(pid, 1, client);
        e.tmux_session = tmux.map(str::to_string);
        e
    }

    fn write(l: &Layout, e: &Entry) {
        fs::create_dir_all(l.sessions_dir()).unwrap();
        crate::store::file::write_pretty_json(&l.session_entry(e.server_pid), e).unwrap();
    }

    fn pids(v: &[Entry]) -> Vec<u32> {
        v.iter().map(|e| e.server_pid).collect()
    }

    /// Pretend the directory last changed long ago, so the next scan is
    /// trusted (a test cannot wait out the racy margin for every step).
    fn age_dir(l: &Layout) {
        let old = SystemTime::now() - Duration::from_secs(60);
        let f = fs::File::open(l.sessions_dir()).unwrap();
        f.set_times(fs::FileTimes::new().set_modified(old).set_accessed(old))
            .unwrap();
    }

    #[test]
    fn lookups_match_a_filtered_scan_and_see_every_change_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        for (pid, sid, t) in [
            (99, "a", Some("w")),
            (1234, "a", None),
            (100, "b", Some("w")),
        ] {
            write(&l, &entry(pid, sid, t));
        }
        age_dir(&l);
        let a = Key::SessionId("a".into());
        let w = Key::Tmux("w".into());
        assert_eq!(pids(&lookup(&l, &a)), [1234, 99]);
        assert_eq!(pids(&lookup(&l, &w)), [100, 99]);
        assert!(lookup(&l, &Key::SessionId("zz".into())).is_empty());
        // A new file (a peer registering) is seen by the next lookup.
        write(&l, &entry(5, "a", None));
        assert_eq!(pids(&lookup(&l, &a)), [1234, 5, 99]);
        // An entry rewritten (rename) to another id leaves the old key.
        age_dir(&l);
        lookup(&l, &a);
        write(&l, &entry(99, "c", Some("w")));
        assert_eq!(pids(&lookup(&l, &a)), [1234, 5]);
        assert_eq!(pids(&lookup(&l, &Key::SessionId("c".into()))), [99]);
        // A removed file is gone at once.
        fs::remove_file(l.session_entry(5)).unwrap();
        assert_eq!(pids(&lookup(&l, &a)), [1234]);
    }

    #[test]
    fn an_in_place_change_of_a_candidate_is_never_returned() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        write(&l, &entry(7, "a", None));
        age_dir(&l);
        let a = Key::SessionId("a".into());
        assert_eq!(pids(&lookup(&l, &a)), [7]);
        assert_eq!(pids(&lookup(&l, &a)), [7]);
        // Rewritten in place (no rename, so the directory does not change):
        // the candidate is re-read and no longer matches; a forged file
        // (name and server_pid disagree) is no entry at all.
        let text = registry::to_pretty(&entry(7, "b", None));
        let stamp = Stamp::of(&l.sessions_dir());
        fs::write(l.session_entry(7), text).unwrap();
        assert_eq!(Stamp::of(&l.sessions_dir()), stamp);
        assert!(lookup(&l, &a).is_empty());
        assert_eq!(pids(&lookup(&l, &Key::SessionId("b".into()))), [7]);
        age_dir(&l);
        lookup(&l, &a);
        fs::write(
            l.session_entry(7),
            registry::to_pretty(&entry(8, "b", None)),
        )
        .unwrap();
        assert!(lookup(&l, &Key::SessionId("b".into())).is_empty());
    }

    #[test]
    fn previous_ids_are_alias_keys_and_the_current_id_is_not_one() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        let mut e = entry(7, "now", None);
        e.client.previous_session_ids = vec!["before".into(), "now".into()];
        write(&l, &e);
        assert_eq!(
            keys_of(&e),
            [Key::SessionId("now".into()), Key::Alias("before".into())]
        );
        assert_eq!(pids(&lookup(&l, &Key::Alias("before".into()))), [7]);
        assert!(lookup(&l, &Key::Alias("now".into())).is_empty());
    }

    #[test]
    fn a_key_the_index_lacks_is_looked_for_in_a_full_scan() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        write(&l, &entry(7, "a", None));
        age_dir(&l);
        lookup(&l, &Key::SessionId("a".into()));
        // Rewritten in place to a key nobody held: still found at once.
        fs::write(
            l.session_entry(7),
            registry::to_pretty(&entry(7, "n", Some("t"))),
        )
        .unwrap();
        assert_eq!(pids(&lookup(&l, &Key::SessionId("n".into()))), [7]);
        assert_eq!(pids(&lookup(&l, &Key::Tmux("t".into()))), [7]);
    }

    #[test]
    fn an_index_built_right_after_a_change_is_not_trusted_twice() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::at(tmp.path().join(".oxtail"));
        write(&l, &entry(7, "a", None));
        let a = Key::SessionId("a".into());
        lookup(&l, &a);
        let dir = l.sessions_dir();
        let trusted = with_indexes(|m| m.get(&dir).map(|ix| ix.trusted));
        assert_eq!(trusted, Some(false), "the directory changed just now");
        lookup(&l, &a);
        age_dir(&l);
        lookup(&l, &a);
        let trusted = with_indexes(|m| m.get(&dir).map(|ix| ix.trusted));
        assert_eq!(trusted, Some(true));
    }
}
