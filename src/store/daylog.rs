//! Day logs: append-only JSON-lines files named by UTC day,
//! `<dir>/<day>.jsonl` (`day` = whole days since the Unix epoch; the name is
//! built by `paths::day_log`), for records written once per message:
//! delivery receipts and outbox records.
//!
//! Why not one file per record (the layout before): every message then cost a
//! new inode and a 4 KiB block, a week of traffic was a directory of that many
//! files, its clean-up deleted them in bulk, and on ext4 without a journal
//! every inode created in the minutes after a deletion scans past all recently
//! freed ones. An append allocates nothing new.
//!
//! Invariants defended:
//! - an append is whole lines in one `write(2)` with `O_APPEND`, so concurrent
//!   appenders never interleave inside a record (a single write to a regular
//!   file is atomic with respect to other writes on Linux and macOS local
//!   filesystems); the hooks append one line per write the same way;
//! - a day log is never written or read through a symlink (`O_NOFOLLOW`), and
//!   only a regular file is read;
//! - nothing is ever rewritten, so an append can never be lost to a concurrent
//!   rewrite; retention removes whole day files once they are older than the
//!   window ([`gc`]);
//! - a reader parses complete lines only (a record being appended is seen on
//!   the next look), and a line glued to a torn predecessor (a writer that hit
//!   a full disk mid-line) is recovered from its last `{"schema_version"`;
//! - lookups are incremental: a per-process [`Index`] remembers, per day file,
//!   its identity and how far it was read, and reads only what was appended
//!   since; a file that was replaced or shrank, or a window that moved to a
//!   new day, rebuilds the index from the files.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::paths;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// Where a line glued to a torn predecessor starts again.
const RECORD_START: &[u8] = b"{\"schema_version\"";

/// The UTC day number of `ms` since the epoch.
pub fn day_of_ms(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Append `lines` (whole lines, each ending in `\n`) to `dir`'s log of `day`
/// in one write, creating `dir` (`0700`) and the file (`0600`) as needed.
pub fn append(dir: &Path, day: i64, lines: &[u8]) -> io::Result<()> {
    debug_assert!(lines.is_empty() || lines.ends_with(b"\n"));
    if lines.is_empty() {
        return Ok(());
    }
    let path = paths::day_log(dir, day);
    let open = || {
        fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
    };
    let mut f = match open() {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            paths::ensure_private_dir(dir)?;
            open()?
        }
        Err(e) => return Err(e),
    };
    if !f.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    f.write_all(lines)
}

/// Remove `dir`'s day logs older than `keep_days` before the day of
/// `now_ms`. Returns how many were removed.
pub fn gc(dir: &Path, now_ms: i64, keep_days: i64) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    let oldest = day_of_ms(now_ms) - keep_days;
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(paths::day_log_day)
                .is_some_and(|d| d < oldest)
        })
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// How far one day file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    dev: u64,
    ino: u64,
    offset: u64,
}

/// What a process learned from one directory's day logs: every record folded
/// into a map by the caller's `apply`, oldest day first.
#[derive(Debug)]
pub struct Index<T> {
    first_day: i64,
    /// Every day looked at, with how far its file was read (`None`: absent).
    files: BTreeMap<i64, Option<Cursor>>,
    map: HashMap<String, T>,
}

impl<T> Default for Index<T> {
    fn default() -> Self {
        Index {
            first_day: i64::MIN,
            files: BTreeMap::new(),
            map: HashMap::new(),
        }
    }
}

impl<T: Clone> Index<T> {
    /// [`Index::with`] returning the value of `key`.
    pub fn lookup(
        &mut self,
        dir: &Path,
        now_ms: i64,
        keep_days: i64,
        key: &str,
        apply: impl Fn(&mut HashMap<String, T>, &serde_json::Value),
    ) -> Option<T> {
        self.with(dir, now_ms, keep_days, apply, |m| m.get(key).cloned())
    }
}

impl<T> Index<T> {
    /// Bring the index up to date with `dir`'s logs of the `keep_days` days
    /// before `now_ms`'s day through the next day (a writer's clock may run
    /// ahead), then hand the map to `f`. `apply(map, record)` folds one
    /// parsed line into the map. Days before yesterday, once looked at, are
    /// not looked at again (nobody writes a day log of the past).
    pub fn with<R>(
        &mut self,
        dir: &Path,
        now_ms: i64,
        keep_days: i64,
        apply: impl Fn(&mut HashMap<String, T>, &serde_json::Value),
        f: impl FnOnce(&HashMap<String, T>) -> R,
    ) -> R {
        let today = day_of_ms(now_ms);
        let first = today - keep_days;
        if first != self.first_day || !self.refresh(dir, first, today, &apply) {
            self.first_day = first;
            self.files.clear();
            self.map.clear();
            self.refresh(dir, first, today, &apply);
        }
        f(&self.map)
    }

    /// Read what was appended since the last look. False when a file read
    /// before was replaced, shrank or vanished (the caller rebuilds).
    fn refresh(
        &mut self,
        dir: &Path,
        first: i64,
        today: i64,
        apply: &impl Fn(&mut HashMap<String, T>, &serde_json::Value),
    ) -> bool {
        for day in first..=today + 1 {
            let known = self.files.get(&day).copied();
            if day < today - 1 && known.is_some() {
                continue;
            }
            let known = known.flatten();
            let path = paths::day_log(dir, day);
            let opened = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)
                .and_then(|f| f.metadata().map(|m| (f, m)));
            let (f, meta) = match opened {
                Ok((f, meta)) if meta.is_file() => (f, meta),
                _ if known.is_some() => return false,
                _ => {
                    self.files.insert(day, None);
                    continue;
                }
            };
            let mut cur = known.unwrap_or(Cursor {
                dev: meta.dev(),
                ino: meta.ino(),
                offset: 0,
            });
            if (cur.dev, cur.ino) != (meta.dev(), meta.ino()) || meta.len() < cur.offset {
                return false;
            }
            if meta.len() > cur.offset {
                let mut buf = vec![0u8; (meta.len() - cur.offset) as usize];
                let Ok(n) = read_at_most(&f, &mut buf, cur.offset) else {
                    continue;
                };
                buf.truncate(n);
                let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                for line in buf[..whole].split(|&b| b == b'\n') {
                    if let Some(v) = parse_line(line) {
                        apply(&mut self.map, &v);
                    }
                }
                cur.offset += whole as u64;
            }
            self.files.insert(day, Some(cur));
        }
        true
    }
}

fn read_at_most(f: &fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// One record of a line, or of the last record start in a glued line.
fn parse_line(line: &[u8]) -> Option<serde_json::Value> {
    if line.is_empty() {
        return None;
    }
    if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_slice(line) {
        return Some(v);
    }
    let start = memchr::memmem::rfind(line, RECORD_START)?;
    match serde_json::from_slice(&line[start..]) {
        Ok(v @ serde_json::Value::Object(_)) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn first_wins(map: &mut HashMap<String, String>, v: &Value) {
        if let (Some(k), Some(x)) = (v["k"].as_str(), v["x"].as_str()) {
            map.entry(k.to_string()).or_insert_with(|| x.to_string());
        }
    }

    const NOW: i64 = 20_000 * DAY_MS + 5_000;

    #[test]
    fn appends_are_found_incrementally_and_the_first_record_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let mut ix = Index::default();
        assert_eq!(ix.lookup(&dir, NOW, 7, "a", first_wins), None);
        append(&dir, 20_000, b"{\"k\":\"a\",\"x\":\"1\"}\n").unwrap();
        assert_eq!(
            ix.lookup(&dir, NOW, 7, "a", first_wins).as_deref(),
            Some("1")
        );
        append(
            &dir,
            20_000,
            b"{\"k\":\"a\",\"x\":\"2\"}\n{\"k\":\"b\",\"x\":\"3\"}\n",
        )
        .unwrap();
        assert_eq!(
            ix.lookup(&dir, NOW, 7, "a", first_wins).as_deref(),
            Some("1")
        );
        assert_eq!(
            ix.lookup(&dir, NOW, 7, "b", first_wins).as_deref(),
            Some("3")
        );
        // An older day's record of the same key is older: it wins.
        append(&dir, 19_999, b"{\"k\":\"b\",\"x\":\"0\"}\n").unwrap();
        let mut fresh = Index::default();
        assert_eq!(
            fresh.lookup(&dir, NOW, 7, "b", first_wins).as_deref(),
            Some("0")
        );
        let mode = fs::metadata(paths::day_log(&dir, 20_000)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_partial_line_waits_and_a_glued_line_is_recovered() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let mut ix = Index::default();
        fs::create_dir(&dir).unwrap();
        // A torn record, then one glued to it, not yet ended.
        fs::write(
            paths::day_log(&dir, 20_000),
            b"{\"schema_version\":1,\"k\":\"t\",\"x\"{\"schema_version\":1,\"k\":\"c\",\"x\":\"4\"}",
        )
        .unwrap();
        assert_eq!(
            ix.lookup(&dir, NOW, 7, "c", first_wins),
            None,
            "no newline yet"
        );
        append(&dir, 20_000, b"\n").unwrap();
        assert_eq!(
            ix.lookup(&dir, NOW, 7, "c", first_wins).as_deref(),
            Some("4")
        );
    }

    #[test]
    fn a_replaced_file_rebuilds_and_old_days_fall_out_and_are_collected() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let mut ix = Index::default();
        append(&dir, 19_990, b"{\"k\":\"old\",\"x\":\"1\"}\n").unwrap();
        append(&dir, 20_000, b"{\"k\":\"a\",\"x\":\"1\"}\n").unwrap();
        assert_eq!(
            ix.lookup(&dir, NOW, 7, "old", first_wins),
            None,
            "outside the window"
        );
        assert!(ix.lookup(&dir, NOW, 7, "a", first_wins).is_some());
        let p = paths::day_log(&dir, 20_000);
        fs::remove_file(&p).unwrap();
        // Replaced by a shorter file (a same-size one with a reused inode
        // number would go unnoticed: nobody but gc removes a day log).
        append(&dir, 20_000, b"{\"k\":\"z\",\"x\":\"\"}\n").unwrap();
        assert_eq!(ix.lookup(&dir, NOW, 7, "a", first_wins), None, "rebuilt");
        assert_eq!(
            ix.lookup(&dir, NOW, 7, "z", first_wins).as_deref(),
            Some("")
        );
        assert_eq!(gc(&dir, NOW, 7), 1);
        assert!(p.exists() && !paths::day_log(&dir, 19_990).exists());
    }

    #[test]
    fn symlinked_logs_are_never_written_or_read_through() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        fs::create_dir(&dir).unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, "{\"k\":\"s\",\"x\":\"planted\"}\n").unwrap();
        std::os::unix::fs::symlink(&outside, paths::day_log(&dir, 20_000)).unwrap();
        assert!(append(&dir, 20_000, b"{\"k\":\"q\",\"x\":\"1\"}\n").is_err());
        assert_eq!(
            fs::read_to_string(&outside).unwrap(),
            "{\"k\":\"s\",\"x\":\"planted\"}\n"
        );
        let mut ix = Index::default();
        assert_eq!(ix.lookup(&dir, NOW, 7, "s", first_wins), None);
    }
}
